"""What users throw at an embedding engine (../shared/RELIABILITY.md): huge strings, many
threads, a closed encoder, Ctrl-C. Each test states the behaviour it backs."""

import _thread
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import goembed


def test_five_megabyte_string_is_truncated_not_choked(model):
    # RELIABILITY 15: completes (the tokenizer sees a prefix, not 5 MB) and equals the vector of
    # the text cut at max_seq_length.
    words = [f"word{i % 997}" for i in range(800_000)]
    huge = " ".join(words)
    assert len(huge) > 5_000_000
    head = " ".join(words[:2000])
    ids = model.tokenize([huge, head])
    assert ids[0] == ids[1] and len(ids[0]) == 256
    assert np.array_equal(model.encode(huge), model.encode(head))


def test_control_zero_width_and_long_emoji_finite(model):
    # RELIABILITY 12: odd code points give finite vectors (token ids are checked in test_parity).
    out = model.encode(["\x00", "\u200b", "\u00a0", "e\u0301", "中文", "🙂" * 300], normalize_embeddings=True)
    assert np.isfinite(out).all() and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-3)


def test_threads_share_one_encoder(model, corpus):
    # RELIABILITY 31: 16 threads x 200 mixed calls on one Encoder give the sequential results.
    texts = [r["query"] for r in corpus[:64]]
    calls = [(texts[i % 64:i % 64 + 1 + i % 3], 1 + i % 5) for i in range(16 * 200)]
    expected = {}
    for t, bs in calls:
        key = (tuple(t), bs)
        if key not in expected:
            expected[key] = model.encode(t, batch_size=bs)

    def run(call):
        t, bs = call
        return np.array_equal(model.encode(t, batch_size=bs), expected[(tuple(t), bs)])

    with ThreadPoolExecutor(16) as pool:
        ok = list(pool.map(run, calls))
    assert all(ok), f"{ok.count(False)} of {len(ok)} concurrent results differ from sequential"


def test_gil_is_released_during_encode(model, corpus):
    # RELIABILITY 32: a Python thread keeps running while Go encodes.
    texts = [r["text"] for r in corpus[:300]]
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    th = threading.Thread(target=count)
    th.start()
    t0 = time.perf_counter()
    model.encode(texts, batch_size=300)  # one call into Go for all of it
    elapsed = time.perf_counter() - t0
    stop.set()
    th.join()
    assert ticks >= 20, f"only {ticks} ticks in {elapsed:.2f}s: the GIL was held"


def test_close_while_encoding_is_an_error_not_a_crash(minilm_dir, corpus):
    m = goembed.Encoder(minilm_dir, device="cpu")
    texts = [r["text"] for r in corpus[:400]]
    errors = []

    def work():
        try:
            m.encode(texts, batch_size=8)
        except ValueError as e:
            errors.append(e)

    th = threading.Thread(target=work)
    th.start()
    time.sleep(0.3)
    m.close()
    th.join()
    assert errors and "closed" in str(errors[0])
    with pytest.raises(ValueError, match="closed"):
        m.encode("after close")


@pytest.fixture
def python_sigint():
    # Ctrl-C is Python's default SIGINT handler raising KeyboardInterrupt; a library imported by
    # an earlier test of this session (ray, for one) may have replaced it process-wide, and then
    # _thread.interrupt_main does nothing. Put Python's back for this test.
    import signal

    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, saved)


def test_keyboard_interrupt_stops_between_chunks(model, corpus, python_sigint):
    # RELIABILITY 29 / issue 8: Ctrl-C stops a long encode within a second (Go stops between
    # batches, and CPU batches are a fraction of a second of work), and the Encoder still works.
    texts = [r["text"] for r in corpus[:3000]] * 4
    for delay in (0.5, 1.7):  # early: the longest texts come first; later: mid-run
        timer = threading.Timer(delay, _thread.interrupt_main)
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            model.encode(texts)
        stopped_after = time.perf_counter() - t0 - delay
        timer.cancel()
        assert stopped_after < 1.0, f"encode ran {stopped_after:.2f}s after Ctrl-C"
        assert model.encode("still usable").shape == (384,)


def test_prompts_none_accepted(tmp_path, minilm_dir):
    # RELIABILITY 19: prompts saved as null (LlamaIndex style) mean "".
    import shutil

    d = tmp_path / "m"
    shutil.copytree(minilm_dir, d)
    (d / "config_sentence_transformers.json").write_text('{"prompts": {"query": null, "text": null}}')
    m = goembed.Encoder(str(d), device="cpu")
    assert np.array_equal(m.encode(["x"], prompt_name="text"), m.encode(["x"]))
    assert np.array_equal(m.encode_query(["x"]), m.encode(["x"]))
    m.close()


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads the resident size from /proc")
def test_a_million_calls_do_not_grow_memory(model):
    """A search service calls goembed per query for days: the binding must not leak per call.
    (gopy wraps error-only Go functions so that every call leaked a C string, about 30 bytes:
    29 MiB over a million calls. pybind's functions now return a value besides their error.)"""
    from goembed import _native_api as api

    ids = np.zeros((1, 1), dtype=np.int32)
    out = np.zeros((1, model.get_sentence_embedding_dimension()), dtype=np.float32)
    handle = model._handle

    def calls(n):
        for _ in range(n):
            api.call("EncodeIDs", handle, ids.ctypes.data, 1, ids.ctypes.data, 0, out.ctypes.data, 1, False)
            api.call("Close", -1)  # an unknown handle: returns False
        for _ in range(n // 10):
            with pytest.raises(ValueError):
                api.call("EncodeIDs", -1, ids.ctypes.data, 1, ids.ctypes.data, 0, out.ctypes.data, 1, False)

    calls(100_000)  # warm-up: the Go heap and Python's free lists settle
    before = _rss_mib()
    calls(500_000)
    grown = _rss_mib() - before
    assert grown < 4, f"resident memory grew {grown:.1f} MiB over a million binding calls"
