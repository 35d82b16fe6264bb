//go:build unix

package cpu_test

import (
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// namedOp is one op of the forward with its FLOPs (0 for the memory-bound ones).
type namedOp struct {
	name  string
	flops float64
	run   func()
}

// miniLM is an all-MiniLM-L6-v2-shaped encoder (H 384, 12 heads of 32, F 1536; random weights)
// on the sequences of lens packed end to end, as named ops: a forward is embed, the layer ops 6
// times, then pool (mean, normalised), in the order of gocore/arch/bert.go.
func miniLM(be backend.Backend, lens []int) (embed namedOp, layer []namedOp, pool namedOp, out backend.Tensor) {
	const H, NH, HD, F = 384, 12, 32, 1536
	B := len(lens)
	st := make([]int32, B+1)
	maxLen, sumL2 := 0, 0.0
	for i, n := range lens {
		st[i+1] = st[i] + int32(n)
		maxLen = max(maxLen, n)
		sumL2 += float64(n) * float64(n)
	}
	T := int(st[B])
	rng := rand.New(rand.NewPCG(1, 2))
	up := func(n int, scale, offset float64) backend.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*(2*rng.Float64()-1))
		}
		return be.Upload(v)
	}
	ids, pos := make([]int32, T), make([]int32, T)
	for s := range B {
		for t := st[s]; t < st[s+1]; t++ {
			ids[t], pos[t] = int32(rng.IntN(30000)), t-st[s]
		}
	}
	tIDs, tPos, tSt := be.UploadInt32(ids), be.UploadInt32(pos), be.UploadInt32(st)
	word, posT, typ := up(30000*H, 0.05, 0), up(512*H, 0.05, 0), up(2*H, 0.05, 0)
	sc := func(in int) float64 { return math.Sqrt(3 / float64(in)) }
	qkvW, qkvB, oW, oB := up(3*H*H, sc(H), 0), up(3*H, 0.02, 0), up(H*H, sc(H), 0), up(H, 0.02, 0)
	f1W, f1B, f2W, f2B := up(F*H, sc(H), 0), up(F, 0.02, 0), up(H*F, sc(F), 0), up(H, 0.02, 0)
	g, bb := up(H, 0.1, 1), up(H, 0.02, 0)
	x, qkv, ctx, proj, ff := be.Alloc(T*H), be.Alloc(T*3*H), be.Alloc(T*H), be.Alloc(T*H), be.Alloc(T*F)
	out = be.Alloc(B * H)
	gemm := func(in, outDim int) float64 { return 2 * float64(T) * float64(in) * float64(outDim) }
	embed = namedOp{"embed", 0, func() { be.Embed(x, tIDs, tPos, nil, word, posT, typ, g, bb, T, H, 1e-12) }}
	layer = []namedOp{
		{"qkv", gemm(H, 3*H), func() { be.Linear(qkv, x, qkvW, qkvB, T, H, 3*H, backend.ActNone) }},
		{"attention", 4 * sumL2 * H, func() { be.Attention(ctx, qkv, tSt, B, maxLen, NH, HD) }},
		{"attn_out", gemm(H, H), func() { be.Linear(proj, ctx, oW, oB, T, H, H, backend.ActNone) }},
		{"add_layernorm1", 0, func() { be.AddLayerNorm(x, proj, x, g, bb, T, H, 1e-12) }},
		{"ffn_up_gelu", gemm(H, F), func() { be.Linear(ff, x, f1W, f1B, T, H, F, backend.ActGELU) }},
		{"ffn_down", gemm(F, H), func() { be.Linear(proj, ff, f2W, f2B, T, F, H, backend.ActNone) }},
		{"add_layernorm2", 0, func() { be.AddLayerNorm(x, proj, x, g, bb, T, H, 1e-12) }},
	}
	pool = namedOp{"pool", 0, func() { be.Pool(out, x, tSt, B, H, backend.PoolMean, 0, true) }}
	return embed, layer, pool, out
}

// encoderShapes: one query, a batch of 32 passages of the corpus's mean length (83 tokens), and
// 32 of mixed lengths 20..146 (mean 83), as the engine packs them.
var encoderShapes = []struct {
	name string
	lens []int
}{
	{"B1_L83", []int{83}},
	{"B32_L83", repeat(83, 32)},
	{"B32_mixed83", mixed(32, 20, 146)},
}

func repeat(n, times int) []int {
	v := make([]int, times)
	for i := range v {
		v[i] = n
	}
	return v
}

func mixed(B, lo, hi int) []int {
	v := make([]int, B)
	for i := range v {
		v[i] = lo + (hi-lo)*i/(B-1)
	}
	return v
}

// cpuTime is the CPU time (user and system) this process has used so far, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per iteration since start: on a machine shared with other
// work it varies less than the wall time, as long as nothing spins.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

// BenchmarkEncoder times a whole all-MiniLM-L6-v2-shaped forward (embed, 6 layers, pool,
// Download) and reports its time and CPU time per forward and the GFLOP/s of its layers.
func BenchmarkEncoder(b *testing.B) {
	for _, s := range encoderShapes {
		b.Run("MiniLM_"+s.name, func(b *testing.B) {
			be, err := cpu.New()
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			embed, layer, pool, out := miniLM(be, s.lens)
			var flops float64
			for _, op := range layer {
				flops += 6 * op.flops
			}
			host := make([]float32, out.Len())
			start := cpuTime()
			for b.Loop() {
				embed.run()
				for range 6 {
					for _, op := range layer {
						op.run()
					}
				}
				pool.run()
				if err := be.Download(host, out); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, start)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1e3, "ms/forward")
		})
	}
}

// BenchmarkEncoderOps times each op of the forward alone at the shapes of BenchmarkEncoder, and
// its CPU time: where the time of a forward goes.
func BenchmarkEncoderOps(b *testing.B) {
	for _, s := range encoderShapes {
		b.Run("MiniLM_"+s.name, func(b *testing.B) {
			be, err := cpu.New()
			if err != nil {
				b.Fatal(err)
			}
			defer be.Close()
			embed, layer, pool, _ := miniLM(be, s.lens)
			embed.run()
			for _, op := range append(append([]namedOp{embed}, layer...), pool) {
				b.Run(op.name, func(b *testing.B) {
					start := cpuTime()
					for b.Loop() {
						op.run()
					}
					reportCPU(b, start)
					if err := be.Sync(); err != nil {
						b.Fatal(err)
					}
					if op.flops > 0 {
						b.ReportMetric(op.flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					}
				})
			}
		})
	}
}
