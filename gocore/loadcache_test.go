package gocore

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentLoadsShareOneModel: ten goroutines loading the same model at once load it once;
// closing some while the others encode leaves those working; after the last Close the next
// Load loads again.
func TestConcurrentLoadsShareOneModel(t *testing.T) {
	dir := tinyDir(t)
	before := Loads()
	encs := make([]*Encoder, 10)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range encs {
		wg.Go(func() { encs[i], errs[i] = Load(dir, Options{Device: "cpu"}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := Loads() - before; n != 1 {
		t.Fatalf("10 concurrent Loads of one model loaded it %d times, want 1", n)
	}
	texts := []string{"hello world", "the quick brown foxes", "中文"}
	want, err := encs[0].Encode(texts)
	if err != nil {
		t.Fatal(err)
	}
	// Close half while the other half encode.
	var bad sync.Map
	for i, e := range encs {
		wg.Go(func() {
			if i%2 == 0 {
				if err := e.Close(); err != nil {
					bad.Store(i, err)
				}
				return
			}
			for range 20 {
				got, err := e.Encode(texts)
				if err != nil || !slices.EqualFunc(got, want, slices.Equal) {
					bad.Store(i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("encoder %d: %v", k, v); return true })
	if _, err := encs[0].Encode(texts); !errors.Is(err, ErrClosed) {
		t.Errorf("closed encoder: %v, want ErrClosed", err)
	}
	if got, err := encs[1].Encode(texts); err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("open encoder after others closed: %v", err)
	}
	for i := 1; i < len(encs); i += 2 {
		encs[i].Close()
	}
	if encs[1].sh.net != nil || encs[1].sh.tok != nil {
		t.Error("the last Close left the model loaded")
	}
	e, err := Load(dir, Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if n := Loads() - before; n != 2 {
		t.Errorf("a Load after the last Close loaded %d models in all, want 2", n)
	}
	if got, err := e.Encode(texts); err != nil || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("reloaded model: %v", err)
	}
}

// TestLoadCacheKeys: a different dtype is a different load; a failed load is not cached.
func TestLoadCacheKeys(t *testing.T) {
	dir := tinyDir(t)
	before := Loads()
	if _, err := Load(dir, Options{Device: "cpu", DType: "int3"}); err == nil {
		t.Fatal("dtype int3 accepted")
	}
	a, err := Load(dir, Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Load(dir, Options{Device: "cpu", DType: "float32"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.sh == b.sh || Loads()-before != 3 {
		t.Errorf("dtype auto and float32 share a model (%v) or loads %d != 3", a.sh == b.sh, Loads()-before)
	}
}
