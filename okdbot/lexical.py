"""Korean-aware lexical search: the only module that imports bm25s (Kiwi comes from korean.py).

Tokens are Korean content morphemes from Kiwi (particles, endings and
suffixes dropped) plus English/number terms kept whole, lowercased and
stemmed (a hyphenated term also yields its parts). BM25 itself is bm25s,
saved as a folder of numpy arrays and JSON (never a pickle).

A query becomes a list of *concepts*, each a set of alternatives: a term and
its synonyms, each alternative a tuple of one or more tokens (a phrase such as
"자동 스케일링" is ("자동", "스케일링")). A document holds a phrase when it holds
all of the phrase's tokens. A document's lexical score sums, per concept, its
best alternative; its *coverage* is the IDF-weighted share of the question's
concepts it holds, an absolute 0..1 confidence that does not depend on the
other documents. A concept's IDF is computed from the documents holding any
of its alternatives.

numpy is imported where LexicalIndex needs it, not with the module: a CLI
question with Hangul starts its analyser process (see Analyzer.prefetch)
before the query process has imported anything heavy.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import ConfigError
from . import korean
from .korean import has_hangul  # noqa: F401 (part of this module's interface)
from .synonyms import SynonymGroup

if TYPE_CHECKING:
    import numpy as np

    from .glossary import Glossary

log = logging.getLogger("okdbot")

LEXICAL_VERSION = "5"
FUZZY_MIN_LENGTH = 6  # shorter unknown terms are too easily one edit from another word

Concept = frozenset[tuple[str, ...]]

_EN_STOP = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with", "what", "which", "who", "whom", "how",
    "why", "when", "where", "do", "does", "did", "can", "could", "should", "would", "i", "me",
    "my", "we", "our", "you", "your", "about", "tell", "explain", "s", "used", "use", "using",
    "name", "called", "call", "thing", "something", "anything", "any", "some", "please", "hi", "hey",
    "know", "mean", "get", "give", "want", "like", "from", "between", "over", "via", "onto", "up", "out",
    "way", "other",
}
_PLAIN_BM25 = {"lucene", "robertson", "atire"}  # methods whose scores need no extra array
_TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.+/][A-Za-z0-9]+)*|\d+(?:\.\d+)*")


def concept_in(concept: Concept, tokens: set[str] | frozenset[str]) -> bool:
    """True when `tokens` hold one of the concept's alternatives (all of its tokens)."""
    return any(all(t in tokens for t in alternative) for alternative in concept)


class Analyzer:
    """Text → index tokens. Kiwi is loaded lazily, once, and only for Hangul text.

    Loading Kiwi takes about 2 s of CPU on a small machine and holds the GIL
    throughout, so a thread cannot overlap it with other loading; `prefetch`
    analyses known texts (a CLI question) in a forked child process instead."""

    def __init__(self, synonyms: Sequence[SynonymGroup] = ()):
        """`synonyms`: groups to apply to questions (analysed when first needed);
        a query uses its index's glossary instead (`use_glossary`), analysed at build."""
        self._kiwi = None
        self._lock = threading.Lock()
        self._stemmer = None
        self._groups = tuple(synonyms)
        self._phrases: dict[tuple[str, ...], Concept] | None = None
        self._longest = 1
        self._child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self._prefetched: dict[str, list[str]] = {}

    def load(self) -> "Analyzer":
        """Construct the Korean analyser now (it takes a second or two) and
        analyse the synonyms (ConfigError naming the line of an unusable term)."""
        with self._lock:
            if self._kiwi is None:
                self._kiwi = korean.new_kiwi()
        self._synonym_table()
        return self

    def prefetch(self, texts: list[str]) -> bool:
        """Start analysing the Hangul `texts` in a forked child process, so that
        loading Kiwi runs on another core while this process loads the rest.
        `tokens` of these texts then waits for the child; any other Hangul
        text still loads Kiwi here. A child started earlier for these texts
        (`korean.start_early`) is taken over instead. True when a child runs for them."""
        texts = [t for t in dict.fromkeys(texts) if has_hangul(t)]
        if not texts or self._kiwi is not None or self._child is not None:
            return False
        self._child = korean.take_early(texts) or korean.fork_analysis(texts)
        return self._child is not None

    def tokens(self, text: str) -> list[str]:
        return self._english(text) + self._korean(text)

    def tokens_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokens(t) for t in texts]

    def concepts(self, question: str) -> list[Concept]:
        """The question's distinct terms, each with its synonyms as alternatives.

        The longest run of question tokens that spells a synonym term becomes
        one concept whose alternatives are all terms of every group listing it;
        any other token is a concept of its own."""
        table = self._synonym_table()
        tokens = self.tokens(question)
        out: dict[Concept, None] = {}
        i = 0
        while i < len(tokens):
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                concept = table.get(tuple(tokens[i:i + n]))
                if concept:
                    break
            else:
                n, concept = 1, frozenset({(tokens[i],)})
            out.setdefault(concept)
            i += n
        return list(out)

    def use_glossary(self, glossary: Glossary) -> None:
        """Apply an index's glossary to questions from now on (its terms come analysed)."""
        self._phrases, self._longest = _phrase_table(glossary.groups, glossary.tokens)

    def _synonym_table(self) -> dict[tuple[str, ...], Concept]:
        """term tokens → all alternatives of the groups holding that term."""
        if self._phrases is None:
            tokens = {}
            for group in self._groups:
                for term in group.terms:
                    tokens[term] = self.tokens(term)
                    if not tokens[term]:
                        raise ConfigError(f"{group.where}: the synonym '{term}' has no searchable word "
                                          "(only stop words or particles); remove it from the group")
            self._phrases, self._longest = _phrase_table([g.terms for g in self._groups], tokens)
        return self._phrases

    def _english(self, text: str) -> list[str]:
        out = []
        for match in _TERM.finditer(text):
            term = match.group().lower()
            parts = [p for p in re.split(r"[-_.+/]", term) if len(p) > 1 or p.isdigit()]
            if len(parts) > 1:
                out.append(term)
            out.extend(stem for stem in (self._stem(p) for p in parts if p not in _EN_STOP) if stem not in _EN_STOP)
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
            return korean.content_forms(self._kiwi.tokenize(text))

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
        self._by_length: dict[int, list[str]] | None = None

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
        return _idf(self.num_docs, 0 if tid is None else int(self._indptr[tid + 1] - self._indptr[tid]))

    def token_scores(self, token: str) -> np.ndarray:
        """BM25 contribution of one token to every document."""
        import numpy as np

        out = np.zeros(self.num_docs, dtype=np.float32)
        tid = self._vocab.get(token)
        if tid is not None:
            a, b = self._indptr[tid], self._indptr[tid + 1]
            out[self._indices[a:b]] = self._data[a:b]
        return out

    def with_misspellings(self, concepts: list[Concept]) -> list[Concept]:
        """Concepts the notes never use, widened to the notes' spellings one edit away.

        Notes are full of typos (Queier, Builda, Kubenetes, dokcer): a Latin term of
        at least FUZZY_MIN_LENGTH letters that no note contains also matches index
        terms one insertion, deletion, substitution or swap away."""
        out = []
        for concept in concepts:
            if any(all(t in self._vocab for t in alternative) for alternative in concept):
                out.append(concept)
                continue
            near = {(v,) for (t,) in (a for a in concept if len(a) == 1) if _fuzzy(t)
                    for v in self._near(t)}
            out.append(concept | near)
        return out

    def _near(self, token: str) -> list[str]:
        if self._by_length is None:
            self._by_length = {}
            for term in self._vocab:
                if _fuzzy(term):
                    self._by_length.setdefault(len(term), []).append(term)
        return [v for n in (len(token) - 1, len(token), len(token) + 1)
                for v in self._by_length.get(n, ()) if _one_edit(token, v)]

    def phrase_scores(self, phrase: tuple[str, ...]) -> np.ndarray:
        """BM25 of a phrase: the mean of its tokens' scores where all of them occur, else 0."""
        import numpy as np

        if len(phrase) == 1:
            return self.token_scores(phrase[0])
        parts = np.vstack([self.token_scores(t) for t in phrase])
        return np.where((parts > 0).all(axis=0), parts.mean(axis=0), 0.0).astype(np.float32)

    def score(self, concepts: list[Concept], weights: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(bm25, coverage) for every document; `weights` scale each concept's share (default 1)."""
        import numpy as np

        bm25 = np.zeros(self.num_docs, dtype=np.float32)
        covered = np.zeros(self.num_docs, dtype=np.float32)
        total = 0.0
        for concept, scale in zip(concepts, weights or [1.0] * len(concepts)):
            best = np.zeros(self.num_docs, dtype=np.float32)
            for phrase in concept:
                np.maximum(best, self.phrase_scores(phrase), out=best)
            present = best > 0
            weight = scale * _idf(self.num_docs, int(present.sum()))
            bm25 += scale * best
            covered += weight * present
            total += weight
        return bm25, covered / total if total else covered


def _phrase_table(groups, tokens: dict[str, list[str]]) -> tuple[dict[tuple[str, ...], Concept], int]:
    """(term tokens → all alternatives of the groups holding that term, longest term in tokens)."""
    table: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for group in groups:
        phrases = [p for p in (tuple(dict.fromkeys(tokens.get(term, ()))) for term in group) if p]
        for phrase in phrases:
            table.setdefault(phrase, set()).update(phrases)
    longest = max((len(p) for p in table), default=1)
    return {phrase: frozenset(alternatives) for phrase, alternatives in table.items()}, longest


def _fuzzy(term: str) -> bool:
    return len(term) >= FUZZY_MIN_LENGTH and term.isascii() and term.isalpha()


def _one_edit(a: str, b: str) -> bool:
    """True when b is a (Damerau) one-edit variant of a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1:]


def _idf(num_docs: int, df: int) -> float:
    """BM25 (Lucene) idf; a term the notes never use gets the highest idf."""
    return math.log(1 + (num_docs - df + 0.5) / (df + 0.5))
