"""E5, BGE and GTE shaped models (random weights, built by tests/tiny_models.py as real
sentence-transformers v6 folders) in goembed and in sentence-transformers, in one process:
vectors with every way of giving a prompt, nearest neighbours, legacy and v6 folders of the same
model, and each output option of encode (truncate_dim, precision, torch outputs) against
sentence-transformers' own output on the same input."""

import numpy as np
import pytest
import tiny_models as tm

import goembed

torch = pytest.importorskip("torch", reason="the reference (sentence-transformers) needs torch")
from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.util import quantize_embeddings as st_quantize  # noqa: E402

# Odd and long inputs: empty, whitespace, accents, CJK, emoji, and two texts over 256 tokens
# (with a prompt, the prompt's tokens count toward the 256, as in sentence-transformers).
ODD = ["", "   ", "café naïve Ångström", "中文 日本語 한국어", "🙂 emoji 👍🏽", "word " * 400,
       "antidisestablishmentarianism " * 100, "[CLS] [SEP] literal specials", "UPPER lower MiXeD"]


class Family:
    def __init__(self, name, folder):
        self.name, self.folder = name, folder
        self.g = goembed.Encoder(str(folder), device="cpu")
        self.st = SentenceTransformer(str(folder), device="cpu")
        self._floats = {}

    def floats(self, who, texts):
        """encode(texts) by goembed ("g") or sentence-transformers ("st"), computed once."""
        key = (who, tuple(texts))
        if key not in self._floats:
            self._floats[key] = getattr(self, who).encode(texts)
        return self._floats[key]


@pytest.fixture(scope="module", params=list(tm.FAMILIES))
def fam(request, tmp_path_factory):
    f = Family(request.param, tm.build(request.param, tmp_path_factory.mktemp(request.param) / "model"))
    yield f
    f.g.close()


@pytest.fixture(scope="module")
def texts(corpus):
    return [r["text"] for r in corpus[:150]] + [r["query"] for r in corpus[:40]] + ODD


def cosines(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def assert_close(ours, theirs, texts, what, min_cos=0.99999):
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs {theirs.shape}"
    assert ours.dtype == np.float32
    cos = cosines(ours, theirs)
    worst = int(cos.argmin())
    assert cos.min() >= min_cos, f"{what}: cosine {cos.min():.7f} for text {worst}: {texts[worst][:60]!r}"
    # The norms agree too (cosine alone would hide a missing or extra normalisation).
    n1, n2 = np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1)
    assert np.allclose(n1, n2, rtol=1e-5, atol=1e-6), f"{what}: norms differ by up to {np.abs(n1 - n2).max():.2e}"


def test_configuration_read_alike(fam):
    assert fam.g.prompts == fam.st.prompts
    assert fam.g.default_prompt_name == fam.st.default_prompt_name
    assert fam.g.max_seq_length == fam.st.max_seq_length == 256
    assert fam.g.get_sentence_embedding_dimension() == fam.st.get_embedding_dimension() == tm.FAMILIES[fam.name]["hidden"]
    info = fam.g._info
    assert info["pooling"] == tm.FAMILIES[fam.name]["pooling"]
    assert info["normalize"] == tm.FAMILIES[fam.name]["normalize"]


def test_token_ids_with_prompts(fam, texts):
    for prompt in [""] + [p for p in fam.st.prompts.values() if p]:
        ours = fam.g.tokenize(texts, prompt=prompt)
        feats = fam.st.tokenize([prompt + t for t in texts])
        theirs = [[i for i, m in zip(ids, mask) if m] for ids, mask in
                  zip(feats["input_ids"].tolist(), feats["attention_mask"].tolist())]
        bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        assert not bad, f"prompt {prompt!r}: token ids differ for {texts[bad[0]][:60]!r}"


def test_vectors_with_every_kind_of_prompt(fam, texts):
    g, st = fam.g, fam.st
    calls = [("encode", {}), ("encode", {"prompt": "custom prefix: "}),
             ("encode", {"normalize_embeddings": True}), ("encode_query", {}), ("encode_document", {}),
             ("encode_query", {"prompt_name": "document"})]
    calls += [("encode", {"prompt_name": name}) for name in st.prompts]
    for method, kw in calls:
        ours = getattr(g, method)(texts, **kw)
        theirs = getattr(st, method)(texts, convert_to_numpy=True, **kw)
        assert_close(ours, theirs, texts, f"{fam.name} {method}({kw})")
    # A prompt must change the vectors (or the checks above would pass with prompts ignored).
    for name, prompt in st.prompts.items():
        if prompt:
            assert not np.allclose(g.encode(texts[:5], prompt_name=name), g.encode(texts[:5]), atol=1e-4)


def test_same_neighbours(fam, corpus):
    passages = [r["text"] for r in corpus[:1500]]
    queries = [r["query"] for r in corpus[:50]]
    ours_p, ours_q = fam.g.encode_document(passages, batch_size=64), fam.g.encode_query(queries)
    st_p = fam.st.encode_document(passages, batch_size=64, convert_to_numpy=True)
    st_q = fam.st.encode_query(queries, convert_to_numpy=True)
    assert_close(ours_p, st_p, passages, "passages")
    assert_close(ours_q, st_q, queries, "queries")

    def unit(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    ours_scores, st_scores = unit(ours_q) @ unit(ours_p).T, unit(st_q) @ unit(st_p).T
    ours_top = np.argsort(-ours_scores, axis=1, kind="stable")[:, :10]
    st_top = np.argsort(-st_scores, axis=1, kind="stable")[:, :10]
    for q in range(len(queries)):
        # Ranks may differ only between passages whose reference scores tie within 1e-5
        # (the corpus has duplicate texts), and then the sets still agree up to such ties.
        for i, (x, y) in enumerate(zip(ours_top[q], st_top[q])):
            if x != y:
                assert abs(st_scores[q, x] - st_scores[q, y]) < 1e-5, \
                    f"{fam.name} query {q} ({queries[q]!r}): rank {i} is passage {x}, reference {y}"


def test_default_prompt_name(tmp_path, texts):
    d = tm.build("e5", tmp_path / "e5-default", default_prompt_name="query")
    g, st = goembed.Encoder(str(d), device="cpu"), SentenceTransformer(str(d), device="cpu")
    assert g.default_prompt_name == st.default_prompt_name == "query"
    assert_close(g.encode(texts), st.encode(texts), texts, "default prompt")
    assert np.array_equal(g.encode(texts[:20]), g.encode(texts[:20], prompt="query: "))
    # An explicit prompt or prompt_name replaces the default, as in sentence-transformers.
    assert_close(g.encode(texts, prompt=""), st.encode(texts, prompt=""), texts, "prompt='' over the default")
    assert_close(g.encode(texts, prompt_name="passage"), st.encode(texts, prompt_name="passage"), texts, "passage")
    g.close()


def test_legacy_and_v6_folders_identical(fam, tmp_path, texts):
    # RELIABILITY 37: the same model saved in both formats gives the same vectors, bit for bit.
    legacy = tm.to_legacy(fam.folder, tmp_path / "legacy")
    g = goembed.Encoder(str(legacy), device="cpu")
    for key in ("pooling", "normalize", "max_seq_length", "dim", "prompts", "include_prompt"):
        assert g._info[key] == fam.g._info[key], key
    for kw in ({}, {"prompt_name": "query"}, {"normalize_embeddings": True}):
        assert np.array_equal(g.encode(texts, **kw), fam.g.encode(texts, **kw)), kw
    # The rewritten folder is a faithful legacy folder: sentence-transformers reads it alike.
    st_legacy = SentenceTransformer(str(legacy), device="cpu")
    assert_close(st_legacy.encode(texts), fam.st.encode(texts), texts, "ST legacy vs v6", min_cos=0.999999)
    g.close()


# --- output options against sentence-transformers ------------------------------------------------

@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_matches_sentence_transformers(fam, texts, precision):
    ours = fam.g.encode(texts, precision=precision)
    ours_f = fam.floats("g", texts)
    theirs = fam.st.encode(texts, precision=precision)
    theirs_f = fam.floats("st", texts)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, (ours.dtype, theirs.dtype, ours.shape, theirs.shape)
    # Same float input, same answer, bit for bit: sentence-transformers' quantize_embeddings on
    # goembed's float32 output.
    assert np.array_equal(ours, st_quantize(ours_f, precision=precision))
    # Against sentence-transformers' own encode: the floats differ by ~1e-7, so an element may
    # only differ where the reference float sits on a bucket edge (int8) or at zero (binary).
    if precision.endswith("binary"):
        def bits(q):
            packed = q if precision == "ubinary" else (q.astype(np.int16) + 128).astype(np.uint8)
            return np.unpackbits(packed, axis=1)[:, :theirs_f.shape[1]]

        assert np.array_equal(bits(theirs), theirs_f > 0)  # the format: sign bits, high bit first
        differ = bits(ours) != bits(theirs)
        assert np.all(np.abs(theirs_f[differ]) < 1e-5), f"bits differ away from zero: {theirs_f[differ][:5]}"
    else:
        lo, hi = theirs_f.min(0), theirs_f.max(0)
        steps = np.where((hi - lo) / 255 == 0, 1, (hi - lo) / 255)
        pos = (theirs_f - lo) / steps
        differ = ours != theirs
        gap = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        assert gap.max() <= 1, f"buckets differ by {gap.max()}"
        edge = np.abs(pos - np.round(pos))
        assert np.all(edge[differ] < 1e-2), f"buckets differ away from an edge: {edge[differ][:5]}"
    assert differ.mean() < 1e-3, f"{differ.sum()} of {differ.size} elements differ"
    # One text: its own range is empty, every step 1, as in sentence-transformers.
    assert np.array_equal(fam.g.encode(texts[0], precision=precision), fam.st.encode(texts[0], precision=precision))


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("dim", [16, 48])
def test_truncate_dim_matches_sentence_transformers(fam, texts, dim, normalize):
    # sentence-transformers runs the model's Normalize module on the full vector, truncates,
    # then normalises again only if normalize_embeddings: the norms below tell the orders apart.
    ours = fam.g.encode(texts, truncate_dim=dim, normalize_embeddings=normalize)
    theirs = fam.st.encode(texts, truncate_dim=dim, normalize_embeddings=normalize)
    assert ours.shape == (len(texts), dim)
    assert_close(ours, theirs, texts, f"truncate_dim={dim} normalize={normalize}")


def test_truncate_dim_on_the_encoder(fam, texts):
    g = goembed.Encoder(str(fam.folder), device="cpu", truncate_dim=24)
    st = SentenceTransformer(str(fam.folder), device="cpu", truncate_dim=24)
    assert g.get_sentence_embedding_dimension() == st.get_embedding_dimension() == 24
    assert_close(g.encode_query(texts), st.encode_query(texts), texts, "Encoder(truncate_dim=24)")
    # The call's truncate_dim wins; a larger one than the model's width keeps every dimension.
    assert_close(g.encode(texts, truncate_dim=8), st.encode(texts, truncate_dim=8), texts, "call truncate_dim")
    full = fam.g.get_sentence_embedding_dimension()
    assert g.encode(texts[:3], truncate_dim=10 * full).shape == st.encode(texts[:3], truncate_dim=10 * full).shape
    with g.truncate_embeddings(12), st.truncate_embeddings(12):
        assert_close(g.encode(texts), st.encode(texts), texts, "truncate_embeddings(12)")
    assert g.encode(texts[:2]).shape == (2, 24)
    # Truncation then quantisation, as sentence-transformers orders them.
    assert np.array_equal(g.encode(texts, precision="ubinary"), st_quantize(g.encode(texts), "ubinary"))
    assert g.encode(texts, precision="ubinary").shape == st.encode(texts, precision="ubinary").shape == (len(texts), 3)
    g.close()


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_torch_outputs_match_sentence_transformers(fam, texts, precision):
    kw = {"precision": precision}
    t_ours, t_st = fam.g.encode(texts, convert_to_tensor=True, **kw), fam.st.encode(texts, convert_to_tensor=True, **kw)
    assert isinstance(t_ours, torch.Tensor) and t_ours.dtype == t_st.dtype and t_ours.shape == t_st.shape
    l_ours, l_st = fam.g.encode(texts, convert_to_numpy=False, **kw), fam.st.encode(texts, convert_to_numpy=False, **kw)
    assert isinstance(l_ours, list) and len(l_ours) == len(l_st) == len(texts)
    assert all(isinstance(a, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape for a, b in zip(l_ours, l_st))
    one_ours, one_st = fam.g.encode(texts[0], convert_to_tensor=True, **kw), fam.st.encode(texts[0], convert_to_tensor=True, **kw)
    assert one_ours.shape == one_st.shape and one_ours.dtype == one_st.dtype
    one_ours = fam.g.encode(texts[0], convert_to_numpy=False, **kw)
    one_st = fam.st.encode(texts[0], convert_to_numpy=False, **kw)
    assert isinstance(one_ours, torch.Tensor) and one_ours.shape == one_st.shape
    if precision == "float32":
        assert_close(t_ours.numpy(), t_st.cpu().numpy(), texts, "convert_to_tensor")
        assert_close(torch.stack(l_ours).numpy(), torch.stack(l_st).cpu().numpy(), texts, "convert_to_numpy=False")
    else:
        assert np.array_equal(t_ours.numpy(), fam.g.encode(texts, **kw))
        assert np.array_equal(torch.stack(l_ours).numpy(), fam.g.encode(texts, **kw))
