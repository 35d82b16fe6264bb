"""latency_ab.py: one-query latency of two goembed builds on the same GPU, alternating runs.

    python3 dev/kernels/latency_ab.py A=path/to/site B=path/to/site [--rounds 3]

Each round starts a fresh process per build (A, then B) that embeds one 16-token string
3,000 times after 300 warm-up calls and prints the median of encode(str) -> numpy and of
encode_ids on a 1x16 array. Host-bound paths drift with the machine, so only differences
within one call of this script mean anything.
"""

import json
import os
import subprocess
import sys

CHILD = r'''
import json, os, statistics, time, numpy as np, goembed
m = goembed.Encoder(os.environ["GOEMBED_TEST_MINILM"], device="cuda", dtype="float16")
text = "A man is playing a guitar on the stage tonight"
ids = np.array([m.tokenize([text])[0]], dtype=np.int32)
res = {"tokens": int(ids.shape[1])}
for name, fn in [("encode_str", lambda: m.encode(text)), ("encode_ids", lambda: m.encode_ids(ids))]:
    for _ in range(300):
        fn()
    t = []
    for _ in range(3000):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    res[name] = 1e3 * statistics.median(t)
print(json.dumps(res))
'''


def main():
    builds = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    for r in range(rounds):
        for name, path in builds.items():
            env = dict(os.environ, PYTHONPATH=path)
            out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
            if out.returncode:
                print(name, "failed:", out.stderr[-500:])
                continue
            res = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"round {r} {name}: encode(str) {res['encode_str']:.3f} ms, encode_ids 1x{res['tokens']} "
                  f"{res['encode_ids']:.3f} ms", flush=True)


if __name__ == "__main__":
    main()
