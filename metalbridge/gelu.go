//go:build darwin

package metalbridge

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// Linear computes out = act(x @ w^T + bias) with x [T, in], w [out, in], bias [out]:
//
//   - act = none, with bias: a rank-1 MPS GEMM writes out[t, j] = bias[j] (ones[T,1] @
//     bias[1,out]), and the main GEMM adds x @ w^T onto it (beta = 1): out is rounded once.
//   - act = GELU or tanh: the MPS GEMM writes x @ w^T, then gelu_/tanh_<dtype> (the shared body
//     bias_act) adds the bias and applies the exact erf GELU or tanh in place, in float32.
//   - no bias, no act: the MPS GEMM alone.
//
// MPS has no GELU epilogue, so unlike cuda (which uses cuBLASLt's tanh-approximation epilogue
// for 16-bit storage) Metal always computes the exact GELU BERT was trained with.
func (b *Backend) Linear(out, x, w, bias backend.Tensor, T, in, outDim int, act backend.Activation) {
	const op = "Linear"
	if b.err != nil || T == 0 {
		return
	}
	if T < 0 || in <= 0 || outDim <= 0 || !b.fitsInt32(op, T, max(in, outDim)) || !b.fitsInt32(op, outDim, in) {
		b.failf("%s: bad shape T=%d in=%d out=%d", op, T, in, outDim)
		return
	}
	if act != backend.ActNone && act != backend.ActGELU && act != backend.ActTanh {
		b.failf("%s: unknown activation %d", op, act)
		return
	}
	o, xx, ww := b.floats(op, "out", out, T*outDim), b.floats(op, "x", x, T*in), b.floats(op, "w", w, outDim*in)
	bb, bok := b.optFloats(op, "bias", bias, outDim)
	if o == nil || xx == nil || ww == nil || !bok {
		return
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	main := gemmKey{rows: T, cols: outDim, inner: in, transRight: true}
	if bb != nil && act == backend.ActNone {
		ones := b.onesFor(T)
		if ones == nil {
			return
		}
		b.gemm(gemmKey{rows: T, cols: outDim, inner: 1}, o, ones, bb)
		main.beta = 1
	}
	b.gemm(main, o, xx, ww)
	if act == backend.ActNone {
		return
	}
	name := "gelu_" + b.storage.suffix()
	if act == backend.ActTanh {
		name = "tanh_" + b.storage.suffix()
	}
	n := T * outDim
	a := actArgs{N: int32(n), Cols: int32(outDim)}
	if bb != nil {
		a.HasBias = 1
	}
	// A grid-stride loop: at most 2^14 threadgroups of 256 threads (or the pipeline's limit,
	// which dispatch checks) walk the n elements.
	threads := max(min(256, b.pipes[name].maxThreads/simdWidth*simdWidth), simdWidth)
	groups := min((n+threads-1)/threads, 1<<14)
	b.dispatch(name, [3]int{groups, 1, 1}, threads, 0, unsafe.Pointer(&a), unsafe.Sizeof(a), o, bb)
}

// onesFor returns a tensor of at least T ones in the storage type, growing it as needed.
func (b *Backend) onesFor(T int) *tensor {
	if b.ones != nil && b.ones.n >= T {
		return b.ones
	}
	n := 1024
	for n < T {
		n *= 2
	}
	ones := b.alloc(n, b.storage)
	if ones.buf == 0 {
		return nil
	}
	if b.storage == kindF16 {
		s := unsafe.Slice((*uint16)(ones.contents()), n)
		for i := range s {
			s[i] = 0x3c00 // float16 1.0
		}
	} else {
		s := unsafe.Slice((*float32)(ones.contents()), n)
		for i := range s {
			s[i] = 1
		}
	}
	if b.ones != nil {
		b.Free(b.ones) // an encoded GEMM that reads it keeps it alive
	}
	b.ones = ones
	return ones
}
