"""What the faiss backends share: an IDMap2 over an inner-product index,
one file written with faiss's own format (no pickle), single-threaded search."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np

from ...errors import IndexCorrupt
from .base import DenseIndex


_ERRNO = {os.strerror(code): code for code in errno.errorcode}


class FaissIndex(DenseIndex):
    """A faiss index with explicit ids; subclasses choose the inner index."""

    def __init__(self, dim: int, **options):
        super().__init__(dim, **options)
        self._index = None

    def _inner(self):
        """A new empty inner index (inner-product metric)."""
        raise NotImplementedError

    def _params(self, k: int):
        """faiss SearchParameters for a search of k, or None."""
        return None

    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import faiss

        self._index = faiss.IndexIDMap2(self._inner())
        self.append(ids, vectors)

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is None:
            self.index(np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32))
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                     np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        total = self.count()
        if total == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        import faiss

        # One query is faster on one thread: OpenMP's start-up and spinning cost far more
        # than the search (16 ms against 0.1 ms for 2k vectors on a busy 2-core machine).
        # The setting belongs to the calling thread only.
        faiss.omp_set_num_threads(1)
        k = min(k, total)
        scores, ids = self._index.search(queries, k, params=self._params(k))
        return [[(int(i), float(s)) for s, i in zip(row_scores, row_ids) if i >= 0]
                for row_scores, row_ids in zip(scores, ids)]

    def count(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def save(self, path: Path) -> None:
        import faiss

        if self._index is None:
            self.index(np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32))
        try:
            faiss.write_index(self._index, str(path))
        except RuntimeError as exc:  # faiss names the OS error at the end: "… (No space left on device)"
            reason = re.search(r"\(([^()]+)\)\s*$", str(exc))
            code = _ERRNO.get(reason.group(1) if reason else "", errno.EIO)
            raise OSError(code, os.strerror(code), str(path)) from None

    @classmethod
    def load(cls, path: Path, **options) -> "FaissIndex":
        import faiss

        if not Path(path).exists():
            raise FileNotFoundError(path)
        try:
            loaded = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorrupt(f"vector index {path} is unreadable ({str(exc).splitlines()[0][:80]}); "
                               "run `okdbot index --full`") from None
        self = cls(loaded.d, **options)
        self._index = loaded
        self._loaded()
        return self

    def _loaded(self) -> None:
        """Apply load-time options to the index just read."""
