// Package backendtest is the one conformance suite every backend runs against the CPU reference,
// in the manner of ggml's test-backend-ops: each case builds fresh, seeded, non-zero inputs,
// runs one op (or one whole encoder layer) on the backend under test and on a fresh cpu
// backend, downloads both results and scores them by the normalised error
//
//	err = ||out - ref||_2 / ||ref||_2
//
// against a ceiling per storage dtype and op (Tolerance). The suite only uses the Backend
// interface (Upload, UploadInt32, WriteInt32, Alloc, Download, Free, Sync), so device tensors
// work as well as host ones. A backend's test calls
//
//	backendtest.Run(t, func() backend.Backend { ... }, backendtest.TolFloat16)
//
// Only tests may import this package.
package backendtest

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// Tolerance is what a backend may differ from the CPU reference by.
type Tolerance struct {
	Name string             // storage dtype, for messages
	Rel  float64            // ceiling on ||out - ref|| / ||ref|| for every op
	Ops  map[string]float64 // ceilings that replace Rel for some ops, by case group ("Linear", "Layer", ...)
}

// Per-dtype defaults. float16 and tfloat32 keep 10 mantissa bits (unit roundoff 4.9e-4),
// bfloat16 keeps 7 (3.9e-3); inputs are rounded on upload, so even a perfect backend differs
// from the float32 reference by a few units of roundoff.
var (
	TolFloat32  = Tolerance{Name: "float32", Rel: 1e-5}
	TolTFloat32 = Tolerance{Name: "tfloat32", Rel: 2.5e-3}
	TolFloat16  = Tolerance{Name: "float16", Rel: 2.5e-3, Ops: map[string]float64{"Layer": 5e-3}}
	TolBFloat16 = Tolerance{Name: "bfloat16", Rel: 1e-2, Ops: map[string]float64{"Layer": 2e-2}}
)

// For is the ceiling for one case group.
func (tol Tolerance) For(group string) float64 {
	if v, ok := tol.Ops[group]; ok {
		return v
	}
	return tol.Rel
}

// Run runs every case as a subtest named group/shape (e.g. "Linear/T33_in384_out1536_gelu"),
// and the "Graphs" cases when the backend implements backend.Graphs.
// open is called once; the backend is closed at the end. open may call t.Skip when no device
// or library is found.
func Run(t *testing.T, open func() backend.Backend, tol Tolerance) {
	t.Helper()
	dut := open()
	if dut == nil {
		t.Fatal("backendtest: open returned nil")
	}
	defer dut.Close()
	ref, err := cpu.New()
	if err != nil {
		t.Fatalf("backendtest: reference backend: %v", err)
	}
	defer ref.Close()
	t.Logf("backend under test: %s; reference: %s; tolerance: %s", dut.Describe(), ref.Describe(), tol.Name)
	_, graphs := dut.(backend.Graphs)
	for _, c := range cases(graphs) {
		t.Run(c.group+"/"+c.shape, func(t *testing.T) {
			seed := fnv.New64a()
			seed.Write([]byte(c.group + "/" + c.shape))
			h := &harness{t: t, dut: dut, ref: ref, tol: tol, group: c.group, shape: c.shape,
				rng: rand.New(rand.NewPCG(seed.Sum64(), 2024))}
			defer h.freeAll()
			c.run(h)
		})
	}
}

// A pair is one logical tensor, held by both backends. The zero pair stands for nil.
type pair struct{ dut, ref backend.Tensor }

// harness runs one case on both backends.
type harness struct {
	t            *testing.T
	dut, ref     backend.Backend
	tol          Tolerance
	group, shape string
	rng          *rand.Rand
	live         []pair
}

// floats returns n values uniform in ±scale, none of magnitude below scale/20.
func (h *harness) floats(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		x := scale * (0.05 + 0.95*h.rng.Float64())
		if h.rng.IntN(2) == 0 {
			x = -x
		}
		v[i] = float32(x)
	}
	return v
}

// ints returns n values uniform in [0, hi).
func (h *harness) ints(n, hi int) []int32 {
	v := make([]int32, n)
	for i := range v {
		v[i] = int32(h.rng.IntN(hi))
	}
	return v
}

func (h *harness) track(p pair) pair { h.live = append(h.live, p); return p }

func (h *harness) upload(v []float32) pair {
	return h.track(pair{h.dut.Upload(v), h.ref.Upload(v)})
}

func (h *harness) uploadInt32(v []int32) pair {
	return h.track(pair{h.dut.UploadInt32(v), h.ref.UploadInt32(v)})
}

func (h *harness) alloc(n int) pair { return h.track(pair{h.dut.Alloc(n), h.ref.Alloc(n)}) }

func (h *harness) freeAll() {
	for _, p := range h.live {
		h.dut.Free(p.dut)
		h.ref.Free(p.ref)
	}
}

// both calls op once per backend; at picks that backend's tensor out of a pair (nil for the zero pair).
func (h *harness) both(op func(b backend.Backend, at func(pair) backend.Tensor)) {
	op(h.dut, func(p pair) backend.Tensor { return p.dut })
	op(h.ref, func(p pair) backend.Tensor { return p.ref })
}

// check syncs both backends, downloads the first rows*cols elements of out from each and fails
// the test when the normalised error exceeds the group's ceiling or the output is not finite.
func (h *harness) check(what string, out pair, rows, cols int) {
	h.t.Helper()
	if err := h.ref.Sync(); err != nil {
		h.t.Fatalf("%s %s: reference backend failed (a bug in the case): %v", h.group, h.shape, err)
	}
	if err := h.dut.Sync(); err != nil {
		h.t.Fatalf("%s %s: %v", h.group, h.shape, err)
	}
	got, want := make([]float32, rows*cols), make([]float32, rows*cols)
	if err := h.dut.Download(got, out.dut); err != nil {
		h.t.Fatalf("%s %s: Download: %v", h.group, h.shape, err)
	}
	if err := h.ref.Download(want, out.ref); err != nil {
		h.t.Fatalf("%s %s: reference Download: %v", h.group, h.shape, err)
	}
	if msg := Compare(got, want, cols, h.tol.For(h.group)); msg != "" {
		h.t.Errorf("%s %s (%s, %s [%d, %d]): %s", h.group, h.shape, h.tol.Name, what, rows, cols, msg)
	}
}

// Compare scores got against want, both [rows, cols] row-major, by ||got - want|| / ||want||
// (plain ||got - want|| when want is zero). It returns "" when that is at most limit and every
// value is finite, otherwise a description: the error, the largest absolute difference and the
// first element off by more than limit * (|want| + rms(want)), each with its [row, col].
func Compare(got, want []float32, cols int, limit float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d values, want %d", len(got), len(want))
	}
	cols = max(cols, 1)
	var diff2, ref2 float64
	maxDiff, maxAt, nonFinite := 0.0, -1, -1
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if nonFinite < 0 && (math.IsNaN(g) || math.IsInf(g, 0)) {
			nonFinite = i
		}
		d := math.Abs(g - w)
		diff2 += d * d
		ref2 += w * w
		if d > maxDiff || maxAt < 0 {
			maxDiff, maxAt = d, i
		}
	}
	norm := math.Sqrt(diff2)
	if ref2 > 0 {
		norm /= math.Sqrt(ref2)
	}
	if nonFinite < 0 && norm <= limit {
		return ""
	}
	at := func(i int) string {
		return fmt.Sprintf("[%d, %d] (got %.6g, want %.6g)", i/cols, i%cols, got[i], want[i])
	}
	msg := fmt.Sprintf("normalised error %.3g > %.3g; max abs diff %.3g at %s", norm, limit, maxDiff, at(maxAt))
	if nonFinite >= 0 {
		msg = fmt.Sprintf("non-finite value at %s; ", at(nonFinite)) + msg
	}
	rms := math.Sqrt(ref2 / float64(max(len(want), 1)))
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= limit*(math.Abs(float64(want[i]))+rms)) {
			return msg + "; first mismatch at " + at(i)
		}
	}
	return msg
}
