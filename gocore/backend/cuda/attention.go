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

// attentionBiasArgs mirrors AttentionBiasArgs in shaders/attention.h.
type attentionBiasArgs struct {
	NH    int32
	Scale float32
	R     int32
}

var _ backend.BiasedAttention = (*Backend)(nil)

// attmMaxWarps is ATTM_WARPS of shaders/attention_mma.h: at most 8 warps (128 queries) a block.
const attmMaxWarps = 8

// attmWarps picks the warps (16 queries each) of an attention_mma block: enough for the longest
// sequence, at most attmMaxWarps (measured on the H100 with the asynchronous staging and the
// 80-register bound: 8 warps beat 4 at both head dims, B 32 to 1000, L 128); a non-zero
// b.attmWarpsOverride (benchmarks) wins.
func (b *Backend) attmWarps(maxLen int) int {
	if b.attmWarpsOverride > 0 {
		return b.attmWarpsOverride
	}
	return max(1, min(attmMaxWarps, (maxLen+15)/16))
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
	b.attention("Attention", out, qkv, seqStarts, nil, B, maxLen, NH, HD, 0)
}

// AttentionBiased launches attention_mma_bias_* or attention_bias_*, Attention's kernels with
// the relative position bias rel [NH, 2R-1] (float32, from UploadFloat32) added to the scores
// (backend.BiasedAttention). A nil rel is Attention.
func (b *Backend) AttentionBiased(out, qkv, seqStarts, rel backend.Tensor, B, maxLen, NH, HD, R int) {
	b.attention("AttentionBiased", out, qkv, seqStarts, rel, B, maxLen, NH, HD, R)
}

// UploadFloat32 copies src into a new float32 tensor whatever the storage type
// (backend.BiasedAttention).
func (b *Backend) UploadFloat32(src []float32) backend.Tensor {
	if !b.notCapturing("UploadFloat32") {
		return &tensor{kind: kindF32, b: b}
	}
	t := b.alloc(len(src), kindF32)
	if t.n > 0 {
		b.copyIn(t.ptr, unsafe.Pointer(&src[0]), len(src)*4)
	}
	return t
}

func (b *Backend) attention(op string, out, qkv, seqStarts, relT backend.Tensor, B, maxLen, NH, HD, R int) {
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
	if o == nil || s == nil || !b.fitsInt32(op, q.n/(3*H), 3*H) {
		return
	}
	// The biased kernels take the table and R after seqStarts, and "bias_" in their names.
	var rel *tensor
	variant := ""
	if relT != nil {
		if R <= 0 || R > 1<<20 {
			b.failf("%s: R = %d", op, R)
			return
		}
		if rel = b.tensorOf(op, "rel", relT, NH*(2*R-1), kindF32); rel == nil {
			return
		}
		variant = "bias_"
	}
	if !b.enter() {
		return
	}
	defer b.leave()
	scale := float32(math.Log2E / math.Sqrt(float64(HD)))
	a, ab := attentionArgs{NH: int32(NH), Scale: scale}, attentionBiasArgs{NH: int32(NH), Scale: scale, R: int32(R)}
	p := b.params().ptr(o).ptr(q).ptr(s)
	if rel != nil {
		p = p.ptr(rel).add(unsafe.Pointer(&ab), unsafe.Sizeof(ab))
	} else {
		p = p.add(unsafe.Pointer(&a), unsafe.Sizeof(a))
	}
	if b.attentionMMA() && q.ptr%16 == 0 && o.ptr%16 == 0 {
		// attention_mma.h: tensor cores, 16 queries a warp, attmWarps warps. Its 16-byte loads
		// and stores need qkv and out 16-byte aligned (their rows, 3H and H 16-bit elements with H
		// a multiple of 32, are).
		w := b.attmWarps(maxLen)
		p.launch(fmt.Sprintf("attention_mma_%s%s_hd%d", variant, b.storage.suffix(), HD),
			[3]int{(maxLen + 16*w - 1) / (16 * w), NH, B}, w*32, 0)
		return
	}
	threads := min((maxLen+31)/32*32, most)
	p.launch(fmt.Sprintf("attention_%s%s_hd%d", variant, b.storage.suffix(), HD),
		[3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0)
}
