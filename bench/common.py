"""Helpers every cross-engine benchmark shares: corpus slices, timing, FLOP counts, JSON records
in the shape ../shared/MEASURING.md fixes."""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("GOEMBED_CORPUS", REPO.parent / "shared" / "corpus" / "debian-descriptions.jsonl.gz"))
RESULTS = REPO / "bench" / "results"


def cache_dir() -> Path:
    """bench/.cache (or $GOEMBED_BENCH_CACHE): generated models and helpers, kept between runs;
    the folder ignores itself in git."""
    d = Path(os.environ.get("GOEMBED_BENCH_CACHE", REPO / "bench" / ".cache"))
    d.mkdir(parents=True, exist_ok=True)
    if not (d / ".gitignore").exists():
        (d / ".gitignore").write_text("*\n")
    return d


def corpus_texts(n: int | None = None) -> list[str]:
    """The first n passages of the shared corpus, in file order (a fixed slice)."""
    out = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if n is not None and len(out) == n:
                break
    return out


def time_calls(fn, warmup: int, reps: int, min_seconds: float = 0.0) -> list[float]:
    """Run fn warmup times untimed, then reps times; returns each rep's wall time in ms.
    fn must return only once its results are on the host. With min_seconds, a fast fn runs more
    reps (and a tenth as many more warm-up calls), up to 2,000, so that the timed calls last
    about min_seconds: a median of 10 calls of 0.2 ms is mostly noise."""
    for _ in range(warmup):
        fn()
    if min_seconds > 0:
        t0 = time.perf_counter()
        fn()
        once = max(time.perf_counter() - t0, 1e-6)
        extra = min(2000, int(min_seconds / once))
        if extra > reps:
            for _ in range(extra // 10):
                fn()
            reps = extra
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def encoder_flops(lengths, layers: int, hidden: int, ffn: int) -> float:
    """FLOPs of a BERT encoder over sequences of the given (real or padded) lengths:
    per token L * (8 H^2 + 4 H F + 4 S H), S that token's sequence length (MEASURING.md rule 5)."""
    return float(sum(layers * (8 * hidden * hidden + 4 * hidden * ffn + 4 * s * hidden) * s for s in lengths))


def padded_lengths(lengths, batch_size: int) -> list[int]:
    """Lengths as an engine that sorts by length and pads each batch to its longest sees them."""
    s = sorted(lengths, reverse=True)
    out = []
    for i in range(0, len(s), batch_size):
        b = s[i:i + batch_size]
        out += [b[0]] * len(b)
    return out


def record(engine: str, engine_config: str, model: str, device: str, precision: str, batch, seq, corpus: str,
           timed: str, times_ms: list[float], docs: int, flops: float, gpu: str = "") -> dict:
    med = statistics.median(times_ms)
    return {
        "engine": engine, "engine_config": engine_config, "model": model, "device": device, "gpu": gpu,
        "precision": precision, "batch": batch, "seq": seq, "corpus": corpus, "timed": timed,
        "median_ms": round(med, 3), "min_ms": round(min(times_ms), 3), "max_ms": round(max(times_ms), 3),
        "reps": len(times_ms), "docs_per_s": round(docs / (med / 1e3), 1),
        "tflops": round(flops / (med / 1e3) / 1e12, 4),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": f"{platform.machine()} {os.cpu_count()} cpus",
    }


def write_results(name: str, records: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    p.write_text(json.dumps(records, indent=1) + "\n")
    return p
