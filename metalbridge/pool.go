//go:build darwin

package metalbridge

import (
	"math"
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// Pool dispatches pool_<dtype>: one threadgroup per sequence b, reducing rows seqStarts[b]+skip ..
// seqStarts[b+1]-1 of x [T, H] to out[b] (each mode of the set side by side, shaders/pool.h),
// then dividing by max(||out[b]||, 1e-12) when normalize is set. seqStarts is read on the GPU and trusted to
// lie within x.
func (b *Backend) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, skip int, normalize bool) {
	const op = "Pool"
	name := "pool_" + b.storage.suffix()
	if !mode.Valid() || skip < 0 || skip > math.MaxInt32 {
		b.failf("%s: invalid pooling modes %d or skip %d", op, mode, skip)
		return
	}
	K := mode.Count()
	if !b.rowKernelOK(op, name, B, K*H) || B == 0 {
		return
	}
	o, s := b.floats(op, "out", out, B*K*H), b.ints(op, "seqStarts", seqStarts, B+1)
	xx := b.floats(op, "x", x, 0)
	if o == nil || s == nil || xx == nil || !b.fitsInt32(op, xx.n/H, H) {
		return
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	a := poolArgs{H: int32(H), Mode: int32(mode), Skip: int32(skip)}
	if normalize {
		a.Normalize = 1
	}
	b.dispatch(name, [3]int{B, 1, 1}, rowThreads(H, b.pipes[name].maxThreads), 4*K*H,
		unsafe.Pointer(&a), unsafe.Sizeof(a), o, xx, s)
}
