"""goembed on the CPU against sentence-transformers on the same all-mpnet-base-v2 weights (MPNet:
relative position bias, positions counted from padding_idx + 1), in one process: token ids,
per-text vectors, nearest neighbours. mpnet-base is five times MiniLM-L6's work per token and
this machine's CPU is small, so the texts are fewer than test_parity.py's, and both engines
embed each text once (module fixtures) for every test."""

import json

import numpy as np
import pytest

from test_parity import HARD, st_ids

N_PASSAGES = 200
N_QUERIES = 30
# MPNet's tokenizer has <s>, </s>, <pad>, <mask> as special tokens: a literal <pad> in a text
# becomes the pad id 1, which takes position 1 without advancing the count of the next tokens.
SPECIALS = ["hello <pad> world", "<pad>", "<s> </s> <mask> <pad> literal specials", "a <pad><pad> b " * 50]


def _report(**fields):
    print("PARITY", json.dumps(fields))


@pytest.fixture(scope="module")
def mpnet(mpnet_dir):
    import goembed

    m = goembed.Encoder(mpnet_dir, device="cpu")
    yield m
    m.close()


@pytest.fixture(scope="module")
def st_mpnet(mpnet_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(mpnet_dir, device="cpu")


@pytest.fixture(scope="module")
def data(corpus):
    return {"texts": [r["text"] for r in corpus[:N_PASSAGES]] + HARD + SPECIALS,
            "queries": [r["query"] for r in corpus[:N_QUERIES]]}


@pytest.fixture(scope="module")
def vectors(mpnet, st_mpnet, data):
    """Both engines' embeddings of every text, as each model's modules compute them (mean
    pooling, then Normalize)."""
    ours = {k: mpnet.encode(v, batch_size=32) for k, v in data.items()}
    theirs = {k: st_mpnet.encode(v, batch_size=32, convert_to_numpy=True) for k, v in data.items()}
    return ours, theirs


def test_config(mpnet):
    assert mpnet.max_seq_length == 384
    assert mpnet.get_sentence_embedding_dimension() == 768


def test_token_ids_identical(mpnet, st_mpnet, data):
    texts = data["texts"] + data["queries"]
    ours, theirs = mpnet.tokenize(texts), st_ids(st_mpnet, texts)
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    assert not bad, f"token ids differ for texts {bad[:10]}: {texts[bad[0]]!r}: {ours[bad[0]][:20]} vs {theirs[bad[0]][:20]}"
    assert max(len(t) for t in ours) == 384  # the long texts were truncated at 384
    assert any(1 in t[1:-1] for t in ours), "no pad id inside a text: SPECIALS no longer tests positions"


def test_vectors_match(vectors, data):
    ours, theirs = vectors[0]["texts"], vectors[1]["texts"]
    texts = data["texts"]
    assert ours.shape == theirs.shape == (len(texts), 768) and ours.dtype == np.float32
    assert np.isfinite(ours).all()
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    worst, diff = int(cos.argmin()), float(np.abs(ours - theirs).max())
    _report(test="mpnet_vectors", texts=len(texts), min_cos=float(cos.min()), mean_cos=float(cos.mean()), max_abs_diff=diff)
    assert cos.min() >= 0.99999, f"cosine {cos.min():.7f} for text {worst}: {texts[worst][:80]!r}"
    assert diff <= 1e-5, f"max abs diff {diff:.2e}"


def test_same_neighbours(vectors, data):
    n = N_PASSAGES
    ours_p, st_p = vectors[0]["texts"][:n], vectors[1]["texts"][:n]
    ours_q, st_q = vectors[0]["queries"], vectors[1]["queries"]
    st_scores = st_q @ st_p.T
    ours_top = np.argsort(-(ours_q @ ours_p.T), axis=1)[:, :10]
    st_top = np.argsort(-st_scores, axis=1)[:, :10]
    swapped = 0
    for q in range(len(ours_q)):
        a, b = list(ours_top[q]), list(st_top[q])
        assert set(a) == set(b), f"query {q} ({data['queries'][q]!r}): top-10 {a} vs {b}"
        # Order may differ only between passages whose reference scores tie within 1e-5.
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                swapped += 1
                assert abs(st_scores[q, x] - st_scores[q, y]) < 1e-5, f"query {q}: rank {i} is {x}, reference {y}"
    _report(test="mpnet_neighbours", queries=len(ours_q), passages=n, swapped=swapped)
    assert swapped <= 2, f"{swapped} rank positions differ"
