package cuda

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// poolArgs mirrors PoolArgs in shaders/pool.h.
type poolArgs struct {
	H, Mode, Normalize int32
}

// Pool launches pool_<dtype>: one block per sequence. seqStarts is read on the device and
// trusted to lie within x.
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
		launch("pool_"+b.storage.suffix(), [3]int{B, 1, 1}, rowThreads(H), 4*H)
}
