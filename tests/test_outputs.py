"""encode's output options on all-MiniLM-L6-v2 (a Normalize module): shapes, dtypes, the order of
truncation and normalisation, quantisation against sentence-transformers' quantize_embeddings,
torch outputs, and the errors. test_families.py compares each option with sentence-transformers'
own encode."""

import builtins

import numpy as np
import pytest

import goembed


@pytest.fixture(scope="module")
def texts(corpus):
    return [r["text"] for r in corpus[:130]]


def test_float32_fast_path_unchanged(model, texts):
    out = model.encode(texts)
    assert type(out) is np.ndarray and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.array_equal(out, model.encode(texts, precision="float32", truncate_dim=None, convert_to_numpy=True))
    assert np.array_equal(out, model.encode(texts, precision=None))


@pytest.mark.parametrize("precision,dtype,width", [
    ("int8", np.int8, 384), ("uint8", np.uint8, 384), ("binary", np.int8, 48), ("ubinary", np.uint8, 48)])
def test_precision_shapes_and_values(model, texts, precision, dtype, width):
    from sentence_transformers.util import quantize_embeddings

    q = model.encode(texts, precision=precision)
    assert q.dtype == dtype and q.shape == (len(texts), width)
    assert np.array_equal(q, quantize_embeddings(model.encode(texts), precision=precision))
    one = model.encode(texts[0], precision=precision)
    assert one.dtype == dtype and one.shape == (width,)
    empty = model.encode([], precision=precision)
    assert empty.dtype == dtype and empty.shape == (0, width)


def test_binary_bits_by_hand(model, texts):
    f = model.encode(texts, truncate_dim=20)  # 20 bits: 3 bytes, the last one padded with zeros
    ub = model.encode(texts, truncate_dim=20, precision="ubinary")
    b = model.encode(texts, truncate_dim=20, precision="binary")
    assert ub.shape == b.shape == (len(texts), 3)
    for i in range(3):
        v = f[i] > 0
        want = [int("".join("1" if x else "0" for x in v[k:k + 8]).ljust(8, "0"), 2) for k in (0, 8, 16)]
        assert ub[i].tolist() == want
        assert b[i].tolist() == [w - 128 for w in want]


def test_int8_buckets_by_hand(model, texts):
    f = model.encode(texts)
    u = model.encode(texts, precision="uint8").astype(int)
    lo, hi = f.min(0), f.max(0)
    assert (u[f.argmin(0), np.arange(384)] == 0).all()  # each dimension's minimum is bucket 0
    assert (u[f.argmax(0), np.arange(384)] >= 254).all()  # and its maximum the top bucket
    mid = (f - lo) / ((hi - lo) / 255)
    assert (np.abs(u - mid) <= 1).all()
    assert np.array_equal(model.encode(texts, precision="int8").astype(int), u - 128)


def test_truncate_order_with_a_normalize_module(model, texts):
    # all-MiniLM-L6-v2 ends in Normalize: the full vector is normalised, then truncated (norm < 1),
    # then normalised again only when asked.
    full = model.encode(texts)
    t = model.encode(texts, truncate_dim=64)
    assert np.array_equal(t, full[:, :64])
    assert (np.linalg.norm(t, axis=1) < 0.99).all()
    tn = model.encode(texts, truncate_dim=64, normalize_embeddings=True)
    assert np.allclose(tn, full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True), atol=1e-6)


def test_truncate_dim_on_the_encoder(minilm_dir, texts, model):
    m = goembed.Encoder(minilm_dir, device="cpu", truncate_dim=32)
    assert m.get_sentence_embedding_dimension() == 32 and m.truncate_dim == 32
    assert np.array_equal(m.encode(texts), model.encode(texts)[:, :32])
    assert m.encode(texts, truncate_dim=8).shape == (len(texts), 8)
    assert m.encode(texts, truncate_dim=1000).shape == (len(texts), 384)  # a width over 384 keeps all
    with m.truncate_embeddings(None):
        assert m.encode(texts[:2]).shape == (2, 384) and m.get_sentence_embedding_dimension() == 384
    assert m.encode(texts[:2]).shape == (2, 32)
    m.close()
    for bad in (0, -1, 2.5, "8", True):
        with pytest.raises(ValueError, match="truncate_dim"):
            goembed.Encoder(minilm_dir, device="cpu", truncate_dim=bad)
        with pytest.raises(ValueError, match="truncate_dim"):
            model.encode(["a"], truncate_dim=bad)


def test_precision_errors_list_choices(model):
    for bad in ("fp8", "float16", "INT8", "bits"):
        with pytest.raises(ValueError, match="float32, int8, uint8, binary, ubinary"):
            model.encode(["a"], precision=bad)
    for method in (model.encode_query, model.encode_document):
        with pytest.raises(ValueError, match="float32, int8, uint8, binary, ubinary"):
            method(["a"], precision="fp8")


def test_encode_query_and_document_pass_options(model, texts):
    for method in (model.encode_query, model.encode_document):
        assert np.array_equal(method(texts, precision="ubinary", truncate_dim=64),
                              model.encode(texts, precision="ubinary", truncate_dim=64))
        t = method(texts[:3], convert_to_tensor=True, normalize_embeddings=True, truncate_dim=10)
        assert tuple(t.shape) == (3, 10)


def test_torch_outputs(model, texts):
    torch = pytest.importorskip("torch", reason="torch is installed by make setup; this guards a bare install")
    t = model.encode(texts, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and tuple(t.shape) == (len(texts), 384)
    rows = model.encode(texts, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == len(texts) and all(isinstance(r, torch.Tensor) for r in rows)
    assert torch.equal(torch.stack(rows), t)
    # convert_to_tensor wins over convert_to_numpy, as in sentence-transformers.
    assert isinstance(model.encode(texts[:2], convert_to_tensor=True, convert_to_numpy=True), torch.Tensor)
    q = model.encode(texts, convert_to_tensor=True, precision="int8")
    assert q.dtype == torch.int8
    assert model.encode([], convert_to_numpy=False) == []


def test_torch_outputs_without_torch(model, monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ImportError, match="convert_to_tensor=True .*torch"):
        model.encode(["a"], convert_to_tensor=True)
    with pytest.raises(ImportError, match="convert_to_numpy=False .*torch"):
        model.encode(["a"], convert_to_numpy=False)
    assert model.encode(["a"]).shape == (1, 384)  # numpy needs no torch


def test_quantize_warns_on_few_embeddings(model, caplog):
    with caplog.at_level("WARNING", logger="goembed"):
        model.encode(["a", "b"], precision="uint8")
    assert any("quantization buckets based on 2 embeddings" in r.message for r in caplog.records)
