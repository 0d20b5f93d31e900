"""Index build benchmark: full build, one-line incremental rebuild, encode share, memory.

    python bench/build.py            # on ../shared/corpora/metanet-notes when present

Prints: full build time and chunks/s (in-process, model loaded), the share of
build time spent in the model's encode, incremental rebuild time after a
one-line edit (in-process, and as a whole `okdbot index` process), peak memory.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_or_bundled, okdbot_cmd, peak_rss_mb, run  # noqa: E402
from okdbot.build import build_index  # noqa: E402
from okdbot.config import Settings, Source  # noqa: E402


class TimedEmbedder:
    """Wraps the real embedder to measure time spent inside encode."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id, self.dim, self.max_tokens = inner.model_id, inner.dim, inner.max_tokens
        self.encode_seconds = 0.0
        self.windows_encoded = 0

    def windows(self, text):
        return self.inner.windows(text)

    def encode_documents(self, texts):
        started = time.perf_counter()
        out = self.inner.encode_documents(texts)
        self.encode_seconds += time.perf_counter() - started
        self.windows_encoded += len(texts)
        return out


def main() -> None:
    corpus, url, label = corpus_or_bundled()
    work = Path(tempfile.mkdtemp(prefix="okdbot-bench-build-"))
    notes = work / "notes"
    shutil.copytree(corpus, notes)  # a scratch copy outside the repo, so we can edit it
    settings = Settings(sources=(Source("corpus", notes, url=url),), index_dir=work / "index")

    started = time.perf_counter()
    from okdbot.embed import SentenceTransformerEmbedder
    from okdbot.lexical import Analyzer

    model = SentenceTransformerEmbedder(settings.model)
    analyzer = Analyzer().load()
    load_s = time.perf_counter() - started

    timed = TimedEmbedder(model)
    full = build_index(settings, lambda: timed, analyzer=analyzer, progress=False)
    first = sorted(notes.glob("*.md"))[0]
    lines = first.read_text(encoding="utf-8").split("\n")
    target = next(i for i, line in enumerate(lines) if line.startswith("- ") or len(line) > 20)
    lines[target] += " (수정됨)"
    first.write_text("\n".join(lines), encoding="utf-8")
    timed_inc = TimedEmbedder(model)
    inc = build_index(settings, lambda: timed_inc, analyzer=analyzer, progress=False)
    whole = []
    for mark in (" 다시", " 또"):  # the first whole-process build also exports the ONNX query model once
        lines[target] += mark
        first.write_text("\n".join(lines), encoding="utf-8")
        proc_s, proc = run(okdbot_cmd("index", "--corpus", str(notes), "--source-url", url,
                                      "--index", str(work / "index"), "--json"))
        assert proc.returncode == 0, proc.stderr
        whole.append((proc_s, json.loads(proc.stdout)))
    load_s2, load_proc = run([sys.executable, "-c", "import okdbot.embed as e, okdbot.config as c; "
                              "e.SentenceTransformerEmbedder(c.ModelSettings()); import kiwipiepy"])
    assert load_proc.returncode == 0, load_proc.stderr

    print(f"corpus: {label}: {full.files} files, {full.chunks} chunks, {timed.windows_encoded} windows")
    print(f"model + Kiwi load (in-process, once):     {load_s:7.2f} s")
    print(f"full build (in-process, model loaded):    {full.seconds:7.2f} s   {full.chunks / full.seconds:7.1f} chunks/s")
    print(f"  of which model encode:                  {timed.encode_seconds:7.2f} s   "
          f"{100 * timed.encode_seconds / full.seconds:5.1f} %")
    print(f"one-line edit rebuild (in-process):       {inc.seconds:7.2f} s   embedded {inc.embedded}, reused {inc.reused}")
    for (proc_s, data), what in zip(whole, ("first, exports the query model", "steady state")):
        print(f"one-line edit rebuild (whole process):    {proc_s:7.2f} s   ({what}) "
              f"embedded {data['embedded']}, reused {data['reused']}, build_index {data['seconds']:.2f} s")
    print(f"  process start-up alone (python + torch/ST import + model load + kiwipiepy import): {load_s2:.2f} s")
    print(f"peak memory of this process:              {peak_rss_mb():7.0f} MB")
    print(f"peak memory of `okdbot index` process:    {peak_rss_mb(children=True):7.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
