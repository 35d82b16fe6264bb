"""The cases of ../shared/RELIABILITY.md that tests/test_api.py, test_reliability.py,
test_parity.py and test_cuda_parity.py do not already cover; each test carries its item number
(docs/RELIABILITY.md maps every item to its test). Items 27, 28, 30, 34, 36, 37 and 38 belong to
other work and are not here.

GPU cases run with device="cuda" and skip, saying why, where no CUDA device opens (set
GOEMBED_REQUIRE_CUDA=1 to make that a failure). The long runs (items 29, 35) are marked
long_run: they run in `make test`; `-m "not long_run"` leaves them out.
"""

import json
import logging
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

import goembed
from tiny_bert import make_tiny_model

HERE = Path(__file__).resolve().parent
LONG = "word " * 400  # far more than 256 word pieces


def _cos(a, b):
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _cuda_encoder(path, dtype="float16"):
    """An Encoder on CUDA, or a skip naming why none opens here."""
    try:
        return goembed.Encoder(path, device="cuda", dtype=dtype)
    except RuntimeError as e:
        if "unavailable" in str(e) and os.environ.get("GOEMBED_REQUIRE_CUDA") != "1":
            pytest.skip(f"no usable CUDA device: {e}")
        raise


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir):
    """A random-weight BERT (hidden 32) with the MiniLM tokenizer and three saved prompts."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"), minilm_dir,
                           prompts={"query": "query: ", "passage": "passage: ", "corpus": "corpus: "})


@pytest.fixture(scope="module")
def tiny_model(tiny):
    m = goembed.Encoder(tiny, device="cpu")
    yield m
    m.close()


# --- input shapes and bad items --------------------------------------------------------------

def test_r01_empty_list_gives_empty_result(model):
    e = model.encode([])
    # documented: (0, dim), where sentence-transformers gives (0,); it stacks with other results
    assert e.shape == (0, 384) and e.dtype == np.float32
    assert model.encode([], normalize_embeddings=True, truncate_dim=8).shape == (0, 8)
    assert "(0, dim)" in goembed.Encoder.encode.__doc__
    torch = pytest.importorskip("torch", reason="torch is installed by make setup; this guards a bare install")
    t = model.encode([], convert_to_tensor=True)
    assert isinstance(t, torch.Tensor) and t.numel() == 0


def test_r05_none_item_names_index_and_computes_nothing(model, monkeypatch):
    calls = []
    real = goembed._encoder._api.call
    monkeypatch.setattr(goembed._encoder._api, "call", lambda name, *a: (calls.append(name), real(name, *a))[1])
    with pytest.raises(TypeError) as e:
        model.encode(["a", None, "b"])
    assert "sentences[1]" in str(e.value) and "NoneType" in str(e.value)
    assert calls == [], f"the engine was called before the bad item was found: {calls}"


def test_r06_nan_item_names_index_and_float(model):
    with pytest.raises(TypeError) as e:
        model.encode(["a", float("nan")])
    assert "sentences[1]" in str(e.value) and "float" in str(e.value)


# --- truncation -----------------------------------------------------------------------------

def test_r14_truncation_is_observable(model, caplog, monkeypatch):
    texts = ["short text", LONG, "another short one", LONG + "tail"]
    counts = model.count_tokens(texts)
    assert counts.lengths.tolist() == [len(ids) for ids in model.tokenize(texts)]
    assert counts.lengths[1] == counts.lengths[3] == 256 and counts.lengths[0] < 256
    assert counts.truncated.tolist() == [False, True, False, True]
    # exactly at the limit is not truncated: 254 word pieces + [CLS] + [SEP]
    exact = " ".join(["word"] * 254)
    assert model.count_tokens([exact]).truncated.tolist() == [False]
    assert model.count_tokens([exact + " word"]).truncated.tolist() == [True]

    monkeypatch.setattr(model, "truncation_warning_interval", 3600.0)
    monkeypatch.setattr(model, "_warned_at", -float("inf"))
    with caplog.at_level(logging.WARNING, logger="goembed"):
        model.encode(texts)
        first = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(first) == 1, [r.message for r in first]
        assert "2 of 4 texts" in first[0].message and "max_seq_length=256" in first[0].message
        caplog.clear()
        model.encode(texts)  # within the interval: counted, not logged
        model.encode(["nothing long"])
        assert not [r for r in caplog.records if r.levelno == logging.WARNING]
        monkeypatch.setattr(model, "truncation_warning_interval", 0.0)
        model.encode([LONG] * 40, batch_size=4)  # many batches and chunks: still one WARNING
        recs = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(recs) == 1 and "40 of 40" in recs[0].message and "2 more truncated" in recs[0].message


# --- prompts ---------------------------------------------------------------------------------

def test_r18_prompt_name_errors_and_precedence(tiny_model):
    with pytest.raises(ValueError) as e:
        tiny_model.encode(["x"], prompt_name="missing")
    assert all(name in str(e.value) for name in ("missing", "query", "passage", "corpus"))
    with pytest.warns(UserWarning, match="precedence"):
        both = tiny_model.encode(["x"], prompt="custom: ", prompt_name="query")
    assert np.array_equal(both, tiny_model.encode(["x"], prompt="custom: "))
    assert not np.array_equal(both, tiny_model.encode(["x"], prompt_name="query"))


def test_r20_query_and_document_prompts(tiny, tiny_model):
    m = tiny_model
    assert np.array_equal(m.encode_query(["x"]), m.encode(["query: x"]))
    # As in sentence-transformers 6.0 (checked against it in test_families.py), "document" always
    # exists, empty unless saved: a model that saved only "passage" encodes documents without it.
    assert np.array_equal(m.encode_document(["x"]), m.encode(["x"]))
    assert np.array_equal(m.encode_document(["x"], prompt_name="passage"), m.encode(["passage: x"]))
    with goembed.Encoder(tiny, device="cpu", prompts={"document": "doc: "}) as d:
        assert np.array_equal(d.encode_document(["x"]), d.encode(["doc: x"]))


# --- numerics -----------------------------------------------------------------------------------

def test_r22_batch_size_invariance_1_32_1024(model, corpus):
    texts = [r["text"] for r in corpus[:48]] + [LONG, "", "a"]
    ref = model.encode(texts, batch_size=32)
    for bs in (1, 1024):
        got = model.encode(texts, batch_size=bs)
        cos = _cos(got, ref)
        assert cos.min() >= 0.999999, f"batch_size={bs}: cosine {cos.min()}"
        assert np.abs(got - ref).max() <= 1e-5, f"batch_size={bs}: max abs diff {np.abs(got - ref).max():.2e}"
    assert np.array_equal(model.encode(texts, batch_size=32), ref), "same call twice is not bitwise equal"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_r23_padding_heavy_batch_half_cuda(minilm_dir, dtype):
    # one 512-token sequence (max_seq_length raised to the position limit) and 31 one-word texts
    half = _cuda_encoder(minilm_dir, dtype)
    full = _cuda_encoder(minilm_dir, "float32")
    try:
        half.max_seq_length = full.max_seq_length = 512
        texts = ["word " * 1000] + [f"w{i}" for i in range(31)]
        assert half.count_tokens(texts[:1]).lengths.tolist() == [512]
        a, b = half.encode(texts, batch_size=32), full.encode(texts, batch_size=32)
        assert np.isfinite(a).all()
        cos = _cos(a, b)
        assert cos.min() >= 0.999, f"{dtype}: cosine {cos.min():.6f} at {int(cos.argmin())}"
    finally:
        half.close()
        full.close()


def _overflowing_embedding(tensors, vocab):
    # Half the dimensions of every position embedding are 2e38: a token's embedding stays finite
    # (LayerNorm statistics are float64 on the CPU), except for "hello", whose word embedding adds
    # another 2e38 there: the float32 sum overflows to inf, and LayerNorm turns that into NaN.
    tensors["embeddings.position_embeddings.weight"][:, :16] = 2e38
    tensors["embeddings.word_embeddings.weight"][vocab["hello"], :16] = 2e38


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_r25_non_finite_output_is_an_error(tmp_path, minilm_dir, device):
    path = make_tiny_model(tmp_path / "m", minilm_dir, edit=_overflowing_embedding)
    m = _cuda_encoder(path, "float32") if device == "cuda" else goembed.Encoder(path, device="cpu")

    def finite_or_error(texts):
        try:
            out = m.encode(texts)
        except Exception as e:  # noqa: BLE001 - the message decides
            assert "non-finite" in str(e), f"unexpected error: {e!r}"
            return None
        assert np.isfinite(out).all(), "a non-finite value was returned"
        return out

    try:
        ok = finite_or_error(["fine words"])
        if device == "cpu":  # float64 LayerNorm statistics keep this text finite
            assert ok is not None
        with pytest.raises(Exception, match="non-finite") as e:
            m.encode(["fine words", "hello there"])
        if ok is not None:
            assert "text 1" in str(e.value)
            assert np.array_equal(finite_or_error(["fine words"]), ok), "the encoder is not usable after the error"
        finite_or_error(["fine words"] * 40)  # and again: no crash, no NaN returned
    finally:
        m.close()


def _zero_output(tensors, vocab):
    # the last LayerNorm maps everything to 0: every pooled vector is all zeros
    last = max(int(k.split(".")[2]) for k in tensors if k.startswith("encoder.layer."))
    tensors[f"encoder.layer.{last}.output.LayerNorm.weight"][:] = 0
    tensors[f"encoder.layer.{last}.output.LayerNorm.bias"][:] = 0


@pytest.mark.parametrize("device,dtype", [("cpu", "float32"), ("cuda", "float16"), ("cuda", "bfloat16")])
def test_r26_normalizing_a_zero_vector_gives_zeros(tmp_path, minilm_dir, device, dtype):
    path = make_tiny_model(tmp_path / "m", minilm_dir, edit=_zero_output)
    m = _cuda_encoder(path, dtype) if device == "cuda" else goembed.Encoder(path, device="cpu")
    try:
        texts = ["", "hello world", LONG]
        for kw in ({}, {"normalize_embeddings": True}, {"normalize_embeddings": True, "truncate_dim": 8}):
            e = m.encode(texts, **kw)
            assert np.isfinite(e).all() and not e.any(), f"{kw}: {e[:, :4]}"
    finally:
        m.close()


# --- threads ---------------------------------------------------------------------------------

def test_r31_threads_share_one_cuda_encoder(minilm_dir, corpus):
    # RELIABILITY 31 on a GPU, where a call of several batches keeps one batch in flight while
    # it launches the next (and other threads' batches may come in between): 16 threads x 24
    # mixed calls, queries to calls of thousands of passages, give the sequential results. A
    # text's vector may differ in its last bits with the batch sizes cuBLASLt picks kernels for,
    # so the check is a cosine; a row that went to the wrong place would be far off.
    from concurrent.futures import ThreadPoolExecutor

    m = _cuda_encoder(minilm_dir, "float16")
    try:
        passages = [r["text"] for r in corpus[:6000]]
        sizes = [1, 3, 40, 700, 6000]
        calls = [(i % 97, sizes[i % len(sizes)]) for i in range(16 * 24)]
        expected = {}
        for start, n in calls:
            if (start, n) not in expected:
                expected[(start, n)] = m.encode(passages[start:start + n])

        def run(call):
            start, n = call
            got = m.encode(passages[start:start + n])
            return float(_cos(got, expected[call]).min())

        with ThreadPoolExecutor(16) as pool:
            worst = min(pool.map(run, calls))
        assert worst >= 0.9999, f"a concurrent result differs from the sequential one: cosine {worst}"
    finally:
        m.close()


def test_r33_threads_get_their_own_settings(tiny):
    # Two Encoders of one model, different max_seq_length and prompts, used at once from two
    # threads each: every result equals the one computed alone.
    short, full = goembed.Encoder(tiny, device="cpu"), goembed.Encoder(tiny, device="cpu")
    short.max_seq_length = 8
    text = "the quick brown fox jumps over the lazy dog " * 20
    jobs = {("short", "query"): (short, "query"), ("short", "corpus"): (short, "corpus"),
            ("full", "query"): (full, "query"), ("full", "passage"): (full, "passage")}
    expected = {k: m.encode([text] * 3, prompt_name=p) for k, (m, p) in jobs.items()}
    assert not np.array_equal(expected["short", "query"], expected["full", "query"])
    assert short.count_tokens([text]).lengths.tolist() == [8]
    wrong, start = [], threading.Barrier(len(jobs))

    def run(key):
        m, p = jobs[key]
        start.wait()
        for _ in range(100):
            if not np.array_equal(m.encode([text] * 3, prompt_name=p), expected[key]):
                wrong.append(key)

    threads = [threading.Thread(target=run, args=(k,)) for k in jobs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not wrong, f"results changed under concurrency: {sorted(set(wrong))}"
    short.close()
    full.close()


def test_r33_max_seq_length_setter_like_sentence_transformers(model, st_model, minilm_dir):
    m = goembed.Encoder(minilm_dir, device="cpu")
    try:
        for bad in (0, 513, 1.5, "128", True):
            with pytest.raises(ValueError, match="max_seq_length"):
                m.max_seq_length = bad
        m.max_seq_length = 128
        assert model.max_seq_length == 256, "setting one Encoder changed another"
        old = st_model.max_seq_length
        st_model.max_seq_length = 128
        try:
            theirs = st_model.encode([LONG, "short"], convert_to_numpy=True)
            st_ids = st_model.tokenize([LONG])["input_ids"][0].tolist()
        finally:
            st_model.max_seq_length = old
        assert m.tokenize([LONG])[0] == st_ids and len(st_ids) == 128
        assert _cos(m.encode([LONG, "short"]), theirs).min() >= 0.99999
        m.max_seq_length = 512  # above the saved 256, up to the position limit, as ST allows
        assert len(m.tokenize([LONG])[0]) == 402
    finally:
        m.close()


# --- long runs (fresh processes) ------------------------------------------------------------------

def _worker(*args, timeout=600):
    proc = subprocess.run([sys.executable, str(HERE / "longrun_worker.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), proc.stderr


@pytest.mark.long_run
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_r35_memory_flat_over_10000_calls(tiny, device):
    if device == "cuda":
        _cuda_encoder(tiny).close()  # skips without a GPU
    res, _ = _worker("calls", tiny, device, 10_000)
    base, end = res["rss_after_warmup"], res["rss_end"]
    print(f"r35 {device}: RSS {base / 2**20:.1f} -> {end / 2**20:.1f} MiB; device "
          f"{res['device_after_warmup']} -> {res['device_end']} bytes; {res['seconds']:.1f} s")
    assert end <= base * 1.05, f"RSS grew from {base / 2**20:.1f} to {end / 2**20:.1f} MiB over 9,000 calls"
    if device == "cuda" and res["device_after_warmup"] is not None:
        d0, d1 = res["device_after_warmup"], res["device_end"]
        assert d1 <= d0 * 1.05, f"device memory grew from {d0 / 2**20:.0f} to {d1 / 2**20:.0f} MiB"


@pytest.mark.long_run
def test_r29_million_short_texts_memory_and_progress(tiny):
    n = 1_000_000
    res, err = _worker("million", tiny, n)
    out_bytes = n * res["dim"] * 4
    bound = 200 * 2**20
    grew = res["peak"] - res["baseline"]
    assert grew <= out_bytes + bound, (f"peak RSS {grew / 2**20:.0f} MiB above baseline; the output is "
                                       f"{out_bytes / 2**20:.0f} MiB, the bound {bound / 2**20:.0f} MiB more")
    assert res["spot_check_equal"]
    # the bar advanced: many distinct counts between 0 and n
    import re

    seen = {int(x) for x in re.findall(r"(\d+)/%d" % n, err)}
    assert len([c for c in seen if 0 < c < n]) >= 10 and n in seen, sorted(seen)[:20]


# --- integrations and devices --------------------------------------------------------------------

@pytest.fixture
def st_shim(monkeypatch):
    """`import sentence_transformers` gives goembed: SentenceTransformer is goembed.Encoder."""
    shim = types.ModuleType("sentence_transformers")
    shim.SentenceTransformer = goembed.Encoder
    monkeypatch.setitem(sys.modules, "sentence_transformers", shim)
    return shim


def test_r39_langchain_huggingface_embeddings(st_shim, st_model, minilm_dir):
    hf = pytest.importorskip("langchain_huggingface", reason="langchain-huggingface (scripts/requirements-dev.txt)")
    emb = hf.HuggingFaceEmbeddings(model_name=minilm_dir, encode_kwargs={"normalize_embeddings": True})
    assert isinstance(emb._client, goembed.Encoder)
    docs = ["The cat sits outside", "A man is playing guitar", LONG]
    ours = np.array(emb.embed_documents(docs) + [emb.embed_query("What is the cat doing?")])
    theirs = st_model.encode(docs + ["What is the cat doing?"], normalize_embeddings=True, convert_to_numpy=True)
    assert _cos(ours, theirs).min() >= 0.9999


def test_r39_llamaindex_huggingface_embedding(st_shim, st_model, minilm_dir):
    li = pytest.importorskip("llama_index.embeddings.huggingface",
                             reason="llama-index-embeddings-huggingface (scripts/requirements-dev.txt)")
    emb = li.HuggingFaceEmbedding(model_name=minilm_dir, device="cpu", max_length=128)
    assert isinstance(emb._model, goembed.Encoder) and emb._model.max_seq_length == 128
    docs = ["The cat sits outside", "A man is playing guitar", LONG]
    ours = np.array(emb.get_text_embedding_batch(docs) + [emb.get_query_embedding("What is the cat doing?")])
    old = st_model.max_seq_length
    st_model.max_seq_length = 128
    try:
        theirs = st_model.encode(docs + ["What is the cat doing?"], normalize_embeddings=True, convert_to_numpy=True)
    finally:
        st_model.max_seq_length = old
    assert _cos(ours, theirs).min() >= 0.9999


def test_r40_devices(minilm_dir, caplog):
    try:
        m = goembed.Encoder(minilm_dir, device="cuda")
    except RuntimeError as e:
        msg = str(e)
        assert "'cuda'" in msg or '"cuda"' in msg, msg
        assert "unavailable" in msg and any(w in msg for w in ("libcuda", "driver", "GPU")), msg
    else:
        assert m.device == "cuda"  # a GPU machine: the device opened
        m.close()
    with caplog.at_level(logging.INFO, logger="goembed"):
        m = goembed.Encoder(minilm_dir, device=None)
    assert m.device in goembed.devices()
    assert any(r.levelno == logging.INFO and f"device: {m.device}" in r.message for r in caplog.records), \
        [r.message for r in caplog.records]
    m.close()
