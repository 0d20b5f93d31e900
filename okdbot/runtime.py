"""Assembly: build the objects a command needs from Settings.

The CLI and the Discord bot both get their Retriever and their index builds
from here, so they answer the same way and load models the same way.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from .config import Settings
from .errors import IndexMissing

log = logging.getLogger("okdbot")


def make_embedder(settings: Settings):
    """The document embedder used by index builds (sentence-transformers)."""
    from .embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.model)


def make_query_encoder(settings: Settings):
    """The encoder for questions."""
    return make_embedder(settings)


def build(settings: Settings, full: bool = False, progress: bool | None = None):
    """Build or update the index of settings.sources."""
    from .build import build_index

    return build_index(settings, lambda: make_embedder(settings), full=full, progress=progress)


def load_synonyms(settings: Settings):
    """The synonym groups of retrieval.synonyms (none when not configured)."""
    from .synonyms import load_synonyms as load

    path = settings.retrieval.synonyms
    return load(path) if path else ()


def load_retriever(settings: Settings, build_if_missing: bool = False):
    """Open the live index and load the query-side models in parallel.

    With build_if_missing, a missing index is built first from the configured
    sources (announced on stderr), so a fresh clone answers its first question."""
    from .lexical import Analyzer
    from .retrieve import Retriever
    from .store import open_index

    analyzer = Analyzer(synonyms=load_synonyms(settings))
    with ThreadPoolExecutor(2) as pool:
        kiwi = pool.submit(analyzer.load)
        try:
            reader = open_index(settings.index_dir)
        except IndexMissing:
            if not (build_if_missing and settings.sources):
                raise
            log.info("no index in %s yet: building it first", settings.index_dir)
            build(settings)
            reader = open_index(settings.index_dir)
        encoder = make_query_encoder(settings)
        kiwi.result()
    return Retriever(settings.index_dir, settings.retrieval, encoder, analyzer, reader=reader)
