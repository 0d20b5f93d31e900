"""The contract every dense backend (okdbot.index.dense) keeps, checked
against an exact brute-force search in numpy.

The vectors have a low intrinsic dimension (64 latent factors spread over
384 dimensions, plus noise), as sentence embeddings do; uniformly random
384-d vectors would have no neighbourhood structure for any ANN to find.
20,000 of them make an approximate backend really approximate (its graph
search misses some true neighbours), so its recall is a real measurement.
"""

from __future__ import annotations

import numpy as np
import pytest

from okdbot.index import dense
from okdbot.index.chunks import WINDOWS

N, DIM, LATENT, QUERIES, K = 20_000, 384, 64, 200, 10
MIN_RECALL = 0.95  # of an approximate backend at its default settings, at k=10


def unit_vectors(rng, count: int, basis: np.ndarray) -> np.ndarray:
    latent = rng.standard_normal((count, basis.shape[0])) @ basis
    noise = 0.1 * rng.standard_normal((count, basis.shape[1])) * np.abs(basis).mean() * np.sqrt(basis.shape[0])
    x = latent + noise
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20_000)
    basis = rng.standard_normal((LATENT, DIM))
    ids = np.arange(N, dtype=np.int64) * WINDOWS + rng.integers(0, 3, N)  # sparse ids, as okdbot's are
    return ids, unit_vectors(rng, N, basis), unit_vectors(rng, QUERIES, basis)


def brute_force(ids, vectors, queries, k):
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(int(ids[j]), float(scores[q, j])) for j in row] for q, row in enumerate(top)]


@pytest.fixture(scope="module", params=sorted(dense.BACKENDS))
def built(request, data, tmp_path_factory):
    """(backend kind, index loaded back from disk) holding the 20k vectors."""
    ids, vectors, _ = data
    index = dense.create(request.param, DIM)
    index.index(ids, vectors)
    path = tmp_path_factory.mktemp(request.param) / dense.FILE
    index.save(path)
    return request.param, dense.load(path, request.param)


def test_search_agrees_with_brute_force(built, data):
    kind, index = built
    ids, vectors, queries = data
    assert index.count() == N
    exact = brute_force(ids, vectors, queries, K)
    found = index.search(queries, K)
    cosine = dict(zip(ids.tolist(), range(N)))
    recalls = []
    for q, (want, got) in enumerate(zip(exact, found)):
        assert len(got) == K
        for fid, score in got:  # every score is the true cosine of the id it is given for
            assert score == pytest.approx(float(vectors[cosine[fid]] @ queries[q]), abs=1e-4)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        recalls.append(len({i for i, _ in want} & {i for i, _ in got}) / K)
    recall = float(np.mean(recalls))
    print(f"{kind}: recall@{K} against brute force on {N} vectors: {recall:.3f}")
    if dense.backend(kind).exact:
        assert recall == 1.0
    else:
        assert MIN_RECALL <= recall < 1.0, recall  # approximate, and good enough


def test_saved_and_loaded_index_answers_the_same(built, data, tmp_path):
    kind, index = built
    _, _, queries = data
    index.save(tmp_path / "again.faiss")
    again = dense.load(tmp_path / "again.faiss", kind)
    assert again.count() == index.count()
    assert again.search(queries[:20], K) == index.search(queries[:20], K)


@pytest.mark.parametrize("kind", sorted(dense.BACKENDS))
def test_asking_for_more_than_there_is(kind, data):
    ids, vectors, queries = data
    index = dense.create(kind, DIM)
    assert index.search(queries[:1], 5) == [[]]  # nothing indexed yet
    index.index(ids[:7], vectors[:7])
    hits = index.search(queries[:3], 50)
    assert [len(h) for h in hits] == [7, 7, 7]
    assert {i for i, _ in hits[0]} == set(ids[:7].tolist())


@pytest.mark.parametrize("kind", sorted(dense.BACKENDS))
def test_a_large_k_is_not_cut_short(kind, data):
    """okdbot asks for 200 candidates; HNSW explores only efSearch unless told otherwise."""
    ids, vectors, queries = data
    index = dense.create(kind, DIM, **({"ef_search": 16} if kind == "hnsw" else {}))
    index.index(ids[:2000], vectors[:2000])
    exact = brute_force(ids[:2000], vectors[:2000], queries[:20], 200)
    for want, got in zip(exact, index.search(queries[:20], 200)):
        assert len(got) == 200
        assert len({i for i, _ in want} & {i for i, _ in got}) >= 180


@pytest.mark.parametrize("kind", sorted(dense.BACKENDS))
def test_appended_vectors_are_found(kind, data):
    ids, vectors, _ = data
    index = dense.create(kind, DIM)
    index.index(ids[:1000], vectors[:1000])
    index.append(ids[1000:1100], vectors[1000:1100])
    assert index.count() == 1100
    for row in (1000, 1050, 1099):
        (best_id, best_score), *_ = index.search(vectors[row], 3)[0]
        assert best_id == ids[row] and best_score == pytest.approx(1.0, abs=1e-4)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="flat, hnsw"):
        dense.create("ivf", DIM)
