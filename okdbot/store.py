"""The index on disk: the only module that imports faiss.

Layout of an index folder:

    index/
      CURRENT            name of the live generation (replaced atomically)
      .lock              held by the one build running
      gen-<time>-<pid>/  one complete, immutable generation:
        manifest.json    model, dimension, chunker/lexical versions, sources,
                         per-note hashes, and a checksum of every file below
        chunks.sqlite    chunk metadata + lexical tokens + vectors (for reuse)
        dense.faiss      vectors with explicit ids (chunk row * WINDOWS + window)
        lexical/         bm25s arrays and JSON
      models/<model>-<fingerprint>-e<format>/  the query encoder exported to ONNX,
                       once per model and export format (embed.EXPORT_FORMAT);
                       shared by the generations whose manifest names it

A build writes `gen-….tmp`, renames it when complete and only then replaces
CURRENT, so a reader never sees a partial or mixed index, and a build killed
at any moment leaves the previous generation live. Readers that lose a race
with cleanup simply re-read CURRENT.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import IndexCorrupt, IndexMissing
from .lexical import LexicalIndex

FORMAT = 1
WINDOWS = 1024  # faiss id = chunk row * WINDOWS + window number
CURRENT = "CURRENT"
NOTES_KEPT = 64  # notes whose lines a reader keeps in memory (a search quotes a handful)
MODELS = "models"  # index/models/<name>/: exported query models, shared by generations
KEEP_GENERATIONS = 2  # the live one and the one before it (for readers mid-switch)

_SCHEMA = """
CREATE TABLE chunks (
  row INTEGER PRIMARY KEY, key TEXT NOT NULL, hash TEXT NOT NULL,
  source TEXT NOT NULL, file TEXT NOT NULL, heading TEXT NOT NULL,
  start_line INTEGER NOT NULL, end_line INTEGER NOT NULL, text TEXT NOT NULL,
  tokens TEXT NOT NULL
);
CREATE TABLE notes (
  source TEXT NOT NULL, file TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (source, file)
);
CREATE TABLE line_tokens (
  text TEXT PRIMARY KEY, tokens TEXT NOT NULL
);
CREATE TABLE vectors (
  hash TEXT NOT NULL, window INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL,
  PRIMARY KEY (hash, window)
);
"""


@dataclass(frozen=True)
class ChunkRecord:
    row: int
    key: str
    hash: str
    source: str
    file: str
    heading: str
    start_line: int
    end_line: int
    text: str


def current_generation(index_dir: Path) -> str | None:
    """Name of the live generation, or None when no index was published."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


@contextmanager
def build_lock(index_dir: Path):
    """Exclusive lock for the one build allowed at a time; released on any exit."""
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
        self.db = sqlite3.connect(self.path / "chunks.sqlite")
        self.db.executescript(_SCHEMA)

    def add_chunks(self, rows: list[tuple]) -> None:
        """rows: (row, key, hash, source, file, heading, start, end, text, tokens list)."""
        self.db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(*r[:9], json.dumps(r[9], ensure_ascii=False)) for r in rows])

    def add_notes(self, rows: list[tuple[str, str, str]]) -> None:
        """rows: (source name, file, full text), so quotes can show exact lines."""
        self.db.executemany("INSERT INTO notes VALUES (?,?,?)", rows)

    def add_line_tokens(self, tokens: dict[str, list[str]]) -> None:
        """Lexical tokens of each distinct note line (marks the lines of a quote that hold the question's terms)."""
        self.db.executemany("INSERT INTO line_tokens VALUES (?,?)",
                            [(text, json.dumps(t, ensure_ascii=False)) for text, t in tokens.items()])

    def add_vectors(self, rows: list[tuple[str, int, str, np.ndarray]]) -> None:
        """rows: (chunk hash, window number, window text, vector)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO vectors VALUES (?,?,?,?)",
            [(h, w, t, np.asarray(v, dtype=np.float32).tobytes()) for h, w, t, v in rows])

    def write_dense(self, ids: np.ndarray, vectors: np.ndarray, dim: int, kind: str = "flat",
                    hnsw_m: int = 32) -> None:
        import faiss

        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = max(40, 2 * hnsw_m)
        else:
            inner = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(inner)
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                               np.asarray(ids, dtype=np.int64))
        faiss.write_index(index, str(self.path / "dense.faiss"))

    def write_lexical(self, lexical: LexicalIndex, headings: list[str], heading_tokens: list[list[str]],
                      row_heading: list[int]) -> None:
        lexical.save(self.path / "lexical")
        data = {"headings": headings, "tokens": heading_tokens, "row_heading": row_heading}
        (self.path / "headings.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    def publish(self, manifest: dict) -> str:
        """Seal the generation (checksums, fsync), make it live, drop old ones."""
        self.db.commit()
        self.db.close()
        manifest = {**manifest, "format": FORMAT, "generation": self.name,
                    "checksums": _checksums(self.path)}
        _write_durably(self.path / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        _fsync_tree(self.path)
        final = self.index_dir / self.name
        os.rename(self.path, final)
        _fsync_dir(self.index_dir)
        _write_durably(self.index_dir / f"{CURRENT}.tmp", self.name + "\n")
        os.replace(self.index_dir / f"{CURRENT}.tmp", self.index_dir / CURRENT)
        _fsync_dir(self.index_dir)
        cleanup(self.index_dir)
        return self.name

    def abandon(self) -> None:
        try:
            self.db.close()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)


def cleanup(index_dir: Path) -> None:
    """Remove unfinished builds, all but the newest KEEP_GENERATIONS
    generations, and exported models no kept generation names. Call only
    while holding the build lock."""
    live = current_generation(index_dir)
    gens = sorted((p for p in index_dir.glob("gen-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
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
            manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # cannot tell what it uses: keep every model
        used.add(Path((manifest.get("query_model") or {}).get("path", "")).name)
    for path in folder.iterdir():
        if path.name not in used:
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
        _fsync_tree(tmp)
        final = models / name
        if final.exists():
            old = models / f".{name}.old-{os.getpid()}"
            os.rename(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, final)
        _fsync_dir(models)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


class IndexReader:
    """One generation, fully loaded for querying, immutable once opened.

    Everything is read (or its file kept open) in the constructor, so the
    generation's folder may be deleted by a later build while this reader
    is still answering."""

    def __init__(self, path: Path, verify: bool = True):
        self.path = path
        self.name = path.name
        try:
            self.manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"index manifest in {path} is unreadable ({exc}); run `okdbot index --full`") from None
        if self.manifest.get("format") != FORMAT:
            raise IndexCorrupt(f"index in {path} has format {self.manifest.get('format')}, "
                               f"this okdbot reads {FORMAT}; run `okdbot index --full`")
        if verify:
            self._verify()
        self._db_lock = threading.Lock()
        self._db = self._connect()
        self._notes: dict[tuple[str, str], list[str]] = {}  # (source, file) → lines; the first read leaves first
        self.chunks = self._load_chunks()
        self.lexical = self._load_lexical()
        self.dense = self._load_dense()
        self.headings = self._load_headings()

    def _load_headings(self) -> tuple[list[str], list[set[str]], np.ndarray]:
        """(distinct heading paths, their lexical tokens, heading number of each chunk row)."""
        try:
            data = json.loads((self.path / "headings.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"headings of {self.path} are unreadable ({exc}); run `okdbot index --full`") from None
        return (data["headings"], [set(t) for t in data["tokens"]],
                np.asarray(data["row_heading"], dtype=np.int64))

    @cached_property
    def heading_postings(self) -> dict[str, np.ndarray]:
        """lexical token → numbers of the heading paths holding it."""
        postings: dict[str, list[int]] = {}
        for number, tokens in enumerate(self.headings[1]):
            for token in tokens:
                postings.setdefault(token, []).append(number)
        return {token: np.asarray(numbers, dtype=np.int64) for token, numbers in postings.items()}

    @cached_property
    def section_spans(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(source, file, heading path) → first and last line of its chunks."""
        spans: dict[tuple[str, str, str], tuple[int, int]] = {}
        for c in self.chunks:
            key = (c.source, c.file, c.heading)
            start, end = spans.get(key, (c.start_line, c.end_line))
            spans[key] = (min(start, c.start_line), max(end, c.end_line))
        return spans

    def _load_lexical(self) -> LexicalIndex:
        try:
            return LexicalIndex.load(self.path / "lexical")
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise IndexCorrupt(f"lexical index in {self.path} is unreadable ({type(exc).__name__}); "
                               "run `okdbot index --full`") from None

    def _verify(self) -> None:
        for rel, expected in self.manifest.get("checksums", {}).items():
            if _sha256(self.path / rel) != expected:
                raise IndexCorrupt(f"index file {self.path / rel} is damaged (checksum mismatch); "
                                   "run `okdbot index --full` to rebuild it")

    def _connect(self) -> sqlite3.Connection:
        file = self.path / "chunks.sqlite"
        if not file.exists():
            raise FileNotFoundError(file)
        return sqlite3.connect(f"file:{file}?mode=ro&immutable=1", uri=True, check_same_thread=False)

    def _load_chunks(self) -> list[ChunkRecord]:
        try:
            rows = self._db.execute("SELECT row, key, hash, source, file, heading, start_line, end_line, text "
                                    "FROM chunks ORDER BY row").fetchall()
        except sqlite3.Error as exc:
            raise IndexCorrupt(f"chunk database in {self.path} is unreadable ({exc}); run `okdbot index --full`") from None
        return [ChunkRecord(*r) for r in rows]

    def _load_dense(self):
        import faiss

        file = self.path / "dense.faiss"
        if not file.exists():
            raise FileNotFoundError(file)
        try:
            index = faiss.read_index(str(file))
        except RuntimeError as exc:
            raise IndexCorrupt(f"vector index {file} is unreadable ({str(exc).splitlines()[0][:80]}); "
                               "run `okdbot index --full`") from None
        ef = self.manifest.get("hnsw_ef_search")
        inner = faiss.downcast_index(index.index) if hasattr(index, "index") else None
        self._hnsw_ef = None
        if ef and inner is not None and hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = int(ef)
            self._hnsw_ef = int(ef)
        return index

    def _search_params(self, k: int):
        """HNSW returns at most efSearch hits: a search for k explores at least k candidates."""
        if not self._hnsw_ef or k <= self._hnsw_ef:
            return None
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = k
        return params

    def lines(self, source: str, file: str, start: int, end: int) -> list[str]:
        """Lines start..end (1-based, inclusive) of a note as indexed."""
        return self._note_lines(source, file)[start - 1:end]

    def _note_lines(self, source: str, file: str) -> list[str]:
        """A note's lines, read once (a search quotes from a few notes, several times each)."""
        key = (source, file)
        with self._db_lock:
            found = self._notes.get(key)
            if found is None:
                row = self._db.execute("SELECT text FROM notes WHERE source=? AND file=?", key).fetchone()
                if row is None:
                    raise IndexCorrupt(f"index in {self.path} lacks the note {source}/{file}; "
                                       "run `okdbot index --full`")
                if len(self._notes) >= NOTES_KEPT:
                    self._notes.pop(next(iter(self._notes)))
                found = self._notes[key] = row[0].split("\n")
        return found

    def line_tokens(self, texts: list[str]) -> dict[str, list[str]]:
        """Stored lexical tokens of these note lines (absent ones are left out)."""
        wanted = list(dict.fromkeys(texts))
        rows = []
        try:
            with self._db_lock:
                for i in range(0, len(wanted), 500):
                    part = wanted[i:i + 500]
                    rows += self._db.execute("SELECT text, tokens FROM line_tokens WHERE text IN "
                                             f"({','.join('?' * len(part))})", part).fetchall()
        except sqlite3.OperationalError:  # a generation written before lines had stored tokens
            return {}
        return {text: json.loads(tokens) for text, tokens in rows}

    def search_dense(self, query: np.ndarray, k: int) -> dict[int, float]:
        """Best cosine per chunk row among the `k` nearest windows."""
        if self.dense.ntotal == 0:
            return {}
        import faiss

        # One query is faster on one thread: OpenMP's start-up and spinning cost far more
        # than the search (16 ms against 0.1 ms for 2k vectors on a busy 2-core machine).
        # The setting belongs to the calling thread only.
        faiss.omp_set_num_threads(1)
        k = min(k, self.dense.ntotal)
        scores, ids = self.dense.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k,
                                        params=self._search_params(k))
        best: dict[int, float] = {}
        for score, fid in zip(scores[0], ids[0]):
            if fid < 0:
                continue
            row = int(fid) // WINDOWS
            if row not in best:
                best[row] = float(score)
        return best


def live_manifest(index_dir: Path) -> dict:
    """The live generation's manifest, read without opening the index.
    Raises IndexMissing when nothing was published."""
    for _ in range(5):
        name = current_generation(index_dir)
        if name is None:
            raise IndexMissing(f"no index in {index_dir}; run `okdbot index` first")
        try:
            return json.loads((index_dir / name / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            time.sleep(0.05)
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(f"index manifest in {index_dir / name} is unreadable ({exc}); "
                               "run `okdbot index --full`") from None
    raise IndexCorrupt(f"index in {index_dir} points to a missing generation; run `okdbot index --full`")


def open_index(index_dir: Path, verify: bool = True) -> IndexReader:
    """The live generation. Raises IndexMissing when nothing was published."""
    for _ in range(5):
        name = current_generation(index_dir)
        if name is None:
            raise IndexMissing(f"no index in {index_dir}; run `okdbot index` first")
        try:
            return IndexReader(index_dir / name, verify=verify)
        except FileNotFoundError:
            time.sleep(0.05)  # a build replaced and cleaned it meanwhile: read CURRENT again
    raise IndexCorrupt(f"index in {index_dir} points to a missing generation; run `okdbot index --full`")


def _rows(generation: Path, sql: str) -> list[tuple]:
    """All rows of a read-only query on a published generation's database."""
    db = sqlite3.connect(f"file:{generation / 'chunks.sqlite'}?mode=ro&immutable=1", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def stored_vectors(generation: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """chunk hash → [(window text, vector)] of a published generation (for reuse)."""
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for h, _w, text, blob in _rows(generation, "SELECT hash, window, text, vector FROM vectors ORDER BY hash, window"):
        out.setdefault(h, []).append((text, np.frombuffer(blob, dtype=np.float32)))
    return out


def stored_heading_tokens(generation: Path) -> dict[str, list[str]]:
    """heading path → lexical tokens of a published generation (for reuse)."""
    data = json.loads((generation / "headings.json").read_text(encoding="utf-8"))
    return dict(zip(data["headings"], data["tokens"]))


def stored_line_tokens(generation: Path) -> dict[str, list[str]]:
    """note line → lexical tokens of a published generation (for reuse)."""
    try:
        return {text: json.loads(t) for text, t in _rows(generation, "SELECT text, tokens FROM line_tokens")}
    except sqlite3.OperationalError:  # a generation written before lines had stored tokens
        return {}


def stored_keys(generation: Path) -> list[str]:
    """Chunk keys of a published generation."""
    return [k for (k,) in _rows(generation, "SELECT key FROM chunks")]


def stored_tokens(generation: Path) -> dict[str, list[str]]:
    """chunk hash → lexical tokens of a published generation (for reuse)."""
    return {h: json.loads(t) for h, t in _rows(generation, "SELECT hash, tokens FROM chunks")}


def _checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): _sha256(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise IndexCorrupt(f"cannot read index file {path} ({exc.strerror}); run `okdbot index --full`") from None
    return digest.hexdigest()


def _write_durably(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        if path.is_dir():
            _fsync_dir(path)
        else:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
