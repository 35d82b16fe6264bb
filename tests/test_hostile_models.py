"""Issue 8, the Go side from Python: hostile or broken model folders give a clear exception
naming the file (a ValueError or OSError subclass), panics inside Go come back as RuntimeError,
concurrent constructions of one model load it once, and running out of (device) memory splits
the batch or raises MemoryError. After each, the process and the Encoder go on working.
The out-of-memory path is driven by the workspace limit that GOEMBED_DEBUG_OOM_AFTER (or
_native.DebugOOMAfter) sets, so it runs on the CPU; tests/test_cuda_oom.py does it on a GPU."""

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import goembed
from goembed import _native_api as api

import tiny_model

TEXTS = [("the quick brown fox%d " % (i % 7)) * (1 + i % 9) for i in range(40)]


@pytest.fixture
def tiny(tmp_path):
    return tiny_model.write(tmp_path / "tiny")


def _replace(path, old, new):
    s = path.read_text()
    assert old in s
    path.write_text(s.replace(old, new))


def _truncate(p):
    b = p.read_bytes()
    p.write_bytes(b[: len(b) // 2])


def _dtype(p):
    from safetensors.numpy import save_file

    w = tiny_model.weights()
    w["embeddings.word_embeddings.weight"] = w["embeddings.word_embeddings.weight"].astype(np.int64)
    save_file(w, str(p))


# (case, file broken, how, what the message must say besides the file name)
CASES = [
    ("truncated weights", "model.safetensors", _truncate, "safetensors"),
    ("header past the end", "model.safetensors", lambda p: p.write_bytes((1 << 40).to_bytes(8, "little") + b"{}"), "header"),
    ("wrong dtype", "model.safetensors", _dtype, "I64"),
    ("hidden 1e9", "config.json", lambda p: _replace(p, '"hidden_size": 32', '"hidden_size": 1000000000'), "hidden_size"),
    ("layers 1e6", "config.json", lambda p: _replace(p, '"num_hidden_layers": 2', '"num_hidden_layers": 1000000'), "num_hidden_layers"),
    ("vocab 0", "config.json", lambda p: _replace(p, '"vocab_size": 21', '"vocab_size": 0'), "vocab_size"),
    ("heads not dividing", "config.json", lambda p: _replace(p, '"num_attention_heads": 2', '"num_attention_heads": 3'), "num_attention_heads"),
    ("negative hidden", "config.json", lambda p: _replace(p, '"hidden_size": 32', '"hidden_size": -32'), "hidden_size"),
    ("tokenizer not JSON", "tokenizer.json", lambda p: p.write_text("{not json"), "invalid JSON"),
    ("tokenizer with a NUL", "tokenizer.json", lambda p: _replace(p, '"version": "1.0"', '"version": "\\u0000"'), "NUL"),
    ("modules garbage", "modules.json", lambda p: p.write_text('{"a": 1}'), "invalid JSON"),
    ("module escapes", "modules.json", lambda p: p.write_text('[{"path": "../..", "type": "x.Pooling"}]'), "leaves"),
    ("pooling garbage", "1_Pooling/config.json", lambda p: p.write_text('{"pooling_mode": 7}'), "pooling_mode"),
]


@pytest.mark.parametrize("case,name,breaker,says", CASES, ids=[c[0] for c in CASES])
def test_broken_folder_names_the_file(tiny, case, name, breaker, says):
    breaker(tiny / name)
    with pytest.raises((ValueError, OSError)) as e:
        goembed.Encoder(str(tiny), device="cpu")
    assert name in str(e.value) and says in str(e.value), str(e.value)


def test_process_survives_broken_folders(tiny, tmp_path):
    # After every broken folder above in this process, an intact model loads and encodes.
    m = goembed.Encoder(str(tiny), device="cpu")
    out = m.encode(TEXTS)
    assert out.shape == (40, 32) and np.isfinite(out).all()
    m.close()


def test_panics_become_runtime_errors(tiny):
    if (os.cpu_count() or 1) < 2:
        pytest.skip("a worker panic needs a batch tokenized on several goroutines (one CPU here)")
    m = goembed.Encoder(str(tiny), device="cpu")
    want = m.encode(TEXTS)
    for where in ("worker", "caller"):
        api.call("DebugPanic", where)
        with pytest.raises(RuntimeError, match="internal error"):
            m.encode(TEXTS)
        assert np.array_equal(m.encode(TEXTS), want), f"after a {where} panic"
    with pytest.raises(ValueError, match="caller"):
        api.call("DebugPanic", "nowhere")
    m.close()


def test_concurrent_constructions_load_once(tiny):
    before = api.call("DebugLoadCount")
    start = threading.Barrier(10)

    def make(_):
        start.wait()
        return goembed.Encoder(str(tiny), device="cpu")

    with ThreadPoolExecutor(10) as pool:
        encs = list(pool.map(make, range(10)))
    assert api.call("DebugLoadCount") - before == 1
    want = encs[0].encode(TEXTS)

    def use(i):
        if i % 2:
            encs[i].close()  # while the even ones encode
            return True
        return all(np.array_equal(encs[i].encode(TEXTS), want) for _ in range(5))

    with ThreadPoolExecutor(10) as pool:
        assert all(pool.map(use, range(10)))
    with pytest.raises(ValueError, match="closed"):
        encs[1].encode("x")
    for e in encs[::2]:
        e.close()
    again = goembed.Encoder(str(tiny), device="cpu")  # the last close freed it: a real load
    assert api.call("DebugLoadCount") - before == 2
    assert np.array_equal(again.encode(TEXTS), want)
    again.close()


def test_out_of_memory_splits_then_memoryerror(tiny):
    m = goembed.Encoder(str(tiny), device="cpu")
    want = m.encode(TEXTS)
    # One 48-token sequence fits under 300 workspace floats per token, a batch of 32 does not.
    api.call("DebugOOMAfter", m._handle, 4 * 48 * 300)
    split = m.encode(TEXTS)
    # smaller batches: equal up to the BLAS's batch-size rounding, as test_batch_size_invariance
    assert np.abs(split - want).max() <= 1e-5
    assert np.array_equal(m.encode(TEXTS), split), "the split run is not repeatable"
    api.call("DebugOOMAfter", m._handle, 100)
    with pytest.raises(MemoryError, match="one sequence"):
        m.encode(TEXTS)
    api.call("DebugOOMAfter", m._handle, 0)
    assert np.array_equal(m.encode(TEXTS), want)
    m.close()


def test_out_of_memory_from_the_environment(tiny):
    # GOEMBED_DEBUG_OOM_AFTER is read when a model is loaded; Go sees the environment of the
    # process start, so a child process carries it.
    code = f"""
import json, goembed
from goembed import _native_api as api
m = goembed.Encoder({str(tiny)!r}, device="cpu")
try:
    m.encode({TEXTS!r})
    print(json.dumps("no error"))
except MemoryError as e:
    print(json.dumps("MemoryError: " + str(e)))
api.call("DebugOOMAfter", m._handle, 0)
print(json.dumps(list(m.encode("still works").shape)))
"""
    env = dict(os.environ, GOEMBED_DEBUG_OOM_AFTER="100")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[0].startswith("MemoryError:") and "GOEMBED_DEBUG_OOM_AFTER" in lines[0], lines
    assert lines[1] == [32]
