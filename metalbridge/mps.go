//go:build darwin

package metalbridge

import (
	"github.com/ebitengine/purego/objc"
)

// gemmKey identifies one MPSMatrixMultiplication: the result's rows and columns, the interior
// size, whether the right matrix is transposed, and beta (0: overwrite the result; 1: add to it).
// The dtype is fixed per backend.
type gemmKey struct {
	rows, cols, inner int
	transRight        bool
	beta              float64
}

// maxGemms bounds the kernel cache: token counts vary from batch to batch, and every count is
// a new kernel object (MPS fixes the sizes at init).
const maxGemms = 512

// gemm encodes, on the command buffer,
//
//	result[rows, cols] = left[rows, inner] @ op(right) + beta * result
//
// where op(right) is right^T for right stored [cols, inner] (key.transRight) and right itself
// for right stored [inner, cols]. All three are dense row-major tensors in the storage type.
// The caller has entered.
func (b *Backend) gemm(key gemmKey, result, left, right *tensor) {
	k, ok := b.gemms[key]
	if !ok {
		if len(b.gemms) >= maxGemms {
			for old, g := range b.gemms {
				b.releaseOnDone(g) // an encoded GEMM may still use it
				delete(b.gemms, old)
			}
		}
		k = objc.ID(b.rt.classMatrixMult).Send(selAlloc).Send(selInitMatMul, b.dev, false, key.transRight,
			uint(key.rows), uint(key.cols), uint(key.inner), float64(1), key.beta)
		if k == 0 {
			b.failf("MPSMatrixMultiplication %d x %d x %d: init failed", key.rows, key.cols, key.inner)
			return
		}
		b.gemms[key] = k
	}
	rr, rc := key.inner, key.cols
	if key.transRight {
		rr, rc = key.cols, key.inner
	}
	l, r, res := b.matrix(left, key.rows, key.inner), b.matrix(right, rr, rc), b.matrix(result, key.rows, key.cols)
	if l == 0 || r == 0 || res == 0 {
		return
	}
	b.endEncoder()
	k.Send(selEncodeMatMul, b.commandBuffer(), l, r, res)
}

// matrix wraps t as an MPSMatrix of rows x cols (row stride cols elements), released once the
// command buffer has completed.
func (b *Backend) matrix(t *tensor, rows, cols int) objc.ID {
	desc := objc.ID(b.rt.classMatrixDescriptor).Send(selMatrixDescriptor,
		uint(rows), uint(cols), uint(cols*b.storage.size()), b.storage.mpsType())
	m := objc.ID(b.rt.classMatrix).Send(selAlloc).Send(selInitMatrix, t.buf, desc)
	if m == 0 {
		b.failf("MPSMatrix %d x %d: init failed", rows, cols)
		return 0
	}
	b.releaseOnDone(m)
	return m
}
