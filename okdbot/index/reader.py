"""One published generation, opened for queries."""

from __future__ import annotations

import json
import time
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import IndexCorrupt, IndexMissing
from . import dense
from .chunks import DATABASE, WINDOWS, ChunkReader, ChunkRecord
from .files import MANIFEST, sha256
from .generations import FORMAT, HEADINGS, LEXICAL, MODELS, current_generation
from .manifest import content_problem


class IndexReader:
    """One generation, fully loaded for querying, immutable once opened.

    Everything is read (or its file kept open) in the constructor, so the
    generation's folder may be deleted by a later build while this reader
    is still answering."""

    def __init__(self, path: Path, verify: bool = True):
        self.path = path
        self.name = path.name
        self.manifest = read_manifest(path)
        if self.manifest.get("format") != FORMAT:
            raise IndexCorrupt(f"index in {path} has format {self.manifest.get('format')}, "
                               f"this okdbot reads {FORMAT}; run `okdbot index --full`")
        if verify:
            self._verify()
        self._db = ChunkReader(path)
        self.chunks: list[ChunkRecord] = self._db.chunks()
        self.lexical = self._load_lexical()
        self.dense = self._load_dense()
        self.headings = self._load_headings()

    def _verify(self) -> None:
        problem = damaged_file(self.path, self.manifest)
        if problem:
            raise IndexCorrupt(f"index file {problem} is damaged (checksum mismatch); "
                               "run `okdbot index --full` to rebuild it")

    def _load_headings(self) -> tuple[list[str], list[set[str]], np.ndarray]:
        """(distinct heading paths, their lexical tokens, heading number of each chunk row)."""
        data = _read_json(self.path / HEADINGS, "headings")
        return (data["headings"], [set(t) for t in data["tokens"]],
                np.asarray(data["row_heading"], dtype=np.int64))

    def _load_lexical(self):
        from ..lexical import LexicalIndex

        try:
            return LexicalIndex.load(self.path / LEXICAL)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise IndexCorrupt(f"lexical index in {self.path} is unreadable ({type(exc).__name__}); "
                               "run `okdbot index --full`") from None

    def _load_dense(self) -> dense.DenseIndex:
        kind = self.manifest.get("faiss", "flat")
        ef = self.manifest.get("hnsw_ef_search")
        options = {"ef_search": int(ef)} if kind == "hnsw" and ef else {}
        return dense.load(self.path / dense.FILE, kind, **options)

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

    def lines(self, source: str, file: str, start: int, end: int) -> list[str]:
        """Lines start..end (1-based, inclusive) of a note as indexed."""
        return self._db.note_lines(source, file)[start - 1:end]

    def line_tokens(self, texts: list[str]) -> dict[str, list[str]]:
        """Stored lexical tokens of these note lines (absent ones are left out)."""
        return self._db.line_tokens(texts)

    def search_dense(self, query: np.ndarray, k: int) -> dict[int, float]:
        """Best cosine per chunk row among the `k` nearest windows."""
        best: dict[int, float] = {}
        for fid, score in self.dense.search(query.reshape(1, -1), k)[0]:
            row = fid // WINDOWS
            if row not in best:
                best[row] = score
        return best


def damaged_file(generation: Path, manifest: dict) -> Path | None:
    """The first file of a generation that is missing or differs from its
    checksum in the manifest (the manifest must list the database), or None."""
    listed = manifest.get("checksums") or {}
    if DATABASE not in listed:
        return generation / MANIFEST
    for rel, expected in listed.items():
        if sha256(generation / rel) != expected:  # FileNotFoundError: a build removed it meanwhile
            return generation / rel
    return None


def generation_damage(generation: Path) -> str:
    """Why a published generation cannot be trusted for reuse ("" when its
    manifest reads, its format is this okdbot's and every file matches its checksum)."""
    try:
        manifest = read_manifest(generation)
    except FileNotFoundError:
        return f"{generation / MANIFEST} is missing"
    except IndexCorrupt:
        return f"{generation / MANIFEST} is unreadable"
    if manifest.get("format") != FORMAT:
        return f"{generation.name} has format {manifest.get('format')}, this okdbot writes {FORMAT}"
    try:
        bad = damaged_file(generation, manifest)
    except FileNotFoundError as exc:
        return f"{exc.filename} is missing"
    except IndexCorrupt as exc:
        return str(exc).split(";")[0]
    return f"{bad} does not match its checksum" if bad else ""


def read_manifest(generation: Path) -> dict:
    """A generation's manifest; FileNotFoundError when it is gone, IndexCorrupt when
    unreadable or not of the shape a build writes (no checksum covers the manifest itself)."""
    try:
        manifest = json.loads((generation / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep to read
        raise IndexCorrupt(f"index manifest in {generation} is unreadable ({type(exc).__name__}: "
                           f"{str(exc)[:200]}); run `okdbot index --full`") from None
    problem = _shape_problem(manifest)
    if problem:
        raise IndexCorrupt(f"index manifest in {generation} is unreadable ({problem}); run `okdbot index --full`")
    return manifest


# What readers take from a manifest of this format without a default, and the type of
# what they may take with one: a manifest lacking the one or holding another type is damaged.
_REQUIRED = {"sources": list, "dim": int, "max_tokens": int, "checksums": dict}
_OPTIONAL = {"model": str, "model_name": str, "notes": dict, "skipped": list, "retrieval": dict, "glossary": dict,
             "query_model": dict, "counts": dict, "faiss": str, "hnsw_m": int, "hnsw_ef_search": int}


def _shape_problem(manifest) -> str:
    """What is wrong with the shape of a manifest ("" when nothing). One of another
    format is left to the callers, which name both formats."""
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__} instead of an object"
    if manifest.get("format") != FORMAT:
        return ""
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            return f"'{key}' is missing or not a {kind.__name__}"
    for key, kind in _OPTIONAL.items():
        if key in manifest and not isinstance(manifest[key], kind):
            return f"'{key}' is not a {kind.__name__}"
    record = manifest.get("query_model") or {}
    folder = record.get("path")
    if record and not (isinstance(folder, str) and folder.startswith(f"{MODELS}/")
                       and folder[len(MODELS) + 1:] not in ("", ".", "..") and folder.count("/") == 1
                       and isinstance(record.get("files", {}), dict)):
        return f"'query_model' does not name a folder of {MODELS}/ and its files"
    for key, names in (("sources", ("name", "path")), ("skipped", ("source", "path"))):
        for item in manifest.get(key, []):
            if not isinstance(item, dict) or not all(isinstance(item.get(name), str) for name in names):
                return f"an item of '{key}' lacks its {' or '.join(names)}"
    return content_problem(manifest)


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise IndexCorrupt(f"{what} of {path.parent} are unreadable ({type(exc).__name__}); "
                           "run `okdbot index --full`") from None


def stored_heading_tokens(generation: Path) -> dict[str, list[str]]:
    """heading path → lexical tokens of a published generation (for reuse)."""
    data = _read_json(generation / HEADINGS, "headings")
    return dict(zip(data["headings"], data["tokens"]))


def live_manifest(index_dir: Path) -> dict:
    """The live generation's manifest, read without opening the index.
    Raises IndexMissing when nothing was published."""
    for _ in range(5):
        name = current_generation(index_dir)
        if name is None:
            raise IndexMissing(f"no index in {index_dir}; run `okdbot index` first")
        try:
            return read_manifest(index_dir / name)
        except FileNotFoundError:
            time.sleep(0.05)
    raise IndexCorrupt(f"index in {index_dir} points to a missing generation; run `okdbot index --full`")


def open_index(index_dir: Path, verify: bool = True) -> IndexReader:
    """The live generation. Raises IndexMissing when nothing was published."""
    for _ in range(5):
        name = current_generation(index_dir)
        if name is None:
            raise IndexMissing(f"no index in {index_dir}; run `okdbot index` first")
        try:
            return IndexReader(index_dir / name, verify=verify)
        except FileNotFoundError as exc:
            missing = exc.filename or index_dir / name
            time.sleep(0.05)  # a build replaced and cleaned it meanwhile: read CURRENT again
    if (index_dir / name).is_dir():  # still live, so no build removed it: the generation lost a file
        raise IndexCorrupt(f"index file {missing} is missing; run `okdbot index --full` to rebuild the index")
    raise IndexCorrupt(f"index in {index_dir} points to a missing generation; run `okdbot index --full`")
