"""From scored chunk rows to what a user reads: passages of note lines, and suggestions.

Adjacent hits from one section become one passage; a hit on a lead-in line (a
bold pseudo-heading such as "**디스크 사용량 측정**", or a line ending with ":")
brings the block it introduces along. Passages are ranked by their best row, so
asking for more passages (`-k`) never changes the ones ranked first.
"""

from __future__ import annotations

import hashlib
import re

from .chunk import is_image_only
from .config import Source
from .lexical import concept_in
from .results import Line, Passage, Suggestion
from .index.chunks import ChunkRecord
from .index.reader import IndexReader

_LEAD = re.compile(r"^(?:\*\*[^*].*\*\*|__[^_].*__)(?:\s*<br\s*/?>)?$|^.*[:：]$", re.IGNORECASE)
SUGGESTIONS = 3  # sections offered when the notes do not answer
_HASHED_MAX = 5 * 2**20  # a quoted note larger than the notes okdbot indexes is not checked for edits


def build_passages(reader: IndexReader, rows: list[int], scores, concepts, k: int, analyzer) -> list[Passage]:
    """Merge touching hits of one section into one passage; best first, at most k.
    `scores` holds each row's score; `concepts` mark the lines a quote highlights."""
    groups = _groups(reader, _with_introduced_blocks(reader, list(rows)), scores)
    sources = _sources(reader)
    passages = []
    for score, group in groups[:k]:
        first, last = group[0], group[-1]
        texts = reader.lines(first.source, first.file, first.start_line, last.end_line)
        known = reader.line_tokens(texts)
        lines = [Line(first.start_line + i, text, _holds_a_concept(analyzer, text, concepts, known.get(text)))
                 for i, text in enumerate(texts)]
        passages.append(Passage(
            rank=len(passages) + 1, score=round(float(score), 4), source=first.source, file=first.file,
            heading=first.heading, start_line=first.start_line, end_line=last.end_line,
            url=sources[first.source].link_for(first.file, first.start_line, last.end_line), lines=lines))
    return passages


def changed_notes(reader: IndexReader, passages: list[Passage]) -> list[str]:
    """The quoted notes whose file is no longer what was indexed (edited or gone): the quote
    is the indexed text, the link opens the file as it is now, so its lines may have moved."""
    indexed = reader.manifest.get("notes", {})
    sources = _sources(reader)
    changed = []
    for source, file in dict.fromkeys((p.source, p.file) for p in passages):
        if file in sources[source].pinned and sources[source].commit_url:
            continue  # its link opens the indexed commit: the lines cannot have moved
        path = sources[source].path / file
        try:  # a note gone (or its folder moved) says nothing; a pipe or a device is never read
            if not path.is_file() or path.stat().st_size > _HASHED_MAX:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        if digest != indexed.get(f"{source}/{file}", digest):
            changed.append(file)
    return changed


def suggestions(reader: IndexReader, rows) -> list[Suggestion]:
    """Up to SUGGESTIONS distinct sections nearest to the question, linked as a whole."""
    sources = _sources(reader)
    picked: list[ChunkRecord] = []
    for row in rows:
        chunk = reader.chunks[int(row)]
        if all(chunk.heading != p.heading or chunk.file != p.file for p in picked):
            picked.append(chunk)
        if len(picked) == SUGGESTIONS:
            break
    out = []
    for chunk in picked:
        start, end = reader.section_spans[(chunk.source, chunk.file, chunk.heading)]
        out.append(Suggestion(chunk.heading, sources[chunk.source].link_for(chunk.file, start, end)))
    return out


def _with_introduced_blocks(reader: IndexReader, rows: list[int]) -> list[int]:
    """`rows` plus the block each lead-in row introduces."""
    for row in list(rows):
        follower = row + 1
        if (_is_lead(reader.chunks[row]) and follower < len(reader.chunks) and follower not in rows
                and _touching(reader, reader.chunks[row], reader.chunks[follower])):
            rows.append(follower)
    return rows


def _groups(reader: IndexReader, rows: list[int], scores) -> list[tuple[float, list[ChunkRecord]]]:
    """Runs of touching rows of one section, each with its best score, best first."""
    by_section: dict[tuple, list[int]] = {}
    for row in rows:
        c = reader.chunks[row]
        by_section.setdefault((c.source, c.file, c.heading), []).append(row)
    groups: list[tuple[float, list[ChunkRecord]]] = []
    for members in by_section.values():
        members.sort(key=lambda r: reader.chunks[r].start_line)
        current = [members[0]]
        for row in members[1:]:
            if _touching(reader, reader.chunks[current[-1]], reader.chunks[row]):
                current.append(row)
            else:
                groups.append((max(scores[r] for r in current), [reader.chunks[r] for r in current]))
                current = [row]
        groups.append((max(scores[r] for r in current), [reader.chunks[r] for r in current]))
    groups.sort(key=lambda g: (-g[0], g[1][0].row))
    return groups


def _holds_a_concept(analyzer, text: str, concepts, stored: list[str] | None) -> bool:
    """Whether a quoted line holds one of the question's concepts (its tokens
    stored at build time, else analysed now)."""
    tokens = set(analyzer.tokens(text) if stored is None else stored)
    return any(concept_in(c, tokens) for c in concepts)


def _sources(reader: IndexReader) -> dict[str, Source]:
    return {s["name"]: Source.from_dict(s) for s in reader.manifest["sources"]}


def _is_lead(chunk: ChunkRecord) -> bool:
    """A one-line paragraph that introduces the next block: wholly bold, or ending with ":"."""
    text = chunk.text.strip()
    return "\n" not in text and bool(_LEAD.match(text))


def _touching(reader: IndexReader, a: ChunkRecord, b: ChunkRecord) -> bool:
    """Same note and section, and nothing but blank or image-only lines between."""
    if (a.source, a.file, a.heading) != (b.source, b.file, b.heading):
        return False
    lo, hi = (a, b) if a.start_line <= b.start_line else (b, a)
    if lo.end_line + 1 >= hi.start_line:
        return True
    gap = reader.lines(lo.source, lo.file, lo.end_line + 1, hi.start_line - 1)
    return all(not line.strip() or is_image_only(line) for line in gap)
