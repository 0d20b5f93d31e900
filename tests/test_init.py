"""`okdbot init`: a commented okdbot.yaml for your own notes, that works as written."""

from __future__ import annotations

import shutil
import subprocess

from okdbot.build import build_index
from okdbot.config import load_settings
from okdbot.retrieve import Retriever

from .conftest import BUNDLED_NOTE, CountingEmbedder


def test_init_writes_a_config_that_indexes_and_links_the_notes(tmp_path, analyzer, okdbot_cli):
    (tmp_path / "my notes").mkdir()
    shutil.copy(BUNDLED_NOTE, tmp_path / "my notes" / "Day26.md")
    (tmp_path / "my notes" / "scan.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # index will skip it
    proc = okdbot_cli("init", "my notes", "--url", "https://github.com/me/study/blob/main/okd", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 note(s) in my notes (1 file(s) will be skipped" in proc.stdout and "okdbot query" in proc.stdout
    text = (tmp_path / "okdbot.yaml").read_text(encoding="utf-8")
    assert text.count("#") > 10  # commented for whoever edits it next
    settings = load_settings(tmp_path / "okdbot.yaml", env={})
    (source,) = settings.sources
    assert source.path == (tmp_path / "my notes").resolve() and source.url == "https://github.com/me/study/blob/main/okd/"
    fake = CountingEmbedder()
    build_index(settings, lambda: fake, analyzer=analyzer, progress=False)
    result = Retriever(settings.index_dir, settings.retrieval, fake, analyzer).search("Skopeo가 뭐야?")
    assert result.passages[0].url.startswith("https://github.com/me/study/blob/main/okd/Day26.md?plain=1#L")

    again = okdbot_cli("init", "my notes", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "okdbot.yaml").read_text(encoding="utf-8") == text


def test_init_takes_the_link_from_the_git_remote(tmp_path, okdbot_cli):
    docs = tmp_path / "repo" / "docs"
    docs.mkdir(parents=True)
    shutil.copy(BUNDLED_NOTE, docs / "Day26.md")
    for args in (["init", "-q", "-b", "main"], ["remote", "add", "origin", "git@github.com:me/study.git"]):
        subprocess.run(["git", *args], cwd=tmp_path / "repo", check=True)
    proc = okdbot_cli("init", "repo/docs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (source,) = load_settings(tmp_path / "okdbot.yaml", env={}).sources
    assert source.url == "https://github.com/me/study/blob/main/docs/"


def test_init_of_a_missing_folder_or_a_bad_url_is_one_line(tmp_path, okdbot_cli):
    missing = okdbot_cli("init", "nowhere", cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr and len(missing.stderr.splitlines()) == 1
    (tmp_path / "notes").mkdir()
    bad = okdbot_cli("init", "notes", "--url", "github.com/me/study", cwd=tmp_path)
    assert bad.returncode == 2 and "--url must be the http(s) address" in bad.stderr
    assert not (tmp_path / "okdbot.yaml").exists()


def test_a_folder_name_with_a_newline_or_tab_is_written_so_yaml_reads_it_back(tmp_path):
    from okdbot.config import load_settings
    from okdbot.scaffold import write_config

    notes = tmp_path / "no tes\nx\ty"
    notes.mkdir()
    (notes / "a.md").write_text("# a\n", encoding="utf-8")
    write_config(tmp_path / "okdbot.yaml", notes, None, False)
    assert load_settings(tmp_path / "okdbot.yaml", env={}).sources[0].path == notes.resolve()


def test_init_with_a_folder_as_its_config_says_to_name_a_file_not_to_force(tmp_path, okdbot_cli):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# a\n", encoding="utf-8")
    (tmp_path / "conf").mkdir()
    for extra in ([], ["--force"]):
        proc = okdbot_cli("init", "notes", "--config", "conf", *extra, cwd=tmp_path)
        assert proc.returncode in (1, 2) and "is a folder" in proc.stderr and "--force" not in proc.stderr, proc.stderr
