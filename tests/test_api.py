"""The Python API: shapes, options and errors as a sentence-transformers user expects them."""

import logging
import math
import random

import numpy as np
import pytest

import goembed


def test_shapes(model):
    one = model.encode("hello")
    many = model.encode(["hello"])
    assert one.shape == (384,) and one.dtype == np.float32
    assert many.shape == (1, 384)
    assert np.array_equal(one, many[0])
    empty = model.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert model.get_sentence_embedding_dimension() == 384
    assert model.max_seq_length == 256


def test_empty_and_whitespace(model):
    e = model.encode("", normalize_embeddings=True)
    assert np.isfinite(e).all() and abs(np.linalg.norm(e) - 1) < 1e-3
    assert np.array_equal(model.encode("   \t\n "), model.encode(""))


@pytest.mark.parametrize("bad,kind,where", [
    (["a", None, "b"], TypeError, "sentences[1]"),
    (["a", float("nan")], TypeError, "sentences[1]"),
    ([b"bytes"], TypeError, "sentences[0]"),
    (None, TypeError, "None"),
    (b"bytes", TypeError, "bytes"),
    (42, TypeError, "int"),
])
def test_bad_items(model, bad, kind, where):
    with pytest.raises(kind, match=None) as e:
        model.encode(bad)
    assert where in str(e.value)


def test_none_names_type(model):
    with pytest.raises(TypeError, match="NoneType"):
        model.encode(["a", None])


def test_pairs_refused_clearly(model):
    with pytest.raises(NotImplementedError, match="pairs"):
        model.encode([("q", "d")])


def test_sequences_of_any_kind(model):
    ref = model.encode(["a", "b"])
    assert np.array_equal(model.encode(("a", "b")), ref)
    assert np.array_equal(model.encode(np.array(["a", "b"])), ref)
    assert np.array_equal(model.encode(iter(["a", "b"])), ref)


def test_surrogates(model):
    with pytest.raises(UnicodeEncodeError, match=r"sentences\[0\]"):
        model.encode(["a\ud800b"])
    assert np.array_equal(model.encode(["\ud83d\udc4d"]), model.encode(["👍"]))
    model.encode("still works")


@pytest.mark.parametrize("kwargs,msg", [
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -3}, "batch_size"),
    ({"precision": "fp8"}, "float32, int8, uint8, binary, ubinary"),
    ({"foo": 1}, "accepted keywords"),
    ({"prompt_name": "missing"}, "prompt_name"),
    ({"truncate_dim": 0}, "truncate_dim"),
])
def test_bad_arguments(model, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        model.encode(["a"], **kwargs)


def test_prompt_is_prepended(model):
    assert np.allclose(model.encode(["world"], prompt="hello "), model.encode(["hello world"]), atol=1e-6)
    with pytest.warns(UserWarning, match="precedence"):
        model.encode(["x"], prompt="p ", prompt_name="query")
    # all-MiniLM-L6-v2 saves no prompts: encode_query and encode_document equal encode.
    assert np.array_equal(model.encode_query(["x"]), model.encode(["x"]))
    assert np.array_equal(model.encode_document(["x"]), model.encode(["x"]))


def test_order_restored_and_duplicates(model, corpus):
    texts = [r["text"] for r in corpus[:100]] + ["dup text"] * 3
    ref = model.encode(texts)
    perm = list(range(len(texts)))
    random.Random(0).shuffle(perm)
    shuffled = model.encode([texts[i] for i in perm])
    # Batch membership changes with the order; BLAS rounding may then differ in the last bits.
    assert np.abs(shuffled - ref[perm]).max() <= 1e-6
    assert np.array_equal(ref[-1], ref[-2]) and np.array_equal(ref[-2], ref[-3])


def test_truncate_dim_then_normalize(model):
    full = model.encode(["hello world"])
    t = model.encode(["hello world"], truncate_dim=64, normalize_embeddings=True)
    assert t.shape == (1, 64)
    assert np.allclose(t, full[:, :64] / np.linalg.norm(full[:, :64]), atol=1e-6)


def test_similarity(model):
    e = model.encode(["The cat sits outside", "A man is playing guitar", "The new movie is awesome"])
    s = model.similarity(e, e)
    assert s.shape == (3, 3) and np.allclose(np.diag(s), 1, atol=1e-5)


def test_convert_to_tensor(model):
    torch = pytest.importorskip("torch", reason="torch is installed by make setup; this guards a bare install")
    t = model.encode(["a", "b"], convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and tuple(t.shape) == (2, 384)


def test_progress_bar(model, capsys):
    model.encode(["a"] * 3000, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "3000/3000" in err


def test_closed_encoder_raises(minilm_dir):
    m = goembed.Encoder(minilm_dir, device="cpu")
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.encode(["a"])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="searched"):
        goembed.Encoder("no-such-model-anywhere", device="cpu")
    with pytest.raises(ValueError, match="invalid model name"):
        goembed.Encoder("org/../../etc", device="cpu")
    with pytest.raises(ValueError, match="unknown device"):
        goembed.Encoder("all-MiniLM-L6-v2", device="tpu")
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ValueError, match="config.json"):
        goembed.Encoder(str(tmp_path), device="cpu")


def test_auto_device_logs_choice(caplog):
    with caplog.at_level(logging.INFO, logger="goembed"):
        m = goembed.Encoder("all-MiniLM-L6-v2", device="auto")
    assert m.device in goembed.devices()
    assert any("device:" in r.message for r in caplog.records)
    m.close()
