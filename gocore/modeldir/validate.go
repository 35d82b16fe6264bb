package modeldir

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Limits on config.json sizes. They are far above any BERT-family encoder (the largest have
// hidden 4,096, 48 layers, vocabularies of 250,000) and low enough that a hostile or broken
// config.json is refused before anything is allocated for it.
const (
	maxHidden    = 1 << 16
	maxLayers    = 1024
	maxHeads     = 1024
	maxFFN       = 1 << 18
	maxVocab     = 1 << 24
	maxPositions = 1 << 20
	maxTypes     = 1 << 10
	maxElements  = 1 << 36 // 64 Gi weights in all: bigger than any model goembed can run
)

// Validate checks the sizes of config.json: each positive (type_vocab_size may be 0) and
// plausible, the heads dividing the hidden size, and the weights they imply within reason.
// path names the file in the error.
func (c *Config) Validate(path string) error {
	sizes := []struct {
		key       string
		v, lo, hi int
	}{
		{"hidden_size", c.HiddenSize, 1, maxHidden},
		{"num_hidden_layers", c.NumHiddenLayers, 1, maxLayers},
		{"num_attention_heads", c.NumAttentionHeads, 1, maxHeads},
		{"intermediate_size", c.IntermediateSize, 1, maxFFN},
		{"vocab_size", c.VocabSize, 1, maxVocab},
		{"max_position_embeddings", c.MaxPositionEmbeddings, 1, maxPositions},
		{"type_vocab_size", c.TypeVocabSize, 0, maxTypes},
	}
	for _, s := range sizes {
		if s.v < s.lo || s.v > s.hi {
			return fmt.Errorf("%s: %s is %d, outside the plausible range %d..%d", path, s.key, s.v, s.lo, s.hi)
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c.HiddenSize, c.NumAttentionHeads)
	}
	if !(c.LayerNormEps >= 0 && c.LayerNormEps < 1) { // also refuses NaN
		return fmt.Errorf("%s: layer_norm_eps %g is outside [0, 1)", path, c.LayerNormEps)
	}
	// Each factor is bounded above, so these products cannot overflow an int64.
	H, F := int64(c.HiddenSize), int64(c.IntermediateSize)
	layer := 4*H*H + 2*H*F + 9*H + F
	total := int64(c.NumHiddenLayers)*layer + (int64(c.VocabSize)+int64(c.MaxPositionEmbeddings)+int64(c.TypeVocabSize)+2)*H
	if total > maxElements {
		return fmt.Errorf("%s: the sizes imply %d weights, more than goembed can hold (%d)", path, total, int64(maxElements))
	}
	return nil
}

// checkModulePath refuses a modules.json path that leaves the model folder.
func checkModulePath(dir, p string) error {
	if filepath.IsAbs(p) || strings.Contains(p, "\x00") {
		return fmt.Errorf("%s: module path %q must be relative to the model folder", filepath.Join(dir, "modules.json"), p)
	}
	for _, part := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return fmt.Errorf("%s: module path %q leaves the model folder", filepath.Join(dir, "modules.json"), p)
		}
	}
	return nil
}
