"""XLM-R's unigram tokenizer for the e5 model, in plain Python, because it must start fast.

The library `tokenizers` builds its Unigram model for the 250,002 pieces of
multilingual-e5-small in about 0.9 s (JSON parsing and trie building, holding the
GIL), more than half of what a whole `okdbot query` may take. This is the same
segmentation, as sentencepiece and `tokenizers` define it: spaces runs collapse to
one, every word starts with "▁" (the first one too), and each word is cut into the
pieces whose log-probabilities sum highest (Viterbi). A character no piece holds
becomes <unk>, scored ten below the least likely piece; consecutive <unk> fuse into
one. tests/test_fastpath.py checks the ids against `tokenizers` (which still cuts
long passages into windows at build time) on every line of the notes it has.

Even a dict of all pieces took 0.13 s to build, holding the GIL while a cold query
loads everything else, so the export also keeps the pieces grouped by how they
start (their first two characters), and only the groups a text needs are read, once
per process.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

PIECES_FILE, SCORES_FILE = "pieces.txt", "piece_scores.npy"
GROUPED_FILE, GROUPS_FILE = "pieces_grouped.txt", "piece_groups.npz"
METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
_WORDS = re.compile(f"{METASPACE}[^{METASPACE}]*|[^{METASPACE}]+")
_PLANE = 0x110000  # one past the last code point


def _key(first: str, second: str = "") -> int:
    """The group of the pieces that start with `first` and then `second` ("" for the one
    piece that is `first` alone)."""
    return ord(first) * _PLANE + (ord(second) if second else 0)


def save(folder: Path, pieces: list[str], scores) -> None:
    """Write the vocabulary (one piece a line; no piece holds a line break), its scores,
    and the same pieces grouped by their start with the index of those groups."""
    if any("\n" in p for p in pieces):
        raise ValueError("a piece holds a line break")
    (folder / PIECES_FILE).write_text("\n".join(pieces), encoding="utf-8")
    np.save(folder / SCORES_FILE, np.asarray(scores, dtype=np.float64))
    keys = [_key(p[0], p[1:2]) if p else 0 for p in pieces]
    order = sorted(range(len(pieces)), key=lambda i: (keys[i], i))
    encoded = [pieces[i].encode("utf-8") for i in order]
    (folder / GROUPED_FILE).write_bytes(b"".join(e + b"\n" for e in encoded))
    offsets = np.concatenate([[0], np.cumsum([len(e) + 1 for e in encoded])]).astype(np.int64)
    sorted_keys = np.array([keys[i] for i in order], dtype=np.int64)
    group_keys, starts = np.unique(sorted_keys, return_index=True)
    np.savez(folder / GROUPS_FILE, keys=group_keys, starts=np.append(starts, len(order)).astype(np.int64),
             order=np.array(order, dtype=np.int64), offsets=offsets,
             longest=np.array(max(len(p) for p in pieces), dtype=np.int64))


class _Groups:
    """piece → (id, score), read group by group from the grouped file as texts need them."""

    def __init__(self, folder: Path):
        with np.load(folder / GROUPS_FILE, allow_pickle=False) as index:
            self.keys, self.starts = index["keys"], index["starts"]
            self.order, self.offsets = index["order"], index["offsets"]
            self.longest = int(index["longest"])
        self.text = (folder / GROUPED_FILE).read_bytes()
        self.scores = np.load(folder / SCORES_FILE, allow_pickle=False)
        if len(self.order) != len(self.scores) or len(self.offsets) != len(self.order) + 1:
            raise ValueError("the grouped pieces and the scores differ in number")
        self.low = float(self.scores.min())
        self._read: dict[int, dict[str, tuple[int, float]]] = {}

    def __call__(self, key: int) -> dict[str, tuple[int, float]]:
        group = self._read.get(key)
        if group is None:
            at = int(np.searchsorted(self.keys, key))
            group = {}
            if at < len(self.keys) and int(self.keys[at]) == key:
                a, b = int(self.starts[at]), int(self.starts[at + 1])
                pieces = self.text[self.offsets[a]:self.offsets[b] - 1].decode("utf-8").split("\n")
                ids = self.order[a:b]
                group = dict(zip(pieces, zip(ids.tolist(), self.scores[ids].tolist())))
            self._read[key] = group
        return group


class _AllPieces(_Groups):
    """An export without the grouped file (okdbot before it): one group of every piece."""

    def __init__(self, folder: Path):
        pieces = (folder / PIECES_FILE).read_text(encoding="utf-8").split("\n")
        scores = np.load(folder / SCORES_FILE, allow_pickle=False).tolist()
        if len(scores) != len(pieces):
            raise ValueError("pieces and scores differ in number")
        self.all = dict(zip(pieces, zip(range(len(pieces)), scores)))
        self.longest, self.low = max(map(len, pieces)), min(scores)

    def __call__(self, key: int) -> dict[str, tuple[int, float]]:
        return self.all


class UnigramTokenizer:
    """Token ids of normalised text: <s> pieces… </s>, at most `max_tokens` of them."""

    def __init__(self, folder: Path, bos: int, eos: int, unk: int, max_tokens: int, grouped: bool = True):
        """`grouped`: the export made the grouped files (an earlier okdbot's did not)."""
        self.group = _Groups(folder) if grouped else _AllPieces(folder)
        self.bos, self.eos, self.unk, self.max_tokens = bos, eos, unk, max_tokens
        self.unk_score = self.group.low - 10.0
        self.longest = self.group.longest

    def encode(self, text: str) -> list[int]:
        return [self.bos] + self.pieces(text)[: self.max_tokens - 2] + [self.eos]

    def pieces(self, text: str) -> list[int]:
        """The ids of `text`'s pieces, without <s> and </s> and however many."""
        text = _SPACES.sub(" ", text).replace(" ", METASPACE)
        if not text.startswith(METASPACE):
            text = METASPACE + text
        out: list[int] = []
        for word in _WORDS.findall(text):
            out += self._word(word)
        return out

    def _word(self, word: str) -> list[int]:
        """The best-scoring segmentation of one word (Viterbi over its characters)."""
        n = len(word)
        best = [0.0] + [float("-inf")] * n
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        for start in range(n):
            if best[start] == float("-inf"):
                continue
            single = False
            first = word[start]
            one = self.group(_key(first))  # the piece that is this character alone
            more = self.group(_key(first, word[start + 1])) if start + 1 < n else one
            for end in range(start + 1, min(n, start + self.longest) + 1):
                found = (one if end == start + 1 else more).get(word[start:end])
                if found is None or found[0] == self.unk:
                    continue
                single = single or end == start + 1
                score = best[start] + found[1]
                if score > best[end]:
                    best[end], back[end] = score, (start, found[0])
            if not single and best[start] + self.unk_score > best[start + 1]:
                best[start + 1], back[start + 1] = best[start] + self.unk_score, (start, self.unk)
        ids, end = [], n
        while end > 0:
            start, piece = back[end]
            if not (piece == self.unk and ids and ids[-1] == self.unk):
                ids.append(piece)
            end = start
        return ids[::-1]
