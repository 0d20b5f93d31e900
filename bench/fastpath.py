"""Query speed and memory: the default multilingual-e5-small against all-MiniLM-L6-v2, side by side.

    python bench/fastpath.py [--index DIR] [--runs 5] [--queries 200]

Builds (or brings up to date) an index of the 44-day notes per model under --index
(default: a temporary folder; the bundled note when ../shared/corpora is absent).
Both models answer through their onnxruntime export, as `okdbot query` runs them.
Prints, for both models:
  - cold `okdbot query` whole process, median of --runs, for an English and a
    Korean question (wall time of the process, as a script calling it sees);
  - its peak memory: the largest process's peak RSS (wait4) and, in one extra
    run, the peak of the summed PSS of the process tree (the Korean question
    runs its analyser in a child process);
  - warm per-query latency in one long-running process (Retriever.search:
    encode + lexical + dense + fusion + passages), p50/p95 over --queries,
    with the encode share, and that process's peak RSS;
  - where a cold fast query's time goes, piece by piece (bench/pieces.py,
    median of 3 fresh processes, each piece timed alone).
The machine is shared and its speed varies: the load average and a quick
measure of its compute and memory speed are printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (QUESTIONS, ROOT, corpus_or_bundled, machine_speed, measure, okdbot_cmd,  # noqa: E402
                          percentile, run)

ENGLISH = "How do I scale a deployment in Kubernetes?"
KOREAN = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"
MODELS = {"multilingual-e5-small (default)": "multilingual-e5-small", "all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, help="a folder for the indexes (default: a temporary one)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warm", nargs=1, metavar="INDEX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm:
        return warm(Path(args.warm[0]), args.queries)

    base = args.index or Path(tempfile.mkdtemp(prefix="okdbot-bench-fast-"))
    indexes = {name: base / model for name, model in MODELS.items()}
    label = [ensure_index(indexes[name], model) for name, model in MODELS.items()][0]
    load_before = os.getloadavg()
    speed_before = machine_speed()
    cold = {name: {q: [cold_run(indexes[name], q) for _ in range(args.runs)] for q in (ENGLISH, KOREAN)}
            for name in MODELS}
    memory = {name: {q: tree_memory(indexes[name], q) for q in (ENGLISH, KOREAN)} for name in MODELS}
    warm_stats = {name: warm_in_child(indexes[name], args.queries) for name in MODELS}
    pieces = piece_medians(indexes[next(iter(MODELS))], 3)
    load_after = os.getloadavg()
    speed_after = machine_speed()

    print(f"index: {label} ({base})   machine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after")
    print(f"before: {speed_before}\nafter:  {speed_after}")
    print()
    names = list(MODELS)
    print(f"| {'':58} | {names[0]:>24} | {names[1]:>24} |")
    print(f"|{'-' * 60}|{'-' * 26}:|{'-' * 26}:|")
    for q, lang in ((ENGLISH, "English"), (KOREAN, "Korean")):
        row([f"cold `okdbot query` ({lang} question), median of {args.runs}"]
            + [f"{statistics.median(r[0] for r in cold[n][q]):.2f} s "
               f"({min(r[0] for r in cold[n][q]):.2f}–{max(r[0] for r in cold[n][q]):.2f})" for n in names])
        row(["  CPU time (user+sys, all its processes), median"]
            + [f"{statistics.median(r[2] for r in cold[n][q]):.2f} s" for n in names])
        row([f"  peak RSS, largest process ({lang})"]
            + [f"{max(r[1] for r in cold[n][q]):.0f} MB" for n in names])
        row([f"  peak PSS, whole process tree ({lang})"] + [f"{memory[n][q]:.0f} MB" for n in names])
    row([f"warm Retriever.search over {args.queries} questions: p50 / p95"]
        + [f"{warm_stats[n]['p50']:.1f} / {warm_stats[n]['p95']:.1f} ms" for n in names])
    row(["  of which encoding the question: p50 / p95"]
        + [f"{warm_stats[n]['encode_p50']:.1f} / {warm_stats[n]['encode_p95']:.1f} ms" for n in names])
    row(["  search with question vectors precomputed (the rest) p50"]
        + [f"{warm_stats[n]['rest_p50']:.1f} ms" for n in names])
    row(["  English / Korean questions only: p50"]
        + [f"{warm_stats[n]['en_p50']:.1f} / {warm_stats[n]['ko_p50']:.1f} ms" for n in names])
    row(["warm process: load time, peak RSS"]
        + [f"{warm_stats[n]['load_s']:.2f} s, {warm_stats[n]['peak_rss_mb']:.0f} MB" for n in names])
    print()
    print(f"cold query with {names[0]}, piece by piece (each timed alone in a fresh process; median of 3):")
    print(f"| {'piece':50} | {'wall':>8} | {'CPU':>8} |")
    print(f"|{'-' * 52}|{'-' * 9}:|{'-' * 9}:|")
    for name, (wall, cpu) in pieces.items():
        print(f"| {name:50} | {wall * 1000:5.0f} ms | {cpu * 1000:5.0f} ms |")


def row(cells: list[str]) -> None:
    print(f"| {cells[0]:58} | {cells[1]:>24} | {cells[2]:>24} |")


def ensure_index(index: Path, model: str) -> str:
    corpus, url, label = corpus_or_bundled()
    index.mkdir(parents=True, exist_ok=True)
    config = index.parent / f"{model}.yaml"
    config.write_text(f"model:\n  name: {model}\n", encoding="utf-8")
    seconds, proc = run(okdbot_cmd("index", "--config", str(config), "--corpus", str(corpus), "--source-url", url,
                                   "--index", str(index), "--json"))
    assert proc.returncode == 0, proc.stderr
    print(f"{model}: index of {label} up to date in {seconds:.1f} s: {proc.stdout.strip()}", file=sys.stderr)
    manifest = _manifest(index)
    assert manifest and "query_model" in manifest, "the index has no exported query model"
    folders = ", ".join(s["path"] for s in manifest["sources"])
    return f"{manifest['counts']['files']} notes in {folders}, {manifest['counts']['chunks']} chunks"


def _manifest(index: Path) -> dict | None:
    try:
        name = (index / "CURRENT").read_text().strip()
        return json.loads((index / name / "manifest.json").read_text(encoding="utf-8"))
    except OSError:
        return None


def _env() -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    for key in ("OKDBOT_CONFIG", "OKDBOT_INDEX", "OKDBOT_BACKEND"):
        env.pop(key, None)
    return env


def cold_run(index: Path, question: str) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB of the largest process in its tree, CPU seconds of the
    tree) of one `okdbot query` (no config: the index's own model and settings)."""
    seconds, rss, cpu, out = measure(okdbot_cmd("query", "--index", str(index), "--json", question),
                                     env=_env(), cwd=tempfile.gettempdir())
    assert json.loads(out)
    return seconds, rss, cpu


def tree_memory(index: Path, question: str) -> float:
    """Peak of the summed PSS (MB) of `okdbot query` and its children, sampled every 10 ms."""
    proc = subprocess.Popen(okdbot_cmd("query", "--index", str(index), "--json", question),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(),
                            cwd=tempfile.gettempdir())
    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], sum(_pss_mb(pid) for pid in _tree(proc.pid)))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.wait()
    done.set()
    sampler.join()
    return peak[0]


def _tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def warm_in_child(index: Path, queries: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--warm", str(index), "--queries", str(queries)],
                          capture_output=True, text=True, env=_env(), cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm(index: Path, queries: int) -> None:
    """In this process: load once, then time Retriever.search, the encoder alone, and
    Retriever.search with the question vectors computed beforehand (the rest of the work)."""
    import resource

    from okdbot.config import load_settings
    from okdbot.lexical import has_hangul
    from okdbot.runtime import load_retriever

    settings = load_settings(index=index)
    started = time.perf_counter()
    retriever = load_retriever(settings)
    load_s = time.perf_counter() - started
    for question in QUESTIONS:  # warm-up: every question once
        retriever.search(question)
    asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(queries)]
    total, by_lang = [], {True: [], False: []}
    for question in asked:
        started = time.perf_counter()
        retriever.search(question)
        total.append((time.perf_counter() - started) * 1000)
        by_lang[has_hangul(question)].append(total[-1])
    encoder = retriever.encoder
    encode = []
    for question in asked:
        started = time.perf_counter()
        encoder.encode_queries([question])
        encode.append((time.perf_counter() - started) * 1000)
    retriever.encoder = _Precomputed(encoder, QUESTIONS)
    rest = []
    for question in asked:
        started = time.perf_counter()
        retriever.search(question)
        rest.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "encoder": type(encoder).__name__, "load_s": load_s,
        "p50": percentile(total, 50), "p95": percentile(total, 95),
        "encode_p50": percentile(encode, 50), "encode_p95": percentile(encode, 95),
        "rest_p50": percentile(rest, 50),
        "en_p50": percentile(by_lang[False], 50), "ko_p50": percentile(by_lang[True], 50),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


class _Precomputed:
    """The encoder's vectors for known questions, looked up instead of computed."""

    def __init__(self, encoder, questions):
        self.model_id = encoder.model_id
        self.vectors = {q: encoder.encode_queries([q]) for q in questions}

    def encode_queries(self, texts):
        return self.vectors[texts[0]]


def piece_medians(index: Path, runs: int) -> dict[str, tuple[float, float]]:
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "pieces.py"), str(index)],
                              capture_output=True, text=True, env=_env())
        assert proc.returncode == 0, proc.stderr
        results.append(json.loads(proc.stdout)["pieces"])
    return {name: (statistics.median(r[name]["wall"] for r in results),
                   statistics.median(r[name]["cpu"] for r in results)) for name in results[0]}


if __name__ == "__main__":
    main()
