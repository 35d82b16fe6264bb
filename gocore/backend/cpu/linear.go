package cpu

import (
	"math"
	"sync"

	"github.com/goembed/goembed/gocore/backend"
)

// Linear computes out = act(x @ w^T + bias) with x [T, in], w [out, in] (PyTorch layout),
// bias [out] or nil, out [T, out]. out must not overlap x or w.
//
// out is cut into blocks (see linearBlocks) shared out among the workers; each block is filled
// with its bias (or zeros) and then one sgemm adds x @ w^T to it (beta = 1, which costs the BLAS
// nothing: with beta = 0 it would clear the block first), with the BLAS held to one thread (see
// singleThreaded); the activation follows at once while the block is still in cache.
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
	rowBlocks, colBlocks := linearBlocks(T, outDim, b.workers)
	b.blas.singleThreaded(func() {
		b.tasks(rowBlocks*colBlocks, func(_, i int) {
			r, c := i/colBlocks, i%colBlocks
			lo, hi := T*r/rowBlocks, T*(r+1)/rowBlocks
			c0, c1 := outDim*c/colBlocks, outDim*(c+1)/colBlocks
			y := o[lo*outDim+c0:]
			for r := range hi - lo {
				row := y[r*outDim : r*outDim+c1-c0]
				if bs == nil {
					clear(row)
				} else {
					copy(row, bs[c0:c1])
				}
			}
			b.blas.sgemm(false, true, hi-lo, c1-c0, in, 1, xs[lo*in:], in, ws[c0*in:], in, 1, y, outDim)
			if act != backend.ActNone {
				for r := range hi - lo {
					activate(y[r*outDim:r*outDim+c1-c0], act)
				}
			}
		})
	})
}

// linearBlockRows is the most rows of out one sgemm of Linear computes. Each call packs all of
// its w again, so fewer, larger blocks cost less: for all-MiniLM-L6-v2 at T = 2656 (OpenBLAS
// 0.3.34, 2 workers) blocks of up to 512 rows took 5-8% less CPU time than blocks of 128 (the
// FFN up-projection too, although its GELU then reads the block back from L3 rather than L2),
// and one block per worker a little less again; but 6 blocks of 443 rows still balance the
// workers when another process takes part of a core, and 2 blocks do not. (OpenBLAS's own
// threads on one whole-T sgemm were faster still for the product alone, but slowed the ops
// after it: see singleThreaded.)
const linearBlockRows = 512

// linearBlocks cuts out [T, outDim] into rowBlocks x colBlocks blocks of equal size for workers
// goroutines: row blocks of at most linearBlockRows, as many as a multiple of workers so that
// they come out even; when T is too short for one block per worker, column blocks of at least
// 64 columns instead, so that each worker packs only its share of the weights.
func linearBlocks(T, outDim, workers int) (rowBlocks, colBlocks int) {
	rowBlocks = (T + linearBlockRows - 1) / linearBlockRows
	rowBlocks = (rowBlocks + workers - 1) / workers * workers
	rowBlocks = max(min(rowBlocks, T/8), 1) // no blocks under 8 rows
	colBlocks = 1
	if rowBlocks < workers && T > 0 {
		colBlocks = max(min((workers+rowBlocks-1)/rowBlocks, outDim/64), 1)
	}
	return rowBlocks, colBlocks
}

// activate applies act to every element of y.
func activate(y []float32, act backend.Activation) {
	switch act {
	case backend.ActGELU:
		geluTable().apply(y)
	case backend.ActTanh:
		for j, v := range y {
			y[j] = float32(math.Tanh(float64(v)))
		}
	}
}

// geluExact is GELU(x) = x/2 * (1 + erf(x/sqrt(2))) = x/2 * erfc(-x/sqrt(2)); the erfc form
// keeps its relative accuracy in the negative tail, where 1 + erf cancels.
func geluExact(x float64) float64 { return x * normalCDF(x) }

// normalCDF is Phi(x) = erfc(-x/sqrt(2)) / 2, and normalPDF its derivative phi(x).
func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
func normalPDF(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }

// A geluTab is the cubic Hermite interpolant of Phi on [-8, 8], for GELU(x) = x Phi(x):
// math.Erfc costs 20-30 ns and a layer evaluates GELU T*F times. The nodes are x_i = -8 + i h,
// h = 1/128; on [x_i, x_i+1], with s = (x - x_i)/h, y = Phi(x_i), y' = Phi(x_i+1),
// m = h phi(x_i) and m' = h phi(x_i+1),
//
//	p(s) = y + s (m + s (c2 + s c3)),  c2 = 3(y' - y) - 2m - m',  c3 = 2(y - y') + m + m'
//
// and the table holds [y, m, c2, c3] for each interval, so that a value costs one lookup, a
// Horner step and the product with x. The error is at most h^4/384 max|Phi^(4)|, and Phi^(4) =
// phi(x)(3x - x^3) decays like Phi in the negative tail, so the relative error of GELU stays
// below 4e-8 before the rounding to float32 (3.8e-8 at -8, under 1e-10 for x > -2; TestGELU
// checks it against math.Erfc). Interpolating Phi rather than GELU keeps that relative
// accuracy near 0 too, where GELU(x) ~ x/2 vanishes but Phi does not.
type geluTab [geluIntervals][4]float64

const (
	geluMax, geluSteps = 8, 128
	geluIntervals      = 2 * geluMax * geluSteps // a power of 2, for the index mask in apply
)

var geluTable = sync.OnceValue(func() *geluTab {
	node := func(i int) (y, m float64) {
		x := float64(i)/geluSteps - geluMax
		return normalCDF(x), normalPDF(x) / geluSteps
	}
	t := new(geluTab)
	for i := range t {
		y0, m0 := node(i)
		y1, m1 := node(i + 1)
		t[i] = [4]float64{y0, m0, 3*(y1-y0) - 2*m0 - m1, 2*(y0-y1) + m0 + m1}
	}
	return t
})

// apply replaces every x in y by GELU(x); outside (-8, 8) it computes GELU exactly.
//
// The loop is written out here, not as a call per value, and x is not used after its
// conversion to float64 except by the product: then the compiler converts it in the register it
// was loaded into. Converted into another register, CVTSS2SD would wait for that register's last
// value (it keeps its upper half), and the iterations could run one after another.
func (t *geluTab) apply(y []float32) {
	for j := range y {
		x := float64(y[j])
		// u is 1 + the position of x in the table: u - 1 = (x + 8) / h, rounded only where |x|
		// is below 2^-26, and then by at most 2^-43, which moves Phi by under 1e-15. One
		// unsigned comparison of its integer part i finds x outside (-8, 8): u < 1 below (i <= 0,
		// i - 1 wraps around), u >= 2049 above, and NaN converts to the least int64.
		u := x*geluSteps + (geluMax*geluSteps + 1)
		i := int(u)
		if uint(i-1) >= geluIntervals {
			y[j] = geluSlow(x)
			continue
		}
		s := u - float64(i)
		c := &t[(i-1)&(geluIntervals-1)] // the mask drops the bounds check
		y[j] = float32(x * (c[0] + s*(c[1]+s*(c[2]+s*c[3]))))
	}
}

// gelu returns GELU(x), as apply computes it.
func (t *geluTab) gelu(x float32) float32 {
	y := [1]float32{x}
	t.apply(y[:])
	return y[0]
}

// geluSlow is GELU outside the table, kept out of apply's loop.
//
//go:noinline
func geluSlow(x float64) float32 { return float32(geluExact(x)) }
