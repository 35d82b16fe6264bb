package arch

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
	"github.com/goembed/goembed/gocore/backend/cpu"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/weights"
)

// tinyBert writes a random 2-layer BERT (H 64, 2 heads, F 128, vocabulary 50, 80 positions)
// into a safetensors file and returns it with its config.
func tinyBert(t *testing.T) (*weights.File, modeldir.Config) {
	cfg := modeldir.Config{ModelType: "bert", VocabSize: 50, HiddenSize: 64, NumHiddenLayers: 2,
		NumAttentionHeads: 2, IntermediateSize: 128, HiddenAct: "gelu", MaxPositionEmbeddings: 80,
		TypeVocabSize: 2, LayerNormEps: 1e-12}
	H, F := cfg.HiddenSize, cfg.IntermediateSize
	rng := rand.New(rand.NewPCG(5, 6))
	tensors := map[string]safetensors.TensorView{}
	add := func(name string, scale, offset float64, shape ...int) {
		n, dims := 1, make([]uint64, len(shape))
		for i, d := range shape {
			n *= d
			dims[i] = uint64(d)
		}
		data := make([]byte, 4*n)
		for i := range n {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(offset+scale*(2*rng.Float64()-1))))
		}
		v, err := safetensors.NewTensorView(safetensors.F32, dims, data)
		if err != nil {
			t.Fatal(err)
		}
		tensors[name] = v
	}
	add("embeddings.word_embeddings.weight", 1, 0, cfg.VocabSize, H)
	add("embeddings.position_embeddings.weight", 1, 0, cfg.MaxPositionEmbeddings, H)
	add("embeddings.token_type_embeddings.weight", 1, 0, 2, H)
	add("embeddings.LayerNorm.weight", 0.2, 1, H)
	add("embeddings.LayerNorm.bias", 0.2, 0, H)
	for l := range cfg.NumHiddenLayers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
			add(p+n+".weight", math.Sqrt(3.0/float64(H)), 0, H, H)
			add(p+n+".bias", 0.1, 0, H)
		}
		add(p+"intermediate.dense.weight", math.Sqrt(3.0/float64(H)), 0, F, H)
		add(p+"intermediate.dense.bias", 0.1, 0, F)
		add(p+"output.dense.weight", math.Sqrt(3.0/float64(F)), 0, H, F)
		add(p+"output.dense.bias", 0.1, 0, H)
		for _, n := range []string{"attention.output.LayerNorm", "output.LayerNorm"} {
			add(p+n+".weight", 0.2, 1, H)
			add(p+n+".bias", 0.2, 0, H)
		}
	}
	data, err := safetensors.Serialize(tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, cfg
}

func batchOf(rng *rand.Rand, lens ...int) *Batch {
	in := &Batch{SeqStarts: []int32{0}}
	for _, n := range lens {
		for p := range n {
			in.IDs = append(in.IDs, int32(rng.IntN(50)))
			in.Positions = append(in.Positions, int32(p))
		}
		in.SeqStarts = append(in.SeqStarts, int32(len(in.IDs)))
		in.MaxLen = max(in.MaxLen, n)
	}
	return in
}

// TestShapeBuckets runs batches through the tiny BERT twice: on the cpu backend with exact
// sizes, and on the cpu backend behind backendtest.Tape, which implements backend.Graphs, so
// that Forward pads each batch to its shape bucket and replays one recorded graph per bucket.
// The pooled vectors must agree, the bucket graphs must be reused across batches and recorded
// again after the workspace grows.
func TestShapeBuckets(t *testing.T) {
	w, cfg := tinyBert(t)
	open := func(b backend.Backend) *Bert {
		m, err := loadBert(b, w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	ref, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	c, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	taped := backendtest.Tape(c)
	eager, bucketed := open(ref), open(taped)

	rng := rand.New(rand.NewPCG(1, 2))
	large := make([]int, 70) // 70 sequences of 60: 4,200 tokens
	for i := range large {
		large[i] = 60
	}
	for i, s := range []struct {
		lens    []int
		records int // graphs recorded so far
	}{
		{[]int{16}, 1},
		{[]int{9}, 1},          // same bucket (T 16, B 1, L 16): replayed with new inputs
		{[]int{3, 5, 2, 1}, 2}, // T 11 -> 16, B 4, L 16
		{[]int{1, 1, 1}, 3},    // T 8, B 4, L 16: a new bucket, same workspace
		{[]int{80, 70, 33}, 4}, // bigger: the workspace grows, earlier graphs are forgotten
		{[]int{16}, 5},         // recorded again
		{[]int{12}, 5},
		{large, 5}, // above graphTokens: op by op the first time,
		{large, 6}, // recorded the second,
		{large, 6}, // replayed the third
	} {
		in := batchOf(rng, s.lens...)
		for _, pool := range []backend.Pooling{backend.PoolMean, backend.PoolCLS} {
			if pool == backend.PoolCLS && i > 0 {
				continue
			}
			want := forward(t, eager, ref, in, pool)
			got := forward(t, bucketed, c, in, pool)
			if msg := backendtest.Compare(got, want, cfg.HiddenSize, 1e-5); msg != "" {
				t.Errorf("batch %d %v (%s): bucketed forward differs: %s", i, s.lens, pool, msg)
			}
		}
		if wantRecords := s.records + 1; taped.Records != wantRecords { // + batch 0's CLS graph
			t.Errorf("batch %d %v: %d graphs recorded, want %d", i, s.lens, taped.Records, wantRecords)
		}
	}
}

func forward(t *testing.T, m *Bert, b backend.Backend, in *Batch, pool backend.Pooling) []float32 {
	t.Helper()
	m.head.pool = pool
	out, err := m.Forward(in, Output{Normalize: true})
	if err != nil {
		t.Fatal(err)
	}
	host := make([]float32, in.B()*m.H)
	if err := b.Download(host, out); err != nil {
		t.Fatal(err)
	}
	return host
}

func TestBucketSizes(t *testing.T) {
	for _, c := range [][2]int{{1, 8}, {8, 8}, {9, 16}, {64, 64}, {65, 72}, {128, 128}, {129, 144},
		{4000, 4096}, {4097, 4608}, {16384, 16384}} {
		if got := roundTokens(c[0]); got != c[1] {
			t.Errorf("roundTokens(%d) = %d, want %d", c[0], got, c[1])
		}
	}
	in := &Batch{IDs: make([]int32, 300), SeqStarts: []int32{0, 100, 300}, MaxLen: 200}
	seen := map[shape]bool{}
	if s, replay := bucket(in, true, seen); !replay || s != (shape{320, 2, 256}) {
		t.Errorf("bucket = %v, %v", s, replay)
	}
	if s, replay := bucket(in, false, seen); replay || s != (shape{300, 2, 200}) {
		t.Errorf("bucket without graphs = %v, %v", s, replay)
	}
	// Above graphTokens: exact sizes, a graph from the second time a shape comes.
	big := &Batch{IDs: make([]int32, 5000), SeqStarts: []int32{0, 5000}, MaxLen: 5000}
	other := &Batch{IDs: make([]int32, 5000), SeqStarts: []int32{0, 2500, 5000}, MaxLen: 2500}
	for i, c := range []struct {
		in     *Batch
		replay bool
	}{{big, false}, {other, false}, {big, true}, {other, true}, {big, true}} {
		if s, replay := bucket(c.in, true, seen); replay != c.replay || s != c.in.shape() {
			t.Errorf("large batch %d: bucket = %v, %v; want %v, %v", i, s, replay, c.in.shape(), c.replay)
		}
	}
	if s, replay := bucket(big, false, seen); replay || s.T != 5000 {
		t.Errorf("large bucket without graphs = %v, %v", s, replay)
	}
}

// denseSpec is one Dense layer of a test head.
type denseSpec struct {
	in, out int
	act     backend.Activation
	bias    bool
}

// denseHead builds a head by hand: the given pooling, then Dense layers of random weights,
// returned also on the host (weights [out, in] then bias [out] per layer).
func denseHead(b backend.Backend, hidden int, pool backend.Pooling, normalize bool, specs []denseSpec) (*head, [][]float32) {
	rng := rand.New(rand.NewPCG(7, 8))
	h := &head{hidden: hidden, pool: pool, normalize: normalize}
	var host [][]float32
	for _, d := range specs {
		w := make([]float32, d.out*d.in+d.out)
		for i := range w {
			w[i] = float32(rng.Float64()*2-1) * 0.3
		}
		host = append(host, w)
		l := denseLayer{in: d.in, out: d.out, act: d.act, w: b.Upload(w[:d.out*d.in])}
		h.owned = append(h.owned, l.w)
		if d.bias {
			l.bias = b.Upload(w[d.out*d.in:])
			h.owned = append(h.owned, l.bias)
		}
		h.dense = append(h.dense, l)
	}
	return h, host
}

// TestHead runs the sentence-transformers modules after the tiny BERT: two pooling modes with
// a skipped prompt, Dense (tanh, bias) and Dense (identity, no bias), then normalisation, and
// checks them against a host computation from the token vectors Tokens returns; and the same
// through recorded graphs (Tape).
func TestHead(t *testing.T) {
	w, cfg := tinyBert(t)
	H := cfg.HiddenSize
	rng := rand.New(rand.NewPCG(3, 4))
	in := batchOf(rng, 9, 4, 17, 2)
	const skip = 3
	pool := backend.PoolCLS | backend.PoolWeightedMean
	layers := []denseSpec{{2 * H, 24, backend.ActTanh, true}, {24, 10, backend.ActNone, false}}
	for _, taped := range []bool{false, true} {
		c, err := cpu.New()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b backend.Backend = c
		if taped {
			b = backendtest.Tape(c)
		}
		m, err := loadBert(b, w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		h, host := denseHead(b, H, pool, true, layers)
		m.setHead(h)
		if m.Dim() != 10 {
			t.Fatalf("Dim %d, want 10", m.Dim())
		}
		out, err := m.Forward(in, Output{Skip: skip})
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, in.B()*10)
		tokens := make([]float32, in.T()*H)
		if err := b.Download(got, out); err != nil {
			t.Fatal(err)
		}
		if err := b.Download(tokens, m.Tokens()); err != nil {
			t.Fatal(err)
		}
		want := headReference(tokens, in.SeqStarts, H, skip, host, layers)
		if msg := backendtest.Compare(got, want, 10, 1e-5); msg != "" {
			t.Errorf("taped %v: head differs from the host reference: %s", taped, msg)
		}
	}
}

// headReference computes cls+weightedmean pooling (skipping skip tokens), the Dense layers and
// L2 normalisation on the host in float64.
func headReference(tokens []float32, st []int32, H, skip int, host [][]float32, layers []denseSpec) []float32 {
	var out []float32
	for s := 0; s+1 < len(st); s++ {
		s0, s1 := int(st[s]), int(st[s+1])
		first := s0 + min(skip, s1-s0)
		v := make([]float64, 2*H)
		var wt float64
		cls := first
		if first == s1 { // all skipped: sentence-transformers' argmax over an empty mask is row 0
			cls = s0
		}
		for j := range H {
			v[j] = float64(tokens[cls*H+j])
		}
		for r := first; r < s1; r++ {
			w := float64(r - s0 + 1)
			wt += w
			for j := range H {
				v[H+j] += w * float64(tokens[r*H+j])
			}
		}
		for j := range H {
			v[H+j] /= max(wt, 1e-9)
		}
		for i, l := range layers {
			y := make([]float64, l.out)
			for o := range l.out {
				for k := range l.in {
					y[o] += float64(host[i][o*l.in+k]) * v[k]
				}
				if l.bias {
					y[o] += float64(host[i][l.out*l.in+o])
				}
				if l.act == backend.ActTanh {
					y[o] = math.Tanh(y[o])
				}
			}
			v = y
		}
		var ss float64
		for _, x := range v {
			ss += x * x
		}
		for _, x := range v {
			out = append(out, float32(x/math.Sqrt(ss)))
		}
	}
	return out
}
