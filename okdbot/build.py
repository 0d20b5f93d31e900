"""Incremental index build: reuse what is unchanged, embed the rest, drop the gone.

Each chunk's vectors are looked up by its content hash (which covers the
heading path and the exact text) in the live generation; only chunks whose
(key, hash) pair is new are embedded. Lexical tokens are reused the same way.
The result is written as a new generation and published atomically.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Callable

import numpy as np

from .chunk import CHUNKER_VERSION, Chunk, chunk_note
from .config import Settings
from .embed import Embedder, backend_for, model_signature
from .embed.exports import build_embedder, ensure_export
from .errors import IndexCorrupt
from .glossary import Glossary, build_glossary, read_glossary_file
from .ingest import read_notes
from .lexical import LEXICAL_VERSION, Analyzer, LexicalIndex
from .store import (WINDOWS, GenerationWriter, build_lock, current_generation, stored_heading_tokens, stored_keys,
                    stored_line_tokens, stored_tokens, stored_vectors)

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

    def public(self) -> dict:
        """The documented `okdbot index --json` object."""
        keys = ("files", "chunks", "embedded", "reused", "removed", "seconds", "index", "model")
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
    notes, skipped = read_notes(settings.sources)
    chunks = [c for note in notes for c in chunk_note(note.source.name, note.path, note.text)]
    signature = model_signature(settings.model)
    analyzer = analyzer or Analyzer()
    index_dir = settings.index_dir
    with build_lock(index_dir):
        previous = _previous(index_dir)
        reason = rebuild_reason(previous["manifest"], signature) if previous and not full else ""
        if reason:
            log.warning("%s: rebuilding the whole index", reason)
        reusable = previous if previous and not full and not reason else None
        retokenize = bool(reusable and reusable["manifest"].get("lexical_version") != LEXICAL_VERSION)
        if retokenize:
            log.warning("the lexical analyser changed (version %s → %s): re-tokenising every chunk, vectors are reused",
                        reusable["manifest"].get("lexical_version"), LEXICAL_VERSION)
        vectors = stored_vectors(reusable["path"]) if reusable else {}
        tokens = stored_tokens(reusable["path"]) if reusable and not retokenize else {}
        old_keys = set(previous["keys"]) if previous else set()

        todo = list({c.hash: c for c in chunks if c.hash not in vectors}.values())
        backend = backend_for(settings.model)
        query_model = None if backend.exports_from_embedder else ensure_export(settings)
        if make_embedder is None:
            make_embedder = partial(build_embedder, settings, query_model)
        embedder = make_embedder() if todo or not reusable else None
        if todo:
            vectors.update(_embed(embedder, todo, _show_progress(progress)))
        missing = list({c.hash: c for c in chunks if c.hash not in tokens}.values())
        if missing:
            tokens.update(zip((c.hash for c in missing), analyzer.tokens_many([c.embed_text for c in missing])))

        line_tokens = _line_tokens(notes, stored_line_tokens(reusable["path"]) if reusable and not retokenize else {},
                                   analyzer)
        glossary = build_glossary(synonyms, (n.text for n in notes), analyzer.tokens, synonyms_file,
                                  known=_glossary_tokens(reusable, retokenize))
        if backend.exports_from_embedder:
            query_model = _sbert_export(settings, embedder)
        dim = embedder.dim if embedder else reusable["manifest"]["dim"]
        max_tokens = embedder.max_tokens if embedder else reusable["manifest"]["max_tokens"]
        writer = GenerationWriter(index_dir)
        try:
            writer.add_notes([(n.source.name, n.path, n.text) for n in notes])
            writer.add_line_tokens(line_tokens)
            _write(writer, chunks, vectors, tokens, dim, settings, analyzer,
                   stored_heading_tokens(reusable["path"]) if reusable and not retokenize else {})
            embedded_hashes = {c.hash for c in todo}
            report = BuildReport(
                files=len(notes), chunks=len(chunks),
                embedded=sum(c.hash in embedded_hashes for c in chunks),
                reused=sum(c.hash not in embedded_hashes for c in chunks),
                removed=len(old_keys - {c.key for c in chunks}),
                seconds=0.0, index=str(index_dir), model=signature["model"],
                full=bool(full or reason or not previous), reason=reason, skipped=len(skipped),
                glossary=glossary.mined)
            manifest = {
                **signature, "model_name": settings.model.name, "query_prompt": settings.model.query_prompt, "dim": dim,
                "max_tokens": max_tokens, "chunker_version": CHUNKER_VERSION,
                "lexical_version": LEXICAL_VERSION,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "sources": [s.to_dict() for s in settings.sources],
                "notes": {f"{n.source.name}/{n.path}": n.sha256 for n in notes},
                "skipped": [asdict(s) for s in skipped],
                "faiss": settings.retrieval.faiss, "hnsw_m": settings.retrieval.hnsw_m,
                "hnsw_ef_search": settings.retrieval.hnsw_ef_search,
                "counts": {"files": len(notes), "chunks": len(chunks)},
                "retrieval": settings.retrieval.recorded(), "glossary": glossary.to_json(),
            }
            if query_model:
                manifest["query_model"] = query_model
            report.generation = writer.publish(manifest)
        except BaseException:
            writer.abandon()
            raise
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _glossary_tokens(reusable: dict | None, retokenize: bool) -> dict[str, list[str]]:
    """The analysed glossary terms of the live generation (reused unless the analyser changed)."""
    if not reusable or retokenize:
        return {}
    return Glossary.from_json(reusable["manifest"].get("glossary")).tokens


def _previous(index_dir) -> dict | None:
    """The live generation's manifest and chunk keys, or None."""
    name = current_generation(index_dir)
    if name is None:
        return None
    path = index_dir / name
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        keys = stored_keys(path)
    except Exception as exc:  # a damaged index is rebuilt from scratch, never reused
        log.warning("the current index is unreadable (%s): rebuilding it fully", type(exc).__name__)
        return None
    return {"path": path, "manifest": manifest, "keys": keys}


def rebuild_reason(manifest: dict, signature: dict) -> str:
    """Why vectors of the index with this manifest cannot be reused ("" when they can)."""
    if manifest.get("model") != signature["model"]:
        return f"the index was built with model {manifest.get('model')}, the config says {signature['model']}"
    if manifest.get("document_prompt", "") != signature["document_prompt"]:
        return "the model's document prompt changed"
    if manifest.get("chunker_version") != CHUNKER_VERSION:
        return f"the chunker changed (version {manifest.get('chunker_version')} → {CHUNKER_VERSION})"
    return ""


def _line_tokens(notes, known: dict[str, list[str]], analyzer: Analyzer) -> dict[str, list[str]]:
    """Tokens of every distinct non-blank note line (reused by text from the
    previous generation), so a query marks the relevant lines of a quote
    without analysing them."""
    lines = {line for note in notes for line in note.text.split("\n") if line.strip()}
    missing = [line for line in lines if line not in known]
    found = dict(zip(missing, analyzer.tokens_many(missing)))
    return {line: known[line] if line in known else found[line] for line in lines}


def _sbert_export(settings: Settings, embedder: Embedder | None) -> dict | None:
    """A sentence-transformers model is exported from the model the build loaded (if
    it loaded one); a stand-in embedder (tests) has nothing to export."""
    from .embed.sbert import SentenceTransformerEmbedder

    if embedder is not None and not isinstance(embedder, SentenceTransformerEmbedder):
        return None
    return ensure_export(settings, embedder)


def _embed(embedder: Embedder, chunks: list[Chunk], progress: bool) -> dict:
    """hash → [(window text, vector)] for each chunk. Windows are encoded in
    batches of similar length, so little compute is spent on padding."""
    windows = [(c.hash, w, text) for c in chunks for w, text in enumerate(embedder.windows(c.embed_text))]
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
