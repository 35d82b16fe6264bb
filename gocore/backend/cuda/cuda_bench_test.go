package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
)

func benchOpen(b *testing.B) func() backend.Backend {
	return func() backend.Backend {
		be := openOrSkip(b, "float16")
		b.Log(be.Describe())
		return be
	}
}

func BenchmarkLinear(b *testing.B)    { backendtest.LinearBenchmark(b, benchOpen(b)) }
func BenchmarkAttention(b *testing.B) { backendtest.AttentionBenchmark(b, benchOpen(b)) }

// miniLM is an all-MiniLM-L6-v2-shaped encoder (H 384, 6 layers, 12 heads of 32, F 1536;
// random weights) on B sequences of L tokens, as named ops: the whole forward is the ops in
// order, the layer ops repeated 6 times. flops are each op's FLOPs (0 for the memory-bound ones).
type namedOp struct {
	name  string
	flops float64
	run   func()
}

func miniLM(b *testing.B, be backend.Backend, B, L int) (embed namedOp, layer []namedOp, pool namedOp, out backend.Tensor) {
	const H, NH, HD, F = 384, 12, 32, 1536
	T := B * L
	rng := rand.New(rand.NewPCG(1, 2))
	up := func(n int, scale, offset float64) backend.Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(offset + scale*(2*rng.Float64()-1))
		}
		return be.Upload(v)
	}
	ids, pos, st := make([]int32, T), make([]int32, T), make([]int32, B+1)
	for t := range ids {
		ids[t], pos[t] = int32(rng.IntN(30000)), int32(t%L)
	}
	for i := range st {
		st[i] = int32(i * L)
	}
	tIDs, tPos, tSt := be.UploadInt32(ids), be.UploadInt32(pos), be.UploadInt32(st)
	word, posT, typ := up(30000*H, 0.05, 0), up(512*H, 0.05, 0), up(2*H, 0.05, 0)
	sc := func(in int) float64 { return math.Sqrt(3 / float64(in)) }
	qkvW, qkvB, oW, oB := up(3*H*H, sc(H), 0), up(3*H, 0.02, 0), up(H*H, sc(H), 0), up(H, 0.02, 0)
	f1W, f1B, f2W, f2B := up(F*H, sc(H), 0), up(F, 0.02, 0), up(H*F, sc(F), 0), up(H, 0.02, 0)
	g, bb := up(H, 0.1, 1), up(H, 0.02, 0)
	x, qkv, ctx, proj, ff := be.Alloc(T*H), be.Alloc(T*3*H), be.Alloc(T*H), be.Alloc(T*H), be.Alloc(T*F)
	out = be.Alloc(B * H)
	gemm := func(in, o int) float64 { return 2 * float64(T) * float64(in) * float64(o) }
	embed = namedOp{"embed", 0, func() { be.Embed(x, tIDs, tPos, nil, word, posT, typ, g, bb, T, H, 1e-12) }}
	layer = []namedOp{
		{"qkv", gemm(H, 3*H), func() { be.Linear(qkv, x, qkvW, qkvB, T, H, 3*H, backend.ActNone) }},
		{"attention", 4 * float64(B) * float64(L) * float64(L) * H, func() { be.Attention(ctx, qkv, tSt, B, L, NH, HD) }},
		{"attn_out", gemm(H, H), func() { be.Linear(proj, ctx, oW, oB, T, H, H, backend.ActNone) }},
		{"add_layernorm1", 0, func() { be.AddLayerNorm(x, proj, x, g, bb, T, H, 1e-12) }},
		{"ffn_up_gelu", gemm(H, F), func() { be.Linear(ff, x, f1W, f1B, T, H, F, backend.ActGELU) }},
		{"ffn_down", gemm(F, H), func() { be.Linear(proj, ff, f2W, f2B, T, F, H, backend.ActNone) }},
		{"add_layernorm2", 0, func() { be.AddLayerNorm(x, proj, x, g, bb, T, H, 1e-12) }},
	}
	pool = namedOp{"pool", 0, func() { be.Pool(out, x, tSt, B, H, backend.PoolMean, true) }}
	return embed, layer, pool, out
}

var encoderShapes = [][2]int{{1, 16}, {32, 128}, {128, 128}}

// BenchmarkEncoder times a whole all-MiniLM-L6-v2-shaped forward from token ids to normalised
// mean-pooled embeddings on the host (Download included), float16: op by op ("eager"), and
// replayed as one CUDA graph ("graph").
func BenchmarkEncoder(b *testing.B) {
	for _, s := range encoderShapes {
		B, L := s[0], s[1]
		for _, mode := range []string{"eager", "graph"} {
			b.Run(fmt.Sprintf("MiniLM_B%d_L%d/%s", B, L, mode), func(b *testing.B) {
				be := openOrSkip(b, "float16")
				defer be.Close()
				embed, layer, pool, out := miniLM(b, be, B, L)
				var flops float64
				forward := func() {
					embed.run()
					for range 6 {
						for _, op := range layer {
							op.run()
						}
					}
					pool.run()
				}
				for _, op := range layer {
					flops += 6 * op.flops
				}
				step := forward
				if mode == "graph" {
					step = func() { be.Replay("forward", forward) }
				}
				host := make([]float32, B*384)
				for b.Loop() {
					step()
					if err := be.Download(host, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/forward")
			})
		}
	}
}

// BenchmarkEncoderOps times each op of the forward alone, float16, 20 launches per Sync,
// at the shapes of BenchmarkEncoder: where the time of a forward goes.
func BenchmarkEncoderOps(b *testing.B) {
	for _, s := range encoderShapes {
		B, L := s[0], s[1]
		b.Run(fmt.Sprintf("MiniLM_B%d_L%d", B, L), func(b *testing.B) {
			be := openOrSkip(b, "float16")
			defer be.Close()
			embed, layer, pool, _ := miniLM(b, be, B, L)
			embed.run()
			for _, op := range append(append([]namedOp{embed}, layer...), pool) {
				b.Run(op.name, func(b *testing.B) {
					const per = 20
					for b.Loop() {
						for range per {
							op.run()
						}
						if err := be.Sync(); err != nil {
							b.Fatal(err)
						}
					}
					us := float64(b.Elapsed().Microseconds()) / float64(b.N*per)
					b.ReportMetric(us, "us/op")
					if op.flops > 0 {
						b.ReportMetric(op.flops/us/1e6, "TFLOP/s")
					}
				})
			}
		})
	}
}
