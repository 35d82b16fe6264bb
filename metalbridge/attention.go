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
	const op = "Attention"
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
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	name := fmt.Sprintf("attention_%s_hd%d", b.storage.suffix(), HD)
	threads := attentionThreads(maxLen, HD, b.pipes[name].maxThreads)
	a := attentionArgs{NH: int32(NH), Scale: float32(math.Log2E / math.Sqrt(float64(HD)))}
	b.dispatch(name, [3]int{(maxLen + threads - 1) / threads, NH, B}, threads, 0,
		unsafe.Pointer(&a), unsafe.Sizeof(a), o, q, s)
}
