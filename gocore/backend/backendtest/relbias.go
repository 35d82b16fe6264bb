package backendtest

import (
	"fmt"

	"github.com/goembed/goembed/gocore/backend"
)

// relBiasCases are the cases of the optional backend.BiasedAttention; a backend without it
// skips them, saying so. R below the longest sequence exercises the clamp of j-i.
func relBiasCases(add func(group, shape string, run func(*harness))) {
	for _, a := range []struct {
		lens      []int
		NH, HD, R int
	}{{oneToken, 4, 64, 1}, {oneToken, 12, 32, 8}, {ragged, 12, 32, 129}, {ragged, 12, 64, 40},
		{short, 12, 32, 5}, {tiles, 2, 64, 300}, {[]int{512}, 2, 32, 128}, {[]int{3, 70, 31}, 3, 64, 0}} {
		name := fmt.Sprintf("seqs%s_NH%d_HD%d_R%d", seqs(a.lens), a.NH, a.HD, a.R)
		if a.R == 0 {
			name = fmt.Sprintf("seqs%s_NH%d_HD%d_nobias", seqs(a.lens), a.NH, a.HD)
		}
		add("AttentionBiased", name, func(h *harness) { attentionBiasedCase(h, a.lens, a.NH, a.HD, a.R) })
	}
}

// attentionBiasedCase draws Q, K, V as attentionCase does and a bias table in ±3 (R 0: no
// table, which must give plain Attention).
func attentionBiasedCase(h *harness, lens []int, NH, HD, R int) {
	dut, ok := h.dut.(backend.BiasedAttention)
	if !ok {
		h.t.Skipf("%s does not implement backend.BiasedAttention", h.dut.Name())
	}
	ref := h.ref.(backend.BiasedAttention)
	st, positions := starts(lens)
	T, H := len(positions), NH*HD
	qkv := h.upload(h.floats(T*3*H, 2))
	seq := h.uploadInt32(st)
	out := h.alloc(T * H)
	var rel pair
	if R > 0 {
		v := h.floats(NH*(2*R-1), 3)
		rel = h.track(pair{dut.UploadFloat32(v), ref.UploadFloat32(v)})
	}
	h.both(func(b backend.Backend, at func(pair) backend.Tensor) {
		b.(backend.BiasedAttention).AttentionBiased(at(out), at(qkv), at(seq), at(rel), len(lens), maxOf(lens), NH, HD, R)
	})
	h.check("out", out, T, H)
}
