"""Watch mode: edits, renames, deletes and bursts of saves reach the answers.

One `okdbot index --watch` process (real model, real files, real inotify)
serves the whole module, like a long-running service; it starts on a copy of
the session's bundled index, and each test starts from the bundled note alone
with the index caught up. A Retriever in this process plays
the running bot: it only follows the generations the watcher publishes.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from okdbot.freshness import check_freshness
from okdbot.retrieve import Retriever

from .conftest import BUNDLED_NOTE, ROOT, copy_of_bundled, settings_for, write_config

SKOPEO_Q = "Skopeo가 뭐야?"
ZOOKEEPER_NOTE = "# Day99\n\n## 분산 시스템\n\n- Zookeeper : 분산 코디네이션 서비스, 설정 정보와 리더 선출을 관리\n"
ZOOKEEPER_Q = "Zookeeper가 뭐야?"


class Watcher:
    """`okdbot index --watch -v` in a subprocess, its stderr collected line by line."""

    def __init__(self, folder):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        env.pop("OKDBOT_CONFIG", None)
        env.pop("OKDBOT_INDEX", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "okdbot", "index", "--watch", "-v"], cwd=folder,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            assert self.proc.poll() is None, "watcher died:\n" + "\n".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no '{needle}' within {timeout} s:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def watched(tmp_path_factory, bundled_index, analyzer):
    folder = copy_of_bundled(bundled_index, tmp_path_factory.mktemp("watched"), analyzer)
    watcher = Watcher(folder)
    watcher.wait_for("watching", timeout=300)
    yield folder, watcher
    assert watcher.stop() == 0, "\n".join(watcher.lines)
    assert "stopped watching" in watcher.lines[-1]


@pytest.fixture
def bot(watched, model, analyzer):
    """The notes reset to the bundled note, the index caught up, and a
    Retriever standing for the running bot."""
    folder, watcher = watched
    notes = folder / "notes"
    for path in sorted(notes.rglob("*"), reverse=True):
        if path.name != "Day26.md" or path.parent != notes:
            path.unlink() if path.is_file() else path.rmdir()
    if (notes / "Day26.md").read_bytes() != BUNDLED_NOTE.read_bytes():
        shutil.copy(BUNDLED_NOTE, notes / "Day26.md")
    settings = settings_for(folder)
    _wait(lambda: check_freshness(settings).fresh, 30, "index never caught up with the reset notes")
    retriever = Retriever(settings.index_dir, settings.retrieval, model, analyzer)
    return folder, watcher, retriever


def _wait(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message)


def _quoted(result) -> str:
    return "\n".join(line.text for p in result.passages for line in p.lines)


def _files(result) -> set[str]:
    return {p.file for p in result.passages}


def test_an_edit_is_answered_within_5_seconds(bot):
    folder, _watcher, retriever = bot
    note = folder / "notes" / "Day26.md"
    assert "레지스트리 미러링 전용" not in _quoted(retriever.search(SKOPEO_Q))
    edited = note.read_text(encoding="utf-8").replace(
        "- Skopeo : 컨테이너 이미지 간에", "- Skopeo : 레지스트리 미러링 전용 도구로, 컨테이너 이미지 간에")
    note.write_text(edited, encoding="utf-8")
    saved = time.monotonic()
    result = _wait(lambda: (r := retriever.search(SKOPEO_Q)) and "레지스트리 미러링 전용" in _quoted(r) and r,
                   15, "the edited text was never quoted")
    elapsed = time.monotonic() - saved
    print(f"edit quoted {elapsed:.2f} s after the save")
    assert elapsed <= 5.0, f"the edit was quoted only after {elapsed:.1f} s"
    assert result.passages[0].file == "Day26.md" and "레지스트리 미러링 전용" in _quoted(result)


def test_renamed_and_deleted_notes_leave_no_stale_passage(bot):
    folder, _watcher, retriever = bot
    notes = folder / "notes"
    (notes / "Day99.md").write_text(ZOOKEEPER_NOTE, encoding="utf-8")
    _wait(lambda: "Day99.md" in _files(retriever.search(ZOOKEEPER_Q)), 15, "the new note was never quoted")

    (notes / "archive").mkdir()
    (notes / "Day99.md").rename(notes / "archive" / "Day99-distributed.md")
    result = _wait(lambda: (r := retriever.search(ZOOKEEPER_Q)) and "archive/Day99-distributed.md" in _files(r) and r,
                   15, "the renamed note was never quoted under its new name")
    assert "Day99.md" not in _files(result)
    assert result.passages[0].url.endswith("archive/Day99-distributed.md?plain=1#L5-L5")

    (notes / "archive" / "Day99-distributed.md").unlink()
    result = _wait(lambda: (r := retriever.search(ZOOKEEPER_Q)) and "Zookeeper" not in _quoted(r) and r,
                   15, "the deleted note was still quoted")
    assert not _files(result) & {"Day99.md", "archive/Day99-distributed.md"}
    assert check_freshness(settings_for(folder)).fresh


def test_a_burst_of_saves_and_an_editor_rename_end_in_the_final_text(bot):
    folder, watcher, retriever = bot
    note = folder / "notes" / "Day26.md"
    original = note.read_text(encoding="utf-8")
    for i in range(12):  # an editor saving every 50 ms
        note.write_text(original.replace("- Skopeo :", f"- Skopeo (판 {i}) :"), encoding="utf-8")
        time.sleep(0.05)
    # then saving the way vim/IntelliJ do: write a temporary file, rename it over the note
    temp = folder / "notes" / "Day26.md.tmp~"
    temp.write_text(original.replace("- Skopeo :", "- Skopeo (최종판) :"), encoding="utf-8")
    os.replace(temp, note)
    _wait(lambda: check_freshness(settings_for(folder)).fresh, 20, "the index never matched the final note")
    quoted = _quoted(retriever.search(SKOPEO_Q))
    assert "Skopeo (최종판)" in quoted and "(판 " not in quoted
    assert watcher.proc.poll() is None


def test_a_failing_rebuild_is_logged_and_the_watcher_lives_on(bot):
    folder, watcher, retriever = bot
    notes = folder / "notes"
    generation = retriever.search(SKOPEO_Q).generation
    (notes / "Day26.md").rename(folder / "Day26.md.away")  # no readable note left: a build must fail
    watcher.wait_for("re-index failed, the index is unchanged: no readable notes", 15)
    result = retriever.search(SKOPEO_Q)
    assert result.generation == generation and "Skopeo" in _quoted(result)  # the old index still answers
    (folder / "Day26.md.away").rename(notes / "Day26.md")
    (notes / "Day99.md").write_text(ZOOKEEPER_NOTE, encoding="utf-8")
    _wait(lambda: "Day99.md" in _files(retriever.search(ZOOKEEPER_Q)), 15, "the watcher stopped working")
    assert watcher.proc.poll() is None


def test_an_edit_of_the_configured_synonyms_file_is_watched_too(tmp_path):
    """The synonyms file is read at build time: the watcher re-indexes when it changes."""
    from okdbot.watch import event_filter, watched_roots

    (tmp_path / "notes").mkdir()
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "synonyms.yaml").write_text("- [image, 이미지]\n", encoding="utf-8")
    write_config(tmp_path, extra="retrieval:\n  synonyms: team/synonyms.yaml\n")
    settings = settings_for(tmp_path)
    assert str(tmp_path / "team") in watched_roots(settings)
    accept = event_filter(settings)
    assert accept(None, str(tmp_path / "team" / "synonyms.yaml"))
    assert not accept(None, str(tmp_path / "team" / "other.yaml"))


def test_an_edited_config_is_read_again_and_a_broken_one_is_kept_out(bot):
    """The watcher used to keep the config it started with: a source added to okdbot.yaml was
    never indexed, and a manual `okdbot index` with the new config was undone at the next edit."""
    folder, watcher, retriever = bot
    config = folder / "okdbot.yaml"
    original = config.read_text(encoding="utf-8")
    (folder / "more").mkdir(exist_ok=True)
    (folder / "more" / "Day99.md").write_text(ZOOKEEPER_NOTE, encoding="utf-8")
    try:
        config.write_text(original.replace("index: index\n", "  - name: more\n    path: more\nindex: index\n"),
                          encoding="utf-8")
        watcher.wait_for("changed: indexing with its new settings", 15)
        found = _wait(lambda: (r := retriever.search(ZOOKEEPER_Q)) and "Day99.md" in _files(r) and r, 30,
                      "the source added to the config was never indexed")
        assert found.passages[0].source == "more"
        config.write_text(original + "retrieval:\n  k: 0\n", encoding="utf-8")  # an error: keep what works
        watcher.wait_for("changed but cannot be used, the watcher keeps the settings before", 15)
        assert watcher.proc.poll() is None and "Day99.md" in _files(retriever.search(ZOOKEEPER_Q))
    finally:
        config.write_text(original, encoding="utf-8")
        shutil.rmtree(folder / "more")
    settings = settings_for(folder)
    _wait(lambda: check_freshness(settings).fresh and "Day99.md" not in _files(retriever.search(ZOOKEEPER_Q)), 30,
          "the watcher did not go back to the config as it was")


def test_a_config_edited_while_the_watcher_starts_is_read_on_its_first_tick(workspace, analyzer):
    """The watcher took the config's stamp only when watching began, after the first build (or
    the bot's start-up): an edit made meanwhile was never noticed."""
    from okdbot.build import build_index
    from okdbot.watch import Rebuilder, watch

    from .conftest import CountingEmbedder

    fake = CountingEmbedder()
    started_with = settings_for(workspace)
    build_index(started_with, lambda: fake, analyzer=analyzer, progress=False)
    (workspace / "more").mkdir()
    (workspace / "more" / "Day99.md").write_text(ZOOKEEPER_NOTE, encoding="utf-8")
    config = workspace / "okdbot.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("index: index\n", "  - name: more\n    path: more\n"
                                                                   "index: index\n"), encoding="utf-8")
    stop = threading.Event()
    thread = threading.Thread(target=watch, kwargs=dict(
        settings=started_with, stop_event=stop, rebuilder=Rebuilder(started_with, embedder=fake, analyzer=analyzer),
        reload=lambda: settings_for(workspace)))
    thread.start()
    try:
        _wait(lambda: check_freshness(settings_for(workspace)).fresh, 30, "the edited config was never indexed")
    finally:
        stop.set()
        thread.join(timeout=30)


def test_the_bots_watcher_refuses_a_new_model_or_index_folder(workspace):
    """The running bot answers with the model and index it started with: its watcher must not
    rebuild for another one (the bot would keep answering from a generation removed from disk)."""
    import argparse

    from okdbot.cli_discord import _bot_reload
    from okdbot.errors import ConfigError

    args = argparse.Namespace(config=str(workspace / "okdbot.yaml"), index=None)
    started_with = settings_for(workspace)
    assert _bot_reload(started_with, args) == started_with
    config = workspace / "okdbot.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "model:\n  name: all-MiniLM-L6-v2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="restart the bot"):
        _bot_reload(started_with, args)


def test_an_edit_made_while_the_watcher_restarts_for_a_new_config_is_indexed(workspace, analyzer):
    """After a config change the watcher re-indexes with the new settings, then starts watching the
    new folders: a note saved between the two (here: right as that re-index finishes) made no event
    anyone saw, and stayed out of the index until some later edit."""
    from okdbot.build import build_index
    from okdbot.watch import Rebuilder, watch

    from .conftest import CountingEmbedder

    fake = CountingEmbedder()
    started_with = settings_for(workspace)
    build_index(started_with, lambda: fake, analyzer=analyzer, progress=False)
    (workspace / "more").mkdir()
    (workspace / "more" / "Day99.md").write_text(ZOOKEEPER_NOTE, encoding="utf-8")
    config, note = workspace / "okdbot.yaml", workspace / "notes" / "Day26.md"
    reports = []

    def on_rebuilt(report):
        reports.append(report)
        if len(settings_for(workspace).sources) == 2 and not note.read_text(encoding="utf-8").endswith("Quay\n"):
            note.write_text(note.read_text(encoding="utf-8") + "\n- Quay : 컨테이너 이미지 레지스트리 Quay\n",
                            encoding="utf-8")  # saved in the gap: after that re-index, before the new watch

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("okdbot")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    stop = threading.Event()
    thread = threading.Thread(target=watch, kwargs=dict(
        settings=started_with, stop_event=stop, on_rebuilt=on_rebuilt,
        rebuilder=Rebuilder(started_with, embedder=fake, analyzer=analyzer), reload=lambda: settings_for(workspace)))
    thread.start()
    try:
        _wait(lambda: any(m.startswith("watching") for m in said), 30, "the watcher never started")
        config.write_text(config.read_text(encoding="utf-8").replace(
            "index: index\n", "  - name: more\n    path: more\nindex: index\n"), encoding="utf-8")
        _wait(lambda: note.read_text(encoding="utf-8").endswith("Quay\n"), 30, "the config change was never read")
        _wait(lambda: check_freshness(settings_for(workspace)).fresh, 30,
              "the note saved while the watcher restarted was never indexed")
    finally:
        stop.set()
        thread.join(timeout=30)
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_new_note_the_watcher_cannot_index_is_named_once(workspace, analyzer, caplog):
    """`okdbot index` warns about a note it skips (not UTF-8); the watcher said nothing."""
    from okdbot.build import build_index
    from okdbot.watch import Rebuilder

    from .conftest import CountingEmbedder

    fake = CountingEmbedder()
    settings = settings_for(workspace)
    build_index(settings, lambda: fake, analyzer=analyzer, progress=False)
    rebuilder = Rebuilder(settings, embedder=fake, analyzer=analyzer)
    (workspace / "notes" / "bad.md").write_bytes(b"# b\n\xff\xfe x\n")
    with caplog.at_level(logging.WARNING, logger="okdbot"):
        rebuilder.rebuild_if_stale()
        rebuilder.rebuild_if_stale()
    warned = [r.getMessage() for r in caplog.records if "bad.md" in r.getMessage()]
    assert len(warned) == 1 and "UTF-8" in warned[0], warned
