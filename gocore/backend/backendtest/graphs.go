package backendtest

import (
	"fmt"
	"math"

	"github.com/goembed/goembed/gocore/backend"
)

// Tape wraps a backend into one that implements backend.Graphs the plain way: Replay records
// the op calls of record as closures (a tape) under its key and plays the tape back on every
// call. It is the reference the graph cases hold a GPU backend's graphs to, and lets code that
// uses graphs (arch's shape buckets) be tested on the CPU. Records counts the recordings.
func Tape(b backend.Backend) *Taped {
	return &Taped{Backend: b, tapes: map[any][]func(){}}
}

// Taped is the backend Tape returns.
type Taped struct {
	backend.Backend
	Records   int
	tapes     map[any][]func()
	recording *[]func()
}

var _ backend.Graphs = (*Taped)(nil)

func (t *Taped) Replay(key any, record func()) {
	tape, ok := t.tapes[key]
	if !ok {
		t.Records++
		t.recording = &tape
		record()
		t.recording = nil
		t.tapes[key] = tape
	}
	for _, op := range tape {
		op()
	}
}

func (t *Taped) ForgetGraphs() { clear(t.tapes) }

// do runs op now, or appends it to the tape being recorded.
func (t *Taped) do(op func()) {
	if t.recording != nil {
		*t.recording = append(*t.recording, op)
		return
	}
	op()
}

func (t *Taped) Embed(out, ids, positions, types, word, pos, typ, gamma, beta backend.Tensor, T, H int, eps float32) {
	t.do(func() { t.Backend.Embed(out, ids, positions, types, word, pos, typ, gamma, beta, T, H, eps) })
}

func (t *Taped) Linear(out, x, w, bias backend.Tensor, T, in, outDim int, act backend.Activation) {
	t.do(func() { t.Backend.Linear(out, x, w, bias, T, in, outDim, act) })
}

func (t *Taped) Attention(out, qkv, seqStarts backend.Tensor, B, maxLen, NH, HD int) {
	t.do(func() { t.Backend.Attention(out, qkv, seqStarts, B, maxLen, NH, HD) })
}

// UploadFloat32 and AttentionBiased pass backend.BiasedAttention through; the wrapped backend
// must implement it.
func (t *Taped) UploadFloat32(src []float32) backend.Tensor {
	return t.Backend.(backend.BiasedAttention).UploadFloat32(src)
}

func (t *Taped) AttentionBiased(out, qkv, seqStarts, rel backend.Tensor, B, maxLen, NH, HD, R int) {
	t.do(func() {
		t.Backend.(backend.BiasedAttention).AttentionBiased(out, qkv, seqStarts, rel, B, maxLen, NH, HD, R)
	})
}

func (t *Taped) AddLayerNorm(out, x, residual, gamma, beta backend.Tensor, T, H int, eps float32) {
	t.do(func() { t.Backend.AddLayerNorm(out, x, residual, gamma, beta, T, H, eps) })
}

func (t *Taped) Pool(out, x, seqStarts backend.Tensor, B, H int, mode backend.Pooling, skip int, normalize bool) {
	t.do(func() { t.Backend.Pool(out, x, seqStarts, B, H, mode, skip, normalize) })
}

// graphCases are run for a backend that implements backend.Graphs.
func graphCases(add func(group, shape string, run func(*harness))) {
	for _, c := range []struct {
		lens             []int
		padT, padB, padL int
	}{{oneToken, 15, 7, 15}, {ragged, 0, 0, 0}, {ragged, 31, 4, 128}, {short, 100, 16, 44}} {
		add("Graphs", fmt.Sprintf("seqs%s_pad%d,%d,%d", seqs(c.lens), c.padT, c.padB, c.padL),
			func(h *harness) { graphCase(h, c.lens, c.padT, c.padB, c.padL) })
	}
}

// graphCase runs embeddings, one encoder layer and pooling as arch/bert.go does, replayed as a
// graph on the backend under test and op by op on the reference. The graph is launched with
// padded sizes, as arch's shape buckets do: padT more tokens (id 0, position 0, in no
// sequence), padB more sequences (empty: seqStarts repeats T) and a longest sequence padL
// longer. Every intermediate of the backend under test starts as NaN, so rows that padding
// leaves unwritten are NaN: the real rows must match the reference all the same. The graph is
// then replayed with new ids (record must not run again), under a second key (it must), and
// after ForgetGraphs (it must again).
func graphCase(h *harness, lens []int, padT, padB, padL int) {
	g := h.dut.(backend.Graphs)
	const NH, HD, F = 4, 32, 256
	const H = NH * HD
	st, positions := starts(lens)
	T, B, L := len(positions), len(lens), maxOf(lens)
	Tp, Bp, Lp := T+padT, B+padB, L+padL
	padded := func(v []int32, n int, fill int32) []int32 {
		v = append([]int32(nil), v...)
		for len(v) < n {
			v = append(v, fill)
		}
		return v
	}
	ints := func(ref []int32, dut []int32) pair {
		return h.track(pair{h.dut.UploadInt32(dut), h.ref.UploadInt32(ref)})
	}
	idv := h.ints(T, 100)
	ids := ints(idv, padded(idv, Tp, 0))
	pos := ints(positions, padded(positions, Tp, 0))
	seq := ints(st, padded(st, Bp+1, int32(T)))
	nan := make([]float32, Tp*max(F, 3*H))
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	buf := func(n, np int) pair { return h.track(pair{h.dut.Upload(nan[:np]), h.ref.Alloc(n)}) }
	x, qkv, ctx, attn := buf(T*H, Tp*H), buf(T*3*H, Tp*3*H), buf(T*H, Tp*H), buf(T*H, Tp*H)
	ff, ff2, pooled := buf(T*F, Tp*F), buf(T*H, Tp*H), buf(B*H, Bp*H)
	word, posT, typT := h.upload(h.floats(100*H, 1)), h.upload(h.floats(600*H, 1)), h.upload(h.floats(2*H, 1))
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
	layer := func(b backend.Backend, at func(pair) backend.Tensor, T, B, L int) {
		b.Embed(at(x), at(ids), at(pos), nil, at(word), at(posT), at(typT), at(embG), at(embB), T, H, 1e-12)
		b.Linear(at(qkv), at(x), at(qkvW), at(qkvB), T, H, 3*H, backend.ActNone)
		b.Attention(at(ctx), at(qkv), at(seq), B, L, NH, HD)
		b.Linear(at(attn), at(ctx), at(oW), at(oB), T, H, H, backend.ActNone)
		b.AddLayerNorm(at(x), at(attn), at(x), at(ln1G), at(ln1B), T, H, 1e-12)
		b.Linear(at(ff), at(x), at(f1W), at(f1B), T, H, F, backend.ActGELU)
		b.Linear(at(ff2), at(ff), at(f2W), at(f2B), T, F, H, backend.ActNone)
		b.AddLayerNorm(at(x), at(ff2), at(x), at(ln2G), at(ln2B), T, H, 1e-12)
		b.Pool(at(pooled), at(x), at(seq), B, H, backend.PoolMean, 0, true)
	}
	records := 0
	defer g.ForgetGraphs() // before the tensors are freed
	run := func(key string, wantRecords int) {
		h.t.Helper()
		g.Replay(h.shape+"/"+key, func() { // keys of other cases name freed tensors
			records++
			layer(h.dut, func(p pair) backend.Tensor { return p.dut }, Tp, Bp, Lp)
		})
		layer(h.ref, func(p pair) backend.Tensor { return p.ref }, T, B, L)
		if records != wantRecords {
			h.t.Errorf("Graphs %s: record ran %d times after replaying %q, want %d", h.shape, records, key, wantRecords)
		}
		h.check("hidden "+key, x, T, H)
		h.check("pooled "+key, pooled, B, H)
	}
	run("a", 1)
	fresh := h.ints(T, 100)
	h.dut.WriteInt32(ids.dut, fresh)
	h.ref.WriteInt32(ids.ref, fresh)
	run("a", 1) // replayed: the new ids are used
	run("b", 2)
	g.ForgetGraphs()
	run("a", 3)
}
