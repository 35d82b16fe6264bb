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

// BenchmarkEncoder times a whole all-MiniLM-L6-v2-shaped forward (H 384, 6 layers, 12 heads of
// 32, F 1536; random weights) from token ids to normalised mean-pooled embeddings, with a Sync
// per forward and no CUDA graph: B sequences of L tokens, float16.
func BenchmarkEncoder(b *testing.B) {
	for _, s := range [][2]int{{1, 16}, {32, 128}} {
		B, L := s[0], s[1]
		b.Run(fmt.Sprintf("MiniLM_B%d_L%d", B, L), func(b *testing.B) {
			be := openOrSkip(b, "float16")
			defer be.Close()
			const H, NH, HD, F, layers = 384, 12, 32, 1536, 6
			T := B * L
			rng := rand.New(rand.NewPCG(1, 2))
			up := func(n int, scale float64) backend.Tensor {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(scale * (2*rng.Float64() - 1))
				}
				return be.Upload(v)
			}
			ones := func(n int) backend.Tensor {
				v := make([]float32, n)
				for i := range v {
					v[i] = 1
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
			word, posT, typ := up(30000*H, 0.05), up(512*H, 0.05), up(2*H, 0.05)
			type layer struct{ qkvW, qkvB, oW, oB, f1W, f1B, f2W, f2B, g1, b1, g2, b2 backend.Tensor }
			ls := make([]layer, layers)
			for i := range ls {
				sc := func(in int) float64 { return math.Sqrt(3 / float64(in)) }
				ls[i] = layer{up(3*H*H, sc(H)), up(3*H, 0.02), up(H*H, sc(H)), up(H, 0.02),
					up(F*H, sc(H)), up(F, 0.02), up(H*F, sc(F)), up(H, 0.02), ones(H), up(H, 0.02), ones(H), up(H, 0.02)}
			}
			g0, b0 := ones(H), up(H, 0.02)
			x, qkv, ctx, ff, pooled := be.Alloc(T*H), be.Alloc(T*3*H), be.Alloc(T*H), be.Alloc(T*F), be.Alloc(B*H)
			forward := func() {
				be.Embed(x, tIDs, tPos, nil, word, posT, typ, g0, b0, T, H, 1e-12)
				for _, l := range ls {
					be.Linear(qkv, x, l.qkvW, l.qkvB, T, H, 3*H, backend.ActNone)
					be.Attention(ctx, qkv, tSt, B, L, NH, HD)
					be.Linear(qkv, ctx, l.oW, l.oB, T, H, H, backend.ActNone) // qkv as scratch [T, H]
					be.AddLayerNorm(x, qkv, x, l.g1, l.b1, T, H, 1e-12)
					be.Linear(ff, x, l.f1W, l.f1B, T, H, F, backend.ActGELU)
					be.Linear(qkv, ff, l.f2W, l.f2B, T, F, H, backend.ActNone)
					be.AddLayerNorm(x, qkv, x, l.g2, l.b2, T, H, 1e-12)
				}
				be.Pool(pooled, x, tSt, B, H, backend.PoolMean, true)
			}
			out := make([]float32, B*H)
			forward()
			if err := be.Download(out, pooled); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				forward()
				if err := be.Download(out, pooled); err != nil {
					b.Fatal(err)
				}
			}
			flops := float64(layers) * (2*float64(T)*H*(3*H+H+2*F) + 4*float64(B)*float64(L)*float64(L)*H)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/forward")
		})
	}
}
