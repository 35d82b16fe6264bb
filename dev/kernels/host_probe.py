"""host_probe.py: where the host time of a MiniLM 1000x128 encode_ids call goes (issue 4's
8 ms target counts ids in host memory to vectors in host memory).

Prints the median wall time of REPS calls after a warm-up, then a few calls with the engine's
stage trace (GOEMBED_TRACE=1 must be set in the environment: the Go side reads it at import).
Run it under different GOEMBED_GPU_TOKEN_BUDGET values to compare batch splits.

    GOEMBED_TRACE=1 PYTHONPATH=.carry/py312 python3 dev/kernels/host_probe.py [--model DIR] [--e2e B]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("GOEMBED_TEST_MINILM", ".carry/minilm16"))
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--e2e", type=int, default=0, metavar="B",
                    help="time encode(texts) of B texts of 128 tokens instead (bench/gpu_compare.py's texts)")
    args = ap.parse_args()
    import goembed

    m = goembed.Encoder(args.model, device="cuda", dtype="float16")
    if args.e2e:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
        from gpu_compare import shape_inputs

        _, texts = shape_inputs(args.model, args.e2e, 128, seed=4)
        label = f"{args.e2e}x128 encode(texts)"

        def call():
            m.encode(texts, batch_size=args.e2e)
    else:
        rng = np.random.default_rng(0)
        fixed = rng.integers(1000, 30000, size=(1000, 128), dtype=np.int32)
        fixed[:, 0], fixed[:, -1] = 101, 102
        flen = np.full(1000, 128, dtype=np.int32)
        label = "1000x128 encode_ids"

        def call():
            m.encode_ids(fixed, flen, batch_size=1000)
    for _ in range(10):
        call()
    walls = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        call()
        walls.append(1e3 * (time.perf_counter() - t0))
    walls.sort()
    budget = os.environ.get("GOEMBED_GPU_TOKEN_BUDGET", "default")
    print(f"{label}, budget {budget}: median {statistics.median(walls):.3f} ms, "
          f"p10 {walls[len(walls) // 10]:.3f}, p90 {walls[9 * len(walls) // 10]:.3f} ({args.reps} calls)", flush=True)
    for _ in range(3):
        t0 = time.perf_counter()
        call()
        sys.stderr.flush()
        print(f"   traced call: {1e3 * (time.perf_counter() - t0):.3f} ms", flush=True)


if __name__ == "__main__":
    main()
