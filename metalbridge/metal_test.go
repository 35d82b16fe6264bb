//go:build darwin

package metalbridge

import (
	"math"
	"strings"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// openOrSkip opens a backend, skipping the test when this Mac has no usable Metal device (a VM,
// a CI runner without a GPU); any other failure, a shader compile error above all, fails it.
func openOrSkip(t testing.TB, dtype string) *Backend {
	t.Helper()
	if rt := loadRuntime(); rt.err != nil {
		t.Skipf("no Metal here: %v", rt.err)
	}
	b, err := Open(dtype)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the shared suite against the CPU reference for every dtype.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		dtype string
		tol   backendtest.Tolerance
	}{
		{"float16", backendtest.TolFloat16},
		{"float32", backendtest.TolFloat32},
	} {
		t.Run(c.dtype, func(t *testing.T) {
			backendtest.Run(t, func() backend.Backend { return openOrSkip(t, c.dtype) }, c.tol)
		})
	}
}

// TestOpen checks the description and that a second Open reuses the compiled pipelines.
func TestOpen(t *testing.T) {
	b := openOrSkip(t, "float16")
	t.Log(b.Describe())
	b.Close()
	b2 := openOrSkip(t, "float16")
	defer b2.Close()
	if b2.compileTime != 0 {
		t.Errorf("second Open compiled again (%v)", b2.compileTime)
	}
	if _, err := Open("bfloat16"); err == nil || !strings.Contains(err.Error(), "bfloat16") {
		t.Errorf("Open(bfloat16): %v", err)
	}
}

// TestRegistry checks that "metal" is registered and that "auto" picks it when it opens.
func TestRegistry(t *testing.T) {
	b, notes, err := backend.Open("auto", "float32")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("auto picked %s; notes: %q", b.Name(), notes)
	if loadRuntime().err == nil && b.Name() != "metal" {
		t.Errorf("auto picked %s although metal loads (notes %q)", b.Name(), notes)
	}
}

// TestErrors checks that misuse is reported by Sync instead of reaching the GPU, and that work
// encoded before and after an error is still ordered correctly.
func TestErrors(t *testing.T) {
	b := openOrSkip(t, "float16")
	defer b.Close()
	x := b.Alloc(10)
	b.AddLayerNorm(x, x, nil, b.Alloc(4), b.Alloc(4), 3, 4, 1e-5) // x too short for 3 x 4
	if err := b.Sync(); err == nil {
		t.Error("short tensor: no error")
	} else {
		t.Log(err)
	}
	b.Attention(b.Alloc(96), b.Alloc(3*96), b.UploadInt32([]int32{0, 1}), 1, 1, 2, 48)
	if err := b.Sync(); err == nil {
		t.Error("head dim 48: no error")
	} else {
		t.Log(err)
	}
	b.AddLayerNorm(b.Alloc(9000), b.Alloc(9000), nil, b.Alloc(9000), b.Alloc(9000), 1, 9000, 1e-5)
	if err := b.Sync(); err == nil {
		t.Error("H 9000 (more than threadgroup memory): no error")
	} else {
		t.Log(err)
	}
	if err := b.Sync(); err != nil {
		t.Errorf("error not cleared by Sync: %v", err)
	}
}

// TestWriteInt32Order checks WriteInt32 inside an open batch: the Embed encoded before it must
// read the old ids and the one after it the new ids (the blit path), as on the CPU.
func TestWriteInt32Order(t *testing.T) {
	const T, H = 4, 32
	run := func(b backend.Backend) (first, second []float32) {
		word, pos := make([]float32, 16*H), make([]float32, T*H)
		for i := range word {
			word[i] = float32(i%7) - 3
		}
		gamma, beta := make([]float32, H), make([]float32, H)
		for i := range gamma {
			gamma[i] = 1
		}
		ids, positions := b.UploadInt32([]int32{1, 2, 3, 4}), b.UploadInt32([]int32{0, 1, 2, 3})
		w, p, g, be := b.Upload(word), b.Upload(pos), b.Upload(gamma), b.Upload(beta)
		o1, o2 := b.Alloc(T*H), b.Alloc(T*H)
		b.Embed(o1, ids, positions, nil, w, p, nil, g, be, T, H, 1e-5)
		b.WriteInt32(ids, []int32{9, 10, 11, 12})
		b.Embed(o2, ids, positions, nil, w, p, nil, g, be, T, H, 1e-5)
		first, second = make([]float32, T*H), make([]float32, T*H)
		if err := b.Download(first, o1); err != nil {
			t.Fatal(err)
		}
		if err := b.Download(second, o2); err != nil {
			t.Fatal(err)
		}
		return first, second
	}
	b := openOrSkip(t, "float32")
	defer b.Close()
	ref, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	g1, g2 := run(b)
	w1, w2 := run(ref)
	for i := range w1 {
		if math.Abs(float64(g1[i]-w1[i])) > 1e-4 || math.Abs(float64(g2[i]-w2[i])) > 1e-4 {
			t.Fatalf("element %d: metal %v then %v, cpu %v then %v", i, g1[i], g2[i], w1[i], w2[i])
		}
	}
}
