"""Hybrid retrieval: Korean-aware BM25 + dense vectors, fused, thresholded, merged.

The fused score leans on the lexical side; the dense side has a weight per
language (by default none for mostly-Hangul questions, which the bundled
English-only model cannot read: they are then not embedded at all, and a
cosine can neither rank nor answer them). Whether the notes answer at all is
decided on absolute signals (the share of the question's concepts a passage
holds, or a strong cosine), never on ranks alone. Adjacent hits from one
section become one passage; a lead-in line brings the block it introduces.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import RetrievalSettings, Source
from .chunk import is_image_only
from .errors import IndexMismatch, OkdbotError
from .lexical import Analyzer, concept_in, has_hangul
from .question import MAX_QUESTION_CHARS, check_question  # noqa: F401 (part of this module's interface)
from .index.chunks import ChunkRecord
from .index.generations import CURRENT, current_generation
from .index.reader import IndexReader, open_index
from .synonyms import load_synonyms

log = logging.getLogger("okdbot")

DENSE_CANDIDATES = 200
CONTEXT_WEIGHT = 0.5  # an earlier question's terms count half as much as the follow-up's own
CONTEXT_CHARS = 300  # the most recent part of a conversation that is read with a follow-up
_LATIN = re.compile(r"[A-Za-z]")
# "- Podman : …", "**Skopeo**: …", "1. Cri-O - …": a line that defines the term before the separator
_DEFINITION = re.compile(r"^\s*(?:[-*+]|\d+[.)])?\s*(?:\*\*|__)?(?P<term>[^:：*_\n]{1,60}?)(?:\*\*|__)?\s*(?:[:：]|\s[-–—]\s)\s*\S")
# a section that defines its title: "### MetalLB란?", "## Operator", "### What is Tekton?"
_DEFINED_HEADING = re.compile(r"^(?:what\s+is\s+(?:an?\s+)?)?(?P<term>[^\uac00-\ud7a3?？]{1,60}?)\s*(?:이란|란)?\s*[?？]?$",
                              re.IGNORECASE)
_LEAD = re.compile(r"^(?:\*\*[^*].*\*\*|__[^_].*__)(?:\s*<br\s*/?>)?$|^.*[:：]$", re.IGNORECASE)


class QueryEncoder(Protocol):
    model_id: str

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the source file
    text: str
    relevant: bool  # holds a term of the question


@dataclass
class Passage:
    """Consecutive source lines that answer, with where they come from."""

    rank: int
    score: float
    source: str
    file: str
    heading: str
    start_line: int
    end_line: int
    url: str
    lines: list[Line]


@dataclass
class Suggestion:
    heading: str
    url: str


@dataclass
class Result:
    question: str
    answered: bool
    passages: list[Passage]
    suggestions: list[Suggestion] = field(default_factory=list)
    korean: bool = False
    generation: str = ""
    top_score: float = 0.0
    context: str = ""  # the earlier question(s) a follow-up was read with


def is_korean(text: str) -> bool:
    """Mostly Hangul (more Hangul syllables than Latin letters)."""
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3")
    return hangul > 0 and hangul >= len(_LATIN.findall(text))


class Retriever:
    """Answers questions from the live index generation of `index_dir`.

    Thread-safe. `refresh()` (called before each search) switches to a newer
    generation when `okdbot index` has published one, without a restart."""

    def __init__(self, index_dir: Path, settings: RetrievalSettings, encoder: QueryEncoder,
                 analyzer: Analyzer, reader: IndexReader | None = None):
        self.index_dir = index_dir
        self.settings = settings
        self.encoder = encoder
        self.analyzer = analyzer
        self._lock = threading.Lock()
        self._reader = reader or open_index(index_dir)
        self._terms: tuple[str, dict[int, list[set[str]]]] = ("", {})  # (generation, row → defined terms' tokens)
        self._synonyms_seen = _stamp(settings.synonyms)  # the analyzer holds this version of the file
        self._current_seen: tuple[int, int, int] | None = None  # the CURRENT file last read
        self._check_model(self._reader)

    @property
    def reader(self) -> IndexReader:
        return self._reader

    def refresh(self) -> bool:
        """Load the newest generation if it changed; True when it did."""
        stamp = _stamp(self.index_dir / CURRENT)  # a publish replaces the file: cheaper to stat than to read
        if stamp is not None and stamp == self._current_seen:
            return False
        self._current_seen = stamp
        try:
            name = current_generation(self.index_dir)
        except OkdbotError as exc:  # a damaged CURRENT: keep answering from the generation we have
            log.warning("not switching index generation: %s", exc)
            return False
        if name is None or name == self._reader.name:
            return False
        with self._lock:
            if name == self._reader.name:
                return False
            try:
                reader = open_index(self.index_dir)
                self._check_model(reader)
            except OkdbotError as exc:  # keep answering from the generation we have
                log.warning("not switching to index generation %s: %s", name, exc)
                return False
            self._reader = reader
        log.info("switched to index generation %s", reader.name)
        return True

    def follow_synonyms(self) -> bool:
        """Apply an edited synonyms file (retrieval.synonyms) from this question on, so a
        running bot needs no restart; True when it did. A file that cannot be used is
        logged and the synonyms in use are kept."""
        stamp = _stamp(self.settings.synonyms)
        if stamp == self._synonyms_seen:
            return False
        with self._lock:
            if stamp == self._synonyms_seen:
                return False
            self._synonyms_seen = stamp
            try:
                self.analyzer.use_synonyms(load_synonyms(self.settings.synonyms))
            except OkdbotError as exc:
                log.warning("keeping the synonyms in use: %s", exc)
                return False
        log.info("synonyms reloaded from %s", self.settings.synonyms)
        return True

    def search(self, question: str, k: int | None = None, context: str = "") -> Result:
        """Answer `question`. A follow-up passes the conversation so far as `context`:
        its terms help find the passage (at CONTEXT_WEIGHT), the question's own decide."""
        question = check_question(question)
        context = " ".join(context.split())[-CONTEXT_CHARS:]
        self.refresh()
        self.follow_synonyms()
        reader = self._reader  # one generation for the whole search: no torn reads
        k = k or self.settings.k
        korean = is_korean(question)
        n = len(reader.chunks)
        s = self.settings
        w_dense = s.dense_weight_korean if korean else s.dense_weight
        # dense first: a cold CLI's Korean analyser may still be loading in its own process
        dense = self._dense(reader, question, n) if w_dense > 0 else np.zeros(n, dtype=np.float32)
        own = reader.lexical.with_misspellings(self.analyzer.concepts(question))
        concepts, weights = self._with_context(reader, own, context)
        bm25, coverage = reader.lexical.score(concepts, weights) if concepts else (np.zeros(n), np.zeros(n))
        lexical = bm25 / bm25.max() if bm25.max() > 0 else bm25
        heading = self._heading_coverage(reader, concepts, weights)
        fused = s.lexical_weight * (0.5 * lexical + 0.5 * coverage) + w_dense * dense + s.heading_boost * heading
        best = float(fused.max()) if n else 0.0  # before the definition boost
        defining = self._definitions(reader, np.argsort(-fused, kind="stable")[: 4 * k], own)
        fused[defining] += s.definition_boost
        order = np.argsort(-fused, kind="stable")
        top = int(order[0]) if n else -1
        answered = bool(n > 0 and (coverage[top] >= s.threshold or (w_dense > 0 and dense[top] >= s.dense_threshold)))
        result = Result(question, answered, [], korean=korean, generation=reader.name,
                        top_score=float(fused[top]) if n else 0.0, context=context)
        if not answered:
            result.suggestions = self._suggestions(reader, order[:20])
            return result
        keep = [int(i) for i in order[: 4 * k] if i in defining or (
                fused[i] >= 0.6 * best and (coverage[i] >= 0.5 * coverage[top] or dense[i] >= s.dense_threshold))]
        result.passages = self._passages(reader, keep, fused, concepts, k)
        return result

    def _dense(self, reader: IndexReader, question: str, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.float32)
        if n == 0:
            return out
        vector = self.encoder.encode_queries([question])[0]
        best = reader.search_dense(vector, DENSE_CANDIDATES)
        if best:
            out[:] = min(best.values())
            for row, score in best.items():
                out[row] = score
        return np.clip(out, 0.0, 1.0)

    def _with_context(self, reader: IndexReader, own: list, context: str) -> tuple[list, list[float]]:
        """The question's own concepts (weight 1), then the context's other ones (CONTEXT_WEIGHT)."""
        earlier = [c for c in reader.lexical.with_misspellings(self.analyzer.concepts(context))
                   if c not in own] if context else []
        return own + earlier, [1.0] * len(own) + [CONTEXT_WEIGHT] * len(earlier)

    def _definitions(self, reader: IndexReader, rows, concepts) -> list[int]:
        """Of `rows`, those that define exactly what the question names: the chunk
        opens with a definition ("- Podman : …" for "Podman이 뭐야?") or its section
        is titled with the term ("### MetalLB란?"), and the term holds every concept
        of the question and nothing else."""
        if not self.settings.definition_boost or not concepts:
            return []
        named = {token for concept in concepts for phrase in concept for token in phrase}
        return [int(i) for i in rows if any(
            term <= named and all(concept_in(c, term) for c in concepts) for term in self._defined(reader, int(i)))]

    def _defined(self, reader: IndexReader, row: int) -> list[set[str]]:
        """The tokens of each term chunk `row` defines (remembered per index generation).
        Only Latin terms are read: a Hangul term would need the Korean analyser,
        which a cold query may not have loaded."""
        generation, known = self._terms
        if generation != reader.name:
            known = {}
            self._terms = (reader.name, known)
        if row not in known:
            known[row] = [t for t in (set(self.analyzer.tokens(term)) for term in _defined_terms(reader.chunks[row])) if t]
        return known[row]

    def _heading_coverage(self, reader: IndexReader, concepts, weights: list[float]) -> np.ndarray:
        """Weighted share of the question's terms found in each chunk's heading path."""
        headings, _, row_heading = reader.headings
        if not concepts or not len(row_heading):
            return np.zeros(len(row_heading), dtype=np.float32)
        postings = reader.heading_postings
        per_heading = np.zeros(len(headings), dtype=np.float32)
        for concept, weight in zip(concepts, weights):
            hits = [_common(postings, alternative) for alternative in concept]
            hits = [h for h in hits if h is not None and len(h)]
            if hits:
                per_heading[np.unique(np.concatenate(hits))] += weight
        return per_heading[row_heading] / sum(weights)

    def _passages(self, reader, rows: list[int], fused, concepts, k: int) -> list[Passage]:
        """Merge touching hits of one section into one passage; best first, at most k.

        A hit on a lead-in line (a bold pseudo-heading such as "**디스크 사용량 측정**",
        or a line ending with ":") brings the block it introduces along."""
        rows = list(rows)
        for row in list(rows):
            follower = row + 1
            if (_is_lead(reader.chunks[row]) and follower < len(reader.chunks) and follower not in rows
                    and _touching(reader, reader.chunks[row], reader.chunks[follower])):
                rows.append(follower)
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
                    groups.append((max(fused[r] for r in current), [reader.chunks[r] for r in current]))
                    current = [row]
            groups.append((max(fused[r] for r in current), [reader.chunks[r] for r in current]))
        groups.sort(key=lambda g: -g[0])
        sources = _sources(reader)
        passages = []
        for score, group in groups[:k]:
            first, last = group[0], group[-1]
            texts = reader.lines(first.source, first.file, first.start_line, last.end_line)
            known = reader.line_tokens(texts)
            lines = [Line(first.start_line + i, text, self._holds_a_concept(text, concepts, known.get(text)))
                     for i, text in enumerate(texts)]
            passages.append(Passage(
                rank=len(passages) + 1, score=round(float(score), 4), source=first.source, file=first.file,
                heading=first.heading, start_line=first.start_line, end_line=last.end_line,
                url=sources[first.source].link_for(first.file, first.start_line, last.end_line), lines=lines))
        return passages

    def _holds_a_concept(self, text: str, concepts, stored: list[str] | None) -> bool:
        """Whether a quoted line holds one of the question's concepts (its tokens
        stored at build time, else analysed now)."""
        tokens = set(self.analyzer.tokens(text) if stored is None else stored)
        return any(concept_in(c, tokens) for c in concepts)

    def _suggestions(self, reader: IndexReader, rows) -> list[Suggestion]:
        """Up to 3 distinct sections nearest to the question, linked as a whole."""
        sources = _sources(reader)
        picked: list[ChunkRecord] = []
        for row in rows:
            chunk = reader.chunks[int(row)]
            if all(chunk.heading != p.heading or chunk.file != p.file for p in picked):
                picked.append(chunk)
            if len(picked) == 3:
                break
        out = []
        for chunk in picked:
            start, end = reader.section_spans[(chunk.source, chunk.file, chunk.heading)]
            out.append(Suggestion(chunk.heading, sources[chunk.source].link_for(chunk.file, start, end)))
        return out

    def _check_model(self, reader: IndexReader) -> None:
        built = reader.manifest.get("model")
        if built != self.encoder.model_id:
            raise IndexMismatch(f"the index was built with model {built} but queries use {self.encoder.model_id}; "
                                "run `okdbot index` to rebuild it for the configured model")


def _sources(reader: IndexReader) -> dict[str, Source]:
    return {s["name"]: Source.from_dict(s) for s in reader.manifest["sources"]}


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What tells an edited file from the one read before (None: no file)."""
    try:
        st = path.stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None


def _defined_terms(chunk: ChunkRecord) -> list[str]:
    """The Latin terms a chunk defines: by its opening line, or by its section's title."""
    found = [_DEFINITION.match(chunk.text), _DEFINED_HEADING.match(chunk.heading.rsplit(" > ", 1)[-1].strip())]
    return [m["term"] for m in found if m and not has_hangul(m["term"])]


def _is_lead(chunk: ChunkRecord) -> bool:
    """A one-line paragraph that introduces the next block: wholly bold, or ending with ":"."""
    text = chunk.text.strip()
    return "\n" not in text and bool(_LEAD.match(text))


def _common(postings: dict[str, np.ndarray], phrase: tuple[str, ...]) -> np.ndarray | None:
    """Numbers of the headings holding every token of `phrase` (None: none does)."""
    lists = [postings.get(token) for token in phrase]
    if any(found is None for found in lists):
        return None
    common = lists[0]
    for other in lists[1:]:
        common = np.intersect1d(common, other, assume_unique=True)
    return common


def _touching(reader: IndexReader, a: ChunkRecord, b: ChunkRecord) -> bool:
    """Same note and section, and nothing but blank or image-only lines between."""
    if (a.source, a.file, a.heading) != (b.source, b.file, b.heading):
        return False
    lo, hi = (a, b) if a.start_line <= b.start_line else (b, a)
    if lo.end_line + 1 >= hi.start_line:
        return True
    gap = reader.lines(lo.source, lo.file, lo.end_line + 1, hi.start_line - 1)
    return all(not line.strip() or is_image_only(line) for line in gap)
