package backendtest

import (
	"fmt"
	"math"
	"strings"

	"github.com/goembed/goembed/gocore/backend"
)

// A testCase is one subtest: group names the op (and picks the tolerance), shape the sizes.
type testCase struct {
	group, shape string
	run          func(h *harness)
}

var actNames = map[backend.Activation]string{backend.ActNone: "none", backend.ActGELU: "gelu", backend.ActTanh: "tanh"}

// Sequence lengths packed into one batch: one token; ragged; tile boundaries of attention
// kernels (64, 128, 256); many short ones.
var (
	oneToken = []int{1}
	ragged   = []int{1, 7, 33, 128}
	tiles    = []int{63, 65, 129, 257}
	short    = []int{3, 1, 9, 2, 17, 5, 1, 12, 4, 8, 20, 6, 2, 11, 1, 7}
)

// cases lists every case; each op of the Backend interface appears in at least one, and each
// method of backend.Graphs too when graphs is set.
func cases(graphs bool) []testCase {
	var cs []testCase
	add := func(group, shape string, run func(*harness)) { cs = append(cs, testCase{group, shape, run}) }

	for _, n := range []int{1, 33, 4099} {
		add("Upload", fmt.Sprintf("n%d", n), func(h *harness) {
			x := h.upload(h.floats(n, 3))
			h.check("x", x, 1, n)
			h.check("first half", x, 1, n/2) // Download of a prefix
		})
	}

	for _, H := range []int{31, 32, 33, 384} {
		for _, types := range []bool{true, false} {
			name := fmt.Sprintf("H%d_seqs%s_types", H, seqs(ragged))
			if !types {
				name = strings.Replace(name, "_types", "_notypes", 1)
			}
			add("Embed", name, func(h *harness) { embedCase(h, ragged, H, types, 1e-12) })
		}
	}
	add("Embed", "H384_oneToken", func(h *harness) { embedCase(h, oneToken, 384, true, 1e-12) })
	add("Embed", "H32_eps1e-5", func(h *harness) { embedCase(h, short, 32, true, 1e-5) })
	add("WriteInt32", "T40", writeInt32Case)

	for _, s := range [][3]int{{1, 32, 32}, {7, 31, 33}, {33, 33, 31}, {40, 384, 1152}, {17, 1536, 384}, {64, 384, 1536}} {
		for _, act := range []backend.Activation{backend.ActNone, backend.ActGELU, backend.ActTanh} {
			for _, bias := range []bool{true, false} {
				name := fmt.Sprintf("T%d_in%d_out%d_%s", s[0], s[1], s[2], actNames[act])
				if !bias {
					name += "_nobias"
				}
				add("Linear", name, func(h *harness) { linearCase(h, s[0], s[1], s[2], act, bias) })
			}
		}
	}

	for _, a := range []struct {
		lens   []int
		NH, HD int
	}{{oneToken, 12, 32}, {oneToken, 4, 64}, {ragged, 12, 32}, {ragged, 12, 64}, {short, 12, 32}, {tiles, 2, 64}, {[]int{512}, 2, 32}} {
		add("Attention", fmt.Sprintf("seqs%s_NH%d_HD%d", seqs(a.lens), a.NH, a.HD), func(h *harness) { attentionCase(h, a.lens, a.NH, a.HD) })
	}

	relBiasCases(add)

	for _, H := range []int{31, 32, 33, 384, 1024} {
		for _, alias := range []string{"", "x", "residual"} {
			for _, T := range []int{1, 50} {
				name := fmt.Sprintf("T%d_H%d", T, H)
				if alias != "" {
					name += "_out=" + alias
				}
				add("AddLayerNorm", name, func(h *harness) { addLayerNormCase(h, T, H, alias) })
			}
		}
	}

	for _, mode := range []backend.Pooling{backend.PoolMean, backend.PoolCLS, backend.PoolMax, backend.PoolLast} {
		for _, norm := range []bool{false, true} {
			for _, H := range []int{31, 384} {
				for _, lens := range [][]int{oneToken, ragged} {
					name := fmt.Sprintf("%s_H%d_seqs%s", mode, H, seqs(lens))
					if norm {
						name += "_normalize"
					}
					add("Pool", name, func(h *harness) { poolCase(h, lens, H, mode, norm) })
				}
			}
		}
	}

	add("Layer", "MiniLM_seqs"+seqs(ragged), func(h *harness) { layerCase(h, ragged, 12, 32, 1536) })
	add("Layer", "H128_seqs"+seqs(short), func(h *harness) { layerCase(h, short, 2, 64, 512) })
	if graphs {
		graphCases(add)
	}
	return cs
}

// starts packs sequences of the given lengths: B+1 offsets and, per token, its position in its sequence.
func starts(lens []int) (st, positions []int32) {
	st = []int32{0}
	for _, n := range lens {
		for p := range n {
			positions = append(positions, int32(p))
		}
		st = append(st, st[len(st)-1]+int32(n))
	}
	return st, positions
}

// lnParams uploads a LayerNorm's gamma (around 1) and beta.
func (h *harness) lnParams(H int) (gamma, beta pair) {
	g := h.floats(H, 0.5)
	for i := range g {
		g[i] += 1
	}
	return h.upload(g), h.upload(h.floats(H, 0.5))
}

// embedInputs uploads ids (vocabulary 100), positions, types (2) and their tables.
func (h *harness) embedInputs(lens []int, H int, types bool) (ids, pos, typ, word, posT, typT pair) {
	_, positions := starts(lens)
	T := len(positions)
	ids, pos = h.uploadInt32(h.ints(T, 100)), h.uploadInt32(positions)
	word, posT = h.upload(h.floats(100*H, 1)), h.upload(h.floats(600*H, 1))
	if types {
		typ, typT = h.uploadInt32(h.ints(T, 2)), h.upload(h.floats(2*H, 1))
	}
	return
}

func embedCase(h *harness, lens []int, H int, types bool, eps float32) {
	ids, pos, typ, word, posT, typT := h.embedInputs(lens, H, types)
	gamma, beta := h.lnParams(H)
	T := ids.dut.Len()
	out := h.alloc(T * H)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.Embed(at(out), at(ids), at(pos), at(typ), at(word), at(posT), at(typT), at(gamma), at(beta), T, H, eps)
	})
	h.check("out", out, T, H)
}

// writeInt32Case overwrites a prefix of the ids and checks that Embed sees the new ones.
func writeInt32Case(h *harness) {
	const T, H = 40, 32
	ids, pos, typ, word, posT, typT := h.embedInputs([]int{T}, H, true)
	gamma, beta := h.lnParams(H)
	fresh := h.ints(T/3, 100)
	out := h.alloc(T * H)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.WriteInt32(at(ids), fresh)
		b.Embed(at(out), at(ids), at(pos), at(typ), at(word), at(posT), at(typT), at(gamma), at(beta), T, H, 1e-12)
	})
	h.check("out", out, T, H)
}

// linearCase scales w so that x @ w^T has a standard deviation of 1.5, which spans the bend of
// GELU and tanh.
func linearCase(h *harness, T, in, outDim int, act backend.Activation, withBias bool) {
	x := h.upload(h.floats(T*in, 1))
	w := h.upload(h.floats(outDim*in, 4.5/math.Sqrt(float64(in))))
	var bias pair
	if withBias {
		bias = h.upload(h.floats(outDim, 0.5))
	}
	out := h.alloc(T * outDim)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.Linear(at(out), at(x), at(w), at(bias), T, in, outDim, act)
	})
	h.check("out", out, T, outDim)
}

// attentionCase draws Q, K, V in ±2, so that the scores have a standard deviation near 1.3.
func attentionCase(h *harness, lens []int, NH, HD int) {
	st, positions := starts(lens)
	T, H := len(positions), NH*HD
	qkv := h.upload(h.floats(T*3*H, 2))
	seq := h.uploadInt32(st)
	out := h.alloc(T * H)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.Attention(at(out), at(qkv), at(seq), len(lens), maxOf(lens), NH, HD)
	})
	h.check("out", out, T, H)
}

// addLayerNormCase adds a residual with an offset, so that the mean is far from zero.
func addLayerNormCase(h *harness, T, H int, alias string) {
	xv, rv := h.floats(T*H, 2), h.floats(T*H, 1)
	for i := range rv {
		rv[i] += 0.5
	}
	x, res := h.upload(xv), h.upload(rv)
	gamma, beta := h.lnParams(H)
	out := map[string]pair{"": h.alloc(T * H), "x": x, "residual": res}[alias]
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.AddLayerNorm(at(out), at(x), at(res), at(gamma), at(beta), T, H, 1e-12)
	})
	h.check("out", out, T, H)
}

func poolCase(h *harness, lens []int, H int, mode backend.Pooling, normalize bool) {
	st, positions := starts(lens)
	T, B := len(positions), len(lens)
	x := h.upload(h.floats(T*H, 1))
	seq := h.uploadInt32(st)
	out := h.alloc(B * H)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.Pool(at(out), at(x), at(seq), B, H, mode, normalize)
	})
	h.check("out", out, B, H)
}

// layerCase runs embeddings and one BERT encoder layer, then mean pooling with normalisation,
// as arch/bert.go composes them, with intermediates in Alloc'd tensors and both AddLayerNorm
// aliasings; it shows how the per-op errors add up.
func layerCase(h *harness, lens []int, NH, HD, F int) {
	st, _ := starts(lens)
	B, H := len(lens), NH*HD
	ids, pos, typ, word, posT, typT := h.embedInputs(lens, H, true)
	T := ids.dut.Len()
	embG, embB := h.lnParams(H)
	linear := func(in, out int) (w, b pair) {
		return h.upload(h.floats(out*in, math.Sqrt(3/float64(in)))), h.upload(h.floats(out, 0.2))
	}
	qkvW, qkvB := linear(H, 3*H)
	oW, oB := linear(H, H)
	ln1G, ln1B := h.lnParams(H)
	f1W, f1B := linear(H, F)
	f2W, f2B := linear(F, H)
	ln2G, ln2B := h.lnParams(H)
	seq := h.uploadInt32(st)
	x, qkv, ctx, attn := h.alloc(T*H), h.alloc(T*3*H), h.alloc(T*H), h.alloc(T*H)
	ff, ff2, pooled := h.alloc(T*F), h.alloc(T*H), h.alloc(B*H)
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.Embed(at(x), at(ids), at(pos), at(typ), at(word), at(posT), at(typT), at(embG), at(embB), T, H, 1e-12)
		b.Linear(at(qkv), at(x), at(qkvW), at(qkvB), T, H, 3*H, backend.ActNone)
		b.Attention(at(ctx), at(qkv), at(seq), B, maxOf(lens), NH, HD)
		b.Linear(at(attn), at(ctx), at(oW), at(oB), T, H, H, backend.ActNone)
		b.AddLayerNorm(at(attn), at(attn), at(x), at(ln1G), at(ln1B), T, H, 1e-12)
		b.Linear(at(ff), at(attn), at(f1W), at(f1B), T, H, F, backend.ActGELU)
		b.Linear(at(ff2), at(ff), at(f2W), at(f2B), T, F, H, backend.ActNone)
		b.AddLayerNorm(at(attn), at(ff2), at(attn), at(ln2G), at(ln2B), T, H, 1e-12)
		b.Pool(at(pooled), at(attn), at(seq), B, H, backend.PoolMean, true)
	})
	h.check("hidden", attn, T, H)
	h.check("pooled", pooled, B, H)
}

// seqs names a list of sequence lengths: 1,7,33,128.
func seqs(lens []int) string {
	return strings.Trim(strings.ReplaceAll(fmt.Sprint(lens), " ", ","), "[]")
}

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
