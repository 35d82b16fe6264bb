package cpu

import (
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// Attention computes, for each sequence b of length L (rows s = seqStarts[b] ..) and head h,
//
//	S = Q K^T / sqrt(HD)   [L, L]     Q, K, V: [L, HD] slices of qkv [T, 3H] at columns
//	P = softmax(S) by rows             h*HD, H + h*HD and 2H + h*HD, row stride 3H
//	O = P V                [L, HD]    written to out [T, H] at columns h*HD, row stride H
//
// with H = NH*HD. Both products are sgemm calls on the strided slices, so Q, K and V are never
// copied; the (sequence, head) pairs are shared out among the workers, each with an [L, L]
// scratch for S, and the BLAS is held to one thread meanwhile (see singleThreaded). The
// softmax subtracts the row maximum and sums in float64.
func (b *Backend) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	H := NH * HD
	if B < 0 || NH <= 0 || HD <= 0 {
		b.failf("Attention: B = %d, NH = %d, HD = %d", B, NH, HD)
		return
	}
	st := b.seqStarts("Attention", seqStarts, B, maxLen, -1)
	if st == nil {
		return
	}
	T := int(st[B])
	q := b.floats("Attention", "qkv", qkv, T*3*H)
	o := b.floats("Attention", "out", out, T*H)
	if !b.ok() {
		return
	}
	scratch := make([][]float32, b.workers)
	scale := float32(1 / math.Sqrt(float64(HD)))
	b.blas.singleThreaded(func() {
		b.tasks(B*NH, func(w, i int) {
			s, h := i/NH, i%NH
			start, L := int(st[s]), int(st[s+1]-st[s])
			if L == 0 {
				return
			}
			if len(scratch[w]) < L*L {
				scratch[w] = make([]float32, max(L, maxLen)*max(L, maxLen))
			}
			S := scratch[w][:L*L]
			qh := q[start*3*H+h*HD:]
			kh := q[start*3*H+H+h*HD:]
			vh := q[start*3*H+2*H+h*HD:]
			b.blas.sgemm(false, true, L, L, HD, scale, qh, 3*H, kh, 3*H, 0, S, L)
			for r := range L {
				softmax(S[r*L : (r+1)*L])
			}
			b.blas.sgemm(false, false, L, HD, L, 1, S, L, vh, 3*H, 0, o[start*H+h*HD:], H)
		})
	})
}

// softmax replaces row by exp(row - max) / sum(exp(row - max)).
func softmax(row []float32) {
	m := row[0]
	for _, v := range row[1:] {
		m = max(m, v)
	}
	var sum float64
	for j, v := range row {
		e := expNeg(float64(v - m))
		row[j] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for j := range row {
		row[j] *= inv
	}
}

// expNeg returns e^x for x <= 0, twice as fast as math.Exp, which matters at L^2 calls per
// head: x = n ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^8 (relative error below
// 1e-9), times 2^n. Below -104, where e^x is zero in float32, it returns 0.
func expNeg(x float64) float64 {
	if x < -104 {
		return 0
	}
	n := float64(int64(x*math.Log2E - 0.5)) // round to nearest, x <= 0
	r := x - n*math.Ln2
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320))))))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}
