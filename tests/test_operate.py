"""Operating the bot: the health check Docker runs, the per-answer log line,
--verbose/--quiet on every command, and the scaling settings' validation."""

from __future__ import annotations

import json
import time

import pytest

from okdbot.answer import answer_log_line
from okdbot.config import load_settings
from okdbot.errors import ConfigError
from okdbot.health import check, write_heartbeat

from .conftest import run_cli, write_config

SKOPEO_Q = "Skopeo가 뭐야?"


def test_health_is_good_only_while_the_heartbeat_is_fresh_and_connected(tmp_path):
    beat = tmp_path / "hb.json"
    assert not check(beat).healthy and "not running" in check(beat).message
    write_heartbeat(beat, {"connected": True, "guilds": 2, "generation": "gen-1"})
    health = check(beat, max_age=90)
    assert health.healthy and "guilds 2" in health.message
    assert not check(beat, max_age=90, now=time.time() + 120).healthy  # the bot stopped beating
    write_heartbeat(beat, {"connected": False})
    assert not check(beat).healthy and "not connected" in check(beat).message
    beat.write_text("{not json", encoding="utf-8")
    assert not check(beat).healthy and "unreadable" in check(beat).message
    assert [p.name for p in tmp_path.iterdir()] == ["hb.json"]  # no temporary files left behind


def test_okdbot_health_exit_codes_are_what_docker_reads(tmp_path):
    beat = tmp_path / "hb.json"
    assert run_cli("health", "--heartbeat", str(beat), cwd=tmp_path).returncode == 1
    write_heartbeat(beat, {"connected": True})
    proc = run_cli("health", cwd=tmp_path, env={"OKDBOT_HEARTBEAT": str(beat)})
    assert proc.returncode == 0 and proc.stdout.startswith("okdbot: healthy: connected"), proc.stdout
    write_heartbeat(beat, {"connected": True}, now=time.time() - 60)
    assert run_cli("health", "--heartbeat", str(beat), "--max-age", "30", cwd=tmp_path).returncode == 1


@pytest.mark.parametrize("max_age", ["0", "-1", "nan", "inf", "soon"])
def test_a_max_age_that_is_no_number_of_seconds_is_refused(tmp_path, max_age, okdbot_cli):
    beat = tmp_path / "hb.json"
    write_heartbeat(beat, {"connected": True}, now=time.time() - 3600)  # stale for any sane limit
    proc = okdbot_cli("health", "--heartbeat", str(beat), "--max-age", max_age, cwd=tmp_path)
    assert proc.returncode == 2 and "--max-age" in proc.stderr and "healthy" not in proc.stdout, proc


def test_a_heartbeat_that_is_a_pipe_is_unhealthy_at_once(tmp_path):
    import os

    os.mkfifo(tmp_path / "hb.json")  # nothing writes to it: reading would wait for ever
    health = check(tmp_path / "hb.json")
    assert not health.healthy and "not a regular file" in health.message


def test_a_heartbeat_whose_time_is_no_number_is_unhealthy(tmp_path):
    beat = tmp_path / "hb.json"
    for when in ("NaN", "Infinity", "1e308"):
        beat.write_text(f'{{"connected": true, "time": {when}}}', encoding="utf-8")
        assert not check(beat).healthy, when


def test_the_answer_log_line_has_the_numbers_and_never_the_question(retriever):
    result = retriever.search("컨테이너 이미지를 저장소 간에 복사하는 도구는?")
    line = answer_log_line(result, 123.4)
    assert line.startswith("answer q_chars=26 lang=ko latency_ms=123 ")
    assert f"hits={len(result.passages)} answered=yes top_score={result.top_score:.3f} " in line
    assert line.endswith(f"generation={result.generation}") and result.generation.startswith("gen-")
    assert "컨테이너" not in line and "Skopeo" not in line
    english = answer_log_line(retriever.search("What is the capital of France?"), 5)
    assert "lang=en" in english and "answered=no" in english and "hits=0" in english


def test_verbose_and_quiet_work_before_or_after_every_command(indexed_workspace, tmp_path_factory, okdbot_cli):
    config = str(indexed_workspace / "okdbot.yaml")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    quiet = okdbot_cli("-q", "index", "--config", config, cwd=elsewhere)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert okdbot_cli("index", "--quiet", "--config", config, cwd=elsewhere).stderr == ""
    normal = okdbot_cli("query", "--config", config, SKOPEO_Q, cwd=elsewhere)
    assert normal.returncode == 0 and "answer q_chars" not in normal.stderr and SKOPEO_Q not in normal.stderr
    verbose = okdbot_cli("query", "-v", "--config", config, SKOPEO_Q, cwd=elsewhere)
    assert "okdbot: debug: answer q_chars=11 lang=ko" in verbose.stderr  # Korean about an English name
    assert f"okdbot: debug: question: {SKOPEO_Q}" in verbose.stderr  # the text only at DEBUG
    assert okdbot_cli("--verbose", "health", "--heartbeat", str(elsewhere / "none"), cwd=elsewhere).returncode == 1
    doctor = okdbot_cli("doctor", "-q", "--json", "--no-discord", "--config", config, cwd=elsewhere)
    assert json.loads(doctor.stdout)["ok"] is True and doctor.stderr == ""


@pytest.mark.parametrize("extra, needle", [
    ("discord:\n  shards: -1\n", "discord.shards"),
    ("retrieval:\n  hnsw_m: 1\n", "hnsw_m"),
    ("watch:\n  debounce_ms: -5\n", "watch.debounce_ms"),
    ("retrieval:\n  faiss: ivf\n", "retrieval.faiss"),
])
def test_scaling_and_watch_settings_are_validated(tmp_path, extra, needle):
    write_config(tmp_path, extra=extra)
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("'", "'")):
        load_settings(tmp_path / "okdbot.yaml", env={})


def test_shards_and_debounce_are_read_from_the_config(tmp_path):
    write_config(tmp_path, extra="discord:\n  shards: 4\nwatch:\n  debounce_ms: 250\n")
    settings = load_settings(tmp_path / "okdbot.yaml", env={})
    assert settings.discord.shards == 4 and settings.watch.debounce_ms == 250


def test_help_of_the_operator_commands(tmp_path):
    for args, needle in ((["doctor", "--help"], "--no-discord"), (["health", "--help"], "--max-age"),
                         (["index", "--help"], "--watch")):
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 0 and needle in proc.stdout, proc.stdout
