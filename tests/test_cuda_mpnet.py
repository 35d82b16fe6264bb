"""goembed on CUDA against sentence-transformers on the same all-mpnet-base-v2 weights (MPNet's
relative position bias: attention_bias_* and attention_mma_bias_* kernels), in one process:
per-text cosine for float32, float16 and bfloat16, the same nearest neighbours, a padding-heavy
batch, batch-size invariance and repeatability (CUDA graphs are replayed here).

As in test_cuda_parity.py, every test skips, saying why, when goembed cannot open a CUDA device
(CI has no GPU); with GOEMBED_REQUIRE_CUDA=1 that is a failure instead. The reference is
sentence-transformers in float32 (eager attention, no TF32) on the GPU when torch sees one,
else on the CPU ($GOEMBED_TEST_ST_DEVICE overrides). The model folder is $GOEMBED_TEST_MPNET or
build/models/all-mpnet-base-v2 (`make models`).
"""

import os

import numpy as np
import pytest

from test_cuda_parity import _NO_CUDA, MIN_COS, _cos, _report
from test_mpnet import SPECIALS
from test_parity import HARD


@pytest.fixture(scope="module")
def cuda_mpnet(mpnet_dir):
    """cuda_mpnet(dtype) -> goembed.Encoder on CUDA, opened once per dtype."""
    import goembed

    opened = {}

    def get(dtype):
        if dtype not in opened:
            try:
                opened[dtype] = goembed.Encoder(mpnet_dir, device="cuda", dtype=dtype)
            except Exception as e:  # noqa: BLE001 - the message decides
                if any(s in str(e) for s in _NO_CUDA) and os.environ.get("GOEMBED_REQUIRE_CUDA") != "1":
                    pytest.skip(f"no usable CUDA device: {e}")
                raise
            assert opened[dtype].device == "cuda"
        return opened[dtype]

    get("float16")  # skip the whole module early when there is no GPU
    yield get
    for m in opened.values():
        m.close()


@pytest.fixture(scope="module")
def data(corpus):
    passages = [r["text"] for r in corpus[:2000]]
    queries = [r["query"] for r in corpus[:50]]
    return {"texts": passages[:1000] + HARD + SPECIALS, "passages": passages, "queries": queries}


@pytest.fixture(scope="module")
def reference(cuda_mpnet, mpnet_dir, data):
    """sentence-transformers float32 embeddings of every text the tests use."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = os.environ.get("GOEMBED_TEST_ST_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    st = SentenceTransformer(mpnet_dir, device=device, model_kwargs={"attn_implementation": "eager"})
    st = st.to(torch.float32)
    assert next(st.parameters()).dtype == torch.float32
    enc = lambda xs: st.encode(xs, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)  # noqa: E731
    out = {k: enc(v) for k, v in data.items()}
    del st
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


@pytest.mark.parametrize("dtype", list(MIN_COS))
def test_vectors_match(cuda_mpnet, reference, data, dtype):
    m = cuda_mpnet(dtype)
    texts = data["texts"]
    ours = m.encode(texts, batch_size=64, normalize_embeddings=True)
    theirs = reference["texts"]
    assert ours.shape == theirs.shape == (len(texts), 768) and ours.dtype == np.float32
    assert np.isfinite(ours).all()
    cos = _cos(ours, theirs)
    worst = int(cos.argmin())
    _report(test="mpnet_vectors", dtype=dtype, texts=len(texts), min_cos=float(cos.min()), mean_cos=float(cos.mean()),
            max_abs_diff=float(np.abs(ours - theirs).max()), worst_text=worst)
    assert cos.min() >= MIN_COS[dtype], f"{dtype}: cosine {cos.min():.7f} for text {worst}: {texts[worst][:80]!r}"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_same_neighbours(cuda_mpnet, reference, data, dtype):
    m = cuda_mpnet(dtype)
    p = m.encode(data["passages"], batch_size=64)
    q = m.encode(data["queries"])
    ours = np.argsort(-(q @ p.T), axis=1)[:, :10]
    theirs = np.argsort(-(reference["queries"] @ reference["passages"].T), axis=1)[:, :10]
    same_order = sum(list(a) == list(b) for a, b in zip(ours, theirs))
    same_set = sum(set(a) == set(b) for a, b in zip(ours, theirs))
    _report(test="mpnet_neighbours", dtype=dtype, queries=len(q), passages=len(p), same_top10_set=same_set,
            same_top10_order=same_order)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert set(a) == set(b), f"{dtype} query {i} ({data['queries'][i]!r}): {list(a)} vs {list(b)}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_padding_heavy_batch(cuda_mpnet, dtype):
    """One sequence of 384 tokens and 31 of one word in one forward: finite, and within the
    half-precision ceiling of the float32 result."""
    texts = ["word " * 500] + [f"w{i}" for i in range(31)]
    half = cuda_mpnet(dtype).encode(texts, batch_size=32)
    full = cuda_mpnet("float32").encode(texts, batch_size=32)
    assert np.isfinite(half).all()
    cos = _cos(half, full)
    _report(test="mpnet_padding_heavy", dtype=dtype, min_cos=float(cos.min()))
    assert cos.min() >= MIN_COS[dtype], f"{dtype}: cosine {cos.min():.6f} at {int(cos.argmin())}"


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_batch_size_invariance(cuda_mpnet, data, dtype):
    """Other batch sizes land in other shape buckets (other CUDA graphs, other padding): the
    vectors stay within rounding, and the same call twice is bitwise equal."""
    m = cuda_mpnet(dtype)
    texts = data["texts"][:200] + HARD[:20] + SPECIALS
    ref = m.encode(texts, batch_size=32)
    floor = 0.99999 if dtype == "float32" else 0.9999
    worst = {}
    for bs in (1, 7, 256):
        got = m.encode(texts, batch_size=bs)
        assert np.isfinite(got).all()
        worst[bs] = float(_cos(got, ref).min())
    _report(test="mpnet_batch_invariance", dtype=dtype, min_cos=worst)
    for bs, c in worst.items():
        assert c >= floor, f"{dtype} batch_size={bs}: cosine {c}"
    assert np.array_equal(m.encode(texts, batch_size=32), ref), "same call twice is not bitwise equal"
