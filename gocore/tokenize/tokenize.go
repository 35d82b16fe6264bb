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
	"unicode/utf8"

	"github.com/daulet/tokenizers"
)

// Tokenizer is safe for concurrent use. It holds no per-call state: a call may ask for its own
// truncation length (up to Limit) without affecting other calls.
type Tokenizer struct {
	// tk truncates at limit+1 tokens: a result longer than the length a call asked for shows that
	// the text was truncated, and cutting it gives exactly what truncation at that length gives.
	tk         *tokenizers.Tokenizer
	maxLen     int // default truncation length
	limit      int // longest truncation length a call may ask for
	head, tail int // special tokens the post-processor puts before and after the text
	lowerCase  bool
	// stripNUL: the C binding cannot pass a NUL byte; the BERT normalizer's clean_text removes
	// NUL anyway, so for such tokenizers dropping it first is exact.
	stripNUL bool
	wp       *wordPiece // the Go fast path for BERT WordPiece tokenizers, or nil (wordpiece.go)
	wpWhy    string     // why wp is nil
}

// Option changes how Load builds a Tokenizer.
type Option func(*Tokenizer)

// WithLimit lets calls ask for truncation lengths up to n (the model's position limit); the
// default is maxLen.
func WithLimit(n int) Option { return func(t *Tokenizer) { t.limit = max(n, t.maxLen) } }

// Load reads tokenizer.json and sets truncation at maxLen tokens (special tokens included).
// lowerCase lowercases texts first, as sentence-transformers does for do_lower_case models.
func Load(path string, maxLen int, lowerCase bool, opts ...Option) (*Tokenizer, error) {
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
	t := &Tokenizer{maxLen: maxLen, limit: maxLen, lowerCase: lowerCase}
	for _, o := range opts {
		o(t)
	}
	trunc, _ := json.Marshal(map[string]any{"direction": "Right", "max_length": t.limit + 1, "strategy": "LongestFirst", "stride": 0})
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
	t.tk, t.stripNUL = tk, norm.Type == "BertNormalizer" && norm.CleanText
	// The special tokens around a plain word tell how a cut must keep them ([CLS] ... [SEP]).
	mask := tk.EncodeWithOptions("a", true, tokenizers.WithReturnSpecialTokensMask()).SpecialTokensMask
	for t.head < len(mask) && mask[t.head] == 1 {
		t.head++
	}
	for t.tail < len(mask)-t.head && mask[len(mask)-1-t.tail] == 1 {
		t.tail++
	}
	if maxLen < max(t.head+t.tail, 1) {
		tk.Close()
		return nil, fmt.Errorf("max_seq_length %d is too small", maxLen)
	}
	if err := t.useFastPath(raw); err != nil {
		tk.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// MaxLen is the default truncation length in tokens, special tokens included.
func (t *Tokenizer) MaxLen() int { return t.maxLen }

// Limit is the longest truncation length a call may ask for.
func (t *Tokenizer) Limit() int { return t.limit }

// Encode returns the ids of one text with special tokens, truncated at MaxLen.
func (t *Tokenizer) Encode(text string) ([]int32, error) {
	ids, _, err := t.EncodeMax(text, t.maxLen)
	return ids, err
}

// EncodeMax returns the ids of one text with special tokens, truncated at maxLen tokens
// (MaxLen when 0), and whether truncation dropped any.
func (t *Tokenizer) EncodeMax(text string, maxLen int) (ids []int32, truncated bool, err error) {
	if maxLen, err = t.checkLen(maxLen); err != nil {
		return nil, false, err
	}
	if t.lowerCase {
		text = strings.ToLower(text)
	}
	if strings.IndexByte(text, 0) >= 0 {
		if !t.stripNUL {
			return nil, false, fmt.Errorf("text contains a NUL character, which this tokenizer cannot receive")
		}
		text = strings.ReplaceAll(text, "\x00", "")
	}
	if !utf8.ValidString(text) {
		return nil, false, fmt.Errorf("text is not valid UTF-8")
	}
	if t.wp != nil {
		// one piece more than asked: a longer result says the text was truncated
		if ids, ok := t.wp.encode(text, maxLen+1); ok {
			ids, truncated = t.cut(ids, maxLen)
			return ids, truncated, nil
		}
	}
	// A long text is tokenized from a prefix first: if the prefix already overflows maxLen tokens
	// and ends at whitespace, the truncated ids are those of the whole text. This bounds the work
	// for multi-megabyte strings; the prefix doubles until it overflows or covers the text.
	for clip := 32 * maxLen; clip < len(text); clip *= 2 {
		cut := prefixAtSpace(text, clip)
		if cut <= 0 {
			continue
		}
		if ids := t.raw(text[:cut]); len(ids) > maxLen {
			ids, truncated = t.cut(ids, maxLen)
			return ids, truncated, nil
		}
	}
	ids, truncated = t.cut(t.raw(text), maxLen)
	return ids, truncated, nil
}

func (t *Tokenizer) checkLen(maxLen int) (int, error) {
	if maxLen == 0 {
		return t.maxLen, nil
	}
	if maxLen < max(t.head+t.tail, 1) || maxLen > t.limit {
		return 0, fmt.Errorf("max_seq_length %d is outside %d..%d for this model", maxLen, max(t.head+t.tail, 1), t.limit)
	}
	return maxLen, nil
}

// cut truncates ids to maxLen as the tokenizer's own truncation would: text tokens are dropped
// from the end, the trailing special tokens kept.
func (t *Tokenizer) cut(ids []int32, maxLen int) ([]int32, bool) {
	if len(ids) <= maxLen {
		return ids, false
	}
	copy(ids[maxLen-t.tail:], ids[len(ids)-t.tail:])
	return ids[:maxLen:maxLen], true
}

// encode is Encode without the checks: the ids of text truncated at MaxLen.
func (t *Tokenizer) encode(text string) []int32 {
	ids, _ := t.cut(t.raw(text), t.maxLen)
	return ids
}

// raw tokenizes text with special tokens, truncated at limit+1.
func (t *Tokenizer) raw(text string) []int32 {
	enc := t.tk.EncodeWithOptions(text, true)
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids
}

// prefixAtSpace returns the start of the last space, tab, newline or carriage return before
// byte n, or -1. Only these four: BERT's clean_text deletes \v, \f and U+0085 (which
// unicode.IsSpace counts), so a cut there could split what the whole text joins into one word.
func prefixAtSpace(s string, n int) int {
	return strings.LastIndexAny(s[:n], " \t\n\r")
}

// EncodeBatch tokenizes texts on all cores, each as prompt+text truncated at MaxLen. The error
// names the index of the first text that failed.
func (t *Tokenizer) EncodeBatch(texts []string, prompt string) ([][]int32, error) {
	ids, _, err := t.EncodeBatchMax(texts, prompt, 0)
	return ids, err
}

// EncodeBatchMax is EncodeBatch truncating at maxLen (MaxLen when 0); truncated[i] says whether
// text i lost tokens.
func (t *Tokenizer) EncodeBatchMax(texts []string, prompt string, maxLen int) (out [][]int32, truncated []bool, err error) {
	if maxLen, err = t.checkLen(maxLen); err != nil {
		return nil, nil, err
	}
	out = make([][]int32, len(texts))
	truncated = make([]bool, len(texts))
	errs := make([]error, len(texts))
	// Small grains spread even a short batch over every core (a 50-word text takes ~100 us);
	// large batches take 16 texts per grab to keep the shared counter cold.
	procs := runtime.GOMAXPROCS(0)
	grain := max(1, min(16, len(texts)/(4*procs)))
	workers := min(procs, (len(texts)+grain-1)/grain)
	if workers <= 1 { // a query or a few: no goroutine to start and wait for
		for j, text := range texts {
			ids, cut, err := t.EncodeMax(prompt+text, maxLen)
			if err != nil {
				return nil, nil, &TextError{Index: j, Err: err}
			}
			out[j], truncated[j] = ids, cut
		}
		return out, truncated, nil
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
					out[j], truncated[j], errs[j] = t.encodeSafe(prompt+texts[j], maxLen)
				}
			}
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return nil, nil, &TextError{Index: j, Err: err}
		}
	}
	return out, truncated, nil
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
func (t *Tokenizer) encodeSafe(text string, maxLen int) (ids []int32, truncated bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in the tokenizer: %v", r)
		}
	}()
	return t.EncodeMax(text, maxLen)
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
