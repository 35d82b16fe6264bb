package cpu

import (
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// AddLayerNorm computes, for each of the T rows of H values, v = x + residual (in float32) and
// out = (v - mean(v)) / sqrt(var(v) + eps) * gamma + beta, with the biased variance. out may
// alias x or residual: each element is read before it is written.
func (b *Backend) AddLayerNorm(out, x, residual, gamma, beta backend.Tensor, T, H int, eps float32) {
	xs := b.floats("AddLayerNorm", "x", x, T*H)
	rs := b.floats("AddLayerNorm", "residual", residual, T*H)
	g := b.floats("AddLayerNorm", "gamma", gamma, H)
	be := b.floats("AddLayerNorm", "beta", beta, H)
	o := b.floats("AddLayerNorm", "out", out, T*H)
	if !b.ok() {
		return
	}
	b.parallel(T, max(1, 8192/max(H, 1)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row, xr, rr := o[t*H:(t+1)*H], xs[t*H:(t+1)*H], rs[t*H:(t+1)*H]
			for j := range row {
				row[j] = xr[j] + rr[j]
			}
			layerNorm(row, g, be, eps)
		}
	})
}

// layerNorm normalises row in place: row = (row - mean) / sqrt(var + eps) * gamma + beta, the
// mean and biased variance taken in float64 over two passes. Each pass keeps four partial sums,
// so that four additions are in flight at once instead of one after another.
func layerNorm(row, gamma, beta []float32, eps float32) {
	n := len(row)
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= n; j += 4 {
		v := row[j : j+4 : j+4]
		s0 += float64(v[0])
		s1 += float64(v[1])
		s2 += float64(v[2])
		s3 += float64(v[3])
	}
	for ; j < n; j++ {
		s0 += float64(row[j])
	}
	mean := (s0 + s1 + s2 + s3) / float64(n)
	s0, s1, s2, s3 = 0, 0, 0, 0
	j = 0
	for ; j+4 <= n; j += 4 {
		v := row[j : j+4 : j+4]
		d0, d1, d2, d3 := float64(v[0])-mean, float64(v[1])-mean, float64(v[2])-mean, float64(v[3])-mean
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; j < n; j++ {
		d := float64(row[j]) - mean
		s0 += d * d
	}
	rstd := 1 / math.Sqrt((s0+s1+s2+s3)/float64(n)+float64(eps))
	gamma, beta = gamma[:n], beta[:n]
	for j, v := range row {
		row[j] = float32((float64(v)-mean)*rstd)*gamma[j] + beta[j]
	}
}
