"""Flat vs HNSW vector index: build time, query latency, recall@10, size on disk.

    python bench/hnsw.py [--sizes 20000 100000] [--index DIR]

recall@10 is printed twice: searching for 10 (what the test checks) / the
top 10 of a search for 200 (what okdbot's queries do: DENSE_CANDIDATES).
Synthetic sets have 64 latent factors over 384 dimensions (sentence
embeddings are far from uniformly random); with --index, the real vectors of
an okdbot index are measured too (200 of them held out as queries). Both
indexes are written and read through okdbot.index, as `okdbot index` does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median, percentile  # noqa: E402
from okdbot.config import RetrievalSettings  # noqa: E402
from okdbot.lexical import LexicalIndex  # noqa: E402
from okdbot.index.chunks import WINDOWS, stored_vectors  # noqa: E402
from okdbot.index.generations import GenerationWriter, current_generation  # noqa: E402
from okdbot.index.reader import open_index  # noqa: E402

QUERIES = 200


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, 384))

    def draw(count):
        x = rng.standard_normal((count, 64)) @ basis
        x += 0.1 * rng.standard_normal(x.shape) * np.abs(basis).mean() * 8
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(QUERIES)


def real(index: Path) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.vstack([v for windows in stored_vectors(index / current_generation(index)).values()
                         for _, v in windows])
    order = np.random.default_rng(0).permutation(len(vectors))
    return vectors[order[QUERIES:]], vectors[order[:QUERIES]]


def generation(folder: Path, vectors: np.ndarray, settings: RetrievalSettings):
    n = len(vectors)
    writer = GenerationWriter(folder)
    writer.add_chunks([(i, f"k{i}", f"h{i}", "s", "f.md", "H", 1, 1, "t", ["t"]) for i in range(n)])
    writer.add_notes([("s", "f.md", "t")])
    dense_started = time.perf_counter()
    writer.write_dense(np.arange(n, dtype=np.int64) * WINDOWS, vectors, vectors.shape[1], settings.faiss,
                       settings.hnsw_m)
    dense_seconds = time.perf_counter() - dense_started
    writer.write_lexical(LexicalIndex.build([["t"]] * n), ["H"], [["h"]], [0] * n)
    writer.publish({"model": "bench", "dim": vectors.shape[1], "faiss": settings.faiss,
                    "hnsw_m": settings.hnsw_m, "hnsw_ef_search": settings.hnsw_ef_search})
    reader = open_index(folder)
    size = (folder / reader.name / "dense.faiss").stat().st_size
    return reader, dense_seconds, size


def measure(label: str, data: np.ndarray, queries: np.ndarray, work: Path, ms_: tuple[int, ...]) -> None:
    flat, flat_build, flat_size = generation(work / f"{label}-flat", data, RetrievalSettings())
    exact = [list(flat.search_dense(q, 10)) for q in queries]
    flat_ms = _latency(flat, queries, 200)
    print(f"\n{label}: {len(data)} vectors x {data.shape[1]}")
    print(f"  flat            build {flat_build:6.1f} s  {flat_size / 2**20:7.1f} MiB  "
          f"k=200 p50 {median(flat_ms):6.2f} ms p95 {percentile(flat_ms, 95):6.2f} ms  recall@10 1.000 / 1.000")
    for m in ms_:
        settings = RetrievalSettings(faiss="hnsw", hnsw_m=m, hnsw_ef_search=128)
        hnsw, build, size = generation(work / f"{label}-hnsw{m}", data, settings)
        for ef in (64, 128, 256):
            _set_ef(hnsw, ef)
            recall = np.mean([len(set(e) & set(hnsw.search_dense(q, 10))) / 10 for q, e in zip(queries, exact)])
            served = np.mean([len(set(e) & set(list(hnsw.search_dense(q, 200))[:10])) / 10
                              for q, e in zip(queries, exact)])
            ms = _latency(hnsw, queries, 200)
            print(f"  hnsw M={m:<2} ef={ef:<3} build {build:6.1f} s  {size / 2**20:7.1f} MiB  "
                  f"k=200 p50 {median(ms):6.2f} ms p95 {percentile(ms, 95):6.2f} ms  "
                  f"recall@10 {recall:.3f} / {served:.3f}")


def _set_ef(reader, ef: int) -> None:
    reader.dense.set_ef_search(ef)  # bench only: okdbot itself sets efSearch from the manifest


def _latency(reader, queries: np.ndarray, k: int) -> list[float]:
    out = []
    for q in queries:
        started = time.perf_counter()
        reader.search_dense(q, k)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--index", type=Path, help="also measure the real vectors of this okdbot index")
    parser.add_argument("--m", type=int, nargs="+", default=[16, 32], help="HNSW graph degrees to try")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="okdbot-bench-hnsw-"))
    if args.index:
        measure(f"real vectors of {args.index}", *real(args.index), work, tuple(args.m))
    for n in args.sizes:
        measure(f"synthetic-{n}", *synthetic(n), work, tuple(args.m))


if __name__ == "__main__":
    main()
