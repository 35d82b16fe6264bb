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

// Tokenizer is safe for concurrent use. It holds no per-call state: a call may ask for its own
// truncation length (up to Limit) without affecting other calls.
type Tokenizer struct {
	// tk truncates at limit+1 tokens: a result longer than the length a call asked for shows that
	// the text was truncated, and cutting it gives exactly what truncation at that length gives.
	tk         *tokenizers.Tokenizer
	maxLen     int            // default truncation length
	limit      int            // longest truncation length a call may ask for
	head, tail int            // special tokens the post-processor puts before and after the text
	special    map[int32]bool // ids of special tokens ([CLS], [SEP], [PAD], ...)
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
// lowerCase lowercases texts first, as sentence-transformers 6 does for do_lower_case models:
// a Lowercase normalizer put in front of tokenizer.json's own, unless that already is or holds one.
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
	// The Rust binding panics (and so aborts the process) when an error message it builds holds
	// a NUL, which a crafted string in tokenizer.json can cause; no real tokenizer needs one.
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return nil, fmt.Errorf("%s: contains a NUL character (\\u0000), which goembed's tokenizer cannot load", path)
	}
	if doc["model"] == nil {
		return nil, fmt.Errorf("%s: not a Hugging Face tokenizer (no \"model\" entry)", path)
	}
	t := &Tokenizer{maxLen: maxLen, limit: maxLen}
	for _, o := range opts {
		o(t)
	}
	trunc, _ := json.Marshal(map[string]any{"direction": "Right", "max_length": t.limit + 1, "strategy": "LongestFirst", "stride": 0})
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
	t.tk, t.special, t.stripNUL = tk, specialIDs(doc), norm.Type == "BertNormalizer" && norm.CleanText
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
	// First, since dropping NULs can turn invalid UTF-8 into valid (the fuzz seed
	// testdata/fuzz/FuzzEncode/41a46be57c40c1d2 is "0\xcc\x00\x80").
	if !utf8.ValidString(text) {
		return nil, false, fmt.Errorf("text is not valid UTF-8")
	}
	if strings.IndexByte(text, 0) >= 0 {
		if !t.stripNUL {
			return nil, false, fmt.Errorf("text contains a NUL character, which this tokenizer cannot receive")
		}
		text = strings.ReplaceAll(text, "\x00", "")
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
		ids, err := t.raw(text[:cut])
		if err != nil {
			return nil, false, err
		}
		if len(ids) > maxLen {
			ids, truncated = t.cut(ids, maxLen)
			return ids, truncated, nil
		}
	}
	if ids, err = t.raw(text); err != nil {
		return nil, false, err
	}
	ids, truncated = t.cut(ids, maxLen)
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
func (t *Tokenizer) encode(text string) ([]int32, error) {
	ids, err := t.raw(text)
	if err != nil {
		return nil, err
	}
	ids, _ = t.cut(ids, t.maxLen)
	return ids, nil
}

// raw runs the Rust tokenizer: text with special tokens, truncated at limit+1. It returns no
// ids when tokenization fails (the binding swallows the error), so no ids is an error: every
// model goembed runs adds special tokens.
func (t *Tokenizer) raw(text string) ([]int32, error) {
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

// EncodeBatch tokenizes texts on all cores, each as prompt+text truncated at MaxLen. The error
// names the index of the first text that failed.
func (t *Tokenizer) EncodeBatch(texts []string, prompt string) ([][]int32, error) {
	ids, _, err := t.EncodeBatchMax(texts, prompt, 0)
	return ids, err
}

// EncodeBatchMax is EncodeBatch truncating at maxLen (MaxLen when 0); truncated[i] says whether
// text i lost tokens.
func (t *Tokenizer) EncodeBatchMax(texts []string, prompt string, maxLen int) (out [][]int32, truncated []bool, err error) {
	return t.EncodeBatchOn(texts, prompt, maxLen, runtime.GOMAXPROCS(0))
}

// EncodeBatchOn is EncodeBatchMax on at most procs goroutines (at least one).
func (t *Tokenizer) EncodeBatchOn(texts []string, prompt string, maxLen, procs int) (out [][]int32, truncated []bool, err error) {
	if maxLen, err = t.checkLen(maxLen); err != nil {
		return nil, nil, err
	}
	out = make([][]int32, len(texts))
	truncated = make([]bool, len(texts))
	errs := make([]error, len(texts))
	// Small grains spread even a short batch over every core (a 50-word text takes ~100 us);
	// large batches take 16 texts per grab to keep the shared counter cold.
	procs = max(procs, 1)
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
	debugPanicHere()
	return t.EncodeMax(text, maxLen)
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
