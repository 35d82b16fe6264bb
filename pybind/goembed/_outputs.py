"""What encode returns besides float32 numpy: quantised precisions and torch outputs, with the
semantics of sentence-transformers 6.0 (util/quantization.py quantize_embeddings and the end of
SentenceTransformer.encode)."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger("goembed")

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(embeddings: np.ndarray, precision: str) -> np.ndarray:
    """Quantise a float32 matrix (n, dim) as sentence_transformers.quantize_embeddings does
    without ranges or calibration embeddings:

    - int8 / uint8: per dimension, the range [min, max] over these n embeddings is cut into 255
      steps; q = clip(floor((x - min) / step), 0, 255) as uint8, minus 128 for int8.
    - ubinary: 1 bit per dimension (x > 0), packed 8 to a byte, high bit first (np.packbits);
      shape (n, ceil(dim / 8)), uint8. binary: the same bytes minus 128, as int8.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "float32":
        return embeddings
    n, dim = embeddings.shape
    if precision.endswith("int8"):
        if n == 0:
            return np.zeros((0, dim), dtype=np.int8 if precision == "int8" else np.uint8)
        if n < 100:
            logger.warning(
                "Computing %s quantization buckets based on %d embedding%s. %s quantization is more stable with "
                "ranges calculated from more embeddings; quantize a larger set at once.",
                precision, n, "s" if n != 1 else "", precision)
        # The same float32 operations, in the same order, as sentence-transformers: bit-equal buckets.
        starts = np.min(embeddings, axis=0)
        steps = (np.max(embeddings, axis=0) - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        if precision == "uint8":
            return q.astype(np.uint8)
        return (q - 128).astype(np.int8)
    packed = np.packbits(embeddings > 0, axis=-1).reshape(n, (dim + 7) // 8)
    if precision == "ubinary":
        return packed
    return (packed.astype(np.int16) - 128).astype(np.int8)


def to_torch(out: np.ndarray, single: bool, as_list: bool):
    """The torch form of encode's result: one tensor (convert_to_tensor=True), or, as_list
    (convert_to_numpy=False), a list of 1-D tensors, one per text, as sentence-transformers
    returns them. A single text gives its 1-D tensor either way. Tensors live on the CPU and share
    memory with the numpy result."""
    try:
        import torch
    except ImportError as e:
        what = "convert_to_numpy=False" if as_list else "convert_to_tensor=True"
        raise ImportError(f"{what} returns torch tensors and needs PyTorch (`pip install torch`); "
                          "use the default convert_to_numpy=True for numpy arrays") from e
    t = torch.from_numpy(out)
    if single or not as_list:
        return t
    return list(t.unbind(0))
