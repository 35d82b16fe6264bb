package gocore

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/goembed/goembed/gocore/internal/tinymodel"
)

// tinyDir writes the tiny model into a fresh folder.
func tinyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := tinymodel.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// header builds a safetensors file from a raw JSON header and data.
func header(h string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

func weightsWith(t *testing.T, edit func(map[string]safetensors.TensorView)) []byte {
	t.Helper()
	b, err := tinymodel.WeightsWith(7, edit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func view(t *testing.T, dt safetensors.DType, shape []uint64) safetensors.TensorView {
	n := uint64(1)
	for _, d := range shape {
		n *= d
	}
	v, err := safetensors.NewTensorView(dt, shape, make([]byte, n*dt.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHostileModelFolders breaks one file of a working model at a time: each must give an error
// that names the file (and says what is wrong) before anything big is allocated, never a panic
// or a hang, and the process goes on to load the intact model.
func TestHostileModelFolders(t *testing.T) {
	const word = "embeddings.word_embeddings.weight"
	cases := []struct {
		name, file string // file is written with data; the error must name it
		data       func(t *testing.T, orig []byte) []byte
		want       string // also in the error
	}{
		{"truncated weights", "model.safetensors", func(t *testing.T, b []byte) []byte { return b[:len(b)/2] }, "safetensors"},
		{"weights cut inside the header", "model.safetensors", func(t *testing.T, b []byte) []byte { return b[:20] }, "safetensors"},
		{"weights of 3 bytes", "model.safetensors", func(t *testing.T, b []byte) []byte { return b[:3] }, "too small"},
		{"corrupted header", "model.safetensors", func(t *testing.T, b []byte) []byte {
			c := append([]byte(nil), b...)
			copy(c[8:], "#garbage#")
			return c
		}, "safetensors"},
		{"header length past the end", "model.safetensors", func(t *testing.T, b []byte) []byte {
			c := append([]byte(nil), b...)
			binary.LittleEndian.PutUint64(c, 1<<40)
			return c
		}, "header"},
		{"offsets past the end", "model.safetensors", func(t *testing.T, b []byte) []byte {
			return header(`{"`+word+`":{"dtype":"F32","shape":[1000000000,1000],"data_offsets":[0,4000000000000]}}`, make([]byte, 64))
		}, "safetensors"},
		{"shape overflowing 64 bits", "model.safetensors", func(t *testing.T, b []byte) []byte {
			return header(`{"`+word+`":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}`, nil)
		}, "safetensors"},
		{"wrong dtype", "model.safetensors", func(t *testing.T, b []byte) []byte {
			return weightsWith(t, func(m map[string]safetensors.TensorView) {
				m[word] = view(t, safetensors.I64, []uint64{tinymodel.Vocab, tinymodel.Hidden})
			})
		}, "I64"},
		{"wrong shape", "model.safetensors", func(t *testing.T, b []byte) []byte {
			return weightsWith(t, func(m map[string]safetensors.TensorView) {
				m[word] = view(t, safetensors.F32, []uint64{tinymodel.Vocab, tinymodel.Hidden / 2})
			})
		}, "shape"},
		{"missing tensor", "model.safetensors", func(t *testing.T, b []byte) []byte {
			return weightsWith(t, func(m map[string]safetensors.TensorView) { delete(m, "encoder.layer.1.output.dense.bias") })
		}, "missing"},
		{"hidden 1e9", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"hidden_size": 32`, `"hidden_size": 1000000000`, 1))
		}, "hidden_size"},
		{"hidden as 1e9 literal", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"hidden_size": 32`, `"hidden_size": 1e9`, 1))
		}, "hidden_size"},
		{"a million layers", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"num_hidden_layers": 2`, `"num_hidden_layers": 1000000`, 1))
		}, "num_hidden_layers"},
		{"vocab 0", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"vocab_size": 21`, `"vocab_size": 0`, 1))
		}, "vocab_size"},
		{"heads not dividing hidden", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"num_attention_heads": 2`, `"num_attention_heads": 5`, 1))
		}, "num_attention_heads"},
		{"negative ffn", "config.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"intermediate_size": 64`, `"intermediate_size": -64`, 1))
		}, "intermediate_size"},
		{"sizes too big together", "config.json", func(t *testing.T, b []byte) []byte {
			s := strings.Replace(string(b), `"hidden_size": 32`, `"hidden_size": 65536`, 1)
			return []byte(strings.Replace(s, `"intermediate_size": 64`, `"intermediate_size": 262144`, 1))
		}, "weights"},
		{"config not JSON", "config.json", func(t *testing.T, b []byte) []byte { return []byte("{nope") }, "invalid JSON"},
		{"config a list", "config.json", func(t *testing.T, b []byte) []byte { return []byte("[1, 2]") }, "invalid JSON"},
		{"tokenizer not JSON", "tokenizer.json", func(t *testing.T, b []byte) []byte { return []byte("\x00\xff{") }, "invalid JSON"},
		{"tokenizer empty", "tokenizer.json", func(t *testing.T, b []byte) []byte { return nil }, "invalid JSON"},
		{"tokenizer without model", "tokenizer.json", func(t *testing.T, b []byte) []byte { return []byte(`{"version": "1.0"}`) }, "model"},
		{"tokenizer with a broken model", "tokenizer.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"type": "WordPiece"`, `"type": "NoSuchModel"`, 1))
		}, "tokenizer"},
		{"tokenizer with a NUL in a name", "tokenizer.json", func(t *testing.T, b []byte) []byte {
			return []byte(strings.Replace(string(b), `"type": "WordPiece"`, `"type": "Word\u0000Piece"`, 1))
		}, "NUL"},
		{"modules.json an object", "modules.json", func(t *testing.T, b []byte) []byte { return []byte(`{"a": 1}`) }, "invalid JSON"},
		{"modules.json numbers", "modules.json", func(t *testing.T, b []byte) []byte { return []byte(`[1, 2]`) }, "invalid JSON"},
		{"module path escapes", "modules.json", func(t *testing.T, b []byte) []byte {
			return []byte(`[{"path": "../../../etc", "type": "sentence_transformers.models.Pooling"}]`)
		}, "leaves the model folder"},
		{"module path absolute", "modules.json", func(t *testing.T, b []byte) []byte {
			return []byte(`[{"path": "/etc", "type": "sentence_transformers.models.Pooling"}]`)
		}, "relative"},
		{"unknown module", "modules.json", func(t *testing.T, b []byte) []byte {
			return []byte(`[{"path": "", "type": "evil.Module"}]`)
		}, "not supported"},
		{"pooling garbage", "1_Pooling/config.json", func(t *testing.T, b []byte) []byte { return []byte(`{"pooling_mode": {"x": 1}}`) }, "pooling_mode"},
		{"pooling not JSON", "1_Pooling/config.json", func(t *testing.T, b []byte) []byte { return []byte(`]`) }, "invalid JSON"},
		{"max_seq_length beyond positions", "sentence_bert_config.json", func(t *testing.T, b []byte) []byte {
			return []byte(`{"max_seq_length": 100000}`)
		}, "max_position_embeddings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := tinyDir(t)
			p := filepath.Join(dir, c.file)
			orig, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, c.data(t, orig))
			e, err := Load(dir, Options{Device: "cpu"})
			if err == nil {
				e.Close()
				t.Fatalf("loaded; want an error naming %s", c.file)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.file) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nshould name %s and say %q", err, c.file, c.want)
			}
		})
	}
	// The process is unharmed: the intact model loads and encodes.
	e, err := Load(tinyDir(t), Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Encode([]string{"hello world"}); err != nil {
		t.Fatal(err)
	}
}
