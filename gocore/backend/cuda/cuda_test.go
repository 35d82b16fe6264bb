package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// openOrSkip opens a backend, skipping the test when this machine has no GPU or lacks a
// library (the error says which paths were tried); any other failure fails the test.
func openOrSkip(t testing.TB, dtype string) *Backend {
	t.Helper()
	if l := loadLibs(); l.err != nil {
		t.Skipf("no CUDA here: %v", l.err)
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
		{"bfloat16", backendtest.TolBFloat16},
		{"float32", backendtest.TolFloat32},
		{"tfloat32", backendtest.TolTFloat32},
	} {
		t.Run(c.dtype, func(t *testing.T) {
			backendtest.Run(t, func() backend.Backend { return openOrSkip(t, c.dtype) }, c.tol)
		})
	}
}

// TestRegistry checks that "cuda" is registered and that "auto" reports why it was passed over
// when it cannot open.
func TestRegistry(t *testing.T) {
	b, notes, err := backend.Open("auto", "float32")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Logf("auto picked %s; notes: %q", b.Name(), notes)
	if loadLibs().err != nil && b.Name() == "cuda" {
		t.Errorf("auto picked cuda although it cannot load: %v", loadLibs().err)
	}
	if loadLibs().err == nil && b.Name() != "cuda" {
		t.Errorf("auto picked %s although cuda loads (notes %q)", b.Name(), notes)
	}
}

// TestErrors checks that misuse is reported by Sync instead of reaching the GPU.
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
	if err := b.Sync(); err != nil {
		t.Errorf("error not cleared by Sync: %v", err)
	}
}

// TestGELUEpilogue measures cuBLASLt's GELU_BIAS epilogue (tanh approximation) and the erf
// kernel against the exact erf GELU of the CPU reference, for each storage type; the numbers are
// the evidence for the choice in gelu.go. It fails if the default of a dtype is more than 10%
// further from the reference than the other way.
func TestGELUEpilogue(t *testing.T) {
	const T, in, out = 256, 384, 1536
	rng := rand.New(rand.NewPCG(7, 8))
	rnd := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(s * (2*rng.Float64() - 1))
		}
		return v
	}
	// Pre-activations with a standard deviation of about 1.5 cover GELU's bend.
	x, w, bias := rnd(T*in, 1), rnd(out*in, 4.5/math.Sqrt(in)), rnd(out, 0.5)
	want := refOp(t, func(b backend.Backend) backend.Tensor {
		o := b.Alloc(T * out)
		b.Linear(o, b.Upload(x), b.Upload(w), b.Upload(bias), T, in, out, backend.ActGELU)
		return o
	}, T*out)
	for _, dtype := range []string{"float32", "tfloat32", "float16", "bfloat16"} {
		b := openOrSkip(t, dtype)
		bx, bw, bb, bo := b.Upload(x), b.Upload(w), b.Upload(bias), b.Alloc(T*out)
		def := b.geluEpilogue
		var rel [2]float64 // erf kernel, epilogue
		for i, epi := range []bool{false, true} {
			b.geluEpilogue = epi
			b.Linear(bo, bx, bw, bb, T, in, out, backend.ActGELU)
			got := make([]float32, T*out)
			if err := b.Download(got, bo); err != nil {
				t.Fatal(err)
			}
			rel[i] = relErr(got, want)
		}
		t.Logf("%-8s Linear+GELU vs cpu erf GELU: erf kernel %.3g, GELU_BIAS epilogue %.3g (default: %s)",
			dtype, rel[0], rel[1], map[bool]string{false: "erf kernel", true: "epilogue"}[def])
		mine, other := rel[0], rel[1]
		if def {
			mine, other = other, mine
		}
		if mine > 1.1*other {
			t.Errorf("%s: the default GELU (%.3g) is further from erf than the other (%.3g)", dtype, mine, other)
		}
		b.Close()
	}
}

// refOp runs op on a fresh CPU backend and downloads n values of its result.
func refOp(t *testing.T, op func(backend.Backend) backend.Tensor, n int) []float32 {
	t.Helper()
	ref, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	v := make([]float32, n)
	if err := ref.Download(v, op(ref)); err != nil {
		t.Fatal(err)
	}
	return v
}

// relErr is ||got - want|| / ||want||.
func relErr(got, want []float32) float64 {
	var d2, r2 float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		d2 += d * d
		r2 += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(d2 / r2)
}

// TestErrorTable logs the normalised error against the CPU of one representative case per op
// and dtype (the conformance suite only says pass or fail), as a table for notes and reports.
func TestErrorTable(t *testing.T) {
	if loadLibs().err != nil {
		t.Skipf("no CUDA here: %v", loadLibs().err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(s * (2*rng.Float64() - 1))
		}
		return v
	}
	lens := []int{1, 7, 33, 128, 200}
	st, positions := []int32{0}, []int32{}
	for _, n := range lens {
		for p := range n {
			positions = append(positions, int32(p))
		}
		st = append(st, st[len(st)-1]+int32(n))
	}
	T, B, maxLen := len(positions), len(lens), 200
	ids := make([]int32, T)
	for i := range ids {
		ids[i] = int32(rng.IntN(100))
	}
	const H, F = 384, 1536
	word, pos, typ := rnd(100*H, 1), rnd(512*H, 1), rnd(2*H, 1)
	gamma, beta := rnd(H, 0.5), rnd(H, 0.5)
	for i := range gamma {
		gamma[i] += 1
	}
	x, res := rnd(T*H, 2), rnd(T*H, 1)
	w1, b1 := rnd(F*H, 4.5/math.Sqrt(H)), rnd(F, 0.5)
	qkv32, qkv64 := rnd(T*3*H, 2), rnd(T*3*H, 2)
	type opCase struct {
		name string
		n    int
		run  func(b backend.Backend) backend.Tensor
	}
	ops := []opCase{
		{"Embed H384", T * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(T * H)
			b.Embed(o, b.UploadInt32(ids), b.UploadInt32(positions), nil, b.Upload(word), b.Upload(pos), b.Upload(typ),
				b.Upload(gamma), b.Upload(beta), T, H, 1e-12)
			return o
		}},
		{"Linear 384->1536 GELU", T * F, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(T * F)
			b.Linear(o, b.Upload(x), b.Upload(w1), b.Upload(b1), T, H, F, backend.ActGELU)
			return o
		}},
		{"Attention NH12 HD32", T * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(T * H)
			b.Attention(o, b.Upload(qkv32), b.UploadInt32(st), B, maxLen, 12, 32)
			return o
		}},
		{"Attention NH6 HD64", T * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(T * H)
			b.Attention(o, b.Upload(qkv64), b.UploadInt32(st), B, maxLen, 6, 64)
			return o
		}},
		{"AddLayerNorm H384", T * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(T * H)
			b.AddLayerNorm(o, b.Upload(x), b.Upload(res), b.Upload(gamma), b.Upload(beta), T, H, 1e-12)
			return o
		}},
		{"Pool mean+normalize", B * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(B * H)
			b.Pool(o, b.Upload(x), b.UploadInt32(st), B, H, backend.PoolMean, 0, true)
			return o
		}},
		{"Pool max", B * H, func(b backend.Backend) backend.Tensor {
			o := b.Alloc(B * H)
			b.Pool(o, b.Upload(x), b.UploadInt32(st), B, H, backend.PoolMax, 0, false)
			return o
		}},
	}
	dtypes := []string{"float32", "tfloat32", "float16", "bfloat16"}
	table := fmt.Sprintf("\n%-22s", "op (T=369)")
	for _, d := range dtypes {
		table += fmt.Sprintf(" %10s", d)
	}
	for _, c := range ops {
		want := refOp(t, c.run, c.n)
		table += fmt.Sprintf("\n%-22s", c.name)
		for _, d := range dtypes {
			b := openOrSkip(t, d)
			got := make([]float32, c.n)
			if err := b.Download(got, c.run(b)); err != nil {
				t.Fatalf("%s %s: %v", c.name, d, err)
			}
			table += fmt.Sprintf(" %10.2e", relErr(got, want))
			b.Close()
		}
	}
	t.Log("normalised error ||gpu - cpu|| / ||cpu||:" + table)
}
