"""Out of GPU memory on CUDA (issue 8 point 7): the batch is split and retried, a single
sequence that does not fit raises MemoryError, and the Encoder works afterwards with the same
results. Needs a GPU: every test skips, saying why, when goembed cannot open CUDA (with
GOEMBED_REQUIRE_CUDA=1 that is a failure instead).

- test_injected_oom_splits_on_cuda: the workspace limit (DebugOOMAfter, what
  GOEMBED_DEBUG_OOM_AFTER sets) on device="cuda": graphs, Trim and the split path on the GPU.
- test_real_oom_memoryerror_then_split: a real CUDA_ERROR_OUT_OF_MEMORY. torch (CUDA build)
  first takes all but 2 MB of the free GPU memory (single sequences or a MemoryError); then all
  but 256 MB, so the 65,536-token batches fail in cuMemAlloc and are split. Skips without a
  CUDA torch.
"""

import os

import numpy as np
import pytest

import goembed
from goembed import _native_api as api

from test_cuda_parity import _NO_CUDA


def _cuda_encoder(path, dtype="float16"):
    try:
        m = goembed.Encoder(path, device="cuda", dtype=dtype)
    except Exception as e:  # noqa: BLE001 - the message decides
        if any(s in str(e) for s in _NO_CUDA) and os.environ.get("GOEMBED_REQUIRE_CUDA") != "1":
            pytest.skip(f"no usable CUDA device: {e}")
        raise
    assert m.device == "cuda"
    return m


def _texts(corpus, n):
    # long passages: 2048 texts of up to 256 tokens fill several 65,536-token batches
    return [r["text"] for r in corpus[:n]]


def _close(a, b):
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return cos.min()


def test_injected_oom_splits_on_cuda(minilm_dir, corpus):
    m = _cuda_encoder(minilm_dir)
    texts = _texts(corpus, 2000)
    want = m.encode(texts, batch_size=512)
    # about 8 MB of workspace: a few sequences per forward instead of hundreds
    api.call("DebugOOMAfter", m._handle, 8 << 20)
    split = m.encode(texts, batch_size=512)
    assert _close(split, want) >= 0.9999, "results after splitting on cuda"
    api.call("DebugOOMAfter", m._handle, 1000)
    with pytest.raises(MemoryError, match="one sequence"):
        m.encode(texts[:64])
    api.call("DebugOOMAfter", m._handle, 0)
    again = m.encode(texts, batch_size=512)
    assert _close(again, want) >= 0.9999 and np.isfinite(again).all()
    m.close()


def test_real_oom_memoryerror_then_split(minilm_dir, corpus):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here: it is what takes the GPU memory")
    texts = _texts(corpus, 2000)
    m = _cuda_encoder(minilm_dir)
    want = m.encode(texts, batch_size=2048)
    # An injected failure frees the activation workspace (Trim): the next encode allocates anew.
    api.call("DebugOOMAfter", m._handle, 1000)
    with pytest.raises(MemoryError):
        m.encode(texts[:64])
    api.call("DebugOOMAfter", m._handle, 0)
    hog = None
    try:
        # 1. All but 2 MB taken (torch allocates in 2 MB pages): the 64 texts' batch fails in
        # cuMemAlloc and is split down to single sequences (about 1 MB of workspace each), or
        # even those fail (MemoryError). Either way nothing else: no crash, no wrong vectors.
        free, _ = torch.cuda.mem_get_info()
        hog = torch.empty(max(free - (2 << 20), 0), dtype=torch.uint8, device="cuda")
        try:
            few = m.encode(texts[:64])
        except MemoryError:
            few = None
        if few is not None:
            assert _close(few, want[:64]) >= 0.9999, "results of single-sequence batches differ"
        del hog
        hog = None
        torch.cuda.empty_cache()
        # 2. About 256 MB left: a few thousand tokens of workspace fit, a 65,536-token batch
        # (~0.6 GB of activations for MiniLM) does not: the big batches are split.
        free, _ = torch.cuda.mem_get_info()
        hog = torch.empty(max(free - (256 << 20), 0), dtype=torch.uint8, device="cuda")
        split = m.encode(texts, batch_size=2048)
        assert np.isfinite(split).all()
    finally:
        del hog  # whatever happened, later tests get the GPU's memory back
        torch.cuda.empty_cache()
    # 3. Memory back: full-size batches, the same vectors as before any failure.
    again = m.encode(texts, batch_size=2048)
    assert _close(split, want) >= 0.9999, "results of the split run differ"
    assert _close(again, want) >= 0.9999, "results after the failures differ"
    m.close()


def test_token_budget_follows_free_memory(minilm_dir, corpus):
    # issue 9: the token budget of a GPU forward is sized from the free memory at load. With
    # about 300 MB free, a 65,536-token batch (about 0.5 GB of activations for MiniLM in float16)
    # would not fit, so a model loaded then plans smaller batches.
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here: it is what takes the GPU memory")
    import json
    import re

    def budget(m):
        notes = " ".join(json.loads(api.call("Info", m._handle))["notes"])
        found = re.search(r"batches of at most (\d+) tokens", notes)
        assert found, notes
        return int(found.group(1))

    texts = _texts(corpus, 3000)
    m = _cuda_encoder(minilm_dir)
    assert budget(m) == 65536
    want = m.encode(texts)
    m.close()  # the last holder: the next Encoder loads the model afresh
    hog = None
    try:
        free, _ = torch.cuda.mem_get_info()
        hog = torch.empty(max(free - (300 << 20), 0), dtype=torch.uint8, device="cuda")
        small = _cuda_encoder(minilm_dir)
        b = budget(small)
        got = small.encode(texts)
        small.close()
    finally:
        del hog
        torch.cuda.empty_cache()
    assert 256 <= b < 65536, b
    assert _close(got, want) >= 0.9999
