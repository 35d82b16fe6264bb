// Package tokenize turns texts into token ids with the model's Hugging Face tokenizer.json
// (github.com/daulet/tokenizers, the Rust tokenizers core), batched across goroutines.
//
// Truncation follows sentence-transformers: at the model's max_seq_length, keeping the special
// tokens. tokenizer.json's own truncation and padding (all-MiniLM-L6-v2 ships 128 and Fixed
// padding) are replaced before the tokenizer is built, so ids match what sentence-transformers
// feeds the model.
package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/daulet/tokenizers"
)

// Tokenizer is safe for concurrent use.
type Tokenizer struct {
	tk        *tokenizers.Tokenizer
	maxLen    int
	lowerCase bool
	// stripNUL: the C binding cannot pass a NUL byte; the BERT normalizer's clean_text removes
	// NUL anyway, so for such tokenizers dropping it first is exact.
	stripNUL bool
}

// Load reads tokenizer.json and sets truncation at maxLen tokens (special tokens included).
// lowerCase lowercases texts first, as sentence-transformers does for do_lower_case models.
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
	trunc, _ := json.Marshal(map[string]any{"direction": "Right", "max_length": maxLen, "strategy": "LongestFirst", "stride": 0})
	doc["truncation"] = trunc
	doc["padding"] = json.RawMessage("null")
	patched, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	tk, err := tokenizers.FromBytes(patched)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot build tokenizer: %v", path, err)
	}
	var norm struct {
		Type      string `json:"type"`
		CleanText bool   `json:"clean_text"`
	}
	_ = json.Unmarshal(doc["normalizer"], &norm)
	return &Tokenizer{tk: tk, maxLen: maxLen, lowerCase: lowerCase,
		stripNUL: norm.Type == "BertNormalizer" && norm.CleanText}, nil
}

// MaxLen is the truncation length in tokens, special tokens included.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// Encode returns the ids of one text with special tokens, truncated at MaxLen.
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	if t.lowerCase {
		text = strings.ToLower(text)
	}
	if strings.IndexByte(text, 0) >= 0 {
		if !t.stripNUL {
			return nil, fmt.Errorf("text contains a NUL character, which this tokenizer cannot receive")
		}
		text = strings.ReplaceAll(text, "\x00", "")
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	// A long text is tokenized from a prefix first: if the prefix already fills maxLen tokens and
	// ends at whitespace, the truncated ids are those of the whole text. This bounds the work
	// for multi-megabyte strings; the prefix doubles until it fills or covers the text.
	for clip := 32 * t.maxLen; clip < len(text); clip *= 2 {
		cut := prefixAtSpace(text, clip)
		if cut <= 0 {
			continue
		}
		if ids := t.encode(text[:cut]); len(ids) >= t.maxLen {
			return ids, nil
		}
	}
	return t.encode(text), nil
}

func (t *Tokenizer) encode(text string) []int32 {
	enc := t.tk.EncodeWithOptions(text, true)
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids
}

// prefixAtSpace returns the end of the last whitespace run that starts before byte n, or -1.
func prefixAtSpace(s string, n int) int {
	for i := n; i > 0; {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsSpace(r) {
			return i - size
		}
		i -= size
	}
	return -1
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
	return t.Encode(text)
}

// PromptLength is the number of tokens a prompt contributes at the start of a sequence
// (its ids without the trailing separator), as sentence-transformers computes it for
// include_prompt=false.
func (t *Tokenizer) PromptLength(prompt string) (int, error) {
	ids, err := t.Encode(prompt)
	if err != nil {
		return 0, err
	}
	return max(len(ids)-1, 0), nil
}

// Close frees the tokenizer.
func (t *Tokenizer) Close() error { return t.tk.Close() }
