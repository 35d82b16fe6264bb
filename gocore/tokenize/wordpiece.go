package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// wordPiece is a hand-written Go copy of what Hugging Face tokenizers (0.22, the version
// daulet/tokenizers links) does for a BERT tokenizer.json, for ASCII and the non-ASCII runes of
// runes.go. It exists because the library is slow for our use, not because it is wrong:
// daulet's binding always builds token strings, offsets and masks, and HF's generic pipeline
// tracks alignments per character, so one core tokenized ~4,000 corpus passages/s, and
// tokenizing the corpus took longer than its GPU forward.
//
// Exactness rests on what BERT's pipeline does to ASCII bytes (HF sources:
// normalizers/bert.rs, pre_tokenizers/bert.rs, models/wordpiece/mod.rs, added_vocabulary.rs):
//   - BertNormalizer with clean_text drops NUL and control characters (Cc: \v, \f and DEL
//     too) except \t \n \r, which become spaces; lowercase maps A-Z to a-z; Chinese-character
//     padding and accent stripping change nothing in ASCII.
//   - BertPreTokenizer splits at whitespace (Rust's char::is_whitespace: \t \n \v \f \r and
//     space) and isolates every ASCII punctuation character (33-47, 58-64, 91-96, 123-126).
//   - WordPiece: greedy longest match first with the continuation prefix; a word longer than
//     max_input_chars_per_word characters, or one with a part no entry matches, is one
//     unknown token.
//   - Added tokens (normalized=false) are matched in the raw text first, leftmost-longest, and
//     each becomes its one id; the text between matches is tokenized piece by piece.
//   - Truncation keeps the first maxLen-len(prefix)-len(suffix) pieces, then the post
//     processor adds prefix ([CLS]) and suffix ([SEP]). Scanning stops there, so a long text
//     costs what its first maxLen tokens cost.
//
// A text with a rune outside the table before the truncation point is left to HF
// (Tokenizer.Encode).
type wordPiece struct {
	vocab, cont    map[string]int32 // cont: entries that start with the prefix, prefix cut off
	maxKey, maxCnt int              // longest key of vocab and of cont: no longer match exists
	unk            int32
	maxChars       int
	prefix, suffix []int32           // post-processor ids around the sequence
	kind           [128]byte         // of each ASCII byte: kindWord, kindDrop, kindSpace, kindPunct
	norm           [128]byte         // a word byte as the normalizer leaves it (lowercased or not)
	added          []addedToken      // matched in the raw text; empty content never matches
	addedFirst     [256]bool         // first bytes of added tokens
	runes          map[rune]runeNorm // the non-ASCII runes the fast path takes (runes.go)
}

type addedToken struct {
	content string
	id      int32
}

// What the normalizer and pre-tokenizer make of an ASCII byte.
const (
	kindWord  = iota // part of a word
	kindDrop         // removed by clean_text
	kindSpace        // splits words
	kindPunct        // a word of its own
)

// tokenizerJSON is the part of tokenizer.json the fast path reads.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type         string `json:"type"`
		CleanText    bool   `json:"clean_text"`
		Lowercase    bool   `json:"lowercase"`
		StripAccents *bool  `json:"strip_accents"` // null: as lowercase
	} `json:"normalizer"`
	PreTokenizer *struct {
		Type string `json:"type"`
	} `json:"pre_tokenizer"`
	Model *struct {
		Type     string           `json:"type"`
		Vocab    map[string]int32 `json:"vocab"`
		Unk      string           `json:"unk_token"`
		Prefix   string           `json:"continuing_subword_prefix"`
		MaxChars int              `json:"max_input_chars_per_word"`
	} `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
}

// newWordPiece builds the fast path from tokenizer.json, or says why it cannot.
func newWordPiece(raw []byte, maxLen int) (*wordPiece, error) {
	var doc tokenizerJSON
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	n, p, m := doc.Normalizer, doc.PreTokenizer, doc.Model
	switch {
	case n == nil || n.Type != "BertNormalizer":
		return nil, fmt.Errorf("normalizer is not BertNormalizer")
	case p == nil || p.Type != "BertPreTokenizer":
		return nil, fmt.Errorf("pre_tokenizer is not BertPreTokenizer")
	case m == nil || m.Type != "WordPiece":
		return nil, fmt.Errorf("model is not WordPiece")
	}
	w := &wordPiece{vocab: m.Vocab, cont: map[string]int32{}, maxChars: m.MaxChars}
	unk, ok := m.Vocab[m.Unk]
	if !ok {
		return nil, fmt.Errorf("unk_token %q is not in the vocabulary", m.Unk)
	}
	w.unk = unk
	for k, id := range m.Vocab {
		w.maxKey = max(w.maxKey, len(k))
		if rest, ok := strings.CutPrefix(k, m.Prefix); ok {
			w.cont[rest] = id
			w.maxCnt = max(w.maxCnt, len(rest))
		}
	}
	for _, a := range doc.AddedTokens {
		if a.Content == "" { // HF ignores it
			continue
		}
		if a.Normalized || a.SingleWord || a.Lstrip || a.Rstrip {
			return nil, fmt.Errorf("added token %q is normalized or has single_word/lstrip/rstrip", a.Content)
		}
		// HF gives an added token the model's id for the same string; one the vocabulary lacks
		// would get a new id, which this path does not reproduce.
		if id, ok := m.Vocab[a.Content]; !ok || id != a.ID {
			return nil, fmt.Errorf("added token %q is not the vocabulary's id %d", a.Content, a.ID)
		}
		w.added = append(w.added, addedToken{a.Content, a.ID})
		w.addedFirst[a.Content[0]] = true
	}
	var err error
	if w.prefix, w.suffix, err = postProcessorIDs(doc.PostProcessor); err != nil {
		return nil, err
	}
	if len(w.prefix)+len(w.suffix) > maxLen {
		return nil, fmt.Errorf("max_seq_length %d leaves no room for the special tokens", maxLen)
	}
	for c := range byte(128) {
		w.norm[c] = c
		switch {
		case c == '\t' || c == '\n' || c == '\r' || c == ' ':
			w.kind[c] = kindSpace
		case c < 32 || c == 127: // control characters (Cc)
			if n.CleanText {
				w.kind[c] = kindDrop
			} else if c == '\v' || c == '\f' { // whitespace to the pre-tokenizer
				w.kind[c] = kindSpace
			} // else part of a word; NUL never gets here: Encode strips or rejects it
		case isASCIIPunct(c):
			w.kind[c] = kindPunct
		case n.Lowercase && c >= 'A' && c <= 'Z':
			w.norm[c] = c + 'a' - 'A'
		}
	}
	strip := n.Lowercase
	if n.StripAccents != nil {
		strip = *n.StripAccents
	}
	w.runes = runeTable(n.CleanText, n.Lowercase, strip)
	return w, nil
}

// postProcessorIDs returns the ids a TemplateProcessing or BertProcessing puts before and after
// a single sequence.
func postProcessorIDs(raw json.RawMessage) (prefix, suffix []int32, err error) {
	var pp struct {
		Type   string `json:"type"`
		Single []struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		} `json:"single"`
		SpecialTokens map[string]struct {
			IDs []int32 `json:"ids"`
		} `json:"special_tokens"`
		Cls []json.RawMessage `json:"cls"` // BertProcessing: ["[CLS]", 101]
		Sep []json.RawMessage `json:"sep"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &pp) != nil {
		return nil, nil, fmt.Errorf("post_processor is missing or unreadable")
	}
	switch pp.Type {
	case "BertProcessing":
		var cls, sep int32
		if len(pp.Cls) != 2 || len(pp.Sep) != 2 || json.Unmarshal(pp.Cls[1], &cls) != nil || json.Unmarshal(pp.Sep[1], &sep) != nil {
			return nil, nil, fmt.Errorf("BertProcessing without cls/sep ids")
		}
		return []int32{cls}, []int32{sep}, nil
	case "TemplateProcessing":
		seen := false
		for _, piece := range pp.Single {
			switch {
			case piece.Sequence != nil && piece.Sequence.ID == "A" && !seen:
				seen = true
			case piece.SpecialToken != nil:
				st, ok := pp.SpecialTokens[piece.SpecialToken.ID]
				if !ok {
					return nil, nil, fmt.Errorf("template names unknown special token %q", piece.SpecialToken.ID)
				}
				if seen {
					suffix = append(suffix, st.IDs...)
				} else {
					prefix = append(prefix, st.IDs...)
				}
			default:
				return nil, nil, fmt.Errorf("single template is not [specials] $A [specials]")
			}
		}
		if !seen {
			return nil, nil, fmt.Errorf("single template has no $A")
		}
		return prefix, suffix, nil
	}
	return nil, nil, fmt.Errorf("post_processor %q is neither TemplateProcessing nor BertProcessing", pp.Type)
}

// encode returns text's ids truncated at maxLen, or ok=false when the text has a rune outside
// the fast path's table before the truncation point. text has no NUL (Encode strips or
// rejects it).
func (w *wordPiece) encode(text string, maxLen int) (ids []int32, ok bool) {
	budget := maxLen - len(w.prefix) - len(w.suffix) // word pieces kept
	ids = make([]int32, 0, min(budget, len(text)/3+4)+len(w.prefix)+len(w.suffix))
	ids = append(ids, w.prefix...)
	end := len(w.prefix) + budget
	var buf [128]byte // the current word, normalized; a longer one spills to the heap
	word, chars := buf[:0], 0
scan:
	for i := 0; i < len(text) && len(ids) < end; {
		c := text[i]
		if w.addedFirst[c] {
			if a, ok := w.matchAdded(text[i:]); ok {
				ids, word, chars = w.pieces(word, chars, ids), word[:0], 0
				if len(ids) >= end {
					break scan
				}
				ids = append(ids, a.id)
				i += len(a.content)
				continue
			}
		}
		kind, out, n := byte(kindWord), "", 1
		if c < 0x80 {
			i++
			kind = w.kind[c]
		} else {
			r, size := utf8.DecodeRuneInString(text[i:])
			rn, ok := w.runes[r]
			if !ok {
				return nil, false
			}
			i += size
			kind, out, n = rn.kind, rn.out, rn.chars
		}
		switch kind {
		case kindDrop:
		case kindSpace:
			ids, word, chars = w.pieces(word, chars, ids), word[:0], 0
		case kindPunct:
			ids, word, chars = w.pieces(word, chars, ids), word[:0], 0
			if len(ids) < end {
				if out == "" {
					ids = w.pieces(append(word, c), 1, ids)
				} else {
					ids = w.pieces(append(word, out...), 1, ids)
				}
			}
		default:
			// A word over maxChars is unknown whatever follows: keep only that it is long.
			if chars += n; chars <= w.maxChars {
				if out == "" {
					word = append(word, w.norm[c])
				} else {
					word = append(word, out...)
				}
			} else {
				chars = w.maxChars + 1
			}
		}
	}
	ids = w.pieces(word, chars, ids)
	if len(ids) > end {
		ids = ids[:end]
	}
	return append(ids, w.suffix...), true
}

// matchAdded returns the longest added token that s starts with.
func (w *wordPiece) matchAdded(s string) (best addedToken, ok bool) {
	for _, a := range w.added {
		if len(a.content) > len(best.content) && strings.HasPrefix(s, a.content) {
			best, ok = a, true
		}
	}
	return best, ok
}

// pieces appends the WordPiece ids of one normalized word of chars characters (none for an
// empty one). Matches are tried at every byte, not only at character ends as HF does: a
// vocabulary key is valid UTF-8, so it never equals a string cut inside a character.
func (w *wordPiece) pieces(word []byte, chars int, ids []int32) []int32 {
	if chars == 0 {
		return ids
	}
	if chars > w.maxChars {
		return append(ids, w.unk)
	}
	n := len(ids)
	vocab, maxKey := w.vocab, w.maxKey
	for start := 0; start < len(word); {
		end := min(len(word), start+maxKey)
		for ; end > start; end-- {
			if id, ok := vocab[string(word[start:end])]; ok {
				ids = append(ids, id)
				break
			}
		}
		if end == start { // no entry matches here: the whole word is unknown
			return append(ids[:n], w.unk)
		}
		start = end
		vocab, maxKey = w.cont, w.maxCnt
	}
	return ids
}

// useFastPath turns the fast path on when tokenizer.json has the BERT shape it implements, it
// agrees with HF on a few probe texts, and GOEMBED_TOKENIZER does not say "hf".
func (t *Tokenizer) useFastPath(raw []byte) error {
	switch mode := os.Getenv("GOEMBED_TOKENIZER"); mode {
	case "", "auto":
	case "hf":
		t.wpWhy = "GOEMBED_TOKENIZER=hf"
		return nil
	default:
		return fmt.Errorf("GOEMBED_TOKENIZER=%q: want auto or hf", mode)
	}
	wp, err := newWordPiece(raw, t.maxLen)
	if err != nil {
		t.wpWhy = err.Error()
		return nil
	}
	// A guard against a tokenizer.json this file misreads: the ids must agree on texts that
	// touch every rule, else HF does everything.
	probes := []string{
		"Hello, World! It's 3.14 -- e.g. (a+b)*c=d; x_y ~`|\\\"'{}<>@#$%^&",
		"[CLS] [SEP] [MASK] [UNK] [PAD] x[SEP]y [sep] [[SEP]] [SEP",
		"tab\there\nnew\rline \x01ctl\x7fdel\x1fend\v\f",
		strings.Repeat("a", 99) + " " + strings.Repeat("b", 100) + " " + strings.Repeat("c", 101),
		"unbelievably antidisestablishmentarianism xqzjv 12345678 ##ing",
		strings.Repeat("tokenization, ", t.maxLen),
		"", "   ",
	}
	for _, p := range probes {
		if got, ok := wp.encode(p, t.maxLen); !ok || !slices.Equal(got, t.encode(p)) {
			t.wpWhy = fmt.Sprintf("fast path disagrees with HF on %.40q", p)
			return nil
		}
	}
	t.wp = wp
	return nil
}

// FastPath says whether the Go WordPiece path tokenizes (texts it cannot take still go to HF),
// and if not, why.
func (t *Tokenizer) FastPath() (on bool, why string) { return t.wp != nil, t.wpWhy }
