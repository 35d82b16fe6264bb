"""The `goembed` console script (the Go command cmd/goembed run inside the extension)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

GOEMBED = shutil.which("goembed", path=str(Path(sys.executable).parent))


def _run(*args, check=True):
    p = subprocess.run([GOEMBED, *args], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"goembed {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p


def _write_corpus(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def test_installed():
    assert GOEMBED, f"no goembed script next to {sys.executable} (make install provides it)"


def test_info():
    info = json.loads(_run("info", "--device", "cpu").stdout)
    assert (info["dim"], info["max_seq_length"], info["pooling"], info["device"]) == (384, 256, "mean", "cpu")
    assert info["prompts"] == {} and info["normalize"] is True


def test_embed_equals_encoder(model, corpus, tmp_path):
    rows = corpus[:40]
    src = tmp_path / "c.jsonl"
    _write_corpus(src, rows)
    _run("embed", "--device", "cpu", "--input", str(src), "--output", str(tmp_path / "e.npy"))
    _run("embed", "--device", "cpu", "--input", str(src), "--field", "query", "--output", str(tmp_path / "q.f32"),
         "--normalize", "--quiet")
    # the CLI's default window is encode()'s chunk, so the bits are the same
    assert np.array_equal(np.load(tmp_path / "e.npy"), model.encode([r["text"] for r in rows]))
    q = np.fromfile(tmp_path / "q.f32", dtype="<f4").reshape(-1, 384)
    assert np.array_equal(q, model.encode([r["query"] for r in rows], normalize_embeddings=True))


def test_bad_record(tmp_path):
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "ok"}\n{"text": 5}\n')
    p = _run("embed", "--device", "cpu", "--input", str(src), "--output", str(tmp_path / "e.npy"), check=False)
    assert p.returncode == 1 and 'line 2: field "text" is not a string' in p.stderr, p.stderr


def test_interrupted_run_resumes(model, corpus, tmp_path):
    """SIGTERM (as Ctrl-C) stops a run at a window boundary; the same command then finishes it."""
    rows = corpus[:240]
    src = tmp_path / "c.jsonl"
    _write_corpus(src, rows)
    out = tmp_path / "e.npy"
    args = ["embed", "--device", "cpu", "--input", str(src), "--output", str(out), "--batch-size", "8",
            "--window", "8", "--quiet"]
    p = subprocess.Popen([GOEMBED, *args], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if out.exists() and out.stat().st_size >= 128 + 2 * 8 * 384 * 4:  # two windows written
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=300)[1]
    first = np.load(out)
    assert p.returncode == 130, (p.returncode, err)
    assert 16 <= len(first) < len(rows) and len(first) % 8 == 0, len(first)
    assert "run the same command again to continue" in err

    _run(*args)
    got = np.load(out)
    want = model.encode([r["text"] for r in rows], batch_size=8)
    assert got.shape == want.shape
    assert np.array_equal(got[:len(first)], first)
    assert (got * want).sum(1).min() >= 0.999999  # unit vectors; windows differ from encode's chunks
