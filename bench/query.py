"""Query latency benchmark: warm (in-process) and cold (whole `okdbot query` process).

    python bench/query.py [--index DIR]   # builds an index of the 44-day notes first if needed

Prints warm p50/p95 over 200 in-process queries (encode + lexical + dense +
fusion + passages), cold whole-process latency (median of 5) with peak
memory, and how long `okdbot --help` / `okdbot index --help` take.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (QUESTIONS, corpus_or_bundled, measure, median, okdbot_cmd,  # noqa: E402
                          peak_rss_mb, percentile, run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, help="an existing index of the notes (default: build one)")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    corpus, url, label = corpus_or_bundled()
    index = args.index or Path(tempfile.mkdtemp(prefix="okdbot-bench-query-")) / "index"
    if not (index / "CURRENT").exists():
        seconds, proc = run(okdbot_cmd("index", "--corpus", str(corpus), "--source-url", url,
                                       "--index", str(index), "--json"))
        assert proc.returncode == 0, proc.stderr
        print(f"built index of {label} in {seconds:.1f} s: {proc.stdout.strip()}")

    helps = {}
    for cmd in (["--help"], ["index", "--help"], ["query", "--help"]):
        helps[" ".join(cmd)] = median([run(okdbot_cmd(*cmd))[0] for _ in range(5)])

    colds, rss = [], []
    for i in range(5):
        seconds, peak, _cpu, _out = measure(okdbot_cmd("query", "--index", str(index), QUESTIONS[i]))
        colds.append(seconds)
        rss.append(peak)
    cold_rss = max(rss)

    from okdbot.config import Settings
    from okdbot.runtime import load_retriever

    started = time.perf_counter()
    retriever = load_retriever(Settings(sources=(), index_dir=index))
    load_s = time.perf_counter() - started
    for q in QUESTIONS:  # warm-up
        retriever.search(q)
    times = []
    for i in range(args.queries):
        started = time.perf_counter()
        retriever.search(QUESTIONS[i % len(QUESTIONS)])
        times.append((time.perf_counter() - started) * 1000)

    print(f"index: {label}, {len(retriever.reader.chunks)} chunks ({index})")
    for cmd, seconds in helps.items():
        print(f"`okdbot {cmd}` (median of 5):{'':<12}{seconds * 1000:8.0f} ms")
    print(f"cold `okdbot query` whole process (median of 5): {median(colds):6.2f} s  "
          f"(min {min(colds):.2f}, max {max(colds):.2f})")
    print(f"peak memory of `okdbot query` process:           {cold_rss:6.0f} MB")
    print(f"in-process load (index + models):                {load_s:6.2f} s")
    print(f"warm query latency over {args.queries}: p50 {percentile(times, 50):6.1f} ms   "
          f"p95 {percentile(times, 95):6.1f} ms   max {max(times):6.1f} ms")
    print(f"peak memory of this process:                     {peak_rss_mb():6.0f} MB")


if __name__ == "__main__":
    main()
