package cpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// Per-element costs of the elementwise kernels, on one goroutine: GELU over an FFN block of
// 128 tokens (inputs within +-4, as a BERT FFN sees them), and the softmax numerators over rows
// of 83 scores.

func BenchmarkGELU(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randoms(rng, 128*1536, 4)
	y := make([]float32, len(x))
	for b.Loop() {
		copy(y, x)
		activate(y, backend.ActGELU)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/value")
}

func BenchmarkExpRow(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	const L = 83
	x := randoms(rng, L*L, 4)
	y := make([]float32, len(x))
	for b.Loop() {
		copy(y, x)
		for r := range L {
			expRow(y[r*L : (r+1)*L])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/value")
}

// BenchmarkAttentionGemm times attention's two products for the 12 heads of 32 of one sequence
// of L tokens, one sgemm per head and product ("loop") against one batched call per product.
func BenchmarkAttentionGemm(b *testing.B) {
	lib, err := loadBLAS()
	if err != nil {
		b.Fatal(err)
	}
	const NH, HD = 12, 32
	const H = NH * HD
	for _, L := range []int{8, 32, 83, 128, 256} {
		rng := rand.New(rand.NewPCG(1, 1))
		q := randoms(rng, L*3*H, 1)
		S, o := make([]float32, NH*L*L), make([]float32, L*H)
		flops := 4 * float64(L*L) * H
		lib.singleThreaded(func() {
			b.Run(fmt.Sprintf("L%d/loop", L), func(b *testing.B) {
				for b.Loop() {
					for h := range NH {
						lib.sgemm(false, true, L, L, HD, 0.17, q[h*HD:], 3*H, q[H+h*HD:], 3*H, 0, S[h*L*L:], L)
						lib.sgemm(false, false, L, HD, L, 1, S[h*L*L:], L, q[2*H+h*HD:], 3*H, 0, o[h*HD:], H)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("L%d/batch", L), func(b *testing.B) {
				for b.Loop() {
					lib.sgemmBatch(false, true, L, L, HD, 0.17, q, 3*H, HD, q[H:], 3*H, HD, 0, S, L, L*L, NH)
					lib.sgemmBatch(false, false, L, HD, L, 1, S, L, L*L, q[2*H:], 3*H, HD, 0, o, H, HD, NH)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		})
	}
}
