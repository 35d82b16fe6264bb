package cpu

import "github.com/goembed/goembed/gocore/backend"

// Embed computes out[t] = LayerNorm(word[ids[t]] + pos[positions[t]] + typ[types[t]]) * gamma + beta
// for t < T, with word [V, H], pos [P, H], typ [TT, H] and out [T, H]; the table sizes V, P and
// TT follow from the tensors' lengths and every index is checked against them. When typ is nil
// there is no token-type term; when typ is set but types is nil every token has type 0.
func (b *Backend) Embed(out, ids, positions, types, word, pos, typ, gamma, beta backend.Tensor, T, H int, eps float32) {
	if H <= 0 {
		b.failf("Embed: H = %d", H)
		return
	}
	is := b.ints("Embed", "ids", ids, T)
	ps := b.ints("Embed", "positions", positions, T)
	var ts []int32
	if typ != nil && types != nil {
		ts = b.ints("Embed", "types", types, T)
	}
	wt := b.table("word", word, H)
	pt := b.table("pos", pos, H)
	var tt []float32
	if typ != nil {
		tt = b.table("typ", typ, H)
	}
	g := b.floats("Embed", "gamma", gamma, H)
	be := b.floats("Embed", "beta", beta, H)
	o := b.floats("Embed", "out", out, T*H)
	if !b.ok() {
		return
	}
	for _, c := range []struct {
		name string
		idx  []int32
		rows int
	}{{"ids", is, len(wt) / H}, {"positions", ps, len(pt) / H}, {"types", ts, len(tt) / H}} {
		for t, i := range c.idx {
			if i < 0 || int(i) >= c.rows {
				b.failf("Embed: %s[%d] = %d, outside the table's %d rows", c.name, t, i, c.rows)
				return
			}
		}
	}
	b.parallel(T, max(1, 8192/H), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := o[t*H : (t+1)*H]
			copy(row, wt[int(is[t])*H:])
			if tt != nil { // BERT's order: (word + type) + position
				ty := 0
				if ts != nil {
					ty = int(ts[t])
				}
				for j, v := range tt[ty*H : (ty+1)*H] {
					row[j] += v
				}
			}
			for j, v := range pt[int(ps[t])*H : (int(ps[t])+1)*H] {
				row[j] += v
			}
			layerNorm(row, g, be, eps)
		}
	})
}

// table returns the rows of an embedding table whose length must be a positive multiple of H.
func (b *Backend) table(name string, t backend.Tensor, H int) []float32 {
	n := 0
	if t != nil {
		n = t.Len()
	}
	if n == 0 || n%H != 0 {
		if b.ok() {
			b.failf("Embed: %s table has %d elements, want a positive multiple of H = %d", name, n, H)
		}
		return nil
	}
	return b.floats("Embed", name, t, n)
}
