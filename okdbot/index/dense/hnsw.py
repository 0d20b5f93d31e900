"""Approximate search on a graph (faiss IndexHNSWFlat), logarithmic in the corpus.

Options (defaults as in okdbot.yaml): `m` (graph degree; more = better recall,
more memory and build time) and `ef_search` (candidates explored per search). faiss's HNSW returns at most
efSearch hits, so a search for k explores at least k candidates.
"""

from __future__ import annotations

from .faiss_common import FaissIndex


class HNSWIndex(FaissIndex):
    kind = "hnsw"
    exact = False

    def __init__(self, dim: int, m: int = 32, ef_search: int = 128, **options):
        super().__init__(dim, **options)
        self.m = m
        self.ef_search = ef_search

    def _inner(self):
        import faiss

        inner = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = max(40, 2 * self.m)
        inner.hnsw.efSearch = int(self.ef_search)
        return inner

    def _loaded(self) -> None:
        import faiss

        inner = faiss.downcast_index(self._index.index)
        if hasattr(inner, "hnsw"):  # else the file holds another kind of index: searched as it is
            inner.hnsw.efSearch = int(self.ef_search)

    def set_ef_search(self, ef: int) -> None:
        """Candidates explored per search from now on."""
        import faiss

        self.ef_search = int(ef)
        faiss.downcast_index(self._index.index).hnsw.efSearch = self.ef_search

    def _params(self, k: int):
        if k <= self.ef_search:
            return None
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = k
        return params
