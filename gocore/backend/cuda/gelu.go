package cuda

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// actArgs mirrors ActArgs in shaders/gelu.h.
type actArgs struct {
	N, Cols, HasBias int32
}

// Linear computes out = act(x @ w^T + bias) as one cuBLASLt GEMM with the bias added by its
// BIAS epilogue, then, for an activation, an in-place gelu_/tanh_<dtype> kernel.
//
// ActGELU means the exact erf GELU BERT was trained with. cuBLASLt's GELU epilogues compute the
// tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))), which is off by up to 4.7e-4
// (near |x| = 2). Measured on an H100 against the CPU's erf GELU (TestGELUEpilogue, T 256,
// 384 -> 1536, pre-activations of standard deviation 1.5), normalised error:
//
//	storage    erf kernel after the GEMM    GELU_BIAS epilogue
//	float32    3.1e-7                       1.8e-4
//	float16    4.0e-4                       3.9e-4
//
// In float32 only the erf kernel is exact. With 16-bit storage the kernel rounds the
// pre-activation to 16 bits before GELU and the result again after, and that double rounding
// costs as much as the approximation; the fused epilogue rounds once and saves a pass over
// [T, out] (a third of the MiniLM up-projection's time). So geluEpilogue is on for float16 and
// bfloat16 storage and off for float32 and tfloat32.
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
	if o == nil || xx == nil || ww == nil || !bok || !b.enter() {
		return
	}
	defer b.leave()
	epi := int32(ltEpilogueDefault)
	if bb != nil {
		epi = ltEpilogueBias
	}
	fusedGELU := act == backend.ActGELU && b.geluEpilogue
	if fusedGELU {
		epi = ltEpilogueGELU
		if bb != nil {
			epi = ltEpilogueGELUBias
		}
	}
	if err := b.gemm(o.ptr, xx.ptr, ww.ptr, bb.devptr(), T, in, outDim, epi); err != nil {
		b.failf("%s (%d x %d x %d): %v", op, T, in, outDim, err)
		return
	}
	if act == backend.ActNone || fusedGELU {
		return
	}
	name := "gelu_"
	if act == backend.ActTanh {
		name = "tanh_"
	}
	n := T * outDim
	a := actArgs{N: int32(n), Cols: int32(outDim)}
	const threads = 256
	blocks := min((n+threads-1)/threads, 32*max(b.sms, 1))
	b.params().ptr(o).ptr(nil).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
		launch(name+b.storage.suffix(), [3]int{blocks, 1, 1}, threads, 0)
}
