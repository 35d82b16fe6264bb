"""Encoder.encode_iter: a stream of texts in, rows out in input order, memory bounded by a chunk."""

import numpy as np
import pytest


def _counting(texts, pulled):
    """A generator over texts that counts how many were pulled."""
    for t in texts:
        pulled[0] += 1
        yield t


def test_equals_encode_on_the_list(model, corpus):
    # 300 texts at batch_size 32 are two default chunks of 256 (the last one partial), the
    # same chunks encode() hands to Go: so the rows must be bitwise those of encode().
    texts = [r["text"] for r in corpus[:300]]
    rows = list(model.encode_iter(t for t in texts))
    assert len(rows) == len(texts)
    assert all(r.shape == (384,) and r.dtype == np.float32 for r in rows)
    assert np.array_equal(np.stack(rows), model.encode(texts))


def test_lazy_and_options(model, corpus):
    texts = [r["text"] for r in corpus[:45]]
    pulled = [0]
    it = model.encode_iter(_counting(texts, pulled), batch_size=4, chunk_size=10,
                           normalize_embeddings=True, truncate_dim=64)
    assert pulled[0] == 0  # nothing is pulled before the first row is asked for
    first = next(it)
    assert pulled[0] == 10, f"pulled {pulled[0]} texts for the first row with chunk_size=10"
    rows = [first] + list(it)
    assert pulled[0] == 45 and len(rows) == 45
    # each chunk is encode() on that chunk, with the same options
    want = np.concatenate([model.encode(texts[s:s + 10], batch_size=4, normalize_embeddings=True, truncate_dim=64)
                           for s in range(0, 45, 10)])
    assert np.array_equal(np.stack(rows), want)
    # against encode() on the whole list the batches differ: float noise only
    whole = model.encode(texts, batch_size=4, normalize_embeddings=True, truncate_dim=64)
    cos = (np.stack(rows) * whole).sum(1)  # unit vectors
    assert cos.min() >= 0.999999, cos.min()


def test_bad_item_names_its_index_in_the_stream(model):
    def gen():
        for i in range(30):
            yield 13 if i == 23 else f"text number {i}"

    it = model.encode_iter(gen(), chunk_size=10)
    got = [next(it) for _ in range(20)]  # the first two chunks are fine
    assert len(got) == 20
    with pytest.raises(TypeError, match=r"sentences\[23\] \(item 23 of the stream\) must be str, got int"):
        next(it)


@pytest.mark.parametrize("args,kwargs,kind,match", [
    (("one text",), {}, TypeError, "iterable of str"),
    ((42,), {}, TypeError, "int"),
    ((["a"],), {"chunk_size": 0}, ValueError, "chunk_size"),
    ((["a"],), {"batch_size": -1}, ValueError, "batch_size"),
    ((["a"],), {"normalise": True}, ValueError, "normalise"),
])
def test_bad_arguments_fail_at_the_call(model, args, kwargs, kind, match):
    with pytest.raises(kind, match=match):
        model.encode_iter(*args, **kwargs)


def test_empty_stream(model):
    assert list(model.encode_iter(iter([]))) == []
