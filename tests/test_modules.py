"""The sentence-transformers modules after the transformer, read from the model folder: every
Pooling mode and their concatenation, include_prompt=False with a prompt, Dense (Tanh, Identity,
GELU) with and without Normalize, token embeddings, token_type_ids and do_lower_case. Each test
saves a tiny random-weight model with sentence-transformers' own save() and compares goembed
with sentence-transformers on it: per text cosine >= 0.99999 and max abs diff <= 1e-5 (fp32).

The same comparisons run on CUDA (fp32) where goembed can open a CUDA device; they skip, saying
why, elsewhere (GOEMBED_REQUIRE_CUDA=1 makes that a failure).
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from test_cuda_parity import _NO_CUDA

H = 32
MAX_SEQ = 64
PROMPT = "Represent this sentence for searching: "
TEXTS = [
    "hello world", "", "a", "The quick brown fox jumps over the lazy dog.",
    "Mixed CASE Words And Names like Zürich, İstanbul, ΣΟΦΙΑ", "word " * 100,
    "short", "sentence embeddings are vectors; tokens are their pieces", "x " * 40, "日本語のテキスト",
]
DEVICES = ["cpu", "cuda"]


def _modules():
    from sentence_transformers.sentence_transformer import modules

    return modules


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, minilm_dir):
    """A random BertModel (hidden 32, 2 layers, MiniLM's vocabulary and tokenizer)."""
    return _bert(tmp_path_factory.mktemp("bert"), minilm_dir)


def _bert(d, minilm_dir, cased=False):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    # one head of 32: the head dims CUDA runs are 32 and 64
    cfg = BertConfig(vocab_size=30522, hidden_size=H, num_hidden_layers=2, num_attention_heads=1,
                     intermediate_size=64, max_position_embeddings=128, type_vocab_size=2, initializer_range=0.5)
    BertModel(cfg).eval().save_pretrained(str(d), safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(os.path.join(minilm_dir, f), d / f)
    if cased:  # the same vocabulary, but a normalizer that keeps case
        for f, edit in (("tokenizer.json", lambda j: j["normalizer"].update(lowercase=False)),
                        ("tokenizer_config.json", lambda j: j.update(do_lower_case=False))):
            j = json.load(open(d / f))
            edit(j)
            json.dump(j, open(d / f, "w"))
    return d


def _save(tmp_path, bert, pooling="mean", include_prompt=True, dense=(), normalize=False, do_lower_case=False):
    """Build a SentenceTransformer from modules, save it, and load the saved folder back."""
    from sentence_transformers import SentenceTransformer

    m = _modules()
    torch.manual_seed(1)
    mods = [m.Transformer(str(bert), max_seq_length=MAX_SEQ, do_lower_case=do_lower_case),
            m.Pooling(H, pooling_mode=pooling, include_prompt=include_prompt)]
    width = mods[1].get_embedding_dimension()
    for out, act in dense:
        mods.append(m.Dense(width, out, activation_function=act))
        torch.nn.init.uniform_(mods[-1].linear.bias, -0.5, 0.5)  # the default init keeps it near 0
        width = out
    if normalize:
        mods.append(m.Normalize())
    path = tmp_path / "st"
    SentenceTransformer(modules=mods, device="cpu").save(str(path))
    return str(path), SentenceTransformer(str(path), device="cpu")


def _encoder(path, device):
    import goembed

    try:
        return goembed.Encoder(path, device=device, dtype="float32")
    except Exception as e:  # noqa: BLE001 - the message decides
        if device == "cuda" and any(s in str(e) for s in _NO_CUDA) and os.environ.get("GOEMBED_REQUIRE_CUDA") != "1":
            pytest.skip(f"no usable CUDA device: {e}")
        raise


def _close(ours, theirs, what=""):
    ours, theirs = np.atleast_2d(ours), np.atleast_2d(np.asarray(theirs, dtype=np.float32))
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs {theirs.shape}"
    assert np.isfinite(ours).all(), f"{what}: non-finite values"
    na, nb = np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1)
    cos = (ours * theirs).sum(1) / np.maximum(na * nb, 1e-30)
    cos[(na == 0) & (nb == 0)] = 1  # both zero (e.g. nothing left after the prompt)
    worst = int(cos.argmin())
    assert cos.min() >= 0.99999, f"{what}: cosine {cos.min():.7f} at row {worst}"
    # 1e-5 absolute for vectors of unit scale; the sums of mean_sqrt_len_tokens grow like
    # sqrt(tokens), and float32 rounding with them (goembed sums in float64, torch in float32).
    diff, scale = np.abs(ours - theirs).max(), max(1.0, float(np.abs(theirs).max()))
    assert diff <= 1e-5 * scale, f"{what}: max abs diff {diff:.2e} (values up to {scale:.3g})"


POOLINGS = ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", ("cls", "mean"),
            ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pooling", POOLINGS, ids=lambda p: p if isinstance(p, str) else "+".join(p))
def test_pooling_modes(tmp_path, bert_dir, pooling, device):
    path, st = _save(tmp_path, bert_dir, pooling=pooling)
    with _encoder(path, device) as enc:
        n = 1 if isinstance(pooling, str) else len(pooling)
        assert enc.get_sentence_embedding_dimension() == st.get_embedding_dimension() == n * H
        _close(enc.encode(TEXTS), st.encode(TEXTS), f"{pooling} {device}")
        _close(enc.encode(TEXTS, normalize_embeddings=True), st.encode(TEXTS, normalize_embeddings=True),
               f"{pooling} {device} normalized")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pooling", POOLINGS, ids=lambda p: p if isinstance(p, str) else "+".join(p))
def test_include_prompt_false(tmp_path, bert_dir, pooling, device):
    path, st = _save(tmp_path, bert_dir, pooling=pooling, include_prompt=False)
    with _encoder(path, device) as enc:
        ours, theirs = enc.encode(TEXTS, prompt=PROMPT), st.encode(TEXTS, prompt=PROMPT)
        _close(ours, theirs, f"{pooling} {device} include_prompt=False")
        # The prompt really is left out: with it pooled the vectors differ.
        _, st_with = _save(tmp_path / "with", bert_dir, pooling=pooling, include_prompt=True)
        if pooling != "lasttoken":  # the last token is no prompt token either way
            assert np.abs(st_with.encode(TEXTS, prompt=PROMPT) - theirs).max() > 1e-3


def test_prompt_length_matches(tmp_path, bert_dir):
    """goembed leaves out as many tokens as sentence-transformers' _get_prompt_length."""
    path, st = _save(tmp_path, bert_dir, include_prompt=False)
    n_prompt = len(st.tokenize([PROMPT])["input_ids"][0]) - 1  # [CLS] + prompt, [SEP] is special
    assert st[0]._get_prompt_length(PROMPT) == n_prompt
    with _encoder(path, "cpu") as enc:
        tokens = enc.encode(PROMPT + "hello", output_value="token_embeddings")
        assert tokens.shape[0] == n_prompt + 2  # + hello [SEP]
        # the sentence embedding with the prompt left out is the mean of the tokens after it
        _close(enc.encode(["hello"], prompt=PROMPT), tokens[n_prompt:].mean(0), "mean after the prompt")
        _close(enc.encode([PROMPT + "hello"]), tokens.mean(0), "mean of every token without a prompt")


DENSE = {
    "tanh": [(16, torch.nn.Tanh())],
    "identity": [(24, torch.nn.Identity())],
    "tanh+identity": [(48, torch.nn.Tanh()), (8, torch.nn.Identity())],
    "gelu": [(16, torch.nn.GELU())],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalize"])
@pytest.mark.parametrize("dense", list(DENSE))
def test_dense(tmp_path, bert_dir, dense, normalize, device):
    pooling = ("cls", "mean") if dense == "tanh+identity" else "mean"
    path, st = _save(tmp_path, bert_dir, pooling=pooling, dense=DENSE[dense], normalize=normalize)
    with _encoder(path, device) as enc:
        dim = DENSE[dense][-1][0]
        assert enc.get_sentence_embedding_dimension() == st.get_embedding_dimension() == dim
        ours, theirs = enc.encode(TEXTS), st.encode(TEXTS)
        _close(ours, theirs, f"dense {dense} {device}")
        if normalize:
            assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
        _close(enc.encode(TEXTS, normalize_embeddings=True), st.encode(TEXTS, normalize_embeddings=True),
               f"dense {dense} {device} normalize_embeddings")
        _close(enc.encode(TEXTS, truncate_dim=4), st.encode(TEXTS, truncate_dim=4), f"dense {dense} truncate_dim")


def test_dense_refused(tmp_path, bert_dir):
    import goembed

    path, _ = _save(tmp_path, bert_dir, dense=[(16, torch.nn.Tanh())])
    dense = os.path.join(path, "2_Dense")
    weights = torch.nn.Linear(H, 16)
    torch.save(weights.state_dict(), os.path.join(dense, "pytorch_model.bin"))
    os.remove(os.path.join(dense, "model.safetensors"))
    with pytest.raises(ValueError, match="only in pytorch_model.bin"):
        goembed.Encoder(path, device="cpu")

    path, _ = _save(tmp_path / "relu", bert_dir, dense=[(16, torch.nn.ReLU())])
    with pytest.raises(ValueError, match="ReLU.* is not supported"):
        goembed.Encoder(path, device="cpu")


def test_pooling_order_refused(tmp_path, bert_dir):
    """sentence-transformers concatenates a v6 pooling_mode list in its own order; goembed in the
    legacy order only, so another order is refused by name."""
    import goembed

    path, _ = _save(tmp_path, bert_dir, pooling=("mean", "cls"))
    with pytest.raises(ValueError, match=r"pooling modes \[\"mean\" \"cls\"\] are not supported"):
        goembed.Encoder(path, device="cpu")


@pytest.mark.parametrize("device", DEVICES)
def test_token_embeddings(tmp_path, bert_dir, device):
    path, st = _save(tmp_path, bert_dir, pooling="cls", dense=[(16, torch.nn.Tanh())], normalize=True)
    with _encoder(path, device) as enc:
        for prompt in (None, PROMPT):
            ours = enc.encode(TEXTS, output_value="token_embeddings", prompt=prompt, batch_size=3)
            theirs = st.encode(TEXTS, output_value="token_embeddings", prompt=prompt, batch_size=3)
            assert isinstance(ours, list) and len(ours) == len(theirs) == len(TEXTS)
            for i, (a, b) in enumerate(zip(ours, theirs)):
                assert a.dtype == np.float32 and a.shape == (len(enc.tokenize([(prompt or "") + TEXTS[i]])[0]), H)
                _close(a, b.numpy(), f"token embeddings of text {i} {device} prompt={prompt!r}")
        one = enc.encode("hello world", output_value="token_embeddings")
        assert one.shape == (4, H)  # [CLS] hello world [SEP]
        _close(one, st.encode("hello world", output_value="token_embeddings").numpy(), "single text")


def test_output_value_none(tmp_path, bert_dir):
    path, st = _save(tmp_path, bert_dir, pooling="mean", normalize=True)
    with _encoder(path, "cpu") as enc:
        ours = enc.encode(TEXTS[:4], output_value=None)
        theirs = st.encode(TEXTS[:4], output_value=None)
        for a, b in zip(ours, theirs):
            keep = b["attention_mask"].bool()
            assert a["input_ids"].tolist() == b["input_ids"][keep].tolist()
            _close(a["sentence_embedding"], b["sentence_embedding"].numpy(), "sentence_embedding")
            _close(a["token_embeddings"], b["token_embeddings"][keep].numpy(), "token_embeddings")
        with pytest.raises(ValueError, match="output_value"):
            enc.encode(TEXTS, output_value="logits")


def test_token_type_row_zero(tmp_path, bert_dir):
    """A single text has token_type_ids all 0: the model must add row 0 of its token-type table.
    The rows differ here, so the parity below fails if goembed used another row or none."""
    from safetensors.numpy import load_file

    table = load_file(os.path.join(bert_dir, "model.safetensors"))["embeddings.token_type_embeddings.weight"]
    assert table.shape == (2, H) and np.abs(table[0]).max() > 0.1 and np.abs(table[0] - table[1]).max() > 0.1
    path, st = _save(tmp_path, bert_dir)
    assert not st.tokenize(TEXTS)["token_type_ids"].any()
    with _encoder(path, "cpu") as enc:
        _close(enc.encode(TEXTS, output_value="token_embeddings")[3],
               st.encode(TEXTS, output_value="token_embeddings")[3].numpy(), "token vectors")


@pytest.mark.parametrize("how", ["cased", "legacy"])
def test_do_lower_case_cased_model(tmp_path, minilm_dir, how):
    """A cased tokenizer (BertNormalizer lowercase=false). cased: no do_lower_case. legacy:
    do_lower_case true in sentence_bert_config.json (as sentence-transformers before 6 saved it),
    which both engines apply at load. goembed must give the same ids and vectors each time.

    (sentence-transformers 6 saves do_lower_case=True as a Lowercase normalizer in tokenizer.json
    only, and transformers 5's BertTokenizer rebuilds its normalizer from tokenizer_config.json
    on load, so its own reload does not lowercase; goembed follows tokenizer.json there.)"""
    from sentence_transformers import SentenceTransformer

    bert = _bert(tmp_path / "cased", minilm_dir, cased=True)
    assert json.load(open(bert / "tokenizer.json"))["normalizer"]["lowercase"] is False
    path, st = _save(tmp_path, bert)
    if how == "legacy":
        with open(os.path.join(path, "sentence_bert_config.json"), "w") as f:
            json.dump({"max_seq_length": MAX_SEQ, "do_lower_case": True}, f)
        st = SentenceTransformer(path, device="cpu")
    lower = how != "cased"
    f = st.tokenize(TEXTS)
    theirs = [[t for t, m in zip(ids, mask) if m] for ids, mask in zip(f["input_ids"].tolist(), f["attention_mask"].tolist())]
    with _encoder(path, "cpu") as enc:
        ours = enc.tokenize(TEXTS)
        assert ours == theirs
        _close(enc.encode(TEXTS), st.encode(TEXTS), f"do_lower_case {how}")
        # the setting matters for these texts, so the comparison above can fail
        assert (enc.tokenize(["Hello World"])[0] == enc.tokenize(["hello world"])[0]) is lower
