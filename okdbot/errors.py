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
