"""A damaged index is reported in one line, or rebuilt, never reused.

Each case here once ended in `internal error` (exit 70), or in a build that
copied damage into the next generation (issue 12)."""

from __future__ import annotations

import json
import os
import shutil
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
    """The index answers a Skopeo question; the stand-in embedder's vectors are noise, so
    only the words decide (the dense side off)."""
    from dataclasses import replace

    from okdbot.retrieve import Retriever

    retriever = Retriever(folder / "index", settings_for(folder).retrieval, embedder, analyzer)
    retriever.settings = replace(retriever.settings, dense_weight=0.0)
    result = retriever.search(SKOPEO_Q)
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


def test_a_bad_byte_in_current_is_one_line_for_query(built, okdbot_cli):
    folder, _ = built
    (folder / "index" / "CURRENT").write_bytes(b"gen-2025\xff\xfe\n")
    one_error_line(okdbot_cli("query", "Skopeo가 뭐야?", cwd=folder), "CURRENT", "okdbot index --full")


def test_doctor_reports_a_bad_current_as_a_failed_check(built, okdbot_cli):
    folder, _ = built
    (folder / "index" / "CURRENT").write_bytes(b"\xff")
    proc = okdbot_cli("doctor", "--no-discord", "--json", cwd=folder)
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


def _manifest_edit(edit):
    """Damage of the live generation's manifest (it holds the checksums, so none covers it)."""
    def damage(generation):
        path = generation / "manifest.json"
        path.write_text(json.dumps(edit(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    return damage


_MANIFEST_SHAPES = {
    "a-list": lambda m: [m],
    "null": lambda m: None,
    "no-sources": lambda m: {k: v for k, v in m.items() if k != "sources"},
    "no-dim": lambda m: {k: v for k, v in m.items() if k != "dim"},
    "nameless-source": lambda m: {**m, "sources": [{"path": "notes"}]},
    "notes-a-number": lambda m: {**m, "notes": 3},
    "query-model-path-a-number": lambda m: {**m, "query_model": {**m.get("query_model", {}), "path": 3}},
    "query-model-outside": lambda m: {**m, "query_model": {**m.get("query_model", {}), "path": "models/../../.."}},
    # what readers take from inside the manifest (hostile review: each crashed queries or doctor)
    "faiss-kind-unknown": lambda m: {**m, "faiss": "x"},
    "k-a-string": lambda m: {**m, "retrieval": {**m.get("retrieval", {}), "k": "x"}},
    "k-a-fraction": lambda m: {**m, "retrieval": {**m.get("retrieval", {}), "k": 1.5}},
    "weight-null": lambda m: {**m, "retrieval": {**m.get("retrieval", {}), "dense_weight": None}},
    "threshold-a-string": lambda m: {**m, "retrieval": {**m.get("retrieval", {}), "gap_threshold": "x"}},
    "glossary-groups-null": lambda m: {**m, "glossary": {**m.get("glossary", {}), "groups": None}},
    "glossary-tokens-a-number": lambda m: {**m, "glossary": {**m.get("glossary", {}), "tokens": 1}},
    "glossary-mined-a-string": lambda m: {**m, "glossary": {**m.get("glossary", {}), "mined": "x"}},
    "source-url-a-number": lambda m: {**m, "sources": [{**m["sources"][0], "url": 1}]},
    "source-pinned-null": lambda m: {**m, "sources": [{**m["sources"][0], "pinned": None}]},
    "source-link-positional": lambda m: {**m, "sources": [{**m["sources"][0], "link": "{0}"}]},
    "source-link-attribute": lambda m: {**m, "sources": [{**m["sources"][0], "link": "{base.__class__}{path}"}]},
    "source-renamed": lambda m: {**m, "sources": [{**m["sources"][0], "name": "x"}]},
    "skipped-digest-a-number": lambda m: {**m, "skipped": [{"source": "a", "path": "b", "sha256": 5}]},
}


@pytest.mark.parametrize("edit", _MANIFEST_SHAPES.values(), ids=_MANIFEST_SHAPES)
def test_a_manifest_of_the_wrong_shape_is_a_damaged_index(built, analyzer, edit, okdbot_cli):
    folder, fake = built
    _manifest_edit(edit)(_live(folder))
    for command in (["query", "Skopeo가 뭐야?"], ["query", "--index", str(folder / "index"), "Skopeo가 뭐야?"]):
        one_error_line(okdbot_cli(*command, cwd=folder), "manifest", "okdbot index --full")
    doctor = okdbot_cli("doctor", "--no-discord", "--json", cwd=folder)
    assert doctor.returncode == 1 and "internal error" not in doctor.stderr, doctor.stderr
    index = [c for c in json.loads(doctor.stdout)["checks"] if c["area"] == "index"]
    assert index[0]["status"] == "FAIL" and "okdbot index --full" in index[0]["fix"], index
    fake.embedded.clear()
    report = _build(folder, fake, analyzer)
    assert report.full and "damaged" in report.reason and len(fake.embedded) == report.chunks
    assert _answers_skopeo(folder, analyzer, fake)


def test_a_deeply_nested_manifest_is_a_damaged_index_that_a_full_build_replaces(built, analyzer, okdbot_cli):
    folder, fake = built
    (_live(folder) / "manifest.json").write_text("[" * 100_000, encoding="utf-8")
    one_error_line(okdbot_cli("query", "Skopeo가 뭐야?", cwd=folder), "manifest", "okdbot index --full")
    doctor = okdbot_cli("doctor", "--no-discord", cwd=folder)
    assert doctor.returncode == 1 and "internal error" not in doctor.stderr, doctor.stderr
    report = _build(folder, fake, analyzer)
    assert report.full and _answers_skopeo(folder, analyzer, fake)


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


def test_a_file_missing_from_the_live_generation_is_named_not_the_generation(built, okdbot_cli):
    folder, _ = built
    lexical = _live(folder) / "lexical"
    for file in lexical.iterdir():
        file.unlink()
    lexical.rmdir()
    line = one_error_line(okdbot_cli("query", "Skopeo가 뭐야?", cwd=folder), "okdbot index --full")
    assert "lexical" in line and "missing generation" not in line, line


def test_an_intact_live_generation_is_still_reused(built, analyzer):
    folder, fake = built
    fake.embedded.clear()
    report = _build(folder, fake, analyzer)
    assert not report.full and report.embedded == 0 and fake.embedded == []


def test_a_stdin_line_that_is_not_utf8_gets_its_own_error_and_the_batch_goes_on(indexed_workspace, okdbot_cli):
    folder = indexed_workspace  # indexed with the real model: `okdbot query` answers from it as a user's index
    stdin = "Skopeo가 뭐야?\n".encode() + b"caf\xe9 \xff\xfe?\n" + "로그 데이터를 수집하는 도구는?\n".encode()
    proc = okdbot_cli("query", "--json", cwd=folder, stdin=stdin)
    assert proc.returncode == 1, proc.stderr
    assert "internal error" not in proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == 3
    assert answers[0]["answered"] and "Skopeo" in answers[0]["passages"][0]["text"]
    assert answers[1]["answered"] is False and "line 2" in answers[1]["error"] and "UTF-8" in answers[1]["error"]
    assert answers[1]["question"].startswith("caf")
    assert answers[2]["answered"] and "FluentD" in answers[2]["passages"][0]["text"]


# --- the system refusing a path: one line naming it, exit 1 ---------------------------------

def test_a_read_only_index_folder_is_one_line_naming_it_and_still_answers(shared_tmp, bundled_index, analyzer):
    from .conftest import as_user, copy_of_bundled, read_only

    copy_of_bundled(bundled_index, shared_tmp, analyzer)  # indexed with the real model
    index = shared_tmp / "index"
    with open(shared_tmp / "notes" / "Day26.md", "a", encoding="utf-8") as note:
        note.write("\n- Quay : 레지스트리\n")
    read_only(shared_tmp)
    env = {"HOME": str(shared_tmp / "notes")}
    line = one_error_line(run_cli("index", cwd=shared_tmp, preexec_fn=as_user(), env=env),
                          str(index), "permission denied")
    assert "chown" in line
    answer = run_cli("query", "--json", SKOPEO_Q, cwd=shared_tmp, preexec_fn=as_user(), env=env)
    assert answer.returncode == 0, answer.stderr
    assert "Skopeo" in json.loads(answer.stdout)["passages"][0]["text"]


@pytest.mark.parametrize("command", [["index"], ["query", "Skopeo가 뭐야?"]])
def test_index_naming_a_file_is_one_line_naming_it(built, command, okdbot_cli):
    folder, _ = built
    note = folder / "notes" / "Day26.md"
    one_error_line(okdbot_cli(*command, "--index", str(note), cwd=folder), str(note), "a file is in the way")


@pytest.mark.parametrize("command", [["index"], ["query", "Skopeo가 뭐야?"]])
def test_a_folder_in_place_of_current_is_one_line_saying_to_move_it(built, command, okdbot_cli):
    folder, _ = built
    current = folder / "index" / "CURRENT"
    current.unlink()
    current.mkdir()
    one_error_line(okdbot_cli(*command, cwd=folder), str(current), "a folder is in the way", "remove or rename it")


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system (tmpfs) at tmp_path/disk; skipped where mounting is not allowed."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a small file system here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_is_one_error_naming_the_index_and_the_live_index_stays(small_disk, analyzer):
    import os

    from okdbot.errors import OkdbotError

    from .conftest import BUNDLED_NOTE, write_config

    (small_disk / "notes").mkdir()
    (small_disk / "notes" / "Day26.md").write_bytes(BUNDLED_NOTE.read_bytes())
    write_config(small_disk)
    fake = CountingEmbedder()
    _build(small_disk, fake, analyzer)
    live = (small_disk / "index" / "CURRENT").read_text()
    stat = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 8192))
    with pytest.raises(Exception) as err:
        _build(small_disk, fake, analyzer, full=True)
    assert isinstance(err.value, OkdbotError), repr(err.value)  # one line from the CLI, not "internal error"
    message = str(err.value)
    assert str(small_disk / "index") in message and "disk is full" in message and "\n" not in message
    assert (small_disk / "index" / "CURRENT").read_text() == live
    assert not list((small_disk / "index").glob("*.tmp"))  # the unfinished generation was removed
    (small_disk / "filler").unlink()
    assert _answers_skopeo(small_disk, analyzer, fake)


# --- hostile or unusual notes: skipped with a warning that says what to do, the rest indexed ---

def test_a_symlink_out_of_the_source_folder_is_skipped_with_a_warning(workspace, analyzer, tmp_path_factory, caplog,
                                                                       okdbot_cli):
    secret = tmp_path_factory.mktemp("elsewhere") / "secret.md"
    secret.write_text("# Secret\n\n- password : hunter2-do-not-quote\n", encoding="utf-8")
    (workspace / "notes" / "leak.md").symlink_to(secret)
    (workspace / "notes" / "inside.md").symlink_to(workspace / "notes" / "Day26.md")  # inside: fine
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, CountingEmbedder(), analyzer)
    assert "leak.md" in caplog.text and "outside the source folder" in caplog.text
    from okdbot.index.reader import open_index

    reader = open_index(workspace / "index")
    assert not any("hunter2" in c.text for c in reader.chunks)
    assert {c.file for c in reader.chunks} == {"Day26.md", "inside.md"} and report.skipped == 1
    doctor = okdbot_cli("doctor", "--no-discord", "--json", cwd=workspace)
    corpus = [c for c in json.loads(doctor.stdout)["checks"] if c["area"] == "corpus" and c["status"] == "FAIL"]
    assert corpus and any("leak.md" in d and "outside" in d for d in corpus[0]["details"])


class WindowedEmbedder(CountingEmbedder):
    """The stand-in embedder with the real model's windows (its tokenizer decides how
    many windows a block needs); records every text it was asked to encode."""

    def __init__(self, model):
        super().__init__()
        self.windows = model.windows


def test_an_oversized_note_is_skipped_before_anything_is_embedded_and_the_rest_is_indexed(
        workspace, analyzer, model, caplog):
    # one 1.2 MB line of 300,000 syllables: about 1,100 windows of the real tokenizer, over the 1,024 a block
    # may have (as the 1.9 MB line of the issue is)
    dump = " ".join(chr(0xAC00 + (i * 7) % 11172) for i in range(300_000))
    (workspace / "notes" / "dump.md").write_text("# Dump\n\n" + dump + "\n", encoding="utf-8")
    fake = WindowedEmbedder(model)
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, fake, analyzer)
    assert "dump.md" in caplog.text and "too long to index" in caplog.text and "split it" in caplog.text
    assert not any(dump[:50] in text for text in fake.embedded)  # never embedded
    assert report.files == 1 and report.skipped == 1 and report.embedded == report.chunks > 40
    assert _answers_skopeo(workspace, analyzer, fake)
    from okdbot.freshness import check_freshness

    assert check_freshness(settings_for(workspace)).fresh  # skipped as it is: no endless re-indexing


def test_a_huge_file_is_skipped_unread(workspace, analyzer, caplog):
    (workspace / "notes" / "export.md").write_bytes(b"- x\n" * 2_000_000)  # 8 MB
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, CountingEmbedder(), analyzer)
    assert "export.md" in caplog.text and "too large" in caplog.text and report.files == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_note_is_named_with_re_save_as_utf8(workspace, encoding, okdbot_cli):
    (workspace / "notes" / "windows.md").write_bytes("# 메모\n\n- Windows note\n".encode(encoding))
    proc = okdbot_cli("doctor", "--no-discord", "--json", cwd=workspace)
    corpus = [c for c in json.loads(proc.stdout)["checks"] if c["area"] == "corpus" and c["status"] == "FAIL"]
    assert corpus and corpus[0]["details"] == ["notes/windows.md: UTF-16 text, not UTF-8; re-save it as UTF-8"]


def test_notes_saved_in_nfd_hangul_are_found_by_korean_questions(workspace, analyzer):
    import unicodedata

    note = workspace / "notes" / "Day26.md"
    note.write_text(unicodedata.normalize("NFD", note.read_text(encoding="utf-8")), encoding="utf-8")  # as macOS saves
    fake = CountingEmbedder()
    _build(workspace, fake, analyzer)
    assert _answers_skopeo(workspace, analyzer, fake)


def test_synonyms_written_in_nfd_are_read_as_nfc(tmp_path):
    import unicodedata

    from okdbot.synonyms import load_synonyms

    path = tmp_path / "synonyms.yaml"
    path.write_text(unicodedata.normalize("NFD", "- [registry, 레지스트리, 저장소]\n"), encoding="utf-8")
    (group,) = load_synonyms(path)
    assert group.terms == ("registry", "레지스트리", "저장소")


def test_a_note_whose_name_is_not_utf8_is_skipped_with_a_warning(workspace, analyzer, caplog, okdbot_cli):
    import os

    with open(os.fsencode(workspace / "notes") + b"/caf\xe9.md", "wb") as handle:
        handle.write(b"# Latin-1 name\n\n- a note saved under a Latin-1 file name\n")
    with caplog.at_level("WARNING", logger="okdbot"):
        report = _build(workspace, CountingEmbedder(), analyzer)
    assert "caf" in caplog.text and "name is not UTF-8" in caplog.text and "rename it" in caplog.text
    assert report.files == 1 and report.skipped == 1
    from okdbot.freshness import check_freshness

    assert check_freshness(settings_for(workspace)).fresh  # skipped as it is: no endless re-indexing
    doctor = okdbot_cli("doctor", "--no-discord", "--json", cwd=workspace)
    corpus = [c for c in json.loads(doctor.stdout)["checks"] if c["area"] == "corpus" and c["status"] == "FAIL"]
    assert corpus and any("name is not UTF-8" in d for d in corpus[0]["details"]), doctor.stdout


def test_a_build_removes_only_its_own_generations_and_exports(workspace, analyzer):
    """An index folder given by mistake as a folder of the user's (`--index .`) keeps their models/."""
    theirs = [workspace / "index" / "models" / "my-model", workspace / "index" / "gen-docs"]
    for folder in theirs:
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(b"\x00" * 16)
    for full in (False, True, False):
        _build(workspace, CountingEmbedder(), analyzer, full=full)
    assert all((folder / "weights.bin").read_bytes() == b"\x00" * 16 for folder in theirs)


def test_a_file_in_place_of_the_models_folder_is_one_line_and_the_index_stays(built, okdbot_cli):
    """`okdbot index` used to warn "could not export the model", publish an index without its
    query model and exit 0; every question then asked to run `okdbot index` again."""
    folder, _ = built
    models = folder / "index" / "models"
    live = (folder / "index" / "CURRENT").read_text()
    if models.exists():
        shutil.move(models, folder / "models.moved")
    models.write_text("not a folder")
    one_error_line(okdbot_cli("index", "--full", cwd=folder), str(models), "a file is in the way", "remove or rename it")
    assert (folder / "index" / "CURRENT").read_text() == live


def test_a_refused_stdin_question_never_echoes_part_of_the_token(indexed_workspace, okdbot_cli):
    """--json echoes a refused question's first 200 characters: a cut through the token
    must not leave most of it for the masking to miss."""
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    stdin = ("x" * 129 + token + " y" * 500 + "\n").encode()
    proc = okdbot_cli("query", "--json", cwd=indexed_workspace, stdin=stdin, env={"DISCORD_TOKEN": token})
    (answer,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert answer["answered"] is False and "characters long" in answer["error"]
    assert token[:12] not in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_a_current_that_is_no_regular_file_is_a_damaged_index_not_a_hang(built, kind, okdbot_cli):
    """CURRENT linked to /dev/zero was read until memory ran out; to a pipe, for ever."""
    folder, _ = built
    current = folder / "index" / "CURRENT"
    current.unlink()
    if kind == "device":
        current.symlink_to("/dev/zero")
    else:
        os.mkfifo(folder / "index" / "fifo")
        current.symlink_to("fifo")
    one_error_line(okdbot_cli("query", "Skopeo가 뭐야?", cwd=folder), "CURRENT", "okdbot index --full")


def test_a_synonyms_file_that_is_a_device_is_one_line_not_a_memory_blow_up(indexed_workspace, okdbot_cli):
    workspace = indexed_workspace  # doctor reads the synonyms file to tell whether the index is fresh
    with open(workspace / "okdbot.yaml", "a", encoding="utf-8") as config:
        config.write("retrieval:\n  synonyms: /dev/zero\n")
    for command in (["index"], ["doctor", "--no-discord"]):
        proc = okdbot_cli(*command, cwd=workspace)
        said = proc.stdout + proc.stderr  # doctor reports on stdout
        assert proc.returncode in (1, 2) and "internal error" not in said, said
        assert "/dev/zero" in said and "regular file" in said, said


def test_a_huge_stdin_line_is_refused_without_reading_it_whole(indexed_workspace, okdbot_cli):
    stdin = ("가" * 2_000_000 + "\nSkopeo가 뭐야?\n").encode()
    proc = okdbot_cli("query", "--json", cwd=indexed_workspace, stdin=stdin)
    first, second = [json.loads(line) for line in proc.stdout.splitlines()]
    assert first["answered"] is False and "at most 1000" in first["error"] and len(first["question"]) <= 200
    assert second["answered"] and proc.returncode == 1


def test_what_a_build_may_write_is_never_called_damaged(built):
    """A source named with "/", a url derived from a git remote (a folder with a space),
    a large dense_candidates: all written by normal builds, all must be readable."""
    from okdbot.index.manifest import content_problem

    folder, _ = built
    manifest = json.loads((_live(folder) / "manifest.json").read_text(encoding="utf-8"))
    source = manifest["sources"][0]
    renamed = {**source, "name": "team/notes", "url": "https://github.com/o/r/blob/main/My Notes/"}
    manifest = {**manifest, "sources": [renamed],
                "notes": {f"team/notes/{key.split('/', 1)[1]}": v for key, v in manifest.get("notes", {}).items()},
                "retrieval": {**manifest.get("retrieval", {}), "dense_candidates": 5_000_000}}
    assert content_problem(manifest) == ""


def test_an_over_long_stdin_line_never_echoes_part_of_the_token(indexed_workspace, okdbot_cli):
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GAbCdE.abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    stdin = ("x" * 180 + " " + token + " " + "y" * 70_000 + "\n").encode()
    proc = okdbot_cli("query", "--json", cwd=indexed_workspace, stdin=stdin, env={"DISCORD_TOKEN": token})
    assert token[:12] not in proc.stdout + proc.stderr and '"answered": false' in proc.stdout
