"""Find and read the notes of each configured source.

A note is kept as its bytes say (line numbers must match its public home);
only line endings are normalised to "\\n", as Markdown parsers do, and the
text to Unicode NFC (macOS writes Hangul decomposed, NFD, which no question
typed elsewhere matches). Nothing outside a source folder is read: a symlink
pointing out of it is skipped. Binary, non-UTF-8 (e.g. UTF-16) and oversized
files are skipped with a warning that names them and says what to do.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import unicodedata
from dataclasses import dataclass

from .config import Source
from .errors import CorpusError
from .gitnotes import blob_id

log = logging.getLogger("okdbot")

MAX_NOTE_BYTES = 5 * 2**20  # a note is prose for people; a bigger file is a dump or an export


@dataclass(frozen=True)
class Note:
    """One Markdown file of a source."""

    source: Source
    path: str  # POSIX path relative to the source root
    text: str  # "\n"-separated lines as in the file (in NFC)
    sha256: str  # of the file's bytes
    git_blob: str = ""  # the id Git gives these bytes (gitnotes.blob_id)

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass(frozen=True)
class Skipped:
    source: str
    path: str
    reason: str
    sha256: str = ""  # of the bytes, when skipped by the build (a later edit may make it indexable)


def read_notes(sources: tuple[Source, ...]) -> tuple[list[Note], list[Skipped]]:
    """All readable notes of all sources, and the files skipped with why.

    Raises CorpusError when there are no sources, a source folder is missing,
    or no readable note is found at all."""
    notes, skipped = scan_notes(sources)
    for skip in skipped:
        log.warning("skipped %s/%s: %s", skip.source, skip.path, skip.reason)
    if not notes:
        where = ", ".join(f"{s.path} ({s.glob})" for s in sources)
        raise CorpusError(f"no readable notes in {where}; add Markdown files or fix the source's glob")
    return notes, skipped


def scan_notes(sources: tuple[Source, ...]) -> tuple[list[Note], list[Skipped]]:
    """Like read_notes, but silent and content with no notes at all (for checks
    that only compare the notes with the index)."""
    if not sources:
        raise CorpusError("no notes configured; add a source to okdbot.yaml or pass --corpus DIR")
    notes: list[Note] = []
    skipped: list[Skipped] = []
    for source in sources:
        if not source.path.is_dir():
            raise missing_folder(source)
        for file in list_files(source):
            rel = file.relative_to(source.path).as_posix()
            if not _utf8(rel):  # a name no index, link or message can hold: shown with U+FFFD
                shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                skipped.append(Skipped(source.name, shown, "its name is not UTF-8; rename it"))
                continue
            data, reason = _read(file, source.path)
            text, reason = decode(data) if data is not None else (None, reason)
            if text is None:
                if reason:  # "" when the file is simply gone (renamed or deleted since listed)
                    skipped.append(Skipped(source.name, rel, reason))
                continue
            notes.append(Note(source, rel, text, hashlib.sha256(data).hexdigest(), blob_id(data)))
    return notes, skipped


def _utf8(name: str) -> bool:
    """Whether a file name (decoded by Python with surrogateescape) is valid UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read(file, root) -> tuple[bytes | None, str]:
    """(bytes, "") of a note inside `root`, else (None, why it is not read)."""
    try:
        target = file.resolve(strict=True)
        if not target.is_relative_to(root.resolve()):
            return None, f"a link to {target}, outside the source folder: not read (copy the note in instead)"
        size = target.stat().st_size
        if size > MAX_NOTE_BYTES:
            return None, (f"too large ({size / 2**20:.1f} MB; notes of at most {MAX_NOTE_BYTES // 2**20} MB "
                          "are indexed): split it")
        return target.read_bytes(), ""
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"


def missing_folder(source: Source) -> CorpusError:
    """The error for a source whose folder is not there (or is a file)."""
    what = "is a file, not a folder" if source.path.exists() else "does not exist"
    return CorpusError(f"notes folder {source.path} {what}; create it or fix 'path' of source '{source.name}'")


def list_files(source: Source) -> list:
    """Files matching the source's glob, sorted, hidden folders excluded."""
    files = []
    for file in sorted(source.path.glob(source.glob)):
        rel_parts = file.relative_to(source.path).parts
        if file.is_file() and not any(part.startswith(".") for part in rel_parts):
            files.append(file)
    return files


def decode(data: bytes) -> tuple[str | None, str]:
    """(text in NFC, "") for a UTF-8 text file, (None, reason) otherwise."""
    wide = _utf16_or_32(data)
    if wide:
        return None, f"{wide} text, not UTF-8; re-save it as UTF-8"
    if b"\x00" in data[:8192]:
        return None, "binary file (contains NUL bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8"
    if text.startswith("\ufeff"):
        text = text[1:]
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")), ""


def _utf16_or_32(data: bytes) -> str:
    """"UTF-16"/"UTF-32" when the bytes are text in one of them (by its byte
    order mark, or ASCII-range text with every other byte NUL), else ""."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = data[:4096] if len(data) % 2 == 0 else b""
    for zeros, text in ((head[1::2], head[0::2]), (head[0::2], head[1::2])):
        if len(head) >= 8 and zeros.count(0) >= 0.9 * len(zeros) and 0 not in text:
            return "UTF-16"
    return ""
