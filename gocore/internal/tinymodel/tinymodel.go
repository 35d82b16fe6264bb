// Package tinymodel writes a complete, tiny sentence-transformers folder with random weights
// (a 2-layer BERT: hidden 32, 2 heads, ffn 64, the 21-token WordPiece vocabulary of
// gocore/tokenize/testdata), for tests that need a real model on disk: hostile-folder cases
// start from it and break one file.
package tinymodel

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"

	"github.com/nlpodyssey/safetensors"
)

// Sizes of the model Write makes.
const (
	Vocab     = 21
	Hidden    = 32
	Heads     = 2
	FFN       = 64
	Layers    = 2
	Positions = 64
)

// Config is the model's config.json.
const Config = `{"model_type": "bert", "architectures": ["BertModel"], "vocab_size": 21, "hidden_size": 32,
 "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "hidden_act": "gelu",
 "max_position_embeddings": 64, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}`

// Files are the small JSON files of the folder besides config.json.
var Files = map[string]string{
	"modules.json": `[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]`,
	"1_Pooling/config.json":     `{"word_embedding_dimension": 32, "pooling_mode_mean_tokens": true}`,
	"sentence_bert_config.json": `{"max_seq_length": 48, "do_lower_case": false}`,
}

// Write fills dir with the model: config.json, tokenizer.json, model.safetensors and Files.
func Write(dir string) error {
	tok, err := os.ReadFile(tokenizerPath())
	if err != nil {
		return err
	}
	weights, err := Weights(7)
	if err != nil {
		return err
	}
	files := map[string][]byte{"config.json": []byte(Config), "tokenizer.json": tok, "model.safetensors": weights}
	for k, v := range Files {
		files[k] = []byte(v)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tokenizerPath finds gocore/tokenize/testdata/tiny_tokenizer.json: beside this source file,
// else in the working folder or above it (a test binary run on another machine).
func tokenizerPath() string {
	const rel = "gocore/tokenize/testdata/tiny_tokenizer.json"
	_, self, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(self), "..", "..", "..", rel)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			return filepath.Join(dir, rel)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return p // not found: the error names the first place tried
		}
		dir = up
	}
}

// Weights serialises random F32 weights of the model (seeded) as safetensors.
func Weights(seed uint64) ([]byte, error) { return WeightsWith(seed, nil) }

// WeightsWith is Weights with edit applied to the tensors before they are serialised.
func WeightsWith(seed uint64, edit func(map[string]safetensors.TensorView)) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	tensors := map[string]safetensors.TensorView{}
	var err error
	add := func(name string, scale, offset float64, shape ...uint64) {
		n := uint64(1)
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(offset+scale*(2*rng.Float64()-1))))
		}
		v, e := safetensors.NewTensorView(safetensors.F32, shape, data)
		if e != nil && err == nil {
			err = e
		}
		tensors[name] = v
	}
	const H, F = Hidden, FFN
	add("embeddings.word_embeddings.weight", 1, 0, Vocab, H)
	add("embeddings.position_embeddings.weight", 1, 0, Positions, H)
	add("embeddings.token_type_embeddings.weight", 1, 0, 2, H)
	add("embeddings.LayerNorm.weight", 0.2, 1, H)
	add("embeddings.LayerNorm.bias", 0.2, 0, H)
	for l := range Layers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			add(p+n+".weight", math.Sqrt(3.0/H), 0, H, H)
			add(p+n+".bias", 0.1, 0, H)
		}
		add(p+"intermediate.dense.weight", math.Sqrt(3.0/H), 0, F, H)
		add(p+"intermediate.dense.bias", 0.1, 0, F)
		add(p+"output.dense.weight", math.Sqrt(3.0/F), 0, H, F)
		add(p+"output.dense.bias", 0.1, 0, H)
		for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
			add(p+n+".weight", 0.2, 1, H)
			add(p+n+".bias", 0.2, 0, H)
		}
	}
	if err != nil {
		return nil, err
	}
	if edit != nil {
		edit(tensors)
	}
	return safetensors.Serialize(tensors, nil)
}
