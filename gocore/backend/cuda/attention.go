package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// attentionArgs mirrors AttentionArgs in shaders/attention.h.
type attentionArgs struct {
	NH    int32
	Scale float32
}

// Attention launches attention_<dtype>_hd<HD> on a grid (query blocks, NH, B): each thread owns
// one query, so a block is the sequence's queries rounded up to a warp, at most 64 (HD 64) or
// 128 (HD 32). seqStarts is read on the device and trusted to match qkv and maxLen.
func (b *Backend) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	const op = "Attention"
	if b.err != nil || B == 0 || maxLen == 0 {
		return
	}
	var most int
	switch HD {
	case 32:
		most = 128
	case 64:
		most = 64
	default:
		b.failf("%s: head dim %d is not supported (32, 64)", op, HD)
		return
	}
	H := NH * HD
	if NH <= 0 || NH > 65535 || maxLen < 0 || B > 65535 {
		b.failf("%s: NH = %d, maxLen = %d", op, NH, maxLen)
		return
	}
	q := b.floats(op, "qkv", qkv, 0)
	if q == nil {
		return
	}
	o, s := b.floats(op, "out", out, 0), b.ints(op, "seqStarts", seqStarts, B+1)
	if o == nil || s == nil || !b.fitsInt32(op, q.n/(3*H), 3*H) || !b.enter() {
		return
	}
	defer b.leave()
	threads := min((maxLen+31)/32*32, most)
	a := attentionArgs{NH: int32(NH), Scale: float32(math.Log2E / math.Sqrt(float64(HD)))}
	b.params().ptr(o).ptr(q).ptr(s).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
		launch(fmt.Sprintf("attention_%s_hd%d", b.storage.suffix(), HD),
			[3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0)
}
