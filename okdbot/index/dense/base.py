"""The dense-index interface: nearest neighbours among unit vectors, by cosine.

Every backend stores float32 vectors under explicit int64 ids chosen by the
caller (okdbot uses chunk row * WINDOWS + window), so ids never drift from
the stored rows. Vectors are expected normalised: the inner product is the
cosine. A generation's index is built once and never changed in place, so
the interface has no delete: a build writes a new index from all vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class DenseIndex(ABC):
    """One vector index. Backends differ in how they search (exact or
    approximate), never in what the methods mean."""

    kind: str = ""  # its name in okdbot.yaml (retrieval.faiss)
    exact: bool = True  # False: a search may miss some true nearest neighbours

    def __init__(self, dim: int, **options):
        self.dim = dim
        self.options = options

    @abstractmethod
    def index(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Build the index from these vectors (rows) and their ids, replacing any content."""

    @abstractmethod
    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under new ids."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query row, up to `k` (id, cosine) pairs, best first. Asking for
        more than `count()` returns them all; an empty index returns empty lists."""

    @abstractmethod
    def count(self) -> int:
        """Number of vectors held."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to one file."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, **options) -> "DenseIndex":
        """Read what `save` wrote. FileNotFoundError when it is missing,
        IndexCorrupt when it cannot be read."""
