"""Notes in Git: links pinned to the indexed commit, remote sources fetched.

Real git, offline: a local work tree, and a local bare repository standing
for the remote a team pushes its notes to."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time

import pytest

from okdbot.build import build_index
from okdbot.retrieve import Retriever

from .conftest import BUNDLED_NOTE, CountingEmbedder, settings_for, write_config

SKOPEO_Q = "컨테이너 이미지를 저장소 간에 복사하는 도구는?"
URL = "https://github.com/team/notes/blob/main/docs/"
PINNED = re.compile(r"https://github\.com/team/notes/blob/([0-9a-f]{40})/docs/(\S+)\?plain=1#L(\d+)-L(\d+)")


def git(*args, cwd) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main",
                           *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


def prepend(note, lines: str) -> None:
    text = note.read_text(encoding="utf-8")
    first, rest = text.split("\n", 1)
    note.write_text(f"{first}\n{lines}{rest}", encoding="utf-8")


def ask(settings, analyzer, embedder, question=SKOPEO_Q):
    """The first passage answering `question`; the stand-in embedder's vectors are noise, so
    only the words decide (the dense side off)."""
    from dataclasses import replace

    build_index(settings, lambda: embedder, analyzer=analyzer, progress=False)
    retriever = Retriever(settings.index_dir, settings.retrieval, embedder, analyzer)
    retriever.settings = replace(retriever.settings, dense_weight=0.0)
    result = retriever.search(question)
    assert result.answered, question
    return result.passages[0]


@pytest.fixture
def repo(tmp_path):
    """tmp_path/notes: a Git work tree with docs/Day26.md and docs/Other.md, committed;
    okdbot.yaml indexes its docs/ folder with the GitHub url of the branch."""
    docs = tmp_path / "notes" / "docs"
    docs.mkdir(parents=True)
    shutil.copy(BUNDLED_NOTE, docs / "Day26.md")
    (docs / "Other.md").write_text("# Other\n\n- Zookeeper : 분산 코디네이션 서비스\n", encoding="utf-8")
    git("init", "-q", cwd=tmp_path / "notes")
    git("remote", "add", "origin", "git@github.com:team/notes.git", cwd=tmp_path / "notes")
    commit_all(tmp_path / "notes", "notes")
    write_config(tmp_path, notes="notes/docs", url=URL)
    return tmp_path


def test_an_answer_given_before_an_edit_still_opens_its_lines_at_its_commit(repo, analyzer):
    fake, settings, notes = CountingEmbedder(), settings_for(repo), repo / "notes"
    first = ask(settings, analyzer, fake)
    commit, path, start, end = PINNED.fullmatch(first.url).groups()
    assert commit == git("rev-parse", "HEAD", cwd=notes) and path == "Day26.md"
    quoted = [line.text for line in first.lines]

    prepend(notes / "docs" / "Day26.md", "\n> 공지: 위에 세 줄 추가\n\n")  # upstream edit: the lines shift by 3
    later_commit = commit_all(notes, "three lines on top")
    later = ask(settings, analyzer, fake)
    assert PINNED.fullmatch(later.url).groups() == (later_commit, "Day26.md", str(int(start) + 3), str(int(end) + 3))

    # the first answer's link still opens exactly the lines it quoted; the branch no longer has them there
    at_commit = git("show", f"{commit}:docs/{path}", cwd=notes).split("\n")[int(start) - 1:int(end)]
    assert at_commit == quoted and "Skopeo" in at_commit[0]
    on_branch = git("show", f"main:docs/{path}", cwd=notes).split("\n")[int(start) - 1:int(end)]
    assert on_branch != quoted


def test_a_note_with_uncommitted_edits_links_to_the_branch_and_doctor_says_so(repo, analyzer):
    from okdbot.doctor import WARN, check_links
    from okdbot.index.reader import open_index

    fake, settings, notes = CountingEmbedder(), settings_for(repo), repo / "notes"
    note = notes / "docs" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8").replace("- Skopeo :", "- Skopeo (편집 중) :"), encoding="utf-8")
    edited = ask(settings, analyzer, fake)
    assert edited.url.startswith(URL + "Day26.md?plain=1#L") and "편집 중" in edited.lines[0].text
    other = ask(settings, analyzer, fake, "Zookeeper가 뭐야?")
    assert PINNED.fullmatch(other.url)  # an unchanged note stays pinned

    checks = check_links(open_index(settings.index_dir).manifest)
    assert [(c.status, c.details) for c in checks] == [(WARN, ["Day26.md"])]
    assert "uncommitted" in checks[0].summary and "commit" in checks[0].fix


def test_notes_in_a_repository_other_than_their_url_names_are_not_pinned(repo, analyzer):
    """Like the bundled corpus/ inside okdbot's own checkout: its commits are not the notes' repository's."""
    from okdbot.doctor import INFO, check_links
    from okdbot.index.reader import open_index

    git("remote", "set-url", "origin", "https://example.org/someone/okdbot.git", cwd=repo / "notes")
    first = ask(settings_for(repo), analyzer, CountingEmbedder())
    assert first.url.startswith(URL + "Day26.md?plain=1#L")
    (check,) = check_links(open_index(repo / "index").manifest)
    assert check.status == INFO and "someone/okdbot" in check.summary


def test_links_outside_git_follow_the_branch_as_before(workspace, analyzer):
    from okdbot.doctor import INFO, check_links
    from okdbot.index.reader import open_index

    first = ask(settings_for(workspace), analyzer, CountingEmbedder())
    assert first.url.startswith("https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/Day26.md?plain=1#L")
    (check,) = check_links(open_index(workspace / "index").manifest)
    assert check.status == INFO and "not pinned" in check.summary


@pytest.fixture
def remote(tmp_path):
    """tmp_path/remote.git (bare, the team's remote) with docs/Day26.md pushed from tmp_path/work,
    and tmp_path/app/okdbot.yaml naming it as a git: source (state folder tmp_path/app/state)."""
    git("init", "-q", "--bare", str(tmp_path / "remote.git"), cwd=tmp_path)
    git("clone", "-q", str(tmp_path / "remote.git"), str(tmp_path / "work"), cwd=tmp_path)
    (tmp_path / "work" / "docs").mkdir()
    shutil.copy(BUNDLED_NOTE, tmp_path / "work" / "docs" / "Day26.md")
    commit_all(tmp_path / "work", "notes")
    git("push", "-q", "origin", "main", cwd=tmp_path / "work")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "okdbot.yaml").write_text(
        "sources:\n  - name: team\n    git: ../remote.git\n    branch: main\n    path: docs\n"
        f"    url: {URL}\ndata: state\nwatch:\n  fetch_seconds: 1\n  debounce_ms: 100\n", encoding="utf-8")
    return tmp_path


def push_edit(remote, old: str, new: str) -> str:
    note = remote / "work" / "docs" / "Day26.md"
    note.write_text(note.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    commit = commit_all(remote / "work", f"{old} → {new}")
    git("push", "-q", "origin", "main", cwd=remote / "work")
    return commit


def test_a_git_source_is_fetched_into_the_state_folder_and_updated(remote, analyzer, caplog):
    from okdbot.gitnotes import fetch_sources

    settings, fake = settings_for(remote / "app"), CountingEmbedder()
    (source,) = settings.sources
    assert source.path == (remote / "app" / "state" / "sources" / "team" / "docs").resolve()
    first = ask(settings, analyzer, fake)  # the first build clones
    assert PINNED.fullmatch(first.url).group(1) == git("rev-parse", "HEAD", cwd=remote / "work")

    pushed = push_edit(remote, "- Skopeo :", "- Skopeo (v2) :")
    assert fetch_sources(settings.sources) and fetch_sources(settings.sources) == []  # what `okdbot index` does
    second = ask(settings, analyzer, fake)
    assert "v2" in second.lines[0].text and PINNED.fullmatch(second.url).group(1) == pushed

    (remote / "remote.git").rename(remote / "gone.git")  # the remote is unreachable: the fetched notes still serve
    with caplog.at_level("WARNING", logger="okdbot"):
        assert fetch_sources(settings.sources) == []
    assert "could not update source 'team'" in caplog.text
    assert "does not appear to be a git repository" in caplog.text  # git's cause, not its closing advice
    assert "repository exists" not in caplog.text
    assert "v2" in ask(settings, analyzer, fake).lines[0].text


def test_a_git_source_that_cannot_be_fetched_is_one_line(remote):
    from .conftest import run_cli

    (remote / "remote.git").rename(remote / "gone.git")
    proc = run_cli("index", cwd=remote / "app")
    assert proc.returncode == 1 and "internal error" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("okdbot: error")]
    assert "cannot fetch the notes of source 'team'" in line and "remote.git" in line
    assert not (remote / "app" / "state" / "sources" / "team").exists()


def test_the_watcher_fetches_new_commits_and_reindexes(remote, analyzer):
    from okdbot.watch import Rebuilder, watch

    settings, fake = settings_for(remote / "app"), CountingEmbedder()
    ask(settings, analyzer, fake)
    retriever = Retriever(settings.index_dir, settings.retrieval, fake, analyzer)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, kwargs={"settings": settings, "stop_event": stop,
                                                     "rebuilder": Rebuilder(settings, fake, analyzer)})
    watcher.start()
    try:
        pushed = push_edit(remote, "- Skopeo :", "- Skopeo (pushed) :")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            passage = retriever.search(SKOPEO_Q).passages[0]
            if "pushed" in passage.lines[0].text:
                break
            time.sleep(0.2)
        assert "pushed" in passage.lines[0].text and PINNED.fullmatch(passage.url).group(1) == pushed
    finally:
        stop.set()
        watcher.join(timeout=30)
