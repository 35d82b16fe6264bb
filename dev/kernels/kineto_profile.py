"""kineto_profile.py: where a goembed call's GPU time goes, from a CUPTI kernel trace.

torch.profiler records every kernel and copy on the device (CUPTI activity is per context, and
goembed shares torch's primary context), so goembed's own kernels and cuBLASLt's show up with
their real start and end times. For each profiled call this prints the wall time, the GPU busy
time (union of kernel and copy intervals), the idle gaps, and the kernels by total time.

    PYTHONPATH=.carry/py312 python3 dev/kernels/kineto_profile.py [--corpus FILE] [--model DIR]
"""

import argparse
import collections
import gzip
import json
import os
import tempfile
import time

import numpy as np


def corpus_texts(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line)["text"] for line in f]


def profile(label, fn, reps=2):
    import torch
    from torch.profiler import ProfilerActivity, profile as tprofile, record_function

    for _ in range(3):  # the second call of a large shape captures its CUDA graph
        fn()
    torch.cuda.synchronize()
    walls = []
    with tprofile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(reps):
            t0 = time.perf_counter()
            with record_function(f"call{i}"):
                fn()
            walls.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    prof.export_chrome_trace(path)
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    os.unlink(path)
    calls = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                   if e.get("ph") == "X" and str(e.get("name", "")).startswith("call") and e.get("cat") == "user_annotation")
    gpu = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    gpu.sort(key=lambda e: e["ts"])
    if not gpu or len(calls) != reps:
        print(f"== {label}: {len(gpu)} GPU events, {len(calls)} call ranges: cannot attribute")
        return
    by = collections.defaultdict(lambda: [0.0, 0])
    for e in gpu:
        by[e["name"][:70]][0] += e["dur"]
        by[e["name"][:70]][1] += 1
    pairs = collections.defaultdict(lambda: [0.0, 0])
    busy = before = after = inside = 0.0
    for c0, c1 in calls:
        evs = [e for e in gpu if c0 <= e["ts"] < c1]
        if not evs:
            continue
        before += evs[0]["ts"] - c0
        end, prev = None, None
        for e in evs:
            s, d = e["ts"], e["dur"]
            if end is not None and s > end:
                g = s - end
                inside += g
                if g >= 20:
                    key = f"{prev[:28]} -> {e['name'][:28]}"
                    pairs[key][0] += g
                    pairs[key][1] += 1
            if end is None or s + d > end:
                busy += s + d - max(s, end if end is not None else s)
                end = s + d
                prev = e["name"]
        after += max(0.0, c1 - end)
    wall = sum(c1 - c0 for c0, c1 in calls)
    r = lambda x: f"{x / 1e3 / reps:.2f}"  # noqa: E731 - us total to ms per call
    print(f"== {label}: {reps} calls, wall {', '.join(f'{1e3 * w:.2f}' for w in walls)} ms; per call: GPU busy {r(busy)} ms "
          f"({100 * busy / wall:.1f}% of the call), idle before the first GPU op {r(before)}, between ops {r(inside)}, "
          f"after the last {r(after)} ms")
    for name, (t, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:8]:
        print(f"   {t / 1e3 / reps:8.2f} ms/call {n // reps:6d} x {t / n:8.1f} us  {name}")
    print("   idle gaps >= 20 us inside calls, by the ops around them:")
    for key, (t, n) in sorted(pairs.items(), key=lambda kv: -kv[1][0])[:4]:
        print(f"   {t / 1e3 / reps:8.2f} ms/call {n / reps:7.1f} x {t / n:8.1f} us  {key}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.environ.get("GOEMBED_TEST_MINILM", ".carry/minilm16"))
    ap.add_argument("--corpus", default=os.environ.get("GOEMBED_CORPUS", ".carry/corpus/debian-descriptions.jsonl.gz"))
    args = ap.parse_args()
    import torch  # noqa: F401 - CUDA context first, so that both share the primary context

    import goembed

    m = goembed.Encoder(args.model, device="cuda", dtype="float16")
    texts = corpus_texts(args.corpus)
    ids = m.tokenize(texts)
    lens = np.array([len(s) for s in ids], dtype=np.int32)
    arr = np.zeros((len(ids), lens.max()), dtype=np.int32)
    for i, s in enumerate(ids):
        arr[i, : len(s)] = s
    print(f"corpus: {len(texts)} passages, {lens.sum()} tokens")
    rng = np.random.default_rng(0)
    fixed = rng.integers(1000, 30000, size=(1000, 128), dtype=np.int32)
    fixed[:, 0], fixed[:, -1] = 101, 102
    flen = np.full(1000, 128, dtype=np.int32)
    profile("MiniLM 1000x128 encode_ids", lambda: m.encode_ids(fixed, flen, batch_size=1000), reps=5)
    profile("corpus encode_ids", lambda: m.encode_ids(arr, lens, batch_size=65536, normalize_embeddings=True))
    profile("corpus encode", lambda: m.encode(texts, normalize_embeddings=True))


if __name__ == "__main__":
    main()
