package tokenize

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/daulet/tokenizers"
)

// testdata/tiny_tokenizer.json is a WordPiece tokenizer made with the Python tokenizers package;
// it ships truncation at 128 and Fixed padding to 128, which Load must neutralise. The expected
// ids below were printed by that package for the same texts.
func load(t *testing.T, maxLen int) *Tokenizer {
	t.Helper()
	tk, err := Load("testdata/tiny_tokenizer.json", maxLen, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	return tk
}

func TestIDsMatchHuggingFace(t *testing.T) {
	tk := load(t, 256)
	cases := map[string][]int32{
		"Hello, World!":         {2, 4, 17, 5, 16, 3},
		"the quick brown foxes": {2, 6, 7, 8, 9, 10, 3},
		"":                      {2, 3},
		"   \t\n ":              {2, 3},
		"a\x00b":                {2, 1, 3},
		"中文":                    {2, 14, 15, 3},
		"Café":                  {2, 20, 3},
		"e\u0301":               {2, 18, 3},
	}
	for text, want := range cases {
		got, err := tk.Encode(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: ids %v, want %v", text, got, want)
		}
	}
}

func TestTruncationKeepsSpecialTokens(t *testing.T) {
	tk := load(t, 6)
	got, err := tk.Encode("a b c a b c a b c")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{2, 11, 12, 13, 11, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	// Longer than tokenizer.json's 128 and not padded to it.
	tk = load(t, 256)
	got, _ = tk.Encode(strings.Repeat("hello ", 200))
	if len(got) != 202 {
		t.Errorf("200 words gave %d ids, want 202 (no truncation at 128, no padding)", len(got))
	}
}

func TestLongTextPrefixIsExact(t *testing.T) {
	tk := load(t, 64)
	long := strings.Repeat("the quick brown fox ", 200_000) // 4 MB
	got, err := tk.Encode(long)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tk.encode(long[:4000])
	if !reflect.DeepEqual(got, want) || len(got) != 64 {
		t.Errorf("clipped tokenization differs: %v vs %v", got, want)
	}
	// Text whose words make no tokens at first: the prefix must grow, not cut real words.
	sparse := strings.Repeat("\u200b ", 20_000) + "hello world"
	got, _ = tk.Encode(sparse)
	if want := []int32{2, 4, 5, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("sparse text: %v, want %v", got, want)
	}
}

func TestBatchOrderAndErrors(t *testing.T) {
	tk := load(t, 256)
	texts := make([]string, 1000)
	for i := range texts {
		texts[i] = strings.Repeat("fox ", i%37)
	}
	ids, err := tk.EncodeBatch(texts, "hello ")
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range ids {
		if len(row) != 3+i%37 || row[1] != 4 {
			t.Fatalf("text %d: ids %v", i, row)
		}
	}
	texts[123] = "bad \xff utf8"
	if _, err := tk.EncodeBatch(texts, ""); err == nil || !strings.Contains(err.Error(), "index 123") {
		t.Errorf("error %v does not name index 123", err)
	}
}

func TestPromptLength(t *testing.T) {
	tk := load(t, 256)
	if n, _ := tk.PromptLength("hello world "); n != 3 {
		t.Errorf("prompt length %d, want 3 ([CLS] hello world)", n)
	}
}

func TestBadTokenizerFile(t *testing.T) {
	for _, p := range []string{"testdata/nope.json", "tokenize.go"} {
		if _, err := Load(p, 128, false); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v should name the file", p, err)
		}
	}
}

// TestLowerCase: with do_lower_case a Lowercase normalizer goes in front of a cased tokenizer's
// own (as sentence-transformers 6 does), so "Hello" tokenizes as "hello"; without, it does not.
func TestLowerCase(t *testing.T) {
	raw, err := os.ReadFile("testdata/tiny_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["normalizer"].(map[string]any)["lowercase"] = false
	cased, _ := json.Marshal(doc)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, cased, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, lower := range []bool{false, true} {
		tk, err := Load(path, 64, lower)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := tk.Encode("Hello World")
		b, _ := tk.Encode("hello world")
		if reflect.DeepEqual(a, b) != lower {
			t.Errorf("do_lower_case %v: %v vs %v", lower, a, b)
		}
		tk.Close()
	}
}

// hfTruncated is the reference: the Rust tokenizer itself truncating at maxLen.
func hfTruncated(t *testing.T, maxLen int) *tokenizers.Tokenizer {
	t.Helper()
	raw, err := os.ReadFile("testdata/tiny_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["truncation"] = map[string]any{"direction": "Right", "max_length": maxLen, "strategy": "LongestFirst", "stride": 0}
	doc["padding"] = nil
	patched, _ := json.Marshal(doc)
	tk, err := tokenizers.FromBytes(patched)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tk.Close() })
	return tk
}

func TestPerCallLengthMatchesTokenizerTruncation(t *testing.T) {
	tk, err := Load("testdata/tiny_tokenizer.json", 16, false, WithLimit(64))
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	if tk.MaxLen() != 16 || tk.Limit() != 64 {
		t.Fatalf("MaxLen %d Limit %d, want 16 and 64", tk.MaxLen(), tk.Limit())
	}
	texts := []string{"", "hello", "the quick brown foxes"}
	for n := 1; n < 80; n += 7 {
		texts = append(texts, strings.Repeat("a b c the fox ", n))
	}
	for _, L := range []int{2, 3, 5, 16, 17, 40, 64} {
		ref := hfTruncated(t, L)
		full := hfTruncated(t, 100000)
		for _, text := range texts {
			got, cut, err := tk.EncodeMax(text, L)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int32, 0)
			for _, id := range ref.EncodeWithOptions(text, true).IDs {
				want = append(want, int32(id))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("L=%d %q: ids %v, want %v", L, text, got, want)
			}
			if n := len(full.EncodeWithOptions(text, true).IDs); cut != (n > L) {
				t.Fatalf("L=%d %q: truncated=%v but the text has %d tokens", L, text, cut, n)
			}
		}
	}
	for _, bad := range []int{1, 65, -3} {
		if _, _, err := tk.EncodeMax("x", bad); err == nil || !strings.Contains(err.Error(), "max_seq_length") {
			t.Errorf("max_seq_length %d: error %v", bad, err)
		}
	}
	ids, cut, err := tk.EncodeBatchMax([]string{"hello", strings.Repeat("fox ", 100)}, "", 0)
	if err != nil || len(ids[1]) != 16 || cut[0] || !cut[1] {
		t.Errorf("batch at the default length: %v %v %v", ids, cut, err)
	}
}
