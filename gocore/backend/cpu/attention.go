package cpu

import (
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// Attention computes, for each sequence b of length L (rows s = seqStarts[b] ..) and head h,
//
//	S = Q K^T / sqrt(HD)   [L, L]     Q, K, V: [L, HD] slices of qkv [T, 3H] at columns
//	E = exp(S - rowmax(S))             h*HD, H + h*HD and 2H + h*HD, row stride 3H
//	O = diag(1 / rowsum(E)) E V  [L, HD]  written to out [T, H] at columns h*HD, row stride H
//
// with H = NH*HD, which is softmax(S) V. The heads of a sequence are taken in groups (see
// attentionGroups), shared out among the workers; for a group, each product is one batched
// sgemm over its heads (see sgemmBatch) on the strided slices, so Q, K and V are never copied,
// into a per-worker scratch for the groups' S and E, with the BLAS held to one thread meanwhile
// (see singleThreaded). The softmax makes two passes over S (the maximum; then the exponentials
// and their sum, in float64) and leaves the division by the sums to O, whose rows hold HD values
// where those of E hold L.
func (b *Backend) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	b.attention("Attention", out, qkv, seqStarts, nil, B, maxLen, NH, HD, 0)
}

// UploadFloat32 is Upload: the CPU stores float32 anyway (backend.BiasedAttention).
func (b *Backend) UploadFloat32(src []float32) backend.Tensor { return b.Upload(src) }

// AttentionBiased is Attention with rel[h, clamp(j-i) + R-1] added to S[i, j] before the
// softmax (backend.BiasedAttention).
func (b *Backend) AttentionBiased(out, qkv, seqStarts, rel backend.Tensor, B, maxLen, NH, HD, R int) {
	b.attention("AttentionBiased", out, qkv, seqStarts, rel, B, maxLen, NH, HD, R)
}

var _ backend.BiasedAttention = (*Backend)(nil)

func (b *Backend) attention(op string, out, qkv, seqStarts, relT backend.Tensor, B, maxLen, NH, HD, R int) {
	H := NH * HD
	if B < 0 || NH <= 0 || HD <= 0 || (relT != nil && R <= 0) {
		b.failf("%s: B = %d, NH = %d, HD = %d, R = %d", op, B, NH, HD, R)
		return
	}
	st := b.seqStarts(op, seqStarts, B, maxLen, -1)
	if st == nil {
		return
	}
	T := int(st[B])
	q := b.floats(op, "qkv", qkv, T*3*H)
	o := b.floats(op, "out", out, T*H)
	rel := b.optFloats(op, "rel", relT, NH*(2*R-1))
	if !b.ok() {
		return
	}
	longest := 0
	for s := range B {
		longest = max(longest, int(st[s+1]-st[s]))
	}
	groups, per := attentionGroups(B, longest, NH, b.workers)
	scratch := b.scratch(per * (longest*longest + longest))
	scale := float32(1 / math.Sqrt(float64(HD)))
	b.blas.singleThreaded(func() {
		b.tasks(B*groups, func(w, i int) {
			s, h0 := i/groups, i%groups*per
			start, L, n := int(st[s]), int(st[s+1]-st[s]), min(per, NH-h0) // heads h0 .. h0+n-1
			if L == 0 || n <= 0 {
				return
			}
			S, inv := scratch[w][:n*L*L], scratch[w][n*L*L:n*L*L+n*L] // S[j] at j*L*L, head h0+j
			qh := q[start*3*H+h0*HD:]
			oh := o[start*H+h0*HD:]
			b.blas.sgemmBatch(false, true, L, L, HD, scale, qh, 3*H, HD, qh[H:], 3*H, HD, 0, S, L, L*L, n)
			if rel != nil {
				addRelBias(S, rel[h0*(2*R-1):(h0+n)*(2*R-1)], n, L, R)
			}
			for r := range n * L {
				inv[r] = float32(1 / expRow(S[r*L:(r+1)*L]))
			}
			b.blas.sgemmBatch(false, false, L, HD, L, 1, S, L, L*L, qh[2*H:], 3*H, HD, 0, oh, H, HD, n)
			for j := range n {
				for r, f := range inv[j*L : (j+1)*L] {
					row := oh[r*H+j*HD : r*H+(j+1)*HD]
					for c := range row {
						row[c] *= f
					}
				}
			}
		})
	})
}

// addRelBias adds to the scores S[j] [L, L] of n heads their bias rows rel[j] [2R-1]:
// S[j][r, c] += rel[j][clamp(c-r, 1-R, R-1) + R-1].
func addRelBias(S, rel []float32, n, L, R int) {
	for j := range n {
		row := rel[j*(2*R-1) : (j+1)*(2*R-1)]
		for r := range L {
			s := S[j*L*L+r*L : j*L*L+(r+1)*L]
			for c := range s {
				s[c] += row[min(max(c-r, 1-R), R-1)+R-1]
			}
		}
	}
}

// attentionGroups splits the NH heads of each sequence into groups of per heads (the last may
// be smaller) for Attention, L being the longest sequence: as few groups as keep a group's
// scores within 256 KiB, in the cache between the products and the softmax (for 12 heads: one
// group up to L = 73, two of 6 heads up to L = 104, single heads from L = 246), and at least
// one group per worker when there are fewer sequences than workers. 64 KiB and 1 MiB measured
// the same at L = 83.
func attentionGroups(B, L, NH, workers int) (groups, per int) {
	const most = 64 << 10 // float32 scores per group
	groups = max(1, (NH*L*L+most-1)/most)
	if B < workers {
		groups = max(groups, (workers+B-1)/max(B, 1))
	}
	per = (NH + min(groups, NH) - 1) / min(groups, NH)
	return (NH + per - 1) / per, per
}

// expRow replaces row by exp(row - max(row)) and returns the sum of the new values, summed in
// float64: the numerators of softmax(row) and their denominator. Every value is at most 1 and
// the maximum's is 1, so the sum is at least 1. A NaN in row gives a NaN sum.
func expRow(row []float32) float64 {
	m := row[0]
	for _, v := range row[1:] {
		if v > m {
			m = v
		}
	}
	mf := float64(m)
	var sum float64
	for j, v := range row {
		e := expNeg(float64(v) - mf)
		row[j] = float32(e)
		sum += e
	}
	return sum
}

// expNeg returns e^x for x <= 0 with a relative error below 6e-10, far under float32's rounding
// (6e-8), in about a quarter of the time of math.Exp, which matters at L^2 calls per head:
//
//	x = (32n + j) ln2/32 + r,  32n + j = round(32 x / ln2),  0 <= j < 32,  |r| <= ln2/64
//	e^x = 2^n 2^(j/32) e^r
//
// with 2^(j/32) from a table and e^r from its Taylor series to r^3 (relative error r^4/24 <
// 5.8e-10). 32n + j is rounded by adding 1.5*2^52, which leaves it in the low bits of the sum as
// a two's-complement integer: j is the low 5 bits and n the rest, added to the exponent of
// 2^(j/32). x below -104, where e^x rounds to zero in float32, is taken as -104, whose e^x also
// does; -Inf gives that too, and NaN gives NaN.
func expNeg(x float64) float64 {
	const round = 1 << 52 * 1.5
	if x < -104 {
		x = -104
	}
	t := x*(32/math.Ln2) + round // the low bits of t hold k = 32n + j
	k := t - round
	r := x - k*(math.Ln2/32)
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6)))
	bits := math.Float64bits(t)
	// 2^n 2^(j/32): n added to the exponent field; the bits of t above k's fall off the shift.
	return p * math.Float64frombits(exp2Fractions[bits%32]+bits>>5<<52)
}

// exp2Fractions holds the bits of 2^(j/32) for j = 0 .. 31.
var exp2Fractions = func() (t [32]uint64) {
	for j := range t {
		t[j] = math.Float64bits(math.Exp2(float64(j) / 32))
	}
	return t
}()
