"""Weights stored as F32, F16 or BF16, and the dtype= choices for compute: a folder saved in half
precision gives exactly the vectors of the same weights converted to float32 (the conversion is
exact, the compute is float32 on the CPU), and unsupported dtype/device combinations are clear
errors."""

import numpy as np
import pytest
import tiny_models as tm

import goembed

pytest.importorskip("torch", reason="building the folders needs torch")
pytest.importorskip("safetensors")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tm.build("bge", tmp_path_factory.mktemp("dtypes") / "fp32")


@pytest.fixture(scope="module")
def texts(corpus):
    return [r["text"] for r in corpus[:120]] + ["", "café 中文 🙂", "word " * 400]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_weights_equal_their_float32_conversion(base, tmp_path, texts, dtype):
    half = tm.with_weights_dtype(base, tmp_path / dtype, dtype)
    ref = tm.with_weights_dtype(base, tmp_path / (dtype + "-as-fp32"), dtype, round_trip=True)
    from safetensors import safe_open

    with safe_open(half / "model.safetensors", "pt") as f:
        stored = {str(f.get_tensor(k).dtype).removeprefix("torch.") for k in f.keys()}
    assert stored == {dtype}, f"the folder should hold {dtype} weights, holds {stored}"
    g_half, g_ref, g_base = (goembed.Encoder(str(d), device="cpu") for d in (half, ref, base))
    for kw in ({}, {"prompt_name": "query"}):
        a, b = g_half.encode(texts, **kw), g_ref.encode(texts, **kw)
        assert np.array_equal(a, b), f"{dtype} weights: max diff {np.abs(a - b).max():.2e} from their float32 conversion"
    # Rounding the weights changed them (the check above is not comparing a model with itself).
    assert not np.array_equal(g_half.encode(texts), g_base.encode(texts))
    for g in (g_half, g_ref, g_base):
        g.close()


def test_half_weights_against_sentence_transformers(base, tmp_path, texts):
    # sentence-transformers in float32 on the rounded weights is the reference for a float16 folder.
    from sentence_transformers import SentenceTransformer

    half = tm.with_weights_dtype(base, tmp_path / "f16", "float16")
    ref = tm.with_weights_dtype(base, tmp_path / "f16-as-fp32", "float16", round_trip=True)
    ours = goembed.Encoder(str(half), device="cpu").encode(texts)
    theirs = SentenceTransformer(str(ref), device="cpu").encode(texts)
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() >= 0.99999, f"cosine {cos.min():.7f}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "tfloat32"])
def test_cpu_computes_in_float32_only(base, dtype):
    with pytest.raises(ValueError, match=r"CPU computes in float32"):
        goembed.Encoder(str(base), device="cpu", dtype=dtype)


def test_auto_device_with_a_gpu_dtype(base):
    try:
        g = goembed.Encoder(str(base), device="auto", dtype="float16")
    except ValueError as e:
        # No GPU here: the error leads with the cause, then says why each GPU backend refused.
        msg = str(e)
        assert msg.startswith('dtype "float16" needs a GPU') and "cuda" in msg and "float32" in msg, msg
    else:
        assert g.device != "cpu", "float16 must never run on the CPU backend"
        g.close()


@pytest.mark.parametrize("given,name", [("fp32", "float32"), ("float32", "float32"), (None, "auto"), ("auto", "auto")])
def test_dtype_spellings(base, given, name):
    g = goembed.Encoder(str(base), device="cpu", dtype=given)
    assert g.device == "cpu"
    g.close()


def test_torch_dtype_accepted(base):
    import torch

    goembed.Encoder(str(base), device="cpu", dtype=torch.float32).close()
    with pytest.raises(ValueError, match="CPU computes in float32"):
        goembed.Encoder(str(base), device="cpu", dtype=torch.float16)


@pytest.mark.parametrize("bad", ["fp8", "int8", "float64", "Float32"])
def test_unknown_dtype_lists_choices(base, bad):
    with pytest.raises(ValueError, match="auto, float32, float16, bfloat16, tfloat32"):
        goembed.Encoder(str(base), device="cpu", dtype=bad)


@pytest.mark.parametrize("weights", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_gpu_compute_dtypes_with_each_weight_dtype(base, tmp_path, texts, weights, dtype):
    # On a GPU every compute dtype reads every stored dtype; the reference is goembed's CPU
    # float32 on the same (converted) weights. Skips without a usable CUDA device, unless
    # GOEMBED_REQUIRE_CUDA=1 (the GPU machine), as tests/test_cuda_parity.py does.
    import os

    from test_cuda_parity import _NO_CUDA

    folder = base if weights == "float32" else tm.with_weights_dtype(base, tmp_path / weights, weights)
    try:
        g = goembed.Encoder(str(folder), device="cuda", dtype=dtype)
    except Exception as e:  # noqa: BLE001 - the message decides
        if any(s in str(e) for s in _NO_CUDA) and os.environ.get("GOEMBED_REQUIRE_CUDA") != "1":
            pytest.skip(f"no usable CUDA device: {e}")
        raise
    ref = goembed.Encoder(str(folder), device="cpu").encode(texts)
    ours = g.encode(texts)
    g.close()
    assert np.isfinite(ours).all()
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= (0.99999 if dtype == "float32" else 0.999), f"cosine {cos.min():.6f}"
