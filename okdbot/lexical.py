"""Korean-aware lexical search: the only module that imports kiwipiepy and bm25s.

Tokens are Korean content morphemes from Kiwi (particles, endings and
suffixes dropped) plus English/number terms kept whole, lowercased and
stemmed (a hyphenated term also yields its parts). BM25 itself is bm25s,
saved as a folder of numpy arrays and JSON (never a pickle).

numpy is imported where LexicalIndex needs it, not with the module: a CLI
question with Hangul starts its analyser process (see Analyzer.prefetch)
before the query process has imported anything heavy.

A query becomes a list of *concepts*, each a set of alternative tokens (a
term and its synonyms). A document's lexical score sums, per concept, its best
alternative; its *coverage* is the IDF-weighted share of the question's
concepts it contains, an absolute 0..1 confidence that does not depend on the
other documents.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("okdbot")

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
_PLAIN_BM25 = {"lucene", "robertson", "atire"}  # methods whose scores need no extra array


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


def _new_kiwi():
    from kiwipiepy import Kiwi

    return Kiwi(load_typo_dict=False, load_multi_dict=False)


def _content_forms(morphs) -> list[str]:
    """Content morphemes of a Kiwi analysis (particles, endings, stopwords dropped)."""
    return [m.form for m in morphs if m.tag.split("-")[0] in _KEEP_TAGS and m.form not in _KO_STOP]


class Analyzer:
    """Text → index tokens. Kiwi is loaded lazily, once, and only for Hangul text.

    Loading Kiwi takes about 2 s of CPU on a small machine and holds the GIL
    throughout, so a thread cannot overlap it with other loading; `prefetch`
    analyses known texts (a CLI question) in a forked child process instead."""

    def __init__(self, synonyms: dict[str, set[str]] | None = None):
        self._kiwi = None
        self._lock = threading.Lock()
        self._stemmer = None
        self._child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self._prefetched: dict[str, list[str]] = {}
        self.synonyms = synonyms or {}

    def load(self) -> "Analyzer":
        """Construct the Korean analyser now (it takes a second or two)."""
        with self._lock:
            if self._kiwi is None:
                self._kiwi = _new_kiwi()
        return self

    def prefetch(self, texts: list[str]) -> bool:
        """Start analysing the Hangul `texts` in a forked child process, so that
        loading Kiwi runs on another core while this process loads the rest.
        `tokens` of these texts then waits for the child; any other Hangul
        text still loads Kiwi here. Only a process without threads forks.
        True when a child was started."""
        texts = [t for t in dict.fromkeys(texts) if has_hangul(t)]
        if not texts or self._kiwi is not None or self._child is not None:
            return False
        if not hasattr(os, "fork") or threading.active_count() > 1:  # forking a threaded process is unsafe
            return False
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return False
        if pid == 0:  # the child: analyse, write JSON, leave without any cleanup of the parent's state
            status = 1
            try:
                os.close(read_end)
                kiwi = _new_kiwi()
                payload = {t: _content_forms(kiwi.tokenize(t)) for t in texts}
                with os.fdopen(write_end, "wb") as out:
                    out.write(json.dumps(payload, ensure_ascii=False).encode())
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._child = (pid, read_end)
        return True

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
        if self._child is not None:
            self._collect()
        if text in self._prefetched:
            return list(self._prefetched[text])
        if self._kiwi is None:
            self.load()
        with self._lock:
            return _content_forms(self._kiwi.tokenize(text))

    def _collect(self) -> None:
        """Wait for the prefetch child and keep its results (none if it failed)."""
        with self._lock:
            if self._child is None:
                return
            pid, read_end = self._child
            self._child = None
            with os.fdopen(read_end, "rb") as pipe:
                payload = pipe.read()
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): judge by what it wrote
                status = 0
            try:
                if status != 0:
                    raise ValueError(f"exit status {status}")
                self._prefetched.update(json.loads(payload))
            except ValueError as exc:
                log.warning("the Korean analyser process failed (%s): loading it here", exc)

    def _stem(self, word: str) -> str:
        if self._stemmer is None:
            import Stemmer

            self._stemmer = Stemmer.Stemmer("english")
        return self._stemmer.stemWord(word)


class LexicalIndex:
    """BM25 over pre-tokenised documents, with concept-level scoring.

    Built and saved with bm25s; loaded straight from the saved numpy arrays
    and JSON vocabulary, so answering a question never imports bm25s (nor
    the scipy it pulls in)."""

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, num_docs: int,
                 vocab: dict[str, int], bm25=None):
        self._data, self._indices, self._indptr = data, indices, indptr
        self.num_docs = int(num_docs)
        self._vocab = vocab
        self._bm25 = bm25

    @classmethod
    def build(cls, token_lists: list[list[str]]) -> "LexicalIndex":
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([tokens or [""] for tokens in token_lists], show_progress=False)
        scores = bm25.scores
        return cls(scores["data"], scores["indices"], scores["indptr"], scores["num_docs"], bm25.vocab_dict, bm25)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """Read what `save` wrote (bm25s's file layout; no pickle)."""
        import numpy as np

        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        data, indices, indptr = (np.load(folder / f"{name}.csc.index.npy", allow_pickle=False)
                                 for name in ("data", "indices", "indptr"))
        if params.get("method", "lucene") not in _PLAIN_BM25 or len(indptr) < len(vocab):  # bm25s's "" has no column
            raise ValueError(f"unexpected bm25s index ({params.get('method')}, {len(indptr)} pointers)")
        return cls(data, indices, indptr, params["num_docs"], vocab)

    def idf(self, token: str) -> float:
        """BM25 idf; a token the notes never use gets the highest idf."""
        tid = self._vocab.get(token)
        df = 0 if tid is None else int(self._indptr[tid + 1] - self._indptr[tid])
        return math.log(1 + (self.num_docs - df + 0.5) / (df + 0.5))

    def token_scores(self, token: str) -> np.ndarray:
        """BM25 contribution of one token to every document."""
        import numpy as np

        out = np.zeros(self.num_docs, dtype=np.float32)
        tid = self._vocab.get(token)
        if tid is not None:
            a, b = self._indptr[tid], self._indptr[tid + 1]
            out[self._indices[a:b]] = self._data[a:b]
        return out

    def score(self, concepts: list[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) for every document."""
        import numpy as np

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
