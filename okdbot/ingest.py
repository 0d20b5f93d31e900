"""Find and read the notes of each configured source.

A note is kept exactly as its bytes say (line numbers must match its public
home); only line endings are normalised to "\\n", as Markdown parsers do.
Binary and non-UTF-8 files are skipped with a warning that names them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from .config import Source
from .errors import CorpusError

log = logging.getLogger("okdbot")


@dataclass(frozen=True)
class Note:
    """One Markdown file of a source."""

    source: Source
    path: str  # POSIX path relative to the source root
    text: str  # "\n"-separated lines, exactly as in the file
    sha256: str  # of the file's bytes

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass(frozen=True)
class Skipped:
    source: str
    path: str
    reason: str


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
            raise CorpusError(f"notes folder {source.path} does not exist; create it or fix 'path' of source '{source.name}'")
        for file in list_files(source):
            rel = file.relative_to(source.path).as_posix()
            try:
                data = file.read_bytes()
            except FileNotFoundError:  # renamed or deleted since listed: it is simply gone
                continue
            except OSError as exc:
                skipped.append(Skipped(source.name, rel, f"unreadable ({exc.strerror})"))
                continue
            text, reason = decode(data)
            if text is None:
                skipped.append(Skipped(source.name, rel, reason))
                continue
            notes.append(Note(source, rel, text, hashlib.sha256(data).hexdigest()))
    return notes, skipped


def list_files(source: Source) -> list:
    """Files matching the source's glob, sorted, hidden folders excluded."""
    files = []
    for file in sorted(source.path.glob(source.glob)):
        rel_parts = file.relative_to(source.path).parts
        if file.is_file() and not any(part.startswith(".") for part in rel_parts):
            files.append(file)
    return files


def decode(data: bytes) -> tuple[str | None, str]:
    """(text, "") for a UTF-8 text file, (None, reason) otherwise."""
    if b"\x00" in data[:8192]:
        return None, "binary file (contains NUL bytes)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8"
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), ""
