package cuda

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// layerNormArgs mirrors LayerNormArgs in shaders/layernorm.h.
type layerNormArgs struct {
	T, H        int32
	Eps         float32
	HasResidual int32
}

// maxRowFloats bounds H for the one-block-per-row kernels: the row is staged in the default
// 48 KiB of shared memory, less the reduction scratch.
const maxRowFloats = 12*1024 - 64

// AddLayerNorm launches layernorm_warp_<dtype> (a warp per row, for H a multiple of 128 up to
// 1024) or layernorm_<dtype> (one block per row). residual may be nil.
func (b *Backend) AddLayerNorm(out, x, residual, gamma, beta backend.Tensor, T, H int, eps float32) {
	const op = "AddLayerNorm"
	if !b.rowKernelOK(op, T, H) {
		return
	}
	o, xx := b.floats(op, "out", out, T*H), b.floats(op, "x", x, T*H)
	r, rok := b.optFloats(op, "residual", residual, T*H)
	g, be := b.floats(op, "gamma", gamma, H), b.floats(op, "beta", beta, H)
	if o == nil || xx == nil || !rok || g == nil || be == nil || !b.enter() {
		return
	}
	defer b.leave()
	a := layerNormArgs{T: int32(T), H: int32(H), Eps: eps}
	if r != nil {
		a.HasResidual = 1
	}
	p := b.params().ptr(o).ptr(xx).ptr(r).ptr(g).ptr(be).add(unsafe.Pointer(&a), unsafe.Sizeof(a))
	if H%(4*32) == 0 && H <= lnWarpMaxH && !b.layerNormBlock && aligned16(o, xx, r, g, be) {
		// a warp per row, the row in registers (vector loads): H 384 and 768 take this
		p.launch("layernorm_warp_"+b.storage.suffix(), [3]int{(T + lnWarpRows - 1) / lnWarpRows, 1, 1}, lnWarpRows*32, 0)
		return
	}
	p.launch("layernorm_"+b.storage.suffix(), [3]int{T, 1, 1}, rowThreads(H), 4*H)
}

// LN_WARP_ROWS and LN_WARP_MAXCH*4*32 of shaders/layernorm.h.
const (
	lnWarpRows = 4
	lnWarpMaxH = 8 * 4 * 32
)

// aligned16 says whether every non-nil tensor starts on a 16-byte boundary (the vector loads of
// layernorm_warp_* need 16 bytes for float32, 8 for 16-bit types).
func aligned16(ts ...*tensor) bool {
	for _, t := range ts {
		if t != nil && t.ptr%16 != 0 {
			return false
		}
	}
	return true
}

// rowKernelOK checks the sizes of a kernel with one block per row of H floats in shared memory.
func (b *Backend) rowKernelOK(op string, rows, H int) bool {
	if b.err != nil {
		return false
	}
	if H <= 0 || H > maxRowFloats {
		b.failf("%s: H = %d outside 1..%d", op, H, maxRowFloats)
		return false
	}
	return b.fitsInt32(op, rows, H)
}
