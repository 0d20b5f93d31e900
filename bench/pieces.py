"""What a cold query spends its time on, piece by piece, in one fresh process.

    python bench/pieces.py INDEX_DIR   # prints one JSON object: seconds per piece

Each piece is timed serially (no overlap), in the order a query needs them,
with wall and CPU time. bench/fastpath.py runs this several times and prints
the medians; run it alone to look at one process.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENGLISH = "How do I scale a deployment in Kubernetes?"
KOREAN = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"


class Clock:
    def __init__(self):
        self.pieces: dict[str, dict[str, float]] = {}

    def __call__(self, name: str, fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        self.pieces[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        return out


def main() -> None:
    index_dir = Path(sys.argv[1])
    clock = Clock()
    for module in ("numpy", "onnxruntime", "tokenizers", "faiss", "kiwipiepy"):
        clock(f"import {module}", __import__, module)
    clock("import okdbot (cli, runtime, retrieve, answer)", lambda: [
        __import__(m) for m in ("okdbot.cli", "okdbot.runtime", "okdbot.retrieve", "okdbot.answer")])

    from okdbot.index import reader as store
    from okdbot.config import ModelSettings
    from okdbot.embed import backend_of, ort
    from okdbot.lexical import Analyzer
    from okdbot.retrieve import Retriever

    manifest = clock("read the live manifest", store.live_manifest, index_dir)
    record = manifest["query_model"]
    folder = index_dir / record["path"]
    path = clock("sha256 of the exported model files", ort.verified_model, folder, record["files"])
    if "query.onnx" in record["files"]:  # the e5 export's graph for questions
        path = folder / "query.onnx"
    session = clock("onnxruntime session", ort.make_session, path)
    encoder = clock("tokenizer + encoder", lambda: backend_of(record).open_export(
        folder, record, ModelSettings(name=manifest.get("model_name", "")), session=session))

    generation = index_dir / manifest["generation"]
    reader = clock("index: read generation (no checksums)", store.IndexReader, generation, False)
    clock("index: verify checksums", reader._verify)
    clock("index: chunks from sqlite", reader._db.chunks)
    clock("index: lexical arrays", reader._load_lexical)
    clock("index: faiss read", reader._load_dense)
    clock("index: headings", reader._load_headings)

    analyzer = Analyzer()
    retriever = Retriever(index_dir, _retrieval(), encoder, analyzer, reader=reader)
    clock("first encode (English question)", encoder.encode_queries, [ENGLISH])
    clock("first search, English (no Kiwi)", retriever.search, ENGLISH)
    clock("second search, English", retriever.search, ENGLISH)
    from okdbot.korean import new_kiwi

    kiwi = clock("Kiwi() construction", new_kiwi)
    clock("Kiwi first tokenize (builds the analyser)", kiwi.tokenize, KOREAN)
    clock("Kiwi second tokenize", kiwi.tokenize, KOREAN)
    analyzer._kiwi = kiwi
    clock("first search, Korean (Kiwi loaded)", retriever.search, KOREAN)
    clock("second search, Korean", retriever.search, KOREAN)
    print(json.dumps({"since_start": time.perf_counter() - STARTED,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "pieces": clock.pieces}))


def _retrieval():
    from okdbot.config import RetrievalSettings

    return RetrievalSettings()


if __name__ == "__main__":
    main()
