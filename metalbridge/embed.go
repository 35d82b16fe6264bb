//go:build darwin

package metalbridge

import (
	"unsafe"

	"github.com/goembed/goembed/gocore/backend"
)

// Embed dispatches embed_<dtype>: one threadgroup per token t, computing
//
//	out[t] = LayerNorm(word[ids[t]] + typ[types[t]] + pos[positions[t]]) * gamma + beta
//
// over H columns, with the row staged in H floats of threadgroup memory. With a type table but
// no type ids every token takes row 0 (token_type_ids all zero). The row counts of the tables
// are not known here, so ids, positions and types are trusted.
func (b *Backend) Embed(out, ids, positions, types, word, pos, typ, gamma, beta backend.Tensor, T, H int, eps float32) {
	const op = "Embed"
	name := "embed_" + b.storage.suffix()
	if !b.rowKernelOK(op, name, T, H) || T == 0 {
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
		(typ != nil && ty == nil) || (a.TypeMode == 1 && tt == nil) {
		return
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	b.dispatch(name, [3]int{T, 1, 1}, rowThreads(H, b.pipes[name].maxThreads), 4*H,
		unsafe.Pointer(&a), unsafe.Sizeof(a), o, id, ps, tt, w, p, ty, g, be)
}
