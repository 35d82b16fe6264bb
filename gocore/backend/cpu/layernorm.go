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
			row := o[t*H : (t+1)*H]
			for j := range row {
				row[j] = xs[t*H+j] + rs[t*H+j]
			}
			layerNorm(row, g, be, eps)
		}
	})
}

// layerNorm normalises row in place: row = (row - mean) / sqrt(var + eps) * gamma + beta, the
// mean and biased variance taken in float64 over two passes.
func layerNorm(row, gamma, beta []float32, eps float32) {
	var sum float64
	for _, v := range row {
		sum += float64(v)
	}
	mean := sum / float64(len(row))
	var ss float64
	for _, v := range row {
		d := float64(v) - mean
		ss += d * d
	}
	rstd := 1 / math.Sqrt(ss/float64(len(row))+float64(eps))
	for j, v := range row {
		row[j] = float32((float64(v)-mean)*rstd)*gamma[j] + beta[j]
	}
}
