"""A tiny random sentence-transformers folder (the Go tests' gocore/internal/tinymodel: a 2-layer
BERT, hidden 32, 2 heads, ffn 64, the 21-token WordPiece vocabulary of
gocore/tokenize/testdata), for tests that break one of its files or need a model that loads in
milliseconds."""

import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

REPO = Path(__file__).resolve().parent.parent
TOKENIZER = REPO / "gocore" / "tokenize" / "testdata" / "tiny_tokenizer.json"

CONFIG = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 21, "hidden_size": 32,
          "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu",
          "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def weights(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    H, F = CONFIG["hidden_size"], CONFIG["intermediate_size"]

    def u(scale, offset, *shape):
        return (offset + scale * rng.uniform(-1, 1, shape)).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": u(1, 0, CONFIG["vocab_size"], H),
        "embeddings.position_embeddings.weight": u(1, 0, CONFIG["max_position_embeddings"], H),
        "embeddings.token_type_embeddings.weight": u(1, 0, 2, H),
        "embeddings.LayerNorm.weight": u(0.2, 1, H),
        "embeddings.LayerNorm.bias": u(0.2, 0, H),
    }
    for layer in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + n + ".weight"] = u((3 / H) ** 0.5, 0, H, H)
            w[p + n + ".bias"] = u(0.1, 0, H)
        w[p + "intermediate.dense.weight"] = u((3 / H) ** 0.5, 0, F, H)
        w[p + "intermediate.dense.bias"] = u(0.1, 0, F)
        w[p + "output.dense.weight"] = u((3 / F) ** 0.5, 0, H, F)
        w[p + "output.dense.bias"] = u(0.1, 0, H)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + n + ".weight"] = u(0.2, 1, H)
            w[p + n + ".bias"] = u(0.2, 0, H)
    return w


def write(d: Path) -> Path:
    """Writes the model into folder d (created) and returns d."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(CONFIG))
    (d / "modules.json").write_text(json.dumps(MODULES))
    (d / "1_Pooling").mkdir(exist_ok=True)
    (d / "1_Pooling" / "config.json").write_text('{"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true}')
    (d / "sentence_bert_config.json").write_text('{"max_seq_length": 48, "do_lower_case": false}')
    shutil.copy(TOKENIZER, d / "tokenizer.json")
    save_file(weights(), str(d / "model.safetensors"))
    return d
