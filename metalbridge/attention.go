//go:build darwin

package metalbridge

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// Attention dispatches attention_<dtype>_hd<HD> on a grid of (query blocks, NH, B)
// threadgroups, computing for each query i of sequence b and head h
//
//	out[i, h] = sum_j softmax_j(q_i . k_j / sqrt(HD)) v_j
//
// over the keys j of the same sequence, with q, k, v the head's columns of qkv [T, 3H]. Each
// thread owns one query; a threadgroup is the sequence's queries rounded up to a SIMD group, at
// most 128 (HD 32) or 64 (HD 64). seqStarts is read on the GPU and trusted to match qkv and
// maxLen.
func (b *Backend) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	b.attention("Attention", out, qkv, seqStarts, nil, B, maxLen, NH, HD, 0)
}

var _ backend.BiasedAttention = (*Backend)(nil)

// AttentionBiased dispatches attention_bias_<dtype>_hd<HD>, Attention's kernel with the relative
// position bias rel [NH, 2R-1] (float32, from UploadFloat32) added to the scores
// (backend.BiasedAttention). A nil rel is Attention.
func (b *Backend) AttentionBiased(out, qkv, seqStarts, rel backend.Tensor, B, maxLen, NH, HD, R int) {
	b.attention("AttentionBiased", out, qkv, seqStarts, rel, B, maxLen, NH, HD, R)
}

// UploadFloat32 copies src into a new float32 buffer whatever the storage type
// (backend.BiasedAttention).
func (b *Backend) UploadFloat32(src []float32) backend.Tensor {
	t := b.alloc(len(src), kindF32)
	if t.buf != 0 && len(src) > 0 {
		copy(unsafe.Slice((*float32)(t.contents()), len(src)), src)
	}
	return t
}

func (b *Backend) attention(op string, out, qkv, seqStarts, relT backend.Tensor, B, maxLen, NH, HD, R int) {
	if b.err != nil || B == 0 || maxLen == 0 {
		return
	}
	if HD != 32 && HD != 64 {
		b.failf("%s: head dim %d is not supported (32, 64)", op, HD)
		return
	}
	H := NH * HD
	if NH <= 0 || maxLen < 0 || B < 0 {
		b.failf("%s: NH = %d, maxLen = %d, B = %d", op, NH, maxLen, B)
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
	var rel *tensor
	if relT != nil {
		if R <= 0 || R > 1<<20 {
			b.failf("%s: R = %d", op, R)
			return
		}
		if rel = b.tensorOf(op, "rel", relT, NH*(2*R-1), kindF32); rel == nil {
			return
		}
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	scale := float32(math.Log2E / math.Sqrt(float64(HD)))
	if rel != nil {
		name := fmt.Sprintf("attention_bias_%s_hd%d", b.storage.suffix(), HD)
		threads := attentionThreads(maxLen, HD, b.pipes[name].maxThreads)
		a := attentionBiasArgs{NH: int32(NH), Scale: scale, R: int32(R)}
		b.dispatch(name, [3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0,
			unsafe.Pointer(&a), unsafe.Sizeof(a), o, q, s, rel)
		return
	}
	name := fmt.Sprintf("attention_%s_hd%d", b.storage.suffix(), HD)
	threads := attentionThreads(maxLen, HD, b.pipes[name].maxThreads)
	a := attentionArgs{NH: int32(NH), Scale: scale}
	b.dispatch(name, [3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0,
		unsafe.Pointer(&a), unsafe.Sizeof(a), o, q, s)
}
