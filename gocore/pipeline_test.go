package gocore

import (
	"strings"
	"testing"
)

// TestPipelineMatchesOneShot: tokenizing ahead in windows gives the vectors of the one-shot
// path, duplicates across windows are bitwise identical, and a bad text's error names its
// index in the whole call.
func TestPipelineMatchesOneShot(t *testing.T) {
	e := loadMiniLM(t)
	texts := variedTexts(37, 9, "text number ")
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

// variedTexts returns n texts of 0 to most-1 leading "word "s, then stem and a letter: short
// texts of varied lengths, mostly distinct, for the pipeline and row-pipe tests.
func variedTexts(n, most int, stem string) []string {
	texts := make([]string, n)
	for i := range texts {
		texts[i] = strings.Repeat("word ", i%most) + stem + string(rune('a'+i%26))
	}
	return texts
}
