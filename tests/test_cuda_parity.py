"""goembed on CUDA against sentence-transformers on the same all-MiniLM-L6-v2 weights, in one
process: per-text cosine for float32, float16 and bfloat16, the same nearest neighbours, a
padding-heavy batch, batch-size invariance and repeatability (CUDA graphs are replayed here).

Every test skips, saying why, when goembed cannot open a CUDA device (CI has no GPU); with
GOEMBED_REQUIRE_CUDA=1 that is a failure instead, so a run on the GPU machine cannot pass by
skipping. The reference is sentence-transformers in float32 (eager attention, no TF32) on the
GPU when torch sees one, else on the CPU ($GOEMBED_TEST_ST_DEVICE overrides). Where the model
folder holds float16 weights ($GOEMBED_TEST_MINILM, the copy carried to the GPU machine), both
engines read those same values: sentence-transformers upcasts them to float32, goembed too.
"""

import json
import os

import numpy as np
import pytest

from test_parity import HARD

# Ceilings of 1 - cosine per text, by goembed dtype (the thresholds).
MIN_COS = {"float32": 0.99999, "float16": 0.999, "bfloat16": 0.999}

# Errors of backend.Open("cuda") that mean "no usable device or library here", not a bug.
_NO_CUDA = ("CUDA driver:", "no usable GPU", "no GPU found", "cuBLASLt:", "NVRTC:")


def _report(**fields):
    """Print a figure, and append it to $GOEMBED_PARITY_LOG (JSON lines) when set."""
    print("PARITY", json.dumps(fields))
    if os.environ.get("GOEMBED_PARITY_LOG"):
        with open(os.environ["GOEMBED_PARITY_LOG"], "a") as f:
            f.write(json.dumps(fields) + "\n")


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def cuda_model(minilm_dir):
    """cuda_model(dtype) -> goembed.Encoder on CUDA, opened once per dtype."""
    import goembed

    opened = {}

    def get(dtype):
        if dtype not in opened:
            try:
                opened[dtype] = goembed.Encoder(minilm_dir, device="cuda", dtype=dtype)
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
    return {"texts": passages[:1000] + HARD, "passages": passages, "queries": queries}


@pytest.fixture(scope="module")
def reference(cuda_model, minilm_dir, data):
    """sentence-transformers float32 embeddings of every text the tests use."""
    import torch
    from sentence_transformers import SentenceTransformer

    device = os.environ.get("GOEMBED_TEST_ST_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    st = SentenceTransformer(minilm_dir, device=device, model_kwargs={"attn_implementation": "eager"})
    st = st.to(torch.float32)  # a float16 folder loads as float16: upcast, the values stay the same
    assert next(st.parameters()).dtype == torch.float32
    enc = lambda xs: st.encode(xs, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)  # noqa: E731
    out = {k: enc(v) for k, v in data.items()}
    del st
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


@pytest.mark.parametrize("dtype", list(MIN_COS))
def test_vectors_match(cuda_model, reference, data, dtype):
    m = cuda_model(dtype)
    texts = data["texts"]
    ours = m.encode(texts, batch_size=64, normalize_embeddings=True)
    theirs = reference["texts"]
    assert ours.shape == theirs.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.isfinite(ours).all()
    cos = _cos(ours, theirs)
    worst = int(cos.argmin())
    _report(test="vectors", dtype=dtype, texts=len(texts), min_cos=float(cos.min()), mean_cos=float(cos.mean()),
            max_abs_diff=float(np.abs(ours - theirs).max()), worst_text=worst)
    assert cos.min() >= MIN_COS[dtype], f"{dtype}: cosine {cos.min():.7f} for text {worst}: {texts[worst][:80]!r}"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_same_neighbours(cuda_model, reference, data, dtype):
    m = cuda_model(dtype)
    p = m.encode(data["passages"], batch_size=64)
    q = m.encode(data["queries"])
    ours = np.argsort(-(q @ p.T), axis=1)[:, :10]
    theirs = np.argsort(-(reference["queries"] @ reference["passages"].T), axis=1)[:, :10]
    same_order = sum(list(a) == list(b) for a, b in zip(ours, theirs))
    same_set = sum(set(a) == set(b) for a, b in zip(ours, theirs))
    _report(test="neighbours", dtype=dtype, queries=len(q), passages=len(p), same_top10_set=same_set,
            same_top10_order=same_order)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert set(a) == set(b), f"{dtype} query {i} ({data['queries'][i]!r}): {list(a)} vs {list(b)}"
    if dtype == "float32":
        assert same_order == len(q), "float32: the top-10 sets agree but their order differs"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_padding_heavy_batch(cuda_model, dtype):
    """One sequence of 256 tokens and 31 of one word in one forward: finite, and within the
    half-precision ceiling of the float32 result (RELIABILITY.md 23)."""
    texts = ["word " * 400] + [f"w{i}" for i in range(31)]
    half = cuda_model(dtype).encode(texts, batch_size=32)
    full = cuda_model("float32").encode(texts, batch_size=32)
    assert np.isfinite(half).all()
    cos = _cos(half, full)
    _report(test="padding_heavy", dtype=dtype, min_cos=float(cos.min()))
    assert cos.min() >= MIN_COS[dtype], f"{dtype}: cosine {cos.min():.6f} at {int(cos.argmin())}"


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_batch_size_invariance(cuda_model, data, dtype):
    """Batches of other sizes land in other shape buckets (other CUDA graphs, other padding):
    the vectors stay within rounding, and the same call twice is bitwise equal."""
    m = cuda_model(dtype)
    texts = data["texts"][:200] + HARD[:20]
    ref = m.encode(texts, batch_size=32)
    floor = 0.99999 if dtype == "float32" else 0.9999
    worst = {}
    for bs in (1, 7, 256):
        got = m.encode(texts, batch_size=bs)
        assert np.isfinite(got).all()
        worst[bs] = float(_cos(got, ref).min())
    one = np.stack([m.encode(t) for t in texts[:20]])
    worst["one_by_one"] = float(_cos(one, ref[:20]).min())
    _report(test="batch_invariance", dtype=dtype, min_cos=worst)
    for bs, c in worst.items():
        assert c >= floor, f"{dtype} batch_size={bs}: cosine {c}"
    assert np.array_equal(m.encode(texts, batch_size=32), ref), "same call twice is not bitwise equal"
