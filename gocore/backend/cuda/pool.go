package cuda

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// poolArgs mirrors PoolArgs in shaders/pool.h.
type poolArgs struct {
	H, Mode, Normalize int32
}

// Pool launches pool_<dtype>: one block per sequence, one thread per column (each walks the
// sequence's rows; a quarter as many threads, as the row kernels use, left the walk of a
// 128-token sequence latency-bound: 70 us instead of ~20 us for 128 x 128 tokens on an H100).
// seqStarts is read on the device and trusted to lie within x.
func (b *Backend) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, normalize bool) {
	const op = "Pool"
	if !b.rowKernelOK(op, B, H) || B == 0 {
		return
	}
	if mode < backend.PoolMean || mode > backend.PoolLast {
		b.failf("%s: unknown pooling mode %d", op, mode)
		return
	}
	o, s := b.floats(op, "out", out, B*H), b.ints(op, "seqStarts", seqStarts, B+1)
	xx := b.floats(op, "x", x, 0)
	if o == nil || s == nil || xx == nil || !b.fitsInt32(op, xx.n/H, H) || !b.enter() {
		return
	}
	defer b.leave()
	a := poolArgs{H: int32(H), Mode: int32(mode)}
	if normalize {
		a.Normalize = 1
	}
	b.params().ptr(o).ptr(xx).ptr(s).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
		launch("pool_"+b.storage.suffix(), [3]int{B, 1, 1}, poolThreads(H), 4*H)
}

// poolThreads is one thread per column, a multiple of 32, at most 1024.
func poolThreads(H int) int { return min((H+31)/32*32, 1024) }
