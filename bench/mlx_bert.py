"""A BERT sentence encoder in MLX for the same sentence-transformers folders goembed reads
(all-MiniLM-L6-v2, e5, bge, ...): the same model.safetensors (mx.load), the same tokenizer.json
(the `tokenizers` package, truncated at sentence_bert_config.json's max_seq_length), the pooling
of 1_Pooling/config.json, and Normalize when modules.json lists it.

    enc = MLXEncoder(folder, dtype="float32" | "float16", device="cpu" | "gpu")
    enc.encode(texts, batch_size=32)      # (n, dim) float32 numpy, input order
    enc.encode_ids(ids, lengths)          # one forward of a padded (B, S) batch of token ids

Written like mlx-examples' bert/model.py (post-LN layers, exact-erf GELU), at MLX's best: one
fused QKV projection, mx.fast.scaled_dot_product_attention with an additive padding mask,
mx.fast.layer_norm (nn.LayerNorm calls it), and the whole forward plus pooling under mx.compile
(traced once per input shape).
"""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np


class Layer(nn.Module):
    """One post-LN BERT layer: x = LN(x + attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, hidden: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=eps)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=eps)

    def __call__(self, x, mask):
        B, S, H = x.shape
        qkv = self.qkv(x).reshape(B, S, 3, self.heads, -1).transpose(2, 0, 3, 1, 4)  # 3, B, NH, S, HD
        a = mx.fast.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=qkv.shape[-1] ** -0.5, mask=mask)
        x = self.ln1(x + self.out(a.transpose(0, 2, 1, 3).reshape(B, S, H)))
        return self.ln2(x + self.fc2(nn.gelu(self.fc1(x))))  # nn.gelu: x * (1 + erf(x / sqrt 2)) / 2


class Bert(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        H, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.word = nn.Embedding(cfg["vocab_size"], H)
        self.position = nn.Embedding(cfg["max_position_embeddings"], H)
        self.token_type = nn.Embedding(cfg.get("type_vocab_size", 2), H)
        self.ln = nn.LayerNorm(H, eps=eps)
        self.layers = [Layer(H, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                       for _ in range(cfg["num_hidden_layers"])]

    def __call__(self, ids, valid):
        """ids (B, S) int32, valid (B, S) bool -> last hidden states (B, S, H)."""
        x = self.ln(self.word(ids) + self.position.weight[: ids.shape[1]] + self.token_type.weight[0])
        # Additive mask over keys: 0 for real tokens, -inf for padding (every row has [CLS]).
        mask = mx.where(valid, 0.0, -mx.inf).astype(x.dtype)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return x


def pool(x, valid, mode: str, normalize: bool):
    """sentence-transformers' Pooling (+ Normalize), in float32."""
    x = x.astype(mx.float32)
    if mode == "cls":
        v = x[:, 0]
    elif mode == "max":
        v = mx.where(valid[..., None], x, -mx.inf).max(axis=1)
    else:  # mean over real tokens
        m = valid[..., None].astype(mx.float32)
        v = (x * m).sum(axis=1) / mx.maximum(m.sum(axis=1), 1e-9)
    if normalize:
        v = v / mx.maximum(mx.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return v


def hf_to_mlx(weights: dict, layers: int) -> list[tuple[str, mx.array]]:
    """Hugging Face BertModel names -> this module's (Q, K and V concatenated into one Linear)."""
    w = {k.removeprefix("bert."): v for k, v in weights.items()}
    out = [("word.weight", w["embeddings.word_embeddings.weight"]),
           ("position.weight", w["embeddings.position_embeddings.weight"]),
           ("token_type.weight", w["embeddings.token_type_embeddings.weight"]),
           ("ln.weight", w["embeddings.LayerNorm.weight"]), ("ln.bias", w["embeddings.LayerNorm.bias"])]
    for i in range(layers):
        p, q = f"encoder.layer.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            out.append((q + "qkv." + kind, mx.concatenate(
                [w[f"{p}attention.self.{n}.{kind}"] for n in ("query", "key", "value")], axis=0)))
            for ours, theirs in (("out", "attention.output.dense"), ("ln1", "attention.output.LayerNorm"),
                                 ("fc1", "intermediate.dense"), ("fc2", "output.dense"), ("ln2", "output.LayerNorm")):
                out.append((f"{q}{ours}.{kind}", w[f"{p}{theirs}.{kind}"]))
    return out


def read_folder(folder: str | Path) -> dict:
    """What sentence-transformers reads from the folder: BERT config, max_seq_length,
    do_lower_case, pooling mode, Normalize."""
    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    sbert = folder / "sentence_bert_config.json"
    sb = json.loads(sbert.read_text()) if sbert.exists() else {}
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").exists() else []
    mode = "mean"
    for m in modules:
        if m["type"].endswith("Pooling"):
            pc = json.loads((folder / m["path"] / "config.json").read_text())
            mode = pc.get("pooling_mode") or next(
                (k.removeprefix("pooling_mode_").removesuffix("_token").removesuffix("_tokens")
                 for k, v in pc.items() if k.startswith("pooling_mode_") and v is True), "mean")
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else mode
    if mode not in ("mean", "cls", "max"):
        raise NotImplementedError(f"{folder}: pooling {mode!r} (this encoder does mean, cls, max)")
    return {"config": cfg, "max_seq_length": int(sb.get("max_seq_length") or cfg["max_position_embeddings"]),
            "do_lower_case": bool(sb.get("do_lower_case", False)), "pooling": mode,
            "normalize": any(m["type"].endswith("Normalize") for m in modules)}


class MLXEncoder:
    def __init__(self, folder: str | Path, dtype: str = "float32", device: str = "cpu", compile: bool = True):
        from tokenizers import Tokenizer

        folder = Path(folder)
        meta = read_folder(folder)
        cfg = meta["config"]
        if cfg.get("model_type", "bert") != "bert" or cfg.get("hidden_act", "gelu") != "gelu":
            raise NotImplementedError(f"{folder}: {cfg.get('model_type')} / {cfg.get('hidden_act')}")
        self.max_seq_length, self.do_lower_case = meta["max_seq_length"], meta["do_lower_case"]
        self.pooling, self.normalize = meta["pooling"], meta["normalize"]
        self.dtype, self.device = getattr(mx, dtype), {"cpu": mx.cpu, "gpu": mx.gpu}[device]
        self.dim = cfg["hidden_size"]

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file may pad to a fixed 128: batches are padded below
        self.tokenizer.enable_truncation(self.max_seq_length)

        self.model = Bert(cfg)
        weights = mx.load(str(folder / "model.safetensors"))
        self.model.load_weights([(k, v.astype(self.dtype)) for k, v in hf_to_mlx(weights, len(self.model.layers))])
        self.model.eval()
        mx.eval(self.model.parameters())

        def forward(ids, lengths):
            valid = mx.arange(ids.shape[1])[None, :] < lengths[:, None]
            return pool(self.model(ids, valid), valid, self.pooling, self.normalize)

        self._forward = partial(mx.compile, inputs=self.model.state)(forward) if compile else forward

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def encode_ids(self, ids, lengths=None) -> np.ndarray:
        """One forward of a padded batch: ids (B, S) ints, lengths (B,) -> (B, dim) float32 numpy
        (evaluated: the result is on the host when this returns)."""
        ids = np.asarray(ids, dtype=np.int32)
        lengths = np.full(len(ids), ids.shape[1], np.int32) if lengths is None else np.asarray(lengths, np.int32)
        with mx.stream(self.device):
            out = self._forward(mx.array(ids), mx.array(lengths))
            mx.eval(out)
        return np.array(out)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Texts -> (n, dim) float32 numpy in input order: sorted longest first (as
        sentence-transformers does), cut into batches of batch_size, each padded to its longest."""
        toks = self.tokenize(list(texts))
        order = sorted(range(len(toks)), key=lambda i: -len(toks[i]))
        outs = []
        with mx.stream(self.device):
            for s in range(0, len(order), batch_size):
                batch = [toks[i] for i in order[s:s + batch_size]]
                lens = np.array([len(t) for t in batch], np.int32)
                ids = np.zeros((len(batch), lens.max()), np.int32)
                for r, t in enumerate(batch):
                    ids[r, :len(t)] = t
                outs.append(self._forward(mx.array(ids), mx.array(lens)))
                mx.async_eval(outs[-1])  # let the device run ahead while the next batch is built
            out = mx.concatenate(outs) if outs else mx.zeros((0, self.dim))
            mx.eval(out)
        res = np.empty((len(toks), self.dim), np.float32)
        res[order] = np.array(out)
        return res
