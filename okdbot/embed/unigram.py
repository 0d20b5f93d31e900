"""XLM-R's unigram tokenizer for the e5 model, in plain Python, because it must start fast.

The library `tokenizers` builds its Unigram model for the 250,002 pieces of
multilingual-e5-small in about 0.9 s (JSON parsing and trie building, holding the
GIL), more than half of what a whole `okdbot query` may take. This is the same
segmentation, as sentencepiece and `tokenizers` define it, from a dict of the pieces
that loads in about 0.1 s: spaces runs collapse to one, every word starts with "▁"
(the first one too), and each word is cut into the pieces whose log-probabilities
sum highest (Viterbi). A character no piece holds becomes <unk>, scored ten below the
least likely piece; consecutive <unk> fuse into one. tests/test_fastpath.py checks the
ids against `tokenizers` (which still cuts long passages into windows at build time)
on every line of the notes it has.
"""

from __future__ import annotations

import re

import numpy as np

PIECES_FILE, SCORES_FILE = "pieces.txt", "piece_scores.npy"
METASPACE = "\u2581"
_SPACES = re.compile(" {2,}")
_WORDS = re.compile(f"{METASPACE}[^{METASPACE}]*|[^{METASPACE}]+")


def save(folder, pieces: list[str], scores) -> None:
    """Write the vocabulary (one piece a line; no piece holds a line break) and its scores."""
    if any("\n" in p for p in pieces):
        raise ValueError("a piece holds a line break")
    (folder / PIECES_FILE).write_text("\n".join(pieces), encoding="utf-8")
    np.save(folder / SCORES_FILE, np.asarray(scores, dtype=np.float64))


class UnigramTokenizer:
    """Token ids of normalised text: <s> pieces… </s>, at most `max_tokens` of them."""

    def __init__(self, folder, bos: int, eos: int, unk: int, max_tokens: int):
        pieces = (folder / PIECES_FILE).read_text(encoding="utf-8").split("\n")
        self.ids = {piece: i for i, piece in enumerate(pieces)}
        self.scores = np.load(folder / SCORES_FILE, allow_pickle=False).tolist()
        if len(self.scores) != len(pieces):
            raise ValueError("pieces and scores differ in number")
        self.bos, self.eos, self.unk, self.max_tokens = bos, eos, unk, max_tokens
        self.unk_score = min(self.scores) - 10.0
        self.longest = max(len(p) for p in pieces)

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
            for end in range(start + 1, min(n, start + self.longest) + 1):
                piece = self.ids.get(word[start:end])
                if piece is None or piece == self.unk:
                    continue
                single = single or end == start + 1
                score = best[start] + self.scores[piece]
                if score > best[end]:
                    best[end], back[end] = score, (start, piece)
            if not single and best[start] + self.unk_score > best[start + 1]:
                best[start + 1], back[start + 1] = best[start] + self.unk_score, (start, self.unk)
        ids, end = [], n
        while end > 0:
            start, piece = back[end]
            if not (piece == self.unk and ids and ids[-1] == self.unk):
                ids.append(piece)
            end = start
        return ids[::-1]
