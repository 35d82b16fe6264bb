package gocore

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cuda"
)

// cudaOrSkip loads the tiny model on CUDA, skipping when this machine has no usable GPU. The
// model gets one head of 32 instead of two of 16: CUDA's attention takes head dims 32 and 64
// (the weights do not depend on the head count).
func cudaOrSkip(t *testing.T) *Encoder {
	t.Helper()
	dir := tinyDir(t)
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `"num_attention_heads": 2`, `"num_attention_heads": 1`, 1))
	if !strings.Contains(string(cfg), `"num_attention_heads": 1`) {
		t.Fatalf("config.json of the tiny model changed: %s", cfg)
	}
	write(t, filepath.Join(dir, "config.json"), cfg)
	e, err := Load(dir, Options{Device: "cuda"})
	if err != nil {
		if _, openErr := cuda.Open("float16"); openErr != nil {
			t.Skipf("no CUDA here: %v", openErr)
		}
		t.Fatal(err)
	}
	return e
}

// manyTexts are n distinct texts of 20 to 46 tokens.
func manyTexts(n int) []string {
	words := []string{"the", "quick", "brown", "fox", "hello", "world"}
	texts := make([]string, n)
	for i := range texts {
		var b strings.Builder
		for j := range 18 + i%29 {
			b.WriteString(words[(i*7+j*j+i/6)%len(words)])
			b.WriteByte(' ')
		}
		texts[i] = b.String() + fmt.Sprint(i) // digits are [UNK]: a distinct tail keeps texts distinct
	}
	return texts
}

func cosMin(a, b [][]float32) float64 {
	m := 1.0
	for i := range a {
		var ab, aa, bb float64
		for j := range a[i] {
			ab += float64(a[i][j]) * float64(b[i][j])
			aa += float64(a[i][j]) * float64(a[i][j])
			bb += float64(b[i][j]) * float64(b[i][j])
		}
		m = min(m, ab/(math.Sqrt(aa)*math.Sqrt(bb)))
	}
	return m
}

// TestCUDAInjectedOutOfMemory: the workspace limit on the GPU (graphs, Trim, split).
func TestCUDAInjectedOutOfMemory(t *testing.T) {
	e := cudaOrSkip(t)
	defer e.Close()
	texts := manyTexts(3000)
	want := mustEncode(t, e, texts)
	if err := e.SetDebugOOMAfter(4 * 48 * 300); err != nil {
		t.Fatal(err)
	}
	if got := mustEncode(t, e, texts); cosMin(got, want) < 0.9999 {
		t.Errorf("split on cuda: min cosine %g", cosMin(got, want))
	}
	e.SetDebugOOMAfter(100)
	if _, err := e.Encode(texts[:10]); !errors.Is(err, backend.ErrOutOfMemory) {
		t.Errorf("nothing fits: %v, want ErrOutOfMemory", err)
	}
	e.SetDebugOOMAfter(0)
	if got := mustEncode(t, e, texts); cosMin(got, want) < 0.9999 {
		t.Errorf("after the failure: min cosine %g", cosMin(got, want))
	}
}

// TestCUDARealOutOfMemory takes the GPU's memory with a second backend, so that the encoder's
// cuMemAlloc really fails: first nearly nothing is left (ErrOutOfMemory, or single sequences
// that fit what remains), then about 16 MB are left, so
// a 65,536-token batch (~34 MB of workspace for this model) fails and is split; then all the
// memory comes back. The results match the unhindered run throughout.
func TestCUDARealOutOfMemory(t *testing.T) {
	e := cudaOrSkip(t)
	defer e.Close()
	texts := manyTexts(6000) // ~200,000 tokens: several full 65,536-token batches
	want := mustEncode(t, e, texts)
	if err := e.SetDebugOOMAfter(0); err != nil { // frees the workspace of the run above (Trim)
		t.Fatal(err)
	}
	hog, err := cuda.Open("float16")
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	var held []backend.Tensor
	take := func(chunk int) { // allocate chunks of 2*chunk bytes until one fails
		for {
			x := hog.Alloc(chunk)
			if err := hog.Sync(); err != nil {
				if !errors.Is(err, backend.ErrOutOfMemory) {
					t.Fatalf("hog: %v", err)
				}
				return
			}
			held = append(held, x)
		}
	}
	for _, c := range []int{1 << 29, 1 << 25, 1 << 21, 1 << 17} {
		take(c)
	}
	t.Logf("holding %d tensors", len(held))
	// What is left after the smallest chunk may still hold one sequence's workspace (this
	// model's is a few KB), so the split can succeed; any other outcome is a failure.
	if got, err := e.Encode(texts[:50]); err == nil {
		if c := cosMin(got, want[:50]); c < 0.9999 {
			t.Errorf("with the GPU full, split down to single sequences: min cosine %g", c)
		}
	} else if !errors.Is(err, backend.ErrOutOfMemory) {
		t.Errorf("with the GPU full: %v, want ErrOutOfMemory or a split run", err)
	}
	// Give back about 16 MB (the last chunks are the smallest).
	freed := 0
	for freed < 16<<20 && len(held) > 0 {
		x := held[len(held)-1]
		freed += 2 * x.Len()
		hog.Free(x)
		held = held[:len(held)-1]
	}
	got, err := e.Encode(texts)
	if err != nil {
		t.Fatalf("with 16 MB free: %v", err)
	}
	if cosMin(got, want) < 0.9999 {
		t.Errorf("split by a real OOM: min cosine %g", cosMin(got, want))
	}
	for _, x := range held {
		hog.Free(x)
	}
	held = nil
	if got := mustEncode(t, e, texts); cosMin(got, want) < 0.9999 {
		t.Errorf("memory back: min cosine %g", cosMin(got, want))
	}
}

func mustEncode(t *testing.T, e *Encoder, texts []string) [][]float32 {
	t.Helper()
	v, err := e.Encode(texts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
