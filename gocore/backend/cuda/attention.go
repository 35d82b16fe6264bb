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

// attmMaxWarps is ATTM_WARPS of shaders/attention_mma.h: at most 8 warps (128 queries) a block.
const attmMaxWarps = 8

// attmWarps picks the warps (16 queries each) of an attention_mma block: enough for the longest
// sequence, at most attmMaxWarps (HD 64) or 4 (HD 32, whose blocks are register-bound); a
// non-zero b.attmWarpsOverride (benchmarks) wins.
func (b *Backend) attmWarps(maxLen, HD int) int {
	if b.attmWarpsOverride > 0 {
		return b.attmWarpsOverride
	}
	most := attmMaxWarps
	if HD == 32 {
		most = 4
	}
	return max(1, min(most, (maxLen+15)/16))
}

// attentionMMA says whether Attention takes the tensor-core kernel (attention_mma_*): 16-bit
// storage on compute capability 8.0 or newer, unless GOEMBED_CUDA_ATTENTION=simt (read at Open)
// asks for the exact CUDA-core kernel (the comparison benchmarks use it).
func (b *Backend) attentionMMA() bool {
	return (b.storage == kindF16 || b.storage == kindBF16) && b.ccMajor >= 8 && !b.attentionSIMT
}

// Attention launches attention_mma_<dtype>_hd<HD> (see attentionMMA) or attention_<dtype>_hd<HD> on a grid (query blocks, NH, B): each thread owns
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
	a := attentionArgs{NH: int32(NH), Scale: float32(math.Log2E / math.Sqrt(float64(HD)))}
	if b.attentionMMA() && q.ptr%16 == 0 && o.ptr%16 == 0 {
		// attention_mma.h: tensor cores, 16 queries a warp, attmWarps warps. Its 16-byte loads
		// and stores need qkv and out 16-byte aligned (their rows, 3H and H 16-bit elements with H
		// a multiple of 32, are).
		w := b.attmWarps(maxLen, HD)
		b.params().ptr(o).ptr(q).ptr(s).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
			launch(fmt.Sprintf("attention_mma_%s_hd%d", b.storage.suffix(), HD),
				[3]int{(maxLen + 16*w - 1) / (16 * w), NH, B}, w*32, 0)
		return
	}
	threads := min((maxLen+31)/32*32, most)
	b.params().ptr(o).ptr(q).ptr(s).add(unsafe.Pointer(&a), unsafe.Sizeof(a)).
		launch(fmt.Sprintf("attention_%s_hd%d", b.storage.suffix(), HD),
			[3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0)
}
