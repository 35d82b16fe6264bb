package cuda

import (
	"math"
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// poolArgs mirrors PoolArgs in shaders/pool.h.
type poolArgs struct {
	H, Mode, Normalize, Skip int32
}

// Pool launches pool_<dtype> (shaders/pool.h: every mode of the set side by side, the first skip
// tokens left out): one block per sequence, one thread per column (each walks the
// sequence's rows; a quarter as many threads, as the row kernels use, left the walk of a
// 128-token sequence latency-bound: 70 us instead of ~20 us for 128 x 128 tokens on an H100).
// seqStarts is read on the device and trusted to lie within x.
func (b *Backend) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, skip int, normalize bool) {
	const op = "Pool"
	if !mode.Valid() || skip < 0 || skip > math.MaxInt32 {
		b.failf("%s: invalid pooling modes %d or skip %d", op, mode, skip)
		return
	}
	K := mode.Count()
	if !b.rowKernelOK(op, B, K*H) || B == 0 {
		return
	}
	o, s := b.floats(op, "out", out, B*K*H), b.ints(op, "seqStarts", seqStarts, B+1)
	xx := b.floats(op, "x", x, 0)
	if o == nil || s == nil || xx == nil || !b.fitsInt32(op, xx.n/H, H) || !b.enter() {
		return
	}
	defer b.leave()
	a := poolArgs{H: int32(H), Mode: int32(mode), Skip: int32(skip)}
	if normalize {
		a.Normalize = 1
	}
	b.params().ptr(o).ptr(xx).ptr(s).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
		launch("pool_"+b.storage.suffix(), [3]int{B, 1, 1}, poolThreads(H), 4*K*H)
}

// poolThreads is one thread per column, a multiple of 32, at most 1024.
func poolThreads(H int) int { return min((H+31)/32*32, 1024) }
