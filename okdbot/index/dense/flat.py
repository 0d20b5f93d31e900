"""Exact search: every vector is compared with the query (faiss IndexFlatIP)."""

from __future__ import annotations

from .faiss_common import FaissIndex


class FlatIndex(FaissIndex):
    kind = "flat"

    def _inner(self):
        import faiss

        return faiss.IndexFlatIP(self.dim)
