"""The chunk database of a generation (chunks.sqlite, stdlib SQLite).

Tables: `chunks` (one row per chunk: identity, hash, place, text, lexical
tokens), `notes` (each note's full text, so quotes show exact lines),
`line_tokens` (lexical tokens of each distinct note line) and `vectors`
(each chunk hash's window vectors, kept for reuse by the next build).
A published database is opened read-only and immutable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexCorrupt

DATABASE = "chunks.sqlite"
WINDOWS = 1024  # dense id = chunk row * WINDOWS + window number
NOTES_KEPT = 64  # notes whose lines a reader keeps in memory (a search quotes a handful)

SCHEMA = """
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


class ChunkWriter:
    """Fills a new generation's database; `close` commits it."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

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

    def close(self, commit: bool = True) -> None:
        if commit:
            self.db.commit()
        self.db.close()


def connect_readonly(path: Path, threads: bool = False) -> sqlite3.Connection:
    """A published database, read-only and immutable (no locks, no journal)."""
    if not path.exists():
        raise FileNotFoundError(path)
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=not threads)


class ChunkReader:
    """Reads of a published database for queries. Thread-safe."""

    def __init__(self, generation: Path):
        self.generation = generation
        self._lock = threading.Lock()
        self._db = connect_readonly(generation / DATABASE, threads=True)
        self._notes: dict[tuple[str, str], list[str]] = {}  # (source, file) → lines; the first read leaves first

    def chunks(self) -> list[ChunkRecord]:
        try:
            rows = self._db.execute("SELECT row, key, hash, source, file, heading, start_line, end_line, text "
                                    "FROM chunks ORDER BY row").fetchall()
        except sqlite3.Error as exc:
            raise IndexCorrupt(f"chunk database in {self.generation} is unreadable ({exc}); "
                               "run `okdbot index --full`") from None
        return [ChunkRecord(*r) for r in rows]

    def note_lines(self, source: str, file: str) -> list[str]:
        """A note's lines, read once (a search quotes from a few notes, several times each)."""
        key = (source, file)
        with self._lock:
            found = self._notes.get(key)
            if found is None:
                row = self._db.execute("SELECT text FROM notes WHERE source=? AND file=?", key).fetchone()
                if row is None:
                    raise IndexCorrupt(f"index in {self.generation} lacks the note {source}/{file}; "
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
            with self._lock:
                for i in range(0, len(wanted), 500):
                    part = wanted[i:i + 500]
                    rows += self._db.execute("SELECT text, tokens FROM line_tokens WHERE text IN "
                                             f"({','.join('?' * len(part))})", part).fetchall()
        except sqlite3.OperationalError:  # a generation written before lines had stored tokens
            return {}
        return {text: json.loads(tokens) for text, tokens in rows}


def _rows(generation: Path, sql: str) -> list[tuple]:
    """All rows of a read-only query on a published generation's database."""
    db = connect_readonly(generation / DATABASE)
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


def stored_chunks(generation: Path) -> dict[tuple[str, str], list[tuple]]:
    """(source, file) → its chunks' (key, heading, start line, end line, text), in order, of a
    published generation: an unchanged note need not be chunked again."""
    out: dict[tuple[str, str], list[tuple]] = {}
    for source, file, key, heading, start, end, text in _rows(
            generation, "SELECT source, file, key, heading, start_line, end_line, text FROM chunks ORDER BY row"):
        out.setdefault((source, file), []).append((key, heading, start, end, text))
    return out

