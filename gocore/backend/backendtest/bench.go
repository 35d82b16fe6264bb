package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// Named sizes of the benchmarks: all-MiniLM-L6-v2 (H 384, 12 heads of 32, F 1536) with a
// forward of T = 4096 tokens.
var (
	LinearSizes = []LinearSize{
		{"MiniLM_qkv", 4096, 384, 1152, backend.ActNone},
		{"MiniLM_ffn_up", 4096, 384, 1536, backend.ActGELU},
		{"MiniLM_ffn_up_noact", 4096, 384, 1536, backend.ActNone},
		{"MiniLM_ffn_down", 4096, 1536, 384, backend.ActNone},
	}
	AttentionSizes = []AttentionSize{
		{"MiniLM_32x128", 32, 128, 12, 32},
		{"MiniLM_16x256", 16, 256, 12, 32},
	}
)

// LinearSize is out [T, Out] = act(x [T, In] @ w^T + bias).
type LinearSize struct {
	Name       string
	T, In, Out int
	Act        backend.Activation
}

// AttentionSize is B sequences of L tokens each, NH heads of HD.
type AttentionSize struct {
	Name         string
	B, L, NH, HD int
}

// LinearBenchmark times Linear (with bias) at each of LinearSizes as a sub-benchmark and
// reports GFLOP/s (2 T In Out per call).
func LinearBenchmark(b *testing.B, open func() backend.Backend) {
	for _, s := range LinearSizes {
		b.Run(fmt.Sprintf("%s_T%d_%dx%d_%s", s.Name, s.T, s.In, s.Out, actNames[s.Act]), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			x, w, bias := randoms(rng, s.T*s.In, 1), randoms(rng, s.Out*s.In, 1/math.Sqrt(float64(s.In))), randoms(rng, s.Out, 0.5)
			benchOp(b, open, s.T, s.Out, 2*float64(s.T)*float64(s.In)*float64(s.Out), func(be backend.Backend) ([]backend.Tensor, func()) {
				ts := []backend.Tensor{be.Alloc(s.T * s.Out), be.Upload(x), be.Upload(w), be.Upload(bias)}
				return ts, func() { be.Linear(ts[0], ts[1], ts[2], ts[3], s.T, s.In, s.Out, s.Act) }
			})
		})
	}
}

// AttentionBenchmark times Attention at each of AttentionSizes and reports GFLOP/s of its two
// products (4 B L^2 H per call).
func AttentionBenchmark(b *testing.B, open func() backend.Backend) {
	for _, s := range AttentionSizes {
		b.Run(fmt.Sprintf("%s_B%d_L%d_NH%d_HD%d", s.Name, s.B, s.L, s.NH, s.HD), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			T, H := s.B*s.L, s.NH*s.HD
			qkv := randoms(rng, T*3*H, 2)
			st := make([]int32, s.B+1)
			for i := range st {
				st[i] = int32(i * s.L)
			}
			benchOp(b, open, T, H, 4*float64(s.B)*float64(s.L)*float64(s.L)*float64(H), func(be backend.Backend) ([]backend.Tensor, func()) {
				ts := []backend.Tensor{be.Alloc(T * H), be.Upload(qkv), be.UploadInt32(st)}
				return ts, func() { be.Attention(ts[0], ts[1], ts[2], s.B, s.L, s.NH, s.HD) }
			})
		})
	}
}

func randoms(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(scale * (2*rng.Float64() - 1))
	}
	return v
}

// benchOp checks the op once against a CPU backend (a normalised error above 1e-2 stops the
// benchmark: precision is the suite's job, this catches garbage), then times it with a Sync
// per iteration, so that asynchronous backends are timed to completion. setup uploads the
// inputs to a backend and returns its tensors, the output [rows, cols] first, and the op.
func benchOp(b *testing.B, open func() backend.Backend, rows, cols int, flops float64, setup func(backend.Backend) ([]backend.Tensor, func())) {
	b.Helper()
	ref, err := cpu.New()
	if err != nil {
		b.Fatal(err)
	}
	dut := open()
	defer dut.Close()
	got, want := make([]float32, rows*cols), make([]float32, rows*cols)
	var step func()
	for _, c := range []struct {
		be  backend.Backend
		dst []float32
	}{{ref, want}, {dut, got}} {
		ts, op := setup(c.be)
		op()
		if err := c.be.Download(c.dst, ts[0]); err != nil {
			b.Fatal(err)
		}
		if c.be == dut {
			step = op
			defer func() {
				for _, t := range ts {
					dut.Free(t)
				}
			}()
		}
	}
	ref.Close()
	if msg := Compare(got, want, cols, 1e-2); msg != "" {
		b.Fatalf("%s differs from cpu: %s", dut.Name(), msg)
	}
	for b.Loop() {
		step()
		if err := dut.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
