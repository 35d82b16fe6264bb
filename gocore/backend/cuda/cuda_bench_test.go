package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
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

var encoderShapes = [][2]int{{1, 16}, {32, 128}, {128, 128}, {1000, 128}}

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
				op.run() // first calls plan and tune GEMMs (gemmtune.go): not what is timed
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
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

// attentionKernelShapes are the (B, L, NH, HD) of BenchmarkAttentionKernels.
var attentionKernelShapes = [][4]int{
	{32, 128, 12, 32}, {128, 128, 12, 32}, {1000, 128, 12, 32},
	{32, 128, 12, 64}, {128, 128, 12, 64}, {1000, 128, 12, 64},
}

// attentionBoth runs Attention with the tensor-core kernel and with the CUDA-core kernel on
// the same qkv and returns ||mma - simt|| / ||simt||.
func attentionBoth(t testing.TB, be *Backend, qkv, st backend.Tensor, T, B, L, NH, HD int) float64 {
	t.Helper()
	outs := [2]backend.Tensor{be.Alloc(T * NH * HD), be.Alloc(T * NH * HD)}
	var host [2][]float32
	for i, simt := range []bool{false, true} {
		be.attentionSIMT = simt
		be.Attention(outs[i], qkv, st, B, L, NH, HD)
		host[i] = make([]float32, T*NH*HD)
		if err := be.Download(host[i], outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	be.attentionSIMT = false
	var num, den float64
	for i := range host[0] {
		d := float64(host[0][i]) - float64(host[1][i])
		num += d * d
		den += float64(host[1][i]) * float64(host[1][i])
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

// TestAttentionMMA checks the tensor-core attention against the CUDA-core one on ragged
// sequences (lengths around the 16-key steps, 64-key tiles and 64-query blocks), both 16-bit
// storage types and both head dims.
func TestAttentionMMA(t *testing.T) {
	for _, dtype := range []string{"float16", "bfloat16"} {
		be := openOrSkip(t, dtype)
		if !be.attentionMMA() {
			be.Close()
			t.Skipf("%s: no tensor-core attention here", dtype)
		}
		lens := []int{1, 2, 15, 16, 17, 63, 64, 65, 100, 128, 129, 200, 3}
		st := []int32{0}
		for _, n := range lens {
			st = append(st, st[len(st)-1]+int32(n))
		}
		T, B, L := int(st[len(st)-1]), len(lens), 200
		rng := rand.New(rand.NewPCG(3, 4))
		for _, hd := range []int{32, 64} {
			NH := 6
			v := make([]float32, T*3*NH*hd)
			for i := range v {
				v[i] = float32(2 * (2*rng.Float64() - 1))
			}
			qkv, tSt := be.Upload(v), be.UploadInt32(st)
			for _, w := range []int{0, 1, 2, 4, 8} {
				be.attmWarpsOverride = w
				e := attentionBoth(t, be, qkv, tSt, T, B, L, NH, hd)
				limit := 2e-3
				if dtype == "bfloat16" {
					limit = 1.5e-2
				}
				t.Logf("%s HD %d warps %d: ||mma - simt|| / ||simt|| = %.2e", dtype, hd, w, e)
				if !(e < limit) {
					t.Errorf("%s HD %d warps %d: error %.2e over %.0e", dtype, hd, w, e, limit)
				}
			}
			be.attmWarpsOverride = 0
		}
		be.Close()
	}
}

// BenchmarkAttentionKernels times the tensor-core attention (mma: the launcher's block size;
// mma_wN: N warps a block) and the CUDA-core one (simt) at MiniLM / e5-small shapes (HD 32) and
// HD 64, float16, 20 launches per Sync.
func BenchmarkAttentionKernels(b *testing.B) {
	for _, s := range attentionKernelShapes {
		B, L, NH, HD := s[0], s[1], s[2], s[3]
		T := B * L
		be := openOrSkip(b, "float16")
		rng := rand.New(rand.NewPCG(1, 2))
		v := make([]float32, T*3*NH*HD)
		for i := range v {
			v[i] = float32(2 * (2*rng.Float64() - 1))
		}
		st := make([]int32, B+1)
		for i := range st {
			st[i] = int32(i * L)
		}
		qkv, tSt, out := be.Upload(v), be.UploadInt32(st), be.Alloc(T*NH*HD)
		e := attentionBoth(b, be, qkv, tSt, T, B, L, NH, HD)
		for _, kernel := range []string{"mma", "mma_w2", "mma_w4", "mma_w8", "simt"} {
			b.Run(fmt.Sprintf("B%d_L%d_NH%d_HD%d/%s", B, L, NH, HD, kernel), func(b *testing.B) {
				be.attentionSIMT = kernel == "simt"
				be.attmWarpsOverride = 0
				if w, ok := strings.CutPrefix(kernel, "mma_w"); ok {
					be.attmWarpsOverride, _ = strconv.Atoi(w)
				}
				defer func() { be.attmWarpsOverride = 0 }()
				const per = 20
				for b.Loop() {
					for range per {
						be.Attention(out, qkv, tSt, B, L, NH, HD)
					}
					if err := be.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				us := float64(b.Elapsed().Microseconds()) / float64(b.N*per)
				b.ReportMetric(us, "us/op")
				b.ReportMetric(4*float64(B)*float64(L)*float64(L)*float64(NH*HD)/us/1e6, "TFLOP/s")
				b.ReportMetric(e, "err_vs_simt")
			})
		}
		be.Close()
	}
}
