package cpu

import (
	"math"
	"sync"

	"github.com/goembed/goembed/gocore/backend"
)

// Linear computes out = act(x @ w^T + bias) with x [T, in], w [out, in] (PyTorch layout),
// bias [out] or nil, out [T, out]. out must not overlap x or w.
//
// The rows of x are cut into blocks shared out among the workers; each block is one sgemm,
// with the BLAS held to one thread (see singleThreaded), followed at once by its bias and
// activation while the block is still in cache.
func (b *Backend) Linear(out, x, w, bias backend.Tensor, T, in, outDim int, act backend.Activation) {
	xs := b.floats("Linear", "x", x, T*in)
	ws := b.floats("Linear", "w", w, outDim*in)
	bs := b.optFloats("Linear", "bias", bias, outDim)
	o := b.floats("Linear", "out", out, T*outDim)
	if !b.ok() {
		return
	}
	if act < backend.ActNone || act > backend.ActTanh {
		b.failf("Linear: unknown activation %d", act)
		return
	}
	rows := min(max((T+b.workers-1)/b.workers, 8), 128)
	b.blas.singleThreaded(func() {
		b.tasks((T+rows-1)/rows, func(_, blk int) {
			lo, hi := blk*rows, min(T, (blk+1)*rows)
			y := o[lo*outDim : hi*outDim]
			b.blas.sgemm(false, true, hi-lo, outDim, in, 1, xs[lo*in:], in, ws, in, 0, y, outDim)
			biasAct(y, bs, act)
		})
	})
}

// biasAct applies y[t, j] = act(y[t, j] + bias[j]) to the rows of y (bias may be nil).
func biasAct(y, bias []float32, act backend.Activation) {
	if bias != nil {
		for r := 0; r < len(y); r += len(bias) {
			for j, v := range bias {
				y[r+j] += v
			}
		}
	}
	switch act {
	case backend.ActGELU:
		tab := geluTable()
		for j, v := range y {
			y[j] = tab.gelu(v)
		}
	case backend.ActTanh:
		for j, v := range y {
			y[j] = float32(math.Tanh(float64(v)))
		}
	}
}

// geluExact is GELU(x) = x/2 * (1 + erf(x/sqrt(2))) = x/2 * erfc(-x/sqrt(2)); the erfc form
// keeps its relative accuracy in the negative tail, where 1 + erf cancels.
func geluExact(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

// geluDerivative is GELU'(x) = Phi(x) + x phi(x).
func geluDerivative(x float64) float64 {
	return 0.5*math.Erfc(-x/math.Sqrt2) + x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
}

// A geluTab holds GELU and its derivative at the nodes -geluMax + i/geluSteps, for cubic
// Hermite interpolation: math.Erfc costs 20-30 ns and a layer evaluates GELU T*F times. The
// error is below h^4/384 max|GELU| with h = 1/128, 1.5e-11, and GELU = phi(x)(-x^4 +
// 7x^2 - 4) decays with GELU in the negative tail, so the relative error stays below 4e-8
// before the rounding to float32 (TestGELU checks it against math.Erfc).
type geluTab [][2]float64

const geluMax, geluSteps = 8, 128

var geluTable = sync.OnceValue(func() geluTab {
	t := make(geluTab, 2*geluMax*geluSteps+2)
	for i := range t {
		x := float64(i)/geluSteps - geluMax
		t[i] = [2]float64{geluExact(x), geluDerivative(x) / geluSteps}
	}
	return t
})

// gelu returns GELU(x); outside [-8, 8] it computes GELU exactly.
func (t geluTab) gelu(x float32) float32 {
	if !(x > -geluMax && x < geluMax) { // also NaN
		return float32(geluExact(float64(x)))
	}
	u := (float64(x) + geluMax) * geluSteps
	i := int(u)
	s := u - float64(i)
	a, b := t[i], t[i+1]
	// Hermite basis: (1+2s)(1-s)^2, s(1-s)^2, s^2(3-2s), s^2(s-1)
	s1 := 1 - s
	return float32(s1*s1*((1+2*s)*a[0]+s*a[1]) + s*s*((3-2*s)*b[0]-s1*b[1]))
}
