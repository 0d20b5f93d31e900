"""Hybrid retrieval: dense vectors and Korean-aware BM25, fused, and the answer decision.

Every chunk of the live index generation gets a score from three signals: the
dense cosine of the question's embedding (multilingual, so Korean questions and
questions in the other language than the notes' count too), relative to the
candidates' spread; the lexical match (BM25 and the IDF-weighted share of the
question's concepts a passage holds, its *coverage*); and the concepts found in
its heading path. A passage that defines exactly what the question names gets a
boost. Whether the notes answer at all is decided on absolute signals, never on
ranks alone: the best passage holds enough of the question's concepts, or it
stands out from the other candidates by its cosine. The weights and thresholds
are RetrievalSettings, derived from the development questions
(bench/calibrate.py) and recorded with each index generation, so an index answers
the same way wherever it is queried from. Scored rows become passages in
okdbot/passages.py.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import RetrievalSettings
from .errors import IndexMismatch, OkdbotError
from .glossary import Glossary
from .lexical import Analyzer, concept_in, has_hangul
from .passages import build_passages, changed_notes, suggestions
from .question import MAX_QUESTION_CHARS, check_question  # noqa: F401 (part of this module's interface)
from .results import Line, Passage, Result, Suggestion, is_korean  # noqa: F401 (also importable from here)
from .index.chunks import ChunkRecord
from .index.generations import CURRENT, current_generation
from .index.files import file_stamp
from .index.reader import IndexReader, open_index

log = logging.getLogger("okdbot")

CONTEXT_WEIGHT = 0.5  # an earlier question's terms count half as much as the follow-up's own
CONTEXT_CHARS = 300  # the most recent part of a conversation that is read with a follow-up
GAP_RANK = 10  # "stands out": the best cosine against the one of this rank
CANDIDATE_ROWS = 40  # the best-scored rows that can become passages (independent of k)
# "- Podman : …", "**Skopeo**: …", "1. Cri-O - …": a line that defines the term before the separator
_DEFINITION = re.compile(r"^\s*(?:[-*+]|\d+[.)])?\s*(?:\*\*|__)?(?P<term>[^:：*_\n]{1,60}?)(?:\*\*|__)?\s*(?:[:：]|\s[-–—]\s)\s*\S")
# a section that defines its title: "### MetalLB란?", "## Operator", "### What is Tekton?"
_DEFINED_HEADING = re.compile(r"^(?:what\s+is\s+(?:an?\s+)?)?(?P<term>[^\uac00-\ud7a3?？]{1,60}?)\s*(?:이란|란)?\s*[?？]?$",
                              re.IGNORECASE)


class QueryEncoder(Protocol):
    model_id: str

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


class Retriever:
    """Answers questions from the live index generation of `index_dir`.

    Thread-safe. `refresh()` (called before each search) switches to a newer
    generation when `okdbot index` has published one, without a restart. The
    retrieval settings and glossary recorded with a generation take precedence
    over `settings` (which supply what an older index did not record)."""

    def __init__(self, index_dir: Path, settings: RetrievalSettings, encoder: QueryEncoder,
                 analyzer: Analyzer, reader: IndexReader | None = None):
        self.index_dir = index_dir
        self.configured = settings
        self.encoder = encoder
        self.analyzer = analyzer
        self._lock = threading.Lock()
        self._terms: tuple[str, dict[int, list[set[str]]]] = ("", {})  # (generation, row → defined terms' tokens)
        self._current_seen: tuple[int, int, int] | None = None  # the CURRENT file last read
        reader = reader or open_index(index_dir)
        self._check_model(reader)
        self._use(reader)

    @property
    def reader(self) -> IndexReader:
        return self._reader

    def refresh(self) -> bool:
        """Load the newest generation if it changed; True when it did."""
        stamp = file_stamp(self.index_dir / CURRENT)  # a publish replaces the file: cheaper to stat than to read
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
            self._use(reader)
        log.info("switched to index generation %s", reader.name)
        return True

    def _use(self, reader: IndexReader) -> None:
        """Answer from `reader` with the settings and glossary it was built with."""
        recorded = reader.manifest.get("retrieval") or {}
        self.settings = replace(self.configured, **{k: v for k, v in recorded.items()
                                                    if k in RetrievalSettings.RECORDED})
        if "glossary" in reader.manifest:
            self.analyzer.use_glossary(Glossary.from_json(reader.manifest["glossary"]))
        self._reader = reader

    def search(self, question: str, k: int | None = None, context: str = "") -> Result:
        """Answer `question`. A follow-up passes the conversation so far as `context`:
        its terms help find the passage (at CONTEXT_WEIGHT), the question's own decide."""
        question = check_question(question)
        context = _recent_words(context)
        self.refresh()
        reader, s = self._reader, self.settings  # one generation for the whole search: no torn reads
        k = k or s.k
        n = len(reader.chunks)
        korean = is_korean(question)
        # dense first: a cold CLI's Korean analyser may still be loading in its own process
        dense, gap = self._dense(reader, question, context, n)
        own = reader.lexical.with_misspellings(self.analyzer.concepts(question))
        concepts, weights = self._with_context(reader, own, context)
        bm25, coverage = reader.lexical.score(concepts, weights) if concepts else (np.zeros(n), np.zeros(n))
        lexical = 0.5 * (bm25 / bm25.max() if bm25.max() > 0 else bm25) + 0.5 * coverage
        fused = (s.dense_weight * dense + s.lexical_weight * lexical
                 + s.heading_boost * self._heading_coverage(reader, concepts, weights))
        defining = self._definitions(reader, np.argsort(-fused, kind="stable")[:CANDIDATE_ROWS], own)
        fused[defining] += s.definition_boost
        order = np.argsort(-fused, kind="stable")
        top = int(order[0]) if n else -1
        threshold = s.gap_threshold_korean if korean else s.gap_threshold
        worded = any(ch.isalnum() for ch in question)  # "???!!!": no concept, a vector that stands out by chance
        answered = bool(n > 0 and worded and (coverage[top] >= s.coverage_threshold or gap >= threshold))
        result = Result(question, answered, [], korean=korean, generation=reader.name,
                        top_score=float(fused[top]) if n else 0.0, context=context,
                        coverage=round(float(coverage[top]), 4) if n else 0.0, gap=round(gap, 4))
        if not answered:
            result.suggestions = suggestions(reader, order[:20])
            return result
        best = fused[top]
        keep = [int(i) for i in order[:CANDIDATE_ROWS] if i in defining or fused[i] >= s.keep_ratio * best]
        result.passages = build_passages(reader, keep, fused, concepts, k, self.analyzer)
        result.changed = changed_notes(reader, result.passages)
        return result

    def _dense(self, reader: IndexReader, question: str, context: str, n: int) -> tuple[np.ndarray, float]:
        """(each row's cosine rescaled to the candidates' spread: 1 for the best, 0 for
        the last candidate and every other row; the best cosine minus the GAP_RANK-th).
        A follow-up's vector leans towards its conversation's (at CONTEXT_WEIGHT)."""
        out = np.zeros(n, dtype=np.float32)
        if n == 0:
            return out, 0.0
        if context:
            own, earlier = self.encoder.encode_queries([question, context])
            vector = own + CONTEXT_WEIGHT * earlier
            vector /= max(float(np.linalg.norm(vector)), 1e-12)
        else:
            vector = self.encoder.encode_queries([question])[0]
        best = reader.search_dense(vector, self.settings.dense_candidates)
        if not best:
            return out, 0.0
        cosines = np.array(sorted(best.values(), reverse=True), dtype=np.float32)
        top, floor = float(cosines[0]), float(cosines[-1])
        for row, score in best.items():
            out[row] = (score - floor) / (top - floor) if top > floor else 1.0
        return out, top - float(cosines[min(GAP_RANK, len(cosines)) - 1])

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

    def _check_model(self, reader: IndexReader) -> None:
        built = reader.manifest.get("model")
        if built != self.encoder.model_id:
            raise IndexMismatch(f"the index was built with model {built} but queries use {self.encoder.model_id}; "
                                "run `okdbot index` to rebuild it for the configured model")


def _recent_words(context: str) -> str:
    """The last CONTEXT_CHARS characters of a conversation, starting at a word."""
    text = " ".join(context.split())
    if len(text) <= CONTEXT_CHARS:
        return text
    recent = text[-CONTEXT_CHARS:]
    if text[-CONTEXT_CHARS - 1] == " " or " " not in recent:  # a run without spaces (a URL, Chinese) is kept
        return recent
    return recent.partition(" ")[2]


def _defined_terms(chunk: ChunkRecord) -> list[str]:
    """The Latin terms a chunk defines: by its opening line, or by its section's title."""
    found = [_DEFINITION.match(chunk.text), _DEFINED_HEADING.match(chunk.heading.rsplit(" > ", 1)[-1].strip())]
    return [m["term"] for m in found if m and not has_hangul(m["term"])]


def _common(postings: dict[str, np.ndarray], phrase: tuple[str, ...]) -> np.ndarray | None:
    """Numbers of the headings holding every token of `phrase` (None: none does)."""
    lists = [postings.get(token) for token in phrase]
    if any(found is None for found in lists):
        return None
    common = lists[0]
    for other in lists[1:]:
        common = np.intersect1d(common, other, assume_unique=True)
    return common
