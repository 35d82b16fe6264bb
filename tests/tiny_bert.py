"""A random-weight BERT sentence-transformers folder with all-MiniLM-L6-v2's tokenizer, small
enough that a test can run it thousands of times: hidden 32, 2 layers, 1 head (of 32: CUDA runs head
dims 32 and 64), FFN 64."""

import json
import shutil
from pathlib import Path

import numpy as np


def make_tiny_model(path, minilm_dir, *, hidden=32, layers=2, heads=1, ffn=64, max_positions=512,
                    max_seq_length=128, seed=0, prompts=None, edit=None) -> str:
    """Write the folder at path and return it. edit(tensors, vocab) may change the float32
    tensors (a dict of numpy arrays, BERT checkpoint names) before they are saved; vocab maps
    word pieces to ids."""
    from safetensors.numpy import save_file

    path, src = Path(path), Path(minilm_dir)
    path.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, path / name)
    vocab = json.loads((src / "tokenizer.json").read_text())["model"]["vocab"]
    config = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocab), "hidden_size": hidden,
              "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": ffn,
              "hidden_act": "gelu", "max_position_embeddings": max_positions, "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
              "pad_token_id": 0}
    (path / "config.json").write_text(json.dumps(config))
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                "do_lower_case": False}))
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden,
                                                                 "pooling_mode_mean_tokens": True}))
    (path / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": prompts or {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}))

    rng = np.random.default_rng(seed)

    def u(*shape, scale=1.0, offset=0.0):
        return (offset + scale * (2 * rng.random(shape) - 1)).astype(np.float32)

    t = {"embeddings.word_embeddings.weight": u(len(vocab), hidden),
         "embeddings.position_embeddings.weight": u(max_positions, hidden),
         "embeddings.token_type_embeddings.weight": u(2, hidden),
         "embeddings.LayerNorm.weight": u(hidden, scale=0.2, offset=1), "embeddings.LayerNorm.bias": u(hidden, scale=0.2)}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + n + ".weight"] = u(hidden, hidden, scale=(3 / hidden) ** 0.5)
            t[p + n + ".bias"] = u(hidden, scale=0.1)
        t[p + "intermediate.dense.weight"] = u(ffn, hidden, scale=(3 / hidden) ** 0.5)
        t[p + "intermediate.dense.bias"] = u(ffn, scale=0.1)
        t[p + "output.dense.weight"] = u(hidden, ffn, scale=(3 / ffn) ** 0.5)
        t[p + "output.dense.bias"] = u(hidden, scale=0.1)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"] = u(hidden, scale=0.2, offset=1)
            t[p + n + ".bias"] = u(hidden, scale=0.2)
    if edit is not None:
        edit(t, vocab)
    save_file(t, str(path / "model.safetensors"))
    return str(path)
