package tokenize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode tokenizes arbitrary bytes (invalid UTF-8, NUL, long repeats) with a prompt:
// the result is an error for invalid UTF-8, else 2..maxLen ids inside the vocabulary that
// start with [CLS] and end with [SEP]; never a panic or a crash in the Rust tokenizer.
// Seeds: testdata/fuzz/FuzzEncode and the ones added here.
func FuzzEncode(f *testing.F) {
	tk, err := Load("testdata/tiny_tokenizer.json", 32, false)
	if err != nil {
		f.Fatal(err)
	}
	defer tk.Close()
	for _, s := range []string{"", "Hello, World!", "a\x00b", "\xff\xfe", "中文 e\u0301 🙂",
		strings.Repeat("the ", 5000), strings.Repeat("\u200b ", 3000) + "x", strings.Repeat("a", 70000)} {
		f.Add(s, "")
		f.Add(s, "query: ")
	}
	f.Fuzz(func(t *testing.T, text, prompt string) {
		rows, err := tk.EncodeBatch([]string{text, prompt}, prompt)
		if !utf8.ValidString(prompt+text) || !utf8.ValidString(prompt+prompt) {
			if err == nil {
				t.Fatalf("invalid UTF-8 accepted: %q", prompt+text)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", prompt+text, err)
		}
		for _, ids := range rows {
			if len(ids) < 2 || len(ids) > 32 || ids[0] != 2 || ids[len(ids)-1] != 3 {
				t.Fatalf("%q: ids %v", prompt+text, ids)
			}
			for _, id := range ids {
				if id < 0 || id >= 21 {
					t.Fatalf("%q: id %d outside the vocabulary", prompt+text, id)
				}
			}
		}
	})
}
