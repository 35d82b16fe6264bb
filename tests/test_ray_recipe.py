"""examples/ray_embed.py on a 2-worker local Ray cluster equals a single-process goembed run."""

import os
import signal
import sys
import time

import numpy as np
import pytest

from conftest import REPO

ray = pytest.importorskip("ray", reason="ray[data] is in scripts/requirements-dev.txt")

EXAMPLES = REPO / "examples"
N = 2000


@pytest.fixture(scope="module")
def ray_cluster():
    # workers import the recipe from examples/ as the driver does
    sys.path.insert(0, str(EXAMPLES))
    # ray.init installs its own SIGINT/SIGTERM handlers and shutdown leaves them: restore the
    # process's, or later tests' Ctrl-C (KeyboardInterrupt) never arrives.
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 << 20, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(EXAMPLES)}})
    try:
        yield
    finally:
        ray.shutdown()
        for s, h in saved.items():
            signal.signal(s, h)
        sys.path.remove(str(EXAMPLES))


def test_ray_recipe_equals_single_process(ray_cluster, model, corpus):
    import ray_embed

    rows = [{"id": r["id"], "text": r["text"]} for r in corpus[:N]]
    t0 = time.perf_counter()
    ds = ray_embed.embed(ray.data.from_items(rows), workers=2, rows_per_call=256, device="cpu", num_cpus=1)
    out = ds.take_all()
    took = time.perf_counter() - t0
    assert [r["id"] for r in out] == [r["id"] for r in rows], "rows came back in another order"
    got = np.stack([r["embedding"] for r in out])
    want = model.encode([r["text"] for r in rows])
    assert got.shape == want.shape == (N, 384) and got.dtype == np.float32
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() >= 0.999999, f"text {cos.argmin()}: cosine {cos.min():.7f}"
    print(f"ray: {N} passages on 2 workers in {took:.1f}s")
