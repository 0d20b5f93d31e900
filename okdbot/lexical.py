"""Korean-aware lexical search: the only module that imports kiwipiepy and bm25s.

Tokens are Korean content morphemes from Kiwi (particles, endings and
suffixes dropped) plus English/number terms kept whole, lowercased and
stemmed (a hyphenated term also yields its parts). BM25 itself is bm25s,
saved as a folder of numpy arrays and JSON (never a pickle).

A query becomes a list of *concepts*, each a set of alternative tokens (a
term and its synonyms). A document's lexical score sums, per concept, its best
alternative; its *coverage* is the IDF-weighted share of the question's
concepts it contains, an absolute 0..1 confidence that does not depend on the
other documents.
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import numpy as np

LEXICAL_VERSION = "1"

_KEEP_TAGS = {"NNG", "NNP", "NNB", "NR", "SH", "XR", "VV", "VA"}
_KO_STOP = {
    # function-like nouns, light verbs and question words: they carry no topic
    "것", "수", "거", "등", "때", "중", "데", "개", "번", "뿐", "통하", "위하", "대하", "관하",
    "하", "되", "있", "없", "이", "알", "알리", "주", "말하", "뭐", "무엇", "어떻", "어떠",
    "어떤", "무슨", "왜", "언제", "어디", "누구", "쓰", "사용", "좀", "제일", "가장", "뜻", "의미",
}
_EN_STOP = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with", "what", "which", "who", "whom", "how",
    "why", "when", "where", "do", "does", "did", "can", "could", "should", "would", "i", "me",
    "my", "we", "our", "you", "your", "about", "tell", "explain", "s", "used", "use", "using",
}
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.+/][A-Za-z0-9]+)*|\d+(?:\.\d+)*")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


class Analyzer:
    """Text → index tokens. Kiwi is loaded lazily, once, and only for Hangul text."""

    def __init__(self, synonyms: dict[str, set[str]] | None = None):
        self._kiwi = None
        self._lock = threading.Lock()
        self._stemmer = None
        self.synonyms = synonyms or {}

    def load(self) -> "Analyzer":
        """Construct the Korean analyser now (it takes about a second)."""
        with self._lock:
            if self._kiwi is None:
                from kiwipiepy import Kiwi

                self._kiwi = Kiwi(load_typo_dict=False, load_multi_dict=False)
        return self

    def tokens(self, text: str) -> list[str]:
        return self._english(text) + self._korean(text)

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]

    def concepts(self, question: str) -> list[frozenset[str]]:
        """The question's distinct terms, each with its synonyms as alternatives."""
        seen: dict[str, frozenset[str]] = {}
        for token in self.tokens(question):
            if token not in seen:
                seen[token] = frozenset({token} | self.synonyms.get(token, set()))
        return list(seen.values())

    def _english(self, text: str) -> list[str]:
        out = []
        for match in _TERM.finditer(text):
            term = match.group().lower()
            parts = [p for p in re.split(r"[-_.+/]", term) if len(p) > 1 or p.isdigit()]
            if len(parts) > 1:
                out.append(term)
            out.extend(self._stem(p) for p in parts if p not in _EN_STOP)
        return out

    def _korean(self, text: str) -> list[str]:
        if not has_hangul(text):
            return []
        if self._kiwi is None:
            self.load()
        with self._lock:
            morphs = self._kiwi.tokenize(text)
        return [m.form for m in morphs
                if m.tag.split("-")[0] in _KEEP_TAGS and m.form not in _KO_STOP]

    def _stem(self, word: str) -> str:
        if self._stemmer is None:
            import Stemmer

            self._stemmer = Stemmer.Stemmer("english")
        return self._stemmer.stemWord(word)


class LexicalIndex:
    """BM25 over pre-tokenised documents, with concept-level scoring."""

    def __init__(self, bm25):
        self._bm25 = bm25
        scores = bm25.scores
        self._data, self._indices, self._indptr = scores["data"], scores["indices"], scores["indptr"]
        self.num_docs = int(scores["num_docs"])
        self._vocab: dict[str, int] = bm25.vocab_dict

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> "LexicalIndex":
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([tokens or [""] for tokens in token_lists], show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        return cls(bm25s.BM25.load(str(folder), mmap=False, load_corpus=False))

    def idf(self, token: str) -> float:
        """BM25 idf; a token the notes never use gets the highest idf."""
        tid = self._vocab.get(token)
        df = 0 if tid is None else int(self._indptr[tid + 1] - self._indptr[tid])
        return math.log(1 + (self.num_docs - df + 0.5) / (df + 0.5))

    def token_scores(self, token: str) -> np.ndarray:
        """BM25 contribution of one token to every document."""
        out = np.zeros(self.num_docs, dtype=np.float32)
        tid = self._vocab.get(token)
        if tid is not None:
            a, b = self._indptr[tid], self._indptr[tid + 1]
            out[self._indices[a:b]] = self._data[a:b]
        return out

    def score(self, concepts: list[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) for every document."""
        bm25 = np.zeros(self.num_docs, dtype=np.float32)
        covered = np.zeros(self.num_docs, dtype=np.float32)
        total = 0.0
        for concept in concepts:
            best = np.zeros(self.num_docs, dtype=np.float32)
            for token in concept:
                np.maximum(best, self.token_scores(token), out=best)
            weight = max(self.idf(t) for t in concept)
            bm25 += best
            covered += weight * (best > 0)
            total += weight
        return bm25, covered / total if total else covered
