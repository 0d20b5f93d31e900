"""Incremental index build: reuse what is unchanged, embed the rest, drop the gone.

Each chunk's vectors are looked up by its content hash (which covers the
heading path and the exact text) in the live generation; only chunks whose
(key, hash) pair is new are embedded. Lexical tokens are reused the same way.
The result is written as a new generation and published atomically.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .chunk import CHUNKER_VERSION, Chunk, chunk_note
from .config import Settings, Source
from .embed import Embedder, backend_for, model_signature
from .embed.exports import build_embedder, ensure_export
from .errors import CorpusError, IndexCorrupt, storage_error
from .gitnotes import fetch_sources, pins
from .glossary import Glossary, build_glossary, read_glossary_file
from .ingest import Skipped, read_notes
from .lexical import LEXICAL_VERSION, Analyzer, LexicalIndex
from .index.chunks import (DATABASE, WINDOWS, stored_chunks, stored_keys, stored_line_tokens, stored_tokens,
                           stored_vectors)
from .index.generations import FORMAT as GENERATION_FORMAT
from .index.generations import GenerationWriter, build_lock, cleanup, read_current
from .index.reader import generation_damage, read_manifest, stored_heading_tokens

log = logging.getLogger("okdbot")

@dataclass
class BuildReport:
    files: int
    chunks: int
    embedded: int
    reused: int
    removed: int
    seconds: float
    index: str
    model: str
    generation: str = ""
    full: bool = False
    reason: str = ""
    skipped: int = 0
    glossary: int = 0  # glosses mined from the notes (`지표(metric)`), added to the synonyms
    unchanged: bool = False  # nothing to change: the live generation stays, no new one is written

    def public(self) -> dict:
        """The documented `okdbot index --json` object."""
        keys = ("files", "chunks", "embedded", "reused", "removed", "seconds", "index", "model", "glossary",
                "unchanged")
        return {k: v for k, v in asdict(self).items() if k in keys}


def build_index(
    settings: Settings,
    make_embedder: Callable[[], Embedder] | None = None,
    analyzer: Analyzer | None = None,
    full: bool = False,
    progress: bool | None = None,
) -> BuildReport:
    """Build or update the index of `settings.sources` in `settings.index_dir`.

    `make_embedder` makes the document embedder when something must be embedded
    (default: the configured model's backend; tests pass a counting stand-in)."""
    started = time.perf_counter()
    synonyms_file, synonyms = read_glossary_file(settings.retrieval.synonyms)  # a bad file fails before any work
    fetch_sources(settings.sources, update=False)  # a git: source's first clone
    notes, skipped = read_notes(settings.sources)
    signature = model_signature(settings.model)
    analyzer = analyzer or Analyzer()
    index_dir = settings.index_dir
    with _storage(index_dir), build_lock(index_dir):
        old = _reuse(index_dir, signature, full)
        chunks = _chunks(notes, old)
        vectors = stored_vectors(old.path) if old.vectors else {}
        tokens = stored_tokens(old.path) if old.tokens else {}
        known_lines = stored_line_tokens(old.path) if old.tokens else {}
        known_headings = stored_heading_tokens(old.path) if old.tokens else {}
        # Kiwi takes a second to load: it analyses the new texts in a child process meanwhile
        analyzer.prefetch([c.embed_text for c in chunks if c.hash not in tokens] + _new_lines(notes, known_lines)
                          + [c.heading for c in chunks if c.heading not in known_headings])

        todo = list({c.hash: c for c in chunks if c.hash not in vectors}.values())
        backend = backend_for(settings.model)
        query_model = None if backend.exports_from_embedder else ensure_export(settings)
        make_embedder = make_embedder or partial(build_embedder, settings, query_model)
        embedder = make_embedder() if todo or not old.vectors else None
        windows = {c.hash: embedder.windows(c.embed_text) for c in todo}
        notes, chunks, todo = _without_oversized(notes, chunks, todo, windows, skipped)
        if todo:
            vectors.update(_embed(embedder, todo, windows, _show_progress(progress)))
        missing = list({c.hash: c for c in chunks if c.hash not in tokens}.values())
        if missing:
            tokens.update(zip((c.hash for c in missing), analyzer.tokens_many([c.embed_text for c in missing])))

        line_tokens = _line_tokens(notes, known_lines, analyzer)
        glossary = build_glossary(synonyms, (n.text for n in notes), analyzer.tokens, synonyms_file,
                                  known=Glossary.from_json(old.manifest.get("glossary")).tokens if old.tokens else {})
        if backend.exports_from_embedder:
            query_model = _sbert_export(settings, embedder)
        model = {"dim": embedder.dim, "max_tokens": embedder.max_tokens} if embedder else \
            {"dim": old.manifest["dim"], "max_tokens": old.manifest["max_tokens"]}
        report = _report(settings, signature["model"], old, notes, chunks, todo, skipped, glossary.mined)
        manifest = {**_manifest(settings, {**signature, **model}, notes, chunks, skipped),
                    "retrieval": settings.retrieval.recorded(), "glossary": glossary.to_json()}
        if query_model:
            manifest["query_model"] = query_model
        if _up_to_date(old, manifest):
            cleanup(index_dir)  # what an interrupted build left behind
            report.generation, report.unchanged = old.path.name, True
        else:
            writer = GenerationWriter(index_dir)
            try:
                writer.add_notes([(n.source.name, n.path, n.text) for n in notes])
                writer.add_line_tokens(line_tokens)
                _write(writer, chunks, vectors, tokens, model["dim"], settings, analyzer, known_headings)
                report.generation = writer.publish(manifest)
            except BaseException:
                writer.abandon()
                raise
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _report(settings: Settings, model: str, old: "_Reuse", notes, chunks, todo, skipped, mined: int) -> BuildReport:
    """What the build did, counted (its generation and time are filled in last)."""
    embedded_hashes = {c.hash for c in todo}
    return BuildReport(
        files=len(notes), chunks=len(chunks),
        embedded=sum(c.hash in embedded_hashes for c in chunks),
        reused=sum(c.hash not in embedded_hashes for c in chunks),
        removed=len(old.keys - {c.key for c in chunks}),
        seconds=0.0, index=str(settings.index_dir), model=model,
        full=not old.vectors, reason=old.reason, skipped=len(skipped), glossary=mined)


@contextmanager
def _storage(index_dir: Path):
    """The OS refusing to store the index (permissions, a full disk, a file
    where the folder belongs) as one line naming the path."""
    try:
        yield
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else index_dir
        inside = where == index_dir or index_dir in where.parents
        raise storage_error(exc, "write the index in" if inside else "use", index_dir) from None
    except sqlite3.OperationalError as exc:  # SQLite's own words for the same failures
        code = {13: errno.ENOSPC, 8: errno.EROFS, 14: errno.EACCES}.get(getattr(exc, "sqlite_errorcode", 0) & 0xFF)
        if code is None:
            raise
        raise storage_error(OSError(code, os.strerror(code)), "write the index in", index_dir) from None


@dataclass
class _Reuse:
    """What the live generation offers this build."""

    path: Path | None = None  # the live generation, when intact
    keys: set[str] = field(default_factory=set)  # its chunk keys
    manifest: dict = field(default_factory=dict)
    reason: str = ""  # why everything is rebuilt ("" when not, or when there was no index)
    vectors: bool = False  # its vectors may be reused
    tokens: bool = False  # its lexical tokens may be reused too (same analyser)


def _reuse(index_dir: Path, signature: dict, full: bool) -> _Reuse:
    previous, damage = _previous(index_dir)
    reason = damage or (rebuild_reason(previous["manifest"], signature) if previous and not full else "")
    if reason:
        log.warning("%s: rebuilding the whole index", reason)
    if previous is None:
        return _Reuse(reason=reason)
    old = _Reuse(previous["path"], set(previous["keys"]), previous["manifest"], reason)
    old.vectors = not (full or reason)
    old.tokens = old.vectors and old.manifest.get("lexical_version") == LEXICAL_VERSION
    if old.vectors and not old.tokens:
        log.warning("the lexical analyser changed (version %s → %s): re-tokenising every chunk, vectors are reused",
                    old.manifest.get("lexical_version"), LEXICAL_VERSION)
    return old


def _up_to_date(old: "_Reuse", manifest: dict) -> bool:
    """Whether the live generation already holds exactly what a new one would (same notes,
    model, analyser, glossary, settings and links): then no generation is written, so a
    running bot does not reload and the generation before an edit is not pushed out."""
    if not (old.path and old.vectors and old.tokens):
        return False
    volatile = ("built_at", "checksums", "format", "generation")
    if old.manifest.get("format") != GENERATION_FORMAT:
        return False
    recorded = {k: v for k, v in old.manifest.items() if k not in volatile}
    return recorded == {k: v for k, v in json.loads(json.dumps(manifest)).items() if k not in volatile}


def _manifest(settings: Settings, model: dict, notes: list, chunks: list[Chunk], skipped: list) -> dict:
    """What the new generation records about itself (its checksums are added when it is published)."""
    return {
        **model, "model_name": settings.model.name, "query_prompt": settings.model.query_prompt,
        "chunker_version": CHUNKER_VERSION,
        "lexical_version": LEXICAL_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sources": [_pinned(s, notes).record() for s in settings.sources],
        "notes": {f"{n.source.name}/{n.path}": n.sha256 for n in notes},
        "skipped": [asdict(s) for s in skipped],
        "faiss": settings.retrieval.faiss, "hnsw_m": settings.retrieval.hnsw_m,
        "hnsw_ef_search": settings.retrieval.hnsw_ef_search,
        "counts": {"files": len(notes), "chunks": len(chunks)},
    }


def _pinned(source: Source, notes) -> Source:
    """The source with the commit its notes are linked at (notes in Git, unchanged since HEAD)."""
    pinned = pins(source, notes)
    if not pinned.commit:
        log.debug("links of source '%s' follow its branch: %s", source.name, pinned.why_not)
        return source
    changed = sum(n.source.name == source.name and n.path not in pinned.exact for n in notes)
    if changed:
        log.info("source '%s': %d note(s) differ from commit %s (uncommitted edits): linked at the branch",
                 source.name, changed, pinned.commit[:12])
    return replace(source, commit=pinned.commit, commit_url=pinned.url, pinned=pinned.exact)


def _without_oversized(notes: list, chunks: list[Chunk], todo: list[Chunk], windows: dict, skipped: list):
    """Drop the notes holding a block too long to index (more than WINDOWS windows),
    before anything is embedded, each with a warning; the rest is indexed."""
    too_long = {}
    for c in todo:
        if len(windows[c.hash]) > WINDOWS and (c.source, c.file) not in too_long:
            too_long[(c.source, c.file)] = (f"the block at line {c.start_line} is too long to index "
                                            f"({len(windows[c.hash])} windows of at most {WINDOWS}); split it")
    if not too_long:
        return notes, chunks, todo
    for note in notes:
        reason = too_long.get((note.source.name, note.path))
        if reason:
            log.warning("skipped %s/%s: %s", note.source.name, note.path, reason)
            skipped.append(Skipped(note.source.name, note.path, reason, note.sha256))
    kept = [n for n in notes if (n.source.name, n.path) not in too_long]
    if not kept:
        raise CorpusError("no note can be indexed: " + "; ".join(f"{s}/{f}: {r}" for (s, f), r in too_long.items()))
    return (kept, [c for c in chunks if (c.source, c.file) not in too_long],
            [c for c in todo if (c.source, c.file) not in too_long])


def _previous(index_dir) -> tuple[dict | None, str]:
    """({path, manifest, chunk keys} of the live generation or None when there
    is none, "") or, when CURRENT or any file of the live generation is damaged,
    (None, why): a damaged index is rebuilt from scratch, never reused."""
    name, problem = read_current(index_dir)
    if name is None:
        return None, f"the live index is damaged ({problem})" if problem else ""
    path = index_dir / name
    problem = generation_damage(path)  # every file against its checksum, before anything is reused
    if problem:
        return None, f"the live index is damaged ({problem})"
    try:
        keys = stored_keys(path)
    except sqlite3.Error as exc:
        return None, f"the live index is damaged ({path / DATABASE}: {exc})"
    return {"path": path, "manifest": read_manifest(path), "keys": keys}, ""


def rebuild_reason(manifest: dict, signature: dict) -> str:
    """Why vectors of the index with this manifest cannot be reused ("" when they can)."""
    if manifest.get("model") != signature["model"]:
        return f"the index was built with model {manifest.get('model')}, the config says {signature['model']}"
    if manifest.get("document_prompt", "") != signature["document_prompt"]:
        return "the model's document prompt changed"
    if manifest.get("weights", "") != signature.get("weights", ""):
        return "the model's weights changed (a new version of its package)"
    if manifest.get("chunker_version") != CHUNKER_VERSION:
        return f"the chunker changed (version {manifest.get('chunker_version')} → {CHUNKER_VERSION})"
    return ""


def _line_tokens(notes, known: dict[str, list[str]], analyzer: Analyzer) -> dict[str, list[str]]:
    """Tokens of every distinct non-blank note line (reused by text from the
    previous generation), so a query marks the relevant lines of a quote
    without analysing them."""
    missing = _new_lines(notes, known)
    found = dict(zip(missing, analyzer.tokens_many(missing)))
    return {line: known[line] if line in known else found[line]
            for line in {line for note in notes for line in note.text.split("\n") if line.strip()}}


def _new_lines(notes, known: dict[str, list[str]]) -> list[str]:
    """The distinct non-blank note lines whose tokens the previous generation does not have."""
    lines = dict.fromkeys(line for note in notes for line in note.text.split("\n") if line.strip())
    return [line for line in lines if line not in known]


def _chunks(notes, old: "_Reuse") -> list[Chunk]:
    """Every note's chunks: those of a note unchanged since the live generation are read
    from it (parsing 44 notes' Markdown takes most of a second), the rest are chunked."""
    kept = stored_chunks(old.path) if old.vectors else {}
    indexed = old.manifest.get("notes", {}) if old.vectors else {}
    out: list[Chunk] = []
    for note in notes:
        stored = kept.get((note.source.name, note.path))
        if stored and indexed.get(f"{note.source.name}/{note.path}") == note.sha256:
            out += [Chunk(note.source.name, note.path, heading, start, end, text, int(key.rsplit("#", 1)[1]))
                    for key, heading, start, end, text in stored]
        else:
            out += chunk_note(note.source.name, note.path, note.text)
    return out


def _sbert_export(settings: Settings, embedder: Embedder | None) -> dict | None:
    """A sentence-transformers model is exported from the model the build loaded (if
    it loaded one); a stand-in embedder (tests) has nothing to export."""
    from .embed.sbert import SentenceTransformerEmbedder

    if embedder is not None and not isinstance(embedder, SentenceTransformerEmbedder):
        return None
    return ensure_export(settings, embedder)


def _embed(embedder: Embedder, chunks: list[Chunk], chunk_windows: dict[str, list[str]], progress: bool) -> dict:
    """hash → [(window text, vector)] for each chunk, from its windows (hash → texts).
    Windows are encoded in batches of similar length, so little compute is spent on padding."""
    windows = [(c.hash, w, text) for c in chunks for w, text in enumerate(chunk_windows[c.hash])]
    windows.sort(key=lambda item: len(item[2]))
    found: dict[tuple[str, int], tuple[str, np.ndarray]] = {}
    batch = 32
    bar = _bar(len(windows), progress)
    for i in range(0, len(windows), batch):
        part = windows[i:i + batch]
        for (h, w, text), vec in zip(part, embedder.encode_documents([t for _, _, t in part])):
            found[(h, w)] = (text, vec)
        if bar:
            bar.update(len(part))
    if bar:
        bar.close()
    out: dict[str, list] = {}
    for h, w in sorted(found):
        out.setdefault(h, []).append(found[(h, w)])
    return out


def _write(writer: GenerationWriter, chunks: list[Chunk], vectors: dict, tokens: dict, dim: int,
           settings: Settings, analyzer: Analyzer, heading_tokens: dict[str, list[str]]) -> None:
    writer.add_chunks([(row, c.key, c.hash, c.source, c.file, c.heading, c.start_line, c.end_line,
                        c.text, tokens[c.hash]) for row, c in enumerate(chunks)])
    ids, matrix, stored = [], [], {}
    for row, c in enumerate(chunks):
        windows = vectors[c.hash]
        if len(windows) > WINDOWS:
            raise IndexCorrupt(f"{c.file}:{c.start_line}: a block too long to index ({len(windows)} windows); split it")
        for w, (text, vec) in enumerate(windows):
            ids.append(row * WINDOWS + w)
            matrix.append(vec)
            stored[(c.hash, w)] = (text, vec)
    writer.add_vectors([(h, w, t, v) for (h, w), (t, v) in stored.items()])
    matrix_np = np.vstack(matrix) if matrix else np.zeros((0, dim), dtype=np.float32)
    writer.write_dense(np.asarray(ids, dtype=np.int64), matrix_np, dim,
                       settings.retrieval.faiss, settings.retrieval.hnsw_m)
    headings = list(dict.fromkeys(c.heading for c in chunks))
    number = {h: i for i, h in enumerate(headings)}
    new = [h for h in headings if h not in heading_tokens]
    heading_tokens.update(zip(new, analyzer.tokens_many(new)))
    writer.write_lexical(LexicalIndex.build([tokens[c.hash] for c in chunks]), headings,
                         [heading_tokens[h] for h in headings], [number[c.heading] for c in chunks])


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _bar(total: int, show: bool):
    if not show or total < 64:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="window", desc="embedding", file=sys.stderr, leave=False)
