"""Where the fast path's question encode time goes, and which session settings serve it best.

    python bench/encode.py [--index DIR] [--repeat 200]

Times the exported ONNX encoder (okdbot.onnx_embed, as queries run it) on
synthetic questions of 4 to 32 tokens and fits time = intercept + slope ×
tokens. The intercept is what every question pays whatever its length:
running each operator of the graph once (a few microseconds each) and
reading every weight matrix once (the script prints their size next to this
CPU's last-level cache). Rows:
  - the graph okdbot exports (attention, layer norms and GELU fused into one
    onnxruntime operator each) against the plain graph torch exports by
    default (made here in a temporary folder, which loads torch; okdbot
    exported it before export format 2), both as queries run them;
  - 1 and 2 onnxruntime threads, and 2 threads whose idle threads spin only
    during a question (as okdbot runs them), never, and always (onnxruntime's
    default), first on a quiet machine, then while another process keeps one
    core busy (a bot answering while `okdbot index` runs), which is when
    spinning between questions hurts.
Each encode is followed by 1 ms of other Python work, as in a search. It
also prints the token lengths of the English questions of eval/okd-note.yaml
(Korean questions are not embedded by default).

Without --index it uses the repository's index/ (built by `okdbot index`).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, machine_speed  # noqa: E402

LENGTHS = (4, 8, 12, 16, 24, 32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=ROOT / "index")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from okdbot.errors import IndexMissing
    from okdbot.evaluate import load_questions
    from okdbot.onnx_embed import OnnxEncoder, make_session, read_export
    from okdbot.index.reader import live_manifest

    try:
        manifest = live_manifest(args.index)
    except IndexMissing:
        manifest = {}
    if "query_model" not in manifest:
        sys.exit(f"no index with an exported query model in {args.index}; run `okdbot index` first")
    folder = args.index / manifest["query_model"]["path"]
    record = read_export(folder)
    plain = plain_export(Path(tempfile.mkdtemp(prefix="okdbot-plain-")))
    print(machine_speed())
    print(f"weight matrices read per question: {matmul_weight_bytes(folder / 'model.onnx') / 1e6:.1f} MB (fp32); "
          f"last-level cache: {last_level_cache()}")
    print(f"operators per question: {operators(folder / 'model.onnx')} in okdbot's export"
          f"{' (fused)' if record.get('fused') else ''}, {operators(plain / 'model.onnx')} in the plain graph")

    encoder = OnnxEncoder(folder, record)
    english = [q.text for q in load_questions(ROOT / "eval" / "okd-note.yaml").questions if q.lang == "en"]
    tokens = sorted(len(encoder.tokenizer.encode(q).ids) for q in english)
    print(f"English questions of eval/okd-note.yaml: {len(tokens)}, tokens median {statistics.median(tokens):.0f}"
          f" (min {tokens[0]}, max {tokens[-1]})")

    rows = [("plain graph, 2 threads", plain, 2, "during-run"), ("1 thread", folder, 1, "during-run"),
            ("2 threads, spin during-run", folder, 2, "during-run"), ("2 threads, spin never", folder, 2, "never"),
            ("2 threads, spin always", folder, 2, "always")]
    for busy in (False, True):
        print(f"\nmedian ms per question of n tokens, {'one core kept busy by another process' if busy else 'quiet'}\n"
              f"{'session':27} " + " ".join(f"{n:>3} tok" for n in LENGTHS) + "   intercept   per token")
        with busy_core() if busy else contextlib.nullcontext():
            for label, graph, threads, spinning in rows:
                if busy and graph == plain:
                    continue
                encoder.session = make_session(graph / "model.onnx", threads, spinning)
                times = [encode_ms(encoder, n, args.repeat) for n in LENGTHS]
                slope, intercept = fit(LENGTHS, times)
                print(f"{label:27} " + " ".join(f"{t:7.2f}" for t in times) + f"   {intercept:6.2f} ms   {slope:6.3f} ms")


def plain_export(folder: Path) -> Path:
    """The model exported as torch does by default (its sdpa attention), without the
    optimizer's fusions: what okdbot exported before export format 2."""
    from okdbot import embed, onnx_embed
    from okdbot.config import load_settings

    onnx_embed.fuse = lambda *args: None
    embed._eager_attention = lambda model: contextlib.nullcontext()
    embed.export_onnx(embed.SentenceTransformerEmbedder(load_settings().model), folder)
    return folder


def operators(model: Path) -> int:
    """Nodes of the graph after onnxruntime's own optimisations (what a session runs)."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        return len(onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node)


@contextlib.contextmanager
def busy_core():
    """Another process spinning on one core meanwhile."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def encode_ms(encoder, tokens: int, repeat: int) -> float:
    """Median ms of encoding one text of exactly `tokens` tokens ([CLS] … [SEP] included),
    each encode followed by 1 ms of other Python work, as in a search."""
    text = " ".join(["word"] * (tokens - 2))
    assert len(encoder.tokenizer.encode(text).ids) == tokens
    for _ in range(20):
        encoder.encode([text])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        encoder.encode([text])
        times.append((time.perf_counter() - started) * 1000)
        other_work(0.001)
    return statistics.median(times)


def other_work(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def fit(xs, ys) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return slope, my - slope * mx


def matmul_weight_bytes(model: Path) -> int:
    """Bytes of the initializers multiplied by MatMul/Gemm nodes (read in full for every question)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    sizes = {}
    for init in graph.initializer:
        count = 1
        for dim in init.dims:
            count *= dim
        sizes[init.name] = count * 4
    used = {name for node in graph.node if node.op_type in ("MatMul", "Gemm") for name in node.input}
    return sum(size for name, size in sizes.items() if name in used)


def last_level_cache() -> str:
    caches = sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"))
    return caches[-1].read_text().strip() if caches else "unknown"


if __name__ == "__main__":
    main()
