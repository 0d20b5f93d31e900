"""Watch mode: how long from saving a note to the running bot quoting it.

    python bench/watch.py [--edits 10]

Copies the 44-day notes (or the bundled note) to a temporary folder, runs
`okdbot index --watch`, and plays the bot with an in-process Retriever: each
edit appends a distinct line to a different note, and the time until a search
quotes that line is measured (the watcher's debounce included). Then a note
is renamed and another deleted, and the time until the index matches is
measured too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import METANET_URL, ROOT, corpus_or_bundled, median  # noqa: E402

WORDS = ["Zookeeper", "Consul", "Nomad", "Vault", "Linkerd", "Cilium", "Falco", "Harbor", "Longhorn", "Velero",
         "Keycloak", "Jaeger"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--corpus", type=Path, help="notes folder to copy (default: the 44-day notes, else the bundled note)")
    args = parser.parse_args()
    from okdbot.config import load_settings
    from okdbot.freshness import check_freshness
    from okdbot.runtime import load_retriever

    corpus, url, label = (args.corpus, METANET_URL, str(args.corpus)) if args.corpus else corpus_or_bundled()
    work = Path(tempfile.mkdtemp(prefix="okdbot-bench-watch-"))
    shutil.copytree(corpus, work / "notes")
    (work / "okdbot.yaml").write_text(f"sources:\n  - name: notes\n    path: notes\n    url: {url}\nindex: index\n",
                                      encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "okdbot", "index", "--watch"], cwd=work, env=env,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stderr), daemon=True).start()
    while not any("watching" in line for line in lines):
        time.sleep(0.1)
    print(f"{label}: first build + model load + watcher start {time.perf_counter() - started:.1f} s")
    settings = load_settings(work / "okdbot.yaml", env={})
    retriever = load_retriever(settings)
    notes = sorted((work / "notes").glob("*.md"))
    latencies = []
    try:
        for i in range(args.edits):
            word = WORDS[i % len(WORDS)] + str(i)
            note = notes[i * 7 % len(notes)]
            note.write_text(note.read_text(encoding="utf-8") + f"\n- {word} : 벤치마크 편집 {i}\n", encoding="utf-8")
            saved = time.perf_counter()
            while not any(word in line.text for p in retriever.search(f"{word}가 뭐야?").passages for line in p.lines):
                time.sleep(0.05)
            latencies.append(time.perf_counter() - saved)
        print(f"save → quoted by the running Retriever, {args.edits} edits of different notes: "
              f"median {median(latencies):.2f} s, max {max(latencies):.2f} s (debounce {settings.watch.debounce_ms} ms)")
        if len(notes) > 2:
            notes[1].rename(notes[1].with_name("renamed-" + notes[1].name))
            notes[2].unlink()
            moved = time.perf_counter()
            while not check_freshness(settings).fresh:
                time.sleep(0.05)
            print(f"rename + delete → index matches the notes: {time.perf_counter() - moved:.2f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print("\n".join(line for line in lines if "re-indexed" in line))


if __name__ == "__main__":
    main()
