// Package tokenize turns texts into token ids with the model's Hugging Face tokenizer.json
// (github.com/daulet/tokenizers, the Rust tokenizers core), batched across goroutines.
//
// Truncation follows sentence-transformers: at the model's max_seq_length, keeping the special
// tokens. tokenizer.json's own truncation and padding (all-MiniLM-L6-v2 ships 128 and Fixed
// padding) are replaced before the tokenizer is built, so ids match what sentence-transformers
// feeds the model.
package tokenize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/daulet/tokenizers"
)

// Tokenizer is safe for concurrent use.
type Tokenizer struct {
	tk      *tokenizers.Tokenizer
	maxLen  int
	special map[int32]bool // ids of special tokens ([CLS], [SEP], [PAD], ...)
	// stripNUL: the C binding cannot pass a NUL byte; the BERT normalizer's clean_text removes
	// NUL anyway, so for such tokenizers dropping it first is exact.
	stripNUL bool
	wp       *wordPiece // the Go fast path for BERT WordPiece tokenizers, or nil (wordpiece.go)
	wpWhy    string     // why wp is nil
}

// Load reads tokenizer.json and sets truncation at maxLen tokens (special tokens included).
// lowerCase lowercases texts first, as sentence-transformers 6 does for do_lower_case models:
// a Lowercase normalizer put in front of tokenizer.json's own, unless that already is or holds one.
func Load(path string, maxLen int, lowerCase bool) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("missing file %s: %w", path, err)
	}
	if maxLen < 2 {
		return nil, fmt.Errorf("max_seq_length %d is too small", maxLen)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	// The Rust binding panics (and so aborts the process) when an error message it builds holds
	// a NUL, which a crafted string in tokenizer.json can cause; no real tokenizer needs one.
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return nil, fmt.Errorf("%s: contains a NUL character (\\u0000), which goembed's tokenizer cannot load", path)
	}
	if doc["model"] == nil {
		return nil, fmt.Errorf("%s: not a Hugging Face tokenizer (no \"model\" entry)", path)
	}
	trunc, _ := json.Marshal(map[string]any{"direction": "Right", "max_length": maxLen, "strategy": "LongestFirst", "stride": 0})
	doc["truncation"] = trunc
	doc["padding"] = json.RawMessage("null")
	var norm struct {
		Type        string            `json:"type"`
		CleanText   bool              `json:"clean_text"`
		Normalizers []json.RawMessage `json:"normalizers"`
	}
	_ = json.Unmarshal(doc["normalizer"], &norm)
	if lowerCase && !hasLowercase(norm.Type, norm.Normalizers) {
		seq := []json.RawMessage{json.RawMessage(`{"type":"Lowercase"}`)}
		if norm.Type == "Sequence" {
			seq = append(seq, norm.Normalizers...)
		} else if n := doc["normalizer"]; len(n) > 0 && string(n) != "null" {
			seq = append(seq, n)
		}
		doc["normalizer"], _ = json.Marshal(map[string]any{"type": "Sequence", "normalizers": seq})
	}
	patched, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	tk, err := tokenizers.FromBytes(patched)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot build tokenizer: %v", path, err)
	}
	t := &Tokenizer{tk: tk, maxLen: maxLen, special: specialIDs(doc),
		stripNUL: norm.Type == "BertNormalizer" && norm.CleanText}
	// The fast path reads the patched file: a Lowercase put in front turns it off.
	if err := t.useFastPath(patched); err != nil {
		tk.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// hasLowercase says a normalizer is Lowercase or a Sequence holding one (sentence-transformers'
// _has_lowercase: BertNormalizer's own lowercase option does not count).
func hasLowercase(typ string, seq []json.RawMessage) bool {
	if typ == "Lowercase" {
		return true
	}
	for _, n := range seq {
		var sub struct{ Type string }
		if json.Unmarshal(n, &sub) == nil && sub.Type == "Lowercase" {
			return typ == "Sequence"
		}
	}
	return false
}

// specialIDs collects the special tokens of tokenizer.json: added tokens marked special and the
// tokens its post-processor inserts (TemplateProcessing's special_tokens, BertProcessing's and
// RobertaProcessing's cls and sep).
func specialIDs(doc map[string]json.RawMessage) map[int32]bool {
	ids := map[int32]bool{}
	var added []struct {
		ID      int32 `json:"id"`
		Special bool  `json:"special"`
	}
	_ = json.Unmarshal(doc["added_tokens"], &added)
	for _, a := range added {
		if a.Special {
			ids[a.ID] = true
		}
	}
	var post struct {
		Special map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
		Sep []json.RawMessage `json:"sep"` // ["[SEP]", 102]
		CLS []json.RawMessage `json:"cls"`
	}
	_ = json.Unmarshal(doc["post_processor"], &post)
	for _, sp := range post.Special {
		for _, id := range sp.IDs {
			ids[id] = true
		}
	}
	for _, pair := range [][]json.RawMessage{post.Sep, post.CLS} {
		var id int32
		if len(pair) == 2 && json.Unmarshal(pair[1], &id) == nil {
			ids[id] = true
		}
	}
	return ids
}

// MaxLen is the truncation length in tokens, special tokens included.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// Encode returns the ids of one text with special tokens, truncated at MaxLen.
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	// First, since dropping NULs can turn invalid UTF-8 into valid (the fuzz seed
	// testdata/fuzz/FuzzEncode/41a46be57c40c1d2 is "0\xcc\x00\x80").
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	if strings.IndexByte(text, 0) >= 0 {
		if !t.stripNUL {
			return nil, fmt.Errorf("text contains a NUL character, which this tokenizer cannot receive")
		}
		text = strings.ReplaceAll(text, "\x00", "")
	}
	if t.wp != nil {
		if ids, ok := t.wp.encode(text, t.maxLen); ok {
			return ids, nil
		}
	}
	// A long text is tokenized from a prefix first: if the prefix already fills maxLen tokens and
	// ends at whitespace, the truncated ids are those of the whole text. This bounds the work
	// for multi-megabyte strings; the prefix doubles until it fills or covers the text.
	for clip := 32 * t.maxLen; clip < len(text); clip *= 2 {
		cut := prefixAtSpace(text, clip)
		if cut <= 0 {
			continue
		}
		if ids, err := t.encode(text[:cut]); err != nil || len(ids) >= t.maxLen {
			return ids, err
		}
	}
	return t.encode(text)
}

// encode runs the Rust tokenizer. It returns no ids when tokenization fails (the binding
// swallows the error), so no ids is an error: every model goembed runs adds special tokens.
func (t *Tokenizer) encode(text string) ([]int32, error) {
	enc := t.tk.EncodeWithOptions(text, true)
	if len(enc.IDs) == 0 {
		return nil, fmt.Errorf("the tokenizer returned no tokens (tokenizer.json adds no special tokens, or it failed on this text)")
	}
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids, nil
}

// prefixAtSpace returns the start of the last space, tab, newline or carriage return before
// byte n, or -1. Only these four: BERT's clean_text deletes \v, \f and U+0085 (which
// unicode.IsSpace counts), so a cut there could split what the whole text joins into one word.
func prefixAtSpace(s string, n int) int {
	return strings.LastIndexAny(s[:n], " \t\n\r")
}

// EncodeBatch tokenizes texts on all cores, each as prompt+text. The error names the index of
// the first text that failed.
func (t *Tokenizer) EncodeBatch(texts []string, prompt string) ([][]int32, error) {
	out := make([][]int32, len(texts))
	errs := make([]error, len(texts))
	// Small grains spread even a short batch over every core (a 50-word text takes ~100 us);
	// large batches take 16 texts per grab to keep the shared counter cold.
	procs := runtime.GOMAXPROCS(0)
	grain := max(1, min(16, len(texts)/(4*procs)))
	workers := min(procs, (len(texts)+grain-1)/grain)
	if workers <= 1 { // a query or a few: no goroutine to start and wait for
		for j, text := range texts {
			ids, err := t.Encode(prompt + text)
			if err != nil {
				return nil, &TextError{Index: j, Err: err}
			}
			out[j] = ids
		}
		return out, nil
	}
	var wg sync.WaitGroup
	var next sync.Mutex
	i := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				start := i
				i += grain
				next.Unlock()
				if start >= len(texts) {
					return
				}
				for j := start; j < min(start+grain, len(texts)); j++ {
					out[j], errs[j] = t.encodeSafe(prompt + texts[j])
				}
			}
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return nil, &TextError{Index: j, Err: err}
		}
	}
	return out, nil
}

// TextError is the failure of one text of a batch.
type TextError struct {
	Index int // the text's index in the batch
	Err   error
}

func (e *TextError) Error() string { return fmt.Sprintf("text at index %d: %v", e.Index, e.Err) }
func (e *TextError) Unwrap() error { return e.Err }

// encodeSafe is Encode with a panic turned into an error: it runs on worker goroutines, where an
// unrecovered panic would abort the process.
func (t *Tokenizer) encodeSafe(text string) (ids []int32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in the tokenizer: %v", r)
		}
	}()
	debugPanicHere()
	return t.Encode(text)
}

// PromptLength is the number of tokens a prompt contributes at the start of a sequence, as
// sentence-transformers computes it for include_prompt=false: the prompt's ids alone (special
// tokens included, truncated like a text), less the last one if it is a special token.
func (t *Tokenizer) PromptLength(prompt string) (int, error) {
	ids, err := t.Encode(prompt)
	if err != nil {
		return 0, err
	}
	n := len(ids)
	if n > 0 && t.special[ids[n-1]] {
		n--
	}
	return n, nil
}

// Close frees the tokenizer.
func (t *Tokenizer) Close() error { return t.tk.Close() }
