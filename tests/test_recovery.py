"""A damaged index is reported in one line, or rebuilt, never reused.

Each case here once ended in `internal error` (exit 70), or in a build that
copied damage into the next generation (issue 12)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from .conftest import CountingEmbedder, run_cli, settings_for

SKOPEO_Q = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"


def _build(folder, embedder, analyzer, **kw):
    from okdbot.build import build_index

    return build_index(settings_for(folder), lambda: embedder, analyzer=analyzer, progress=False, **kw)


def _live(folder):
    return folder / "index" / (folder / "index" / "CURRENT").read_text().strip()


def _answers_skopeo(folder, analyzer, embedder):
    from okdbot.retrieve import Retriever

    result = Retriever(folder / "index", settings_for(folder).retrieval, embedder, analyzer).search(SKOPEO_Q)
    return result.answered and "Skopeo" in result.passages[0].lines[0].text


def one_error_line(proc, *needles, code=1):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("okdbot: error")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def built(workspace, analyzer):
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    return workspace, fake


def test_a_bad_byte_in_current_is_one_line_for_query(built):
    folder, _ = built
    (folder / "index" / "CURRENT").write_bytes(b"gen-2025\xff\xfe\n")
    one_error_line(run_cli("query", "Skopeo가 뭐야?", cwd=folder), "CURRENT", "okdbot index --full")


def test_doctor_reports_a_bad_current_as_a_failed_check(built):
    folder, _ = built
    (folder / "index" / "CURRENT").write_bytes(b"\xff")
    proc = run_cli("doctor", "--no-discord", "--json", cwd=folder)
    assert proc.returncode == 1 and "internal error" not in proc.stderr, proc.stderr
    index = [c for c in json.loads(proc.stdout)["checks"] if c["area"] == "index"]
    assert index[0]["status"] == "FAIL" and "CURRENT" in index[0]["summary"]
    assert "okdbot index --full" in index[0]["fix"]


@pytest.mark.parametrize("full", [True, False], ids=["--full", "incremental"])
def test_a_build_recovers_from_a_bad_current_and_says_so(built, analyzer, caplog, full):
    folder, fake = built
    (folder / "index" / "CURRENT").write_bytes(b"gen-\xff/../../etc\n")
    fake.embedded.clear()
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(folder, fake, analyzer, full=full)
    assert report.full and "damaged" in report.reason and "rebuilding the whole index" in caplog.text
    assert report.embedded == report.chunks and len(fake.embedded) == report.chunks
    assert _answers_skopeo(folder, analyzer, fake)


def _corrupt_vector(generation):
    with sqlite3.connect(generation / "chunks.sqlite") as db:
        h = db.execute("SELECT hash FROM chunks WHERE text LIKE '%Skopeo :%'").fetchone()[0]
        db.execute("UPDATE vectors SET vector = ? WHERE hash = ?", (np.zeros(384, np.float32).tobytes(), h))
    return h


def _corrupt_headings(generation):
    path = generation / "headings.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tokens"] = [["stale"] for _ in data["tokens"]]
    path.write_text(json.dumps(data), encoding="utf-8")


def _remove_lexical_file(generation):
    next((generation / "lexical").iterdir()).unlink()


@pytest.mark.parametrize("damage", [_corrupt_vector, _corrupt_headings, _remove_lexical_file],
                         ids=["vector", "headings", "lexical-file"])
def test_an_incremental_build_never_reuses_a_damaged_live_generation(built, analyzer, caplog, damage):
    folder, fake = built
    damage(_live(folder))
    fake.embedded.clear()
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(folder, fake, analyzer)
    assert report.full and "the live index is damaged" in report.reason, report.reason
    assert "rebuilding the whole index" in caplog.text
    assert report.reused == 0 and len(fake.embedded) == report.chunks  # nothing came from the damaged one
    from okdbot.index.reader import open_index

    reader = open_index(folder / "index")  # verifies every checksum
    with sqlite3.connect(reader.path / "chunks.sqlite") as db:
        vectors = [np.frombuffer(v, np.float32) for (v,) in db.execute("SELECT vector FROM vectors")]
    assert all(np.linalg.norm(v) == pytest.approx(1.0, abs=1e-4) for v in vectors)
    assert all(tokens != {"stale"} for tokens in reader.headings[1])
    assert _answers_skopeo(folder, analyzer, fake)


def test_an_intact_live_generation_is_still_reused(built, analyzer):
    folder, fake = built
    fake.embedded.clear()
    report = _build(folder, fake, analyzer)
    assert not report.full and report.embedded == 0 and fake.embedded == []


def test_a_stdin_line_that_is_not_utf8_gets_its_own_error_and_the_batch_goes_on(built):
    folder, _ = built
    stdin = "Skopeo가 뭐야?\n".encode() + b"caf\xe9 \xff\xfe?\n" + "로그 데이터를 수집하는 도구는?\n".encode()
    proc = run_cli("query", "--json", cwd=folder, stdin=stdin)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == 3
    assert answers[0]["answered"] and "Skopeo" in answers[0]["passages"][0]["text"]
    assert answers[1]["answered"] is False and "line 2" in answers[1]["error"] and "UTF-8" in answers[1]["error"]
    assert answers[1]["question"].startswith("caf")
    assert answers[2]["answered"] and "FluentD" in answers[2]["passages"][0]["text"]
