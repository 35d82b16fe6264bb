"""Encoder.encode_iter: embed an iterable of any length (a generator, a file) with bounded memory."""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterable, Iterator

import numpy as np

from . import _encoder


def encode_iter(encoder: "_encoder.Encoder", sentences: Iterable[str], batch_size: int = 32,
                chunk_size: int | None = None, show_progress_bar: bool | None = None,
                **kwargs: Any) -> Iterator[np.ndarray]:
    """See Encoder.encode_iter. Arguments are checked now; the texts as they are pulled."""
    if isinstance(sentences, (str, bytes, bytearray)):
        raise TypeError("encode_iter takes an iterable of str (a list, a generator, a file); "
                        "to embed one text use encode()")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if chunk_size is None:
        chunk_size = (_encoder._GPU_CHUNK if encoder.device != "cpu"
                      else max(batch_size * 8, _encoder._CPU_CHUNK))
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    unknown = sorted(set(kwargs) - set(_encoder._ENCODE_KEYWORDS))
    if unknown:
        raise ValueError(f"encode_iter() got unexpected keyword argument(s) {unknown}; "
                         f"accepted keywords: chunk_size, {', '.join(_encoder._ENCODE_KEYWORDS)}")
    try:
        it = iter(sentences)
    except TypeError:
        raise TypeError(f"sentences must be an iterable of str, not {type(sentences).__name__}") from None
    if show_progress_bar is None:
        show_progress_bar = _encoder.logger.getEffectiveLevel() <= 20  # INFO or DEBUG, as encode
    total = len(sentences) if hasattr(sentences, "__len__") else None
    return _rows(encoder, it, int(batch_size), int(chunk_size), bool(show_progress_bar), total, kwargs)


def _rows(encoder, it, batch_size, chunk_size, progress, total, kwargs) -> Iterator[np.ndarray]:
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, desc="Batches", unit="text")
    start = 0
    try:
        while True:
            window = list(itertools.islice(it, chunk_size))
            if not window:
                return
            for i, t in enumerate(window):
                if not isinstance(t, str):
                    if isinstance(t, (tuple, list)):
                        raise NotImplementedError(f"item {start + i} is a {type(t).__name__}: sentence pairs "
                                                  "are not supported by goembed")
                    what = "float (NaN?)" if isinstance(t, float) and math.isnan(t) else type(t).__name__
                    raise TypeError(f"sentences[{start + i}] (item {start + i} of the stream) must be str, got {what}")
            emb = encoder.encode(window, batch_size=batch_size, show_progress_bar=False, **kwargs)
            del window
            start += len(emb)
            if bar is not None:
                bar.update(len(emb))
            yield from emb
    finally:
        if bar is not None:
            bar.close()
