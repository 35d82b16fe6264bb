package cuda

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// embedArgs mirrors EmbedArgs in shaders/embed.h.
type embedArgs struct {
	T, H     int32
	Eps      float32
	TypeMode int32 // 0: no type table; 1: typ[types[t]]; 2: typ[0]
}

// Embed launches embed_warp_<dtype> (a warp per token, for H a multiple of 128 up to 1024, as
// AddLayerNorm) or embed_<dtype> (one block per token). With a type table but no type ids every
// token takes row 0 (token_type_ids all zero, as BERT tokenizers give single sentences). The
// row counts of the tables are not known here, so ids, positions and types are trusted.
func (b *Backend) Embed(out, ids, positions, types, word, pos, typ, gamma, beta backend.Tensor, T, H int, eps float32) {
	const op = "Embed"
	if !b.rowKernelOK(op, T, H) || T == 0 {
		return
	}
	o := b.floats(op, "out", out, T*H)
	id, ps := b.ints(op, "ids", ids, T), b.ints(op, "positions", positions, T)
	w, p := b.floats(op, "word", word, H), b.floats(op, "pos", pos, H)
	g, be := b.floats(op, "gamma", gamma, H), b.floats(op, "beta", beta, H)
	a := embedArgs{T: int32(T), H: int32(H), Eps: eps}
	var ty, tt *tensor
	if typ != nil {
		a.TypeMode = 2
		ty = b.floats(op, "typ", typ, H)
		if types != nil {
			a.TypeMode = 1
			tt = b.ints(op, "types", types, T)
		}
	}
	if o == nil || id == nil || ps == nil || w == nil || p == nil || g == nil || be == nil ||
		(typ != nil && ty == nil) || (a.TypeMode == 1 && tt == nil) || !b.enter() {
		return
	}
	defer b.leave()
	pr := b.params().ptr(o).ptr(id).ptr(ps).ptr(tt).ptr(w).ptr(p).ptr(ty).ptr(g).ptr(be).
		add(unsafe.Pointer(&a), unsafe.Sizeof(a))
	if H%(4*32) == 0 && H <= lnWarpMaxH && !b.layerNormBlock && aligned16(o, w, p, ty, g, be) {
		pr.launch("embed_warp_"+b.storage.suffix(), [3]int{(T + lnWarpRows - 1) / lnWarpRows, 1, 1}, lnWarpRows*32, 0)
		return
	}
	pr.launch("embed_"+b.storage.suffix(), [3]int{T, 1, 1}, rowThreads(H), 4*H)
}
