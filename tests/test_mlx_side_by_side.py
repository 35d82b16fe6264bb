"""goembed (device="cpu") and MLX (CPU, bench/mlx_bert.py) side by side in one process, on the
same all-MiniLM-L6-v2 weights and the same passages: identical token ids, per-text cosine
>= 0.9999, the same top-10 neighbours.

MLX comes from `mlx[cpu]` (scripts/requirements-dev.txt): on Linux plain `mlx` has no libmlx.so
and fails to import. Its matmuls go to OpenBLAS through bench/mlx_openblas.py when a C compiler
is at hand (the wheel's bundled reference BLAS is ~50x slower; the numbers are fp32 either way).
"""

import sys

import numpy as np
import pytest

from conftest import REPO
from test_parity import HARD

sys.path.insert(0, str(REPO / "bench"))
import mlx_openblas  # noqa: E402  (before mlx.core: it decides which BLAS libmlx binds)

try:
    BLAS = mlx_openblas.enable()
except Exception as e:  # noqa: BLE001 - the bundled BLAS is slower, not wrong
    BLAS = f"bundled reference BLAS ({e})"

import mlx.core as mx  # noqa: E402
from mlx_bert import MLXEncoder  # noqa: E402

N_PASSAGES, N_QUERIES = 200, 50


def _cos(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def engines(minilm_dir):
    import goembed

    if "OpenBLAS" in BLAS:
        mlx_openblas.check()
    print(f"MLX {mx.__version__} on {mx.default_device()}: {BLAS}")
    ours = goembed.Encoder(minilm_dir, device="cpu")
    yield ours, MLXEncoder(minilm_dir, dtype="float32", device="cpu")
    ours.close()


@pytest.fixture(scope="module")
def embedded(engines, corpus):
    """Both engines' embeddings of the same passages and queries."""
    ours, mlx = engines
    passages = [r["text"] for r in corpus[:N_PASSAGES]]
    queries = [r["query"] for r in corpus[:N_QUERIES]]
    return {
        "passages": passages, "queries": queries,
        "ours": (ours.encode(passages, batch_size=32), ours.encode(queries, batch_size=32)),
        "mlx": (mlx.encode(passages, batch_size=32), mlx.encode(queries, batch_size=32)),
    }


def test_mlx_runs_on_cpu_with_fast_attention():
    q = mx.random.normal((2, 12, 7, 32), key=mx.random.key(0))
    mask = mx.where(mx.arange(7) < 5, 0.0, -mx.inf)[None, None, None, :]
    got = mx.fast.scaled_dot_product_attention(q, q, q, scale=32 ** -0.5, mask=mask, stream=mx.cpu)
    s = (q @ q.swapaxes(-1, -2)) * 32 ** -0.5 + mask
    want = mx.softmax(s, axis=-1) @ q
    assert np.allclose(np.array(got), np.array(want), atol=1e-5)


def test_same_token_ids(engines, corpus):
    ours, mlx = engines
    texts = [r["text"] for r in corpus[:N_PASSAGES]] + [r["query"] for r in corpus[:N_QUERIES]] + HARD
    assert mlx.max_seq_length == ours.max_seq_length == 256
    a, b = ours.tokenize(texts), mlx.tokenize(texts)
    bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert not bad, (f"token ids differ for {len(bad)} texts, first {texts[bad[0]]!r}: "
                     f"{a[bad[0]][:20]} vs {b[bad[0]][:20]}")
    assert max(len(t) for t in a) == 256


def test_vectors_match(embedded):
    for i, what in enumerate(("passages", "queries")):
        ours, theirs = embedded["ours"][i], embedded["mlx"][i]
        assert ours.shape == theirs.shape == (len(embedded[what]), 384) and theirs.dtype == np.float32
        assert np.isfinite(theirs).all()
        cos = _cos(ours, theirs)
        worst = int(cos.argmin())
        print(f"{what}: min cosine goembed/MLX {cos.min():.7f}, max abs diff {np.abs(ours - theirs).max():.2e}")
        assert cos.min() >= 0.9999, f"{what} {worst}: cosine {cos.min():.6f}: {embedded[what][worst][:80]!r}"


def test_same_neighbours(embedded):
    (ours_p, ours_q), (mlx_p, mlx_q) = embedded["ours"], embedded["mlx"]
    ref = ours_q @ ours_p.T  # goembed's scores are the reference for ties
    ours_top = np.argsort(-ref, axis=1)[:, :10]
    mlx_top = np.argsort(-(mlx_q @ mlx_p.T), axis=1)[:, :10]
    swapped = 0
    for q in range(len(ours_q)):
        a, b = list(ours_top[q]), list(mlx_top[q])
        assert set(a) == set(b), f"query {q} ({embedded['queries'][q]!r}): top-10 {a} vs {b}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:  # order may differ only between passages whose scores tie within 1e-5
                swapped += 1
                assert abs(ref[q, x] - ref[q, y]) < 1e-5, f"query {q}: rank {i} is {x} for goembed, {y} for MLX"
    assert swapped <= 4, f"{swapped} rank positions differ"
