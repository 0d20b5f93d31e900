"""Dense (vector) indexes behind one interface, in the manner of txtai's `ann`:
`base.DenseIndex` says what every backend does; each backend is one small
file. This package is the only importer of faiss.

    index = create("hnsw", 384, m=32, ef_search=128)
    index.index(ids, vectors); index.save(path)
    load(path, "hnsw", ef_search=128).search(queries, 10)  # [[(id, cosine), …], …]
"""

from __future__ import annotations

from pathlib import Path

from .base import DenseIndex
from .flat import FlatIndex
from .hnsw import HNSWIndex

FILE = "dense.faiss"
BACKENDS: dict[str, type[DenseIndex]] = {"flat": FlatIndex, "hnsw": HNSWIndex}


def backend(kind: str) -> type[DenseIndex]:
    try:
        return BACKENDS[kind]
    except KeyError:
        raise ValueError(f"unknown vector index kind {kind!r}; expected one of {', '.join(BACKENDS)}") from None


def create(kind: str, dim: int, **options) -> DenseIndex:
    """An empty index of this kind ("flat" or "hnsw")."""
    return backend(kind)(dim, **options)


def load(path: Path, kind: str = "flat", **options) -> DenseIndex:
    """The index saved at `path` by a backend of this kind."""
    return backend(kind).load(path, **options)


__all__ = ["BACKENDS", "FILE", "DenseIndex", "FlatIndex", "HNSWIndex", "backend", "create", "load"]
