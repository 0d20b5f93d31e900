"""`okdbot doctor` as an operator runs it: the real model and index; in a fresh process
where the environment or the privileges it runs with are the point (no token, an
unreadable note), else in this process (okdbot_cli)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from okdbot.build import build_index

from .conftest import run_cli, settings_for

FAKE_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


def _build(folder, model, analyzer):
    build_index(settings_for(folder), lambda: model, analyzer=analyzer, progress=False)


def _no_crash(proc):
    assert "Traceback" not in proc.stdout + proc.stderr and "internal error" not in proc.stderr
    assert proc.returncode in (0, 1), proc.stderr


def test_stale_index_is_detected_and_every_stale_file_listed(indexed_workspace, model, analyzer, okdbot_cli):
    workspace = indexed_workspace
    notes = workspace / "notes"
    (notes / "gone.md").write_text("# Gone\n\n- Zookeeper : 분산 코디네이션\n", encoding="utf-8")
    _build(workspace, model, analyzer)
    day26 = notes / "Day26.md"
    day26.write_text(day26.read_text(encoding="utf-8").replace("- Skopeo :", "- Skopeo (수정) :"), encoding="utf-8")
    (notes / "gone.md").unlink()
    (notes / "sub").mkdir()
    (notes / "sub" / "added.md").write_text("# Added\n\n- Quay : 이미지 레지스트리\n", encoding="utf-8")

    proc = okdbot_cli("doctor", "--no-discord", cwd=workspace)
    _no_crash(proc)
    assert proc.returncode == 1
    out = proc.stdout
    assert "[FAIL] index     stale: 1 changed, 1 new, 1 deleted" in out
    assert "changed  notes/Day26.md" in out and "new      notes/sub/added.md" in out
    assert "deleted  notes/gone.md" in out
    assert "run `okdbot index`" in out
    assert "1 problem(s) found" in out

    assert okdbot_cli("index", "-q", cwd=workspace).returncode == 0
    proc = okdbot_cli("doctor", "--no-discord", "--json", cwd=workspace)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] is True, proc.stdout
    assert any(c["area"] == "index" and "up to date" in c["summary"] for c in report["checks"])
    assert any(c["area"] == "model" and "loads offline" in c["summary"] for c in report["checks"])


def test_missing_token_and_missing_index_are_reported_without_crashing(workspace):
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    proc = subprocess.run(  # run_cli copies os.environ, which may hold a token
        [*_python(), "doctor"], cwd=workspace, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
        timeout=300)
    _no_crash(proc)
    assert proc.returncode == 1
    assert "[FAIL] discord   DISCORD_TOKEN is not set" in proc.stdout
    assert "[FAIL] index     no index in" in proc.stdout
    assert "Message Content" in proc.stdout and "Send Messages" in proc.stdout  # intents/permissions explained
    assert "2 problem(s) found" in proc.stdout


def test_a_present_token_is_never_printed(indexed_workspace, okdbot_cli):
    workspace = indexed_workspace
    for args in (["doctor", "-v"], ["doctor", "--json"]):
        proc = okdbot_cli(*args, cwd=workspace, env={"DISCORD_TOKEN": FAKE_TOKEN})
        _no_crash(proc)
        assert proc.returncode == 0, proc.stdout
        text = proc.stdout + proc.stderr
        assert FAKE_TOKEN not in text and FAKE_TOKEN.split(".")[0] not in text and FAKE_TOKEN.split(".")[2] not in text
        assert "DISCORD_TOKEN is set (not shown)" in text


def _python():
    import sys

    return [sys.executable, "-m", "okdbot"]


def _unreadable_runner() -> list[str]:
    """A command prefix under which a chmod 000 file really is unreadable.

    As root, permission bits do not stop reads: the doctor then runs without
    the capabilities that bypass them (setpriv), or the test is skipped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a chmod 000 file stays readable")
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"setpriv cannot drop capabilities here: {probe.stderr.decode().strip()}")
    return prefix


def test_an_unreadable_note_is_named_with_the_reason(indexed_workspace):
    workspace = indexed_workspace
    secret = workspace / "notes" / "secret.md"
    secret.write_text("# Secret\n\n- 비밀 : 읽을 수 없는 노트\n", encoding="utf-8")
    secret.chmod(0)
    prefix = _unreadable_runner()
    try:
        proc = subprocess.run([*prefix, *_python(), "doctor", "--no-discord"], cwd=workspace, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    finally:
        secret.chmod(0o644)
    _no_crash(proc)
    assert proc.returncode == 1
    assert "[FAIL] corpus    1 file(s) cannot be indexed" in proc.stdout
    assert "notes/secret.md: unreadable (Permission denied)" in proc.stdout
    assert "chmod a+r" in proc.stdout


def test_a_broken_config_is_one_failed_check_not_a_crash(tmp_path):
    (tmp_path / "okdbot.yaml").write_text("retrieval:\n  k: many\n", encoding="utf-8")
    proc = run_cli("doctor", "--no-discord", cwd=tmp_path)
    _no_crash(proc)
    assert proc.returncode == 1
    assert "[FAIL] config" in proc.stdout and "okdbot.yaml:2" in proc.stdout and "'k' must be a int" in proc.stdout
    assert "[ ok ] libraries" in proc.stdout
