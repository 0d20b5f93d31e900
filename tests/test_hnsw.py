"""The HNSW vector index (retrieval.faiss: hnsw) for corpora past ~1M chunks,
as the index build and queries use it (its recall against an exact search is
part of the backend contract, tests/test_dense.py)."""

from __future__ import annotations

import numpy as np

from okdbot.build import build_index
from okdbot.freshness import check_freshness
from okdbot.lexical import LexicalIndex
from okdbot.retrieve import Retriever
from okdbot.index.chunks import WINDOWS
from okdbot.index.generations import GenerationWriter
from okdbot.index.reader import open_index

from .conftest import CountingEmbedder, settings_for, write_config

DIM, LATENT = 384, 64


def _vectors(rng, count: int, basis: np.ndarray) -> np.ndarray:
    latent = rng.standard_normal((count, basis.shape[0])) @ basis
    noisy = latent + 0.1 * rng.standard_normal((count, basis.shape[1])) * np.abs(basis).mean() * np.sqrt(basis.shape[0])
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def _generation(index_dir, vectors: np.ndarray, retrieval) -> "open_index":
    """A published generation holding `vectors` as chunk rows 0..N-1."""
    n = len(vectors)
    writer = GenerationWriter(index_dir)
    writer.add_chunks([(i, f"k{i}", f"h{i}", "s", "f.md", "H", 1, 1, "t", ["t"]) for i in range(n)])
    writer.add_notes([("s", "f.md", "t")])
    writer.write_dense(np.arange(n, dtype=np.int64) * WINDOWS, vectors, vectors.shape[1], retrieval.faiss,
                       retrieval.hnsw_m)
    writer.write_lexical(LexicalIndex.build([["t"]] * n), ["H"], [["h"]], [0] * n)
    writer.publish({"model": "synthetic", "dim": vectors.shape[1], "max_tokens": 512, "sources": [],
                    "faiss": retrieval.faiss,
                    "hnsw_m": retrieval.hnsw_m, "hnsw_ef_search": retrieval.hnsw_ef_search})
    return open_index(index_dir)


def test_switching_to_hnsw_in_the_config_is_applied_by_the_next_index(workspace, analyzer, model):
    settings = settings_for(workspace)
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    flat_answer = Retriever(settings.index_dir, settings.retrieval, model, analyzer).search("What is Tekton?")
    write_config(workspace, extra="retrieval:\n  faiss: hnsw\n  hnsw_m: 16\n  hnsw_ef_search: 64\n")
    settings = settings_for(workspace)
    state = check_freshness(settings)
    assert not state.fresh and "the index uses the flat vector index, the config says hnsw" in state.settings
    report = build_index(settings, lambda: CountingEmbedder(), analyzer=analyzer, progress=False)
    assert report.embedded == 0  # the vectors are reused: only the vector index is rebuilt
    reader = open_index(settings.index_dir)
    assert (reader.manifest["faiss"], reader.manifest["hnsw_m"], reader.manifest["hnsw_ef_search"]) == ("hnsw", 16, 64)
    assert check_freshness(settings).fresh
    hnsw_answer = Retriever(settings.index_dir, settings.retrieval, model, analyzer).search("What is Tekton?")
    assert [(p.file, p.start_line) for p in hnsw_answer.passages] == [(p.file, p.start_line) for p in flat_answer.passages]


def test_a_search_for_more_hits_than_hnsw_ef_search_is_not_cut_short(tmp_path):
    """faiss's HNSW returns at most efSearch hits; queries ask for 200 dense candidates."""
    write_config(tmp_path, extra="retrieval:\n  faiss: hnsw\n  hnsw_ef_search: 16\n")
    rng = np.random.default_rng(7)
    basis = rng.standard_normal((LATENT, DIM))
    data, queries = _vectors(rng, 2_000, basis), _vectors(rng, 20, basis)
    hnsw = _generation(tmp_path / "hnsw", data, settings_for(tmp_path).retrieval)
    write_config(tmp_path)
    flat = _generation(tmp_path / "flat", data, settings_for(tmp_path).retrieval)
    for query in queries:
        hits = hnsw.search_dense(query, 200)
        assert len(hits) == 200
        assert len(set(hits) & set(flat.search_dense(query, 200))) >= 180
