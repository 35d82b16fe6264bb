"""Long runs measured in a fresh process, so that neither torch nor earlier tests sit in the
resident set. Run by tests/test_reliability_cases.py; prints one JSON line of measurements.

    python tests/longrun_worker.py calls MODEL DEVICE N      # RELIABILITY 35
    python tests/longrun_worker.py million MODEL N            # RELIABILITY 29
"""

import json
import random
import resource
import string
import sys
import time


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Start VmHWM afresh (Linux: write 5 to clear_refs); False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def device_used_bytes():
    """Memory in use on GPU 0 (all processes), from nvidia-smi in a child process, or None
    without it. Not torch.cuda.mem_get_info: importing torch and starting its CUDA runtime in
    this process adds about 480 MiB of RSS, which the first reading would count as growth."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return int(out.split()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def calls(model: str, device: str, n: int) -> dict:
    """n calls of one random 12,000-character string each (ST#1795): RSS after a warm-up
    tenth, and at the end."""
    import goembed

    m = goembed.Encoder(model, device=device)
    rng = random.Random(0)
    alphabet = string.ascii_letters + string.digits + "     .,;-éü中"
    warm = n // 10
    out = {"device": m.device}
    t0 = time.perf_counter()
    for i in range(n):
        if i == warm:
            out["rss_after_warmup"] = rss_bytes()
            out["device_after_warmup"] = device_used_bytes() if m.device == "cuda" else None
        text = "".join(rng.choices(alphabet, k=12_000))
        v = m.encode(text)
        assert v.shape == (m.get_sentence_embedding_dimension(),)
    out["rss_end"] = rss_bytes()
    out["device_end"] = device_used_bytes() if m.device == "cuda" else None
    out["seconds"] = time.perf_counter() - t0
    return out


def million(model: str, n: int) -> dict:
    """n short distinct texts in one encode call on the CPU, with the progress bar on."""
    import goembed

    m = goembed.Encoder(model, device="cpu")
    texts = [f"item {i} of the list, colour {i % 97}" for i in range(n)]
    m.encode(texts[:1000], batch_size=256)  # warm: workspaces, BLAS, tokenizer
    baseline = rss_bytes()
    exact = reset_peak()
    t0 = time.perf_counter()
    e = m.encode(texts, batch_size=256, show_progress_bar=True)
    seconds = time.perf_counter() - t0
    peak = peak_bytes()
    spot = m.encode(texts[::9973])
    ok = e.shape == (n, m.get_sentence_embedding_dimension()) and float(abs(e[::9973] - spot).max()) <= 1e-5
    return {"baseline": baseline, "peak": peak, "peak_reset": exact, "dim": e.shape[1], "seconds": seconds,
            "spot_check_equal": ok}


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "calls":
        res = calls(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif what == "million":
        res = million(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown run {what!r}")
    print("RESULT " + json.dumps(res), flush=True)
