"""Embeddings without torch: the only module that imports onnxruntime.

Two kinds of export folder are run here: the bundled e5 model's (okdbot/embed/e5.py,
which uses `make_session`, `verified_model` and `encode_sorted`), and a
sentence-transformers model's encoder exported to ONNX
once per model (see `sbert.export_onnx`; `fuse` here rewrites the graph into
fewer operators) into a folder holding the graph (`model.onnx`), its weights
(`model.onnx.data`: onnxruntime maps them from the file, so a session starts
in about half the time and memory), the model's own `tokenizer.json` and
`export.json` (how to tokenize, pool and normalise).
`OnnxEncoder` reproduces `SentenceTransformer.encode(...,
normalize_embeddings=True)` from that folder with onnxruntime + tokenizers:
same token ids (truncated at the model's max_seq_length, padded to the longest
text of a batch), same pooling, L2-normalised float32 rows.

Every file is checked against the sha256 recorded at export before it is used; a
mismatch raises ModelError, so a damaged file never gives wrong vectors silently.
Hashing the ~150 MB of an export took 0.13 s of every cold query here, so once a
file has been hashed its stamp (size, modification and change times, inode) is
kept beside the export (`verified.json`), and a later process hashes only files
whose stamp differs: any write to a file, a copy or a replacement changes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..errors import ModelError

log = logging.getLogger("okdbot")

MODEL_FILE = "model.onnx"  # the graph ...
DATA_FILE = "model.onnx.data"  # ... and its weights, which onnxruntime maps from the file instead of copying
TOKENIZER_FILE = "tokenizer.json"
EXPORT_FILE = "export.json"
STAMPS_FILE = "verified.json"  # files already hashed, by stamp (see verified_model)
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens")
# Two intra-op threads encode a median English question (11 tokens) in about 5 ms here against
# 7-8 ms on one; more would add little for a few tokens. Idle threads spin only while a question
# is being encoded: spinning between questions too (onnxruntime's default) burns a core for
# nothing and, while another process holds a core, made a question take 9.5 ms instead of 6.6;
# never spinning costs about 0.5 ms a question on a quiet machine (bench/encode.py).
QUERY_THREADS = min(2, os.cpu_count() or 1)
BUILD_THREADS = os.cpu_count() or 1  # an index build encodes batches of passages
SPINNING = {  # how idle threads wait: allow_spinning, force_spinning_stop
    "during-run": ("1", "1"), "never": ("0", "0"), "always": ("1", "0")}


def read_export(folder: Path) -> dict:
    """The export record of a model folder; ModelError when absent or unreadable."""
    try:
        return json.loads((folder / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the exported query model in {folder} is unreadable ({type(exc).__name__})") from None


_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime, ctime, inode) → sha256: a file is read once per process


def file_sha256(path: Path) -> str:
    stamp = (str(path), *_stamp(path))
    if stamp not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[stamp] = digest.hexdigest()
    return _DIGESTS[stamp]


def verified_model(folder: Path, files: dict[str, str]) -> Path:
    """`folder/model.onnx` if every file of the export has its recorded sha256; ModelError otherwise.
    A file whose stamp is recorded in verified.json with that sha256 is not hashed again."""
    known = _read_stamps(folder)
    hashed = {}
    for name, expected in files.items():
        try:
            stamp = _stamp(folder / name)
            if known.get(name) == [*stamp, expected]:
                continue
            actual = file_sha256(folder / name)
        except OSError as exc:
            raise ModelError(f"the exported query model file {folder / name} cannot be read ({exc.strerror})") from None
        if actual != expected:
            raise ModelError(f"the exported query model file {folder / name} is damaged (checksum mismatch)")
        hashed[name] = [*stamp, expected]
    if hashed:
        _write_stamps(folder, {**{n: v for n, v in known.items() if n in files}, **hashed})
    return folder / MODEL_FILE


def _stamp(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_stamps(folder: Path) -> dict:
    """The stamps recorded beside an export; {} when there are none or they cannot be read
    (a damaged file of any shape only means hashing again, and is rewritten)."""
    try:
        stamps = json.loads((folder / STAMPS_FILE).read_text(encoding="utf-8"))
    except Exception:  # OSError, ValueError, RecursionError (deep nesting), MemoryError…
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _write_stamps(folder: Path, stamps: dict) -> None:
    """Best effort: a read-only export (a volume mounted read-only) is simply hashed again
    by the next process."""
    temporary = folder / f".{STAMPS_FILE}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps(stamps), encoding="utf-8")
        os.replace(temporary, folder / STAMPS_FILE)
    except OSError:
        with contextlib.suppress(OSError):  # on a read-only file system even this raises
            temporary.unlink(missing_ok=True)


def make_session(model: Path, threads: int = QUERY_THREADS, spinning: str = "during-run"):
    """An onnxruntime CPU session, fully optimised, for single short questions
    (see QUERY_THREADS and SPINNING)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    allow, stop = SPINNING[spinning]
    options.add_session_config_entry("session.intra_op.allow_spinning", allow)
    options.add_session_config_entry("session.force_spinning_stop", stop)
    options.log_severity_level = 3
    return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])


def fuse(single: Path, fused: Path, heads: int, hidden: int) -> Path | None:
    """An exported transformer encoder (`single`, one file) rewritten by onnxruntime's
    transformer optimizer into `fused`: each layer's attention, layer norms and GELU
    become one operator each (MiniLM's graph goes from 338 operators to 46, and a
    question encodes 15-40% faster here, bench/encode.py). Hardware-independent
    (opt_level 1). None when the optimizer is unavailable or cannot read the model;
    the caller checks the result against the original model."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        for name in ("onnxruntime.transformers", "onnx_model", "fusion_base"):
            logging.getLogger(name).setLevel(logging.ERROR)  # it reports every pattern it did not find
        optimized = optimize_model(str(single), model_type="bert", num_heads=heads, hidden_size=hidden,
                                   opt_level=1, use_gpu=False)
        optimized.save_model_to_file(str(fused))
    except Exception as exc:  # the optimizer raises many types; the unfused graph is still good
        log.info("could not fuse the query model (%s: %s); exporting it unfused", type(exc).__name__,
                 str(exc).splitlines()[0][:200] if str(exc) else "")
        return None
    return fused


def load_tokenizer(folder: Path, max_seq_length: int):
    """The model's own fast tokenizer, truncating at `max_seq_length` and padding
    to the longest text of a batch (the shipped tokenizer.json may say otherwise)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_seq_length, strategy="longest_first")
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_type_id=padding.get("pad_type_id", 0),
                             pad_token=padding.get("pad_token", "[PAD]"), length=None)
    return tokenizer


class OnnxEncoder:
    """Sentence embeddings from an exported model folder (see module docstring).

    `record` is the export record (export.json, also kept in each index
    generation's manifest); `session` may be passed in when it was created
    ahead of time (in a thread, while other things load)."""

    def __init__(self, folder: Path, record: dict, query_prompt: str = "", session=None, threads: int = 1):
        self.folder = folder
        self.model_id = record["model"]
        self.dim = int(record["dim"])
        self.max_seq_length = int(record["max_seq_length"])
        self.pooling = record["pooling"]
        if self.pooling not in POOLING_MODES:
            raise ModelError(f"the exported query model uses pooling '{self.pooling}', which okdbot cannot run")
        self.lowercase = bool(record.get("do_lower_case", False))
        self.query_prompt = query_prompt
        try:
            self.tokenizer = load_tokenizer(folder, self.max_seq_length)
            if session is None:
                session = make_session(verified_model(folder, record["files"]), threads)
        except (ModelError, ImportError):
            raise
        except Exception as exc:  # tokenizers and onnxruntime raise their own types
            raise ModelError(f"the exported query model in {folder} cannot be loaded "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.output = session.get_outputs()[0].name

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode([self.query_prompt + t for t in texts] if self.query_prompt else list(texts))

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised."""
        return encode_sorted(texts, self.dim, self._encode_batch)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        if self.lowercase:
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {}
        for name in self.inputs:
            if name == "input_ids":
                feed[name] = ids
            elif name == "attention_mask":
                feed[name] = mask
            elif name == "token_type_ids":
                feed[name] = np.array([e.type_ids for e in encodings], dtype=np.int64)
            else:
                raise ModelError(f"the exported query model wants an input '{name}' okdbot does not provide")
        tokens = self.session.run([self.output], feed)[0]
        return pool_normalised(tokens, mask, self.pooling)


def encode_sorted(texts: list[str], dim: int, encode_batch, batch_size: int = 32) -> np.ndarray:
    """(len(texts), dim) float32 from `encode_batch` over batches of similar length
    (little compute spent on padding)."""
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        out[rows] = encode_batch([texts[i] for i in rows])
    return out


def pool_normalised(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Pooled token embeddings, rows L2-normalised, float32."""
    pooled = _pool(tokens, mask, mode)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling for one mode, in numpy."""
    if mode == "cls":
        return tokens[:, 0]
    weights = mask[..., None].astype(tokens.dtype)
    if mode == "max":
        return np.where(weights > 0, tokens, np.finfo(tokens.dtype).min).max(axis=1)
    summed = (tokens * weights).sum(axis=1)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts)
