"""Generations: how a new index is written beside the live one and published.

A build writes `gen-….tmp`, renames it when complete and only then replaces
CURRENT, so a reader never sees a partial or mixed index, and a build killed
at any moment leaves the previous generation live. Readers that lose a race
with cleanup simply re-read CURRENT.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..errors import IndexCorrupt, storage_error
from .files import MANIFEST, checksums, fsync_dir, fsync_tree, special_file, write_durably

FORMAT = 1
CURRENT = "CURRENT"
HEADINGS = "headings.json"
LEXICAL = "lexical"
MODELS = "models"  # index/models/<name>/: exported query models, shared by generations
KEEP_GENERATIONS = 2  # the live one and the one before it (for readers mid-switch)
_NAME = re.compile(r"gen-\d{8}T\d{6}-\d+-\d{6}")  # what GenerationWriter names a generation


_CURRENT_MAX = 256  # a generation's name is far shorter: more is not a name


def read_current(index_dir: Path) -> tuple[str | None, str]:
    """(name of the live generation or None when none was published, "") or,
    when CURRENT is damaged, (None, what is wrong with it)."""
    path = index_dir / CURRENT
    try:
        if special_file(path):
            return None, f"{path} is not a regular file"
        with open(path, "rb") as handle:
            data = handle.read(_CURRENT_MAX)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:  # the index folder is a file, or unreadable
        raise storage_error(exc, "read the index in", index_dir) from None
    name = data.decode("utf-8", errors="replace").strip()
    if not name:
        return None, ""
    if not _NAME.fullmatch(name):
        return None, f"{index_dir / CURRENT} does not name a generation ({name[:40]!r})"
    return name, ""


def current_generation(index_dir: Path) -> str | None:
    """Name of the live generation, or None when no index was published.
    IndexCorrupt when CURRENT is damaged."""
    name, problem = read_current(index_dir)
    if problem:
        raise IndexCorrupt(f"the index is damaged: {problem}; run `okdbot index --full` to rebuild it")
    return name


@contextmanager
def build_lock(index_dir: Path):
    """Exclusive lock for the one writer of a folder at a time (the build of an index, the
    fetch of a git source's clone); released on any exit."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class GenerationWriter:
    """Writes one new generation beside the live one; `publish` switches to it."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.name = f"gen-{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
        self.path = index_dir / f"{self.name}.tmp"
        self.path.mkdir(parents=True)
        from .chunks import DATABASE, ChunkWriter  # numpy: not for readers of CURRENT

        try:
            self.chunks = ChunkWriter(self.path / DATABASE)
        except BaseException:  # e.g. a full disk: leave nothing behind
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def add_chunks(self, rows: list[tuple]) -> None:
        """rows: (row, key, hash, source, file, heading, start, end, text, tokens list)."""
        self.chunks.add_chunks(rows)

    def add_notes(self, rows: list[tuple[str, str, str]]) -> None:
        """rows: (source name, file, full text), so quotes can show exact lines."""
        self.chunks.add_notes(rows)

    def add_line_tokens(self, tokens: dict[str, list[str]]) -> None:
        """Lexical tokens of each distinct note line."""
        self.chunks.add_line_tokens(tokens)

    def add_vectors(self, rows: list[tuple]) -> None:
        """rows: (chunk hash, window number, window text, vector), kept for reuse."""
        self.chunks.add_vectors(rows)

    def write_dense(self, ids, vectors, dim: int, kind: str = "flat", hnsw_m: int = 32) -> None:
        """The vector index of this generation: `vectors` (rows) under `ids`."""
        from . import dense

        options = {"m": hnsw_m} if kind == "hnsw" else {}
        index = dense.create(kind, dim, **options)
        index.index(ids, vectors)
        index.save(self.path / dense.FILE)

    def write_lexical(self, lexical, headings: list[str], heading_tokens: list[list[str]],
                      row_heading: list[int]) -> None:
        """The BM25 index, and the heading paths with their tokens and each row's heading."""
        lexical.save(self.path / LEXICAL)
        data = {"headings": headings, "tokens": heading_tokens, "row_heading": row_heading}
        (self.path / HEADINGS).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def publish(self, manifest: dict) -> str:
        """Seal the generation (checksums, fsync), make it live, drop old ones."""
        self.chunks.close()
        manifest = {**manifest, "format": FORMAT, "generation": self.name, "checksums": checksums(self.path)}
        write_durably(self.path / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
        fsync_tree(self.path)
        final = self.index_dir / self.name
        os.rename(self.path, final)
        fsync_dir(self.index_dir)
        write_durably(self.index_dir / f"{CURRENT}.tmp", self.name + "\n")
        os.replace(self.index_dir / f"{CURRENT}.tmp", self.index_dir / CURRENT)
        fsync_dir(self.index_dir)
        cleanup(self.index_dir)
        return self.name

    def abandon(self) -> None:
        try:
            self.chunks.close(commit=False)
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


def cleanup(index_dir: Path) -> None:
    """Remove unfinished builds, all but the newest KEEP_GENERATIONS
    generations, and exported models no kept generation names. Call only
    while holding the build lock."""
    live, _ = read_current(index_dir)
    gens = sorted((p for p in index_dir.glob("gen-*") if p.is_dir() and _NAME.fullmatch(p.name.removesuffix(".tmp"))),
                  key=lambda p: p.stat().st_mtime)  # only okdbot's: a folder of the user's may be called gen-…
    finished = [p for p in gens if not p.name.endswith(".tmp")]
    keep = {p.name for p in finished[-KEEP_GENERATIONS:]} | {live}
    for path in gens:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    _cleanup_models(index_dir, [index_dir / name for name in keep if name])


def _cleanup_models(index_dir: Path, generations: list[Path]) -> None:
    folder = index_dir / MODELS
    if not folder.is_dir():
        return
    used = set()
    for generation in generations:
        try:
            manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return  # cannot tell what it uses: keep every model
        record = (manifest.get("query_model") or {}) if isinstance(manifest, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("path", ""), str):
            return  # a damaged manifest (a generation kept for readers mid-switch): keep every model
        used.add(Path(record.get("path", "")).name)
    for path in folder.iterdir():  # only okdbot's own: an export, or one a build left unfinished
        ours = (path / "export.json").is_file() or re.fullmatch(r"\..+\.(tmp|old)-\d+", path.name)
        if path.name not in used and path.is_dir() and ours:
            shutil.rmtree(path, ignore_errors=True)


def publish_model(index_dir: Path, name: str, write: Callable[[Path], dict]) -> dict:
    """Create index/models/<name> atomically: `write(folder)` fills a temporary
    folder that then replaces any previous one. Returns what `write` returns.
    Call only while holding the build lock."""
    models = index_dir / MODELS
    models.mkdir(parents=True, exist_ok=True)
    tmp = models / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        result = write(tmp)
        fsync_tree(tmp)
        final = models / name
        if final.exists():
            old = models / f".{name}.old-{os.getpid()}"
            os.rename(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, final)
        fsync_dir(models)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
