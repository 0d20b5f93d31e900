"""okdbot's own exception types.

Library code raises these; only the CLI and the Discord bot turn them into
user-facing messages. Every message is one line that says what to do next.
"""


class OkdbotError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = 1


class ConfigError(OkdbotError):
    """okdbot.yaml is missing, malformed, or has unknown keys / wrong types."""

    exit_code = 2


class CorpusError(OkdbotError):
    """The notes folder is missing, empty or unreadable."""


class IndexMissing(OkdbotError):
    """No index has been built at the given location."""


class IndexMismatch(OkdbotError):
    """The index was built with another model or chunker than configured."""


class IndexCorrupt(OkdbotError):
    """Index files are truncated, altered or unreadable."""


class BadQuestion(OkdbotError):
    """The question is empty or too long."""

    exit_code = 2


class ModelError(OkdbotError):
    """The embedding model cannot be loaded offline."""


class DiscordError(OkdbotError):
    """Discord refused the bot (missing or rejected token, missing scope) or is unreachable."""


class EvalError(OkdbotError):
    """A question set for `okdbot eval` is missing or malformed."""

    exit_code = 2


class StorageError(OkdbotError):
    """A file or folder okdbot must read or write cannot be used: permissions,
    a full disk, a file where a folder belongs."""


def storage_error(exc: OSError, doing: str, path=None) -> StorageError:
    """One line for an OS error: what could not be done, where, and what to do.
    `doing` reads like "write the index in"; the path is the error's own when it has one."""
    import errno
    import os

    where = exc.filename or path or "?"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        advice = "the disk is full; free some space (or move the state folder, OKDBOT_DATA) and run again"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = (f"permission denied for this user (uid {os.getuid()}); make it writable (chown/chmod) "
                  "or point OKDBOT_DATA / --index at a folder this user may write")
    elif code in (errno.ENOTDIR, errno.EEXIST):
        advice = ("a file is in the way where a folder belongs; point --index, or the state folder (OKDBOT_DATA / data:), at a folder")
    elif code == errno.EISDIR:
        advice = "a folder is in the way where a file belongs; remove or rename it"
    else:
        advice = f"{exc.strerror or exc}; check the path and run again"
    return StorageError(f"cannot {doing} {where}: {advice}")
