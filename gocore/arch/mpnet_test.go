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

// TestRelativeBucket checks relativeBucket against the buckets transformers' (4.57, torch 2.11,
// CPU) MPNetEncoder.relative_position_bucket gives for these relative positions j-i, among
// them the boundaries 16, 32, 64 and 128 where the float32 logarithm lands on an integer.
func TestRelativeBucket(t *testing.T) {
	torch := map[int][2]int{ // n: bucket of j-i = n, bucket of j-i = -n
		0: {0, 0}, 1: {17, 1}, 7: {23, 7}, 8: {24, 8}, 9: {24, 8}, 15: {25, 9}, 16: {26, 10}, 17: {26, 10},
		31: {27, 11}, 32: {28, 12}, 33: {28, 12}, 63: {29, 13}, 64: {30, 14}, 65: {30, 14},
		127: {31, 15}, 128: {31, 15}, 129: {31, 15}, 500: {31, 15},
	}
	for n, want := range torch {
		if got := [2]int{relativeBucket(n), relativeBucket(-n)}; got != want {
			t.Errorf("relativeBucket(±%d) = %v, torch %v", n, got, want)
		}
	}
}

// tinyMPNet writes a random 2-layer MPNet (H 64, 2 heads, F 128, vocabulary 50, 300 positions,
// so that relative positions reach the saturated buckets) and returns it with its config.
func tinyMPNet(t *testing.T) (*weights.File, modeldir.Config) {
	cfg := modeldir.Config{ModelType: "mpnet", VocabSize: 50, HiddenSize: 64, NumHiddenLayers: 2,
		NumAttentionHeads: 2, IntermediateSize: 128, HiddenAct: "gelu", MaxPositionEmbeddings: 300,
		LayerNormEps: 1e-5, RelativeAttentionNumBuckets: 32}
	H, F := cfg.HiddenSize, cfg.IntermediateSize
	rng := rand.New(rand.NewPCG(7, 8))
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
	add("embeddings.LayerNorm.weight", 0.2, 1, H)
	add("embeddings.LayerNorm.bias", 0.2, 0, H)
	add("encoder.relative_attention_bias.weight", 2, 0, 32, cfg.NumAttentionHeads)
	for l := range cfg.NumHiddenLayers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		for _, n := range []string{"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o"} {
			add(p+n+".weight", math.Sqrt(3.0/float64(H)), 0, H, H)
			add(p+n+".bias", 0.1, 0, H)
		}
		add(p+"intermediate.dense.weight", math.Sqrt(3.0/float64(H)), 0, F, H)
		add(p+"intermediate.dense.bias", 0.1, 0, F)
		add(p+"output.dense.weight", math.Sqrt(3.0/float64(F)), 0, H, F)
		add(p+"output.dense.bias", 0.1, 0, H)
		for _, n := range []string{"attention.LayerNorm", "output.LayerNorm"} {
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

// refMPNet is MPNetModel's forward for one sequence, written plainly in float64 from the
// checkpoint, then mean pooling and L2 normalisation.
func refMPNet(t *testing.T, w *weights.File, cfg modeldir.Config, ids []int32) []float64 {
	get := func(name string) []float64 {
		v, _, err := w.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	H, NH, F, L := cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, len(ids)
	HD := H / NH
	eps := cfg.LayerNormEps
	layerNorm := func(x []float64, g, b []float64) {
		for r := range L {
			row := x[r*H : (r+1)*H]
			var mean, v float64
			for _, e := range row {
				mean += e
			}
			mean /= float64(H)
			for _, e := range row {
				v += (e - mean) * (e - mean)
			}
			s := 1 / math.Sqrt(v/float64(H)+eps)
			for i := range row {
				row[i] = (row[i]-mean)*s*g[i] + b[i]
			}
		}
	}
	linear := func(x []float64, in int, name string, out int) []float64 {
		wt, b := get(name+".weight"), get(name+".bias")
		y := make([]float64, L*out)
		for r := range L {
			for o := range out {
				s := b[o]
				for i := range in {
					s += x[r*in+i] * wt[o*in+i]
				}
				y[r*out+o] = s
			}
		}
		return y
	}
	// Embeddings: positions from padding_idx (1) + 1 for each non-pad token.
	word, pos := get("embeddings.word_embeddings.weight"), get("embeddings.position_embeddings.weight")
	x, p := make([]float64, L*H), 1
	for r, id := range ids {
		pr := 1
		if id != 1 {
			p++
			pr = p
		}
		for i := range H {
			x[r*H+i] = word[int(id)*H+i] + pos[pr*H+i]
		}
	}
	layerNorm(x, get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
	rel := get("encoder.relative_attention_bias.weight") // [32, NH]
	for l := range cfg.NumHiddenLayers {
		pre := fmt.Sprintf("encoder.layer.%d.", l)
		q := linear(x, H, pre+"attention.attn.q", H)
		k := linear(x, H, pre+"attention.attn.k", H)
		v := linear(x, H, pre+"attention.attn.v", H)
		ctx := make([]float64, L*H)
		for h := range NH {
			for i := range L {
				s, m := make([]float64, L), math.Inf(-1)
				for j := range L {
					for d := range HD {
						s[j] += q[i*H+h*HD+d] * k[j*H+h*HD+d]
					}
					s[j] = s[j]/math.Sqrt(float64(HD)) + rel[relativeBucket(j-i)*NH+h]
					m = max(m, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - m)
					sum += s[j]
				}
				for j := range L {
					for d := range HD {
						ctx[i*H+h*HD+d] += s[j] / sum * v[j*H+h*HD+d]
					}
				}
			}
		}
		o := linear(ctx, H, pre+"attention.attn.o", H)
		for i := range x {
			x[i] += o[i]
		}
		layerNorm(x, get(pre+"attention.LayerNorm.weight"), get(pre+"attention.LayerNorm.bias"))
		f := linear(x, H, pre+"intermediate.dense", F)
		for i, e := range f {
			f[i] = 0.5 * e * math.Erfc(-e/math.Sqrt2)
		}
		y := linear(f, F, pre+"output.dense", H)
		for i := range x {
			x[i] += y[i]
		}
		layerNorm(x, get(pre+"output.LayerNorm.weight"), get(pre+"output.LayerNorm.bias"))
	}
	pooled, norm := make([]float64, H), 0.0
	for r := range L {
		for i := range H {
			pooled[i] += x[r*H+i] / float64(L)
		}
	}
	for _, e := range pooled {
		norm += e * e
	}
	for i := range pooled {
		pooled[i] /= math.Sqrt(norm)
	}
	return pooled
}

// TestMPNetForward compares the packed forward on the cpu backend, eager and through shape
// buckets and replayed graphs (backendtest.Tape), with refMPNet, for ragged sequences that
// reach relative distances beyond 128 and hold pad tokens (id 1) inside.
func TestMPNetForward(t *testing.T) {
	w, cfg := tinyMPNet(t)
	rng := rand.New(rand.NewPCG(3, 4))
	in := batchOf(rng, 1, 7, 200, 33)
	in.IDs[1+3], in.IDs[8+100], in.IDs[8+101] = 1, 1, 1 // pad tokens inside sequences 1 and 2
	want := make([]float32, 0, in.B()*cfg.HiddenSize)
	for s := range in.B() {
		for _, v := range refMPNet(t, w, cfg, in.IDs[in.SeqStarts[s]:in.SeqStarts[s+1]]) {
			want = append(want, float32(v))
		}
	}
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
		m, err := loadMPNet(b, w, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for range 2 { // the second forward replays the recorded graph
			out, err := m.Forward(in, backend.PoolMean, true)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, in.B()*m.H)
			if err := b.Download(got, out); err != nil {
				t.Fatal(err)
			}
			if msg := backendtest.Compare(got, want, m.H, 2e-6); msg != "" {
				t.Errorf("taped %v: MPNet forward differs from the float64 reference: %s", taped, msg)
			}
		}
	}
}

// TestMPNetErrors checks the errors of loading and running an MPNet.
func TestMPNetErrors(t *testing.T) {
	w, cfg := tinyMPNet(t)
	c, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad := cfg
	bad.RelativeAttentionNumBuckets = 64
	if _, err := loadMPNet(c, w, bad); err == nil {
		t.Error("64 buckets: no error")
	}
	m, err := loadMPNet(c, w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	// Positions run from 2: 300 positions hold 298 tokens.
	if _, err := m.Forward(batchOf(rng, 299), backend.PoolMean, true); err == nil {
		t.Error("299 tokens with 300 positions: no error")
	} else {
		t.Log(err)
	}
	if _, err := m.Forward(batchOf(rng, 298), backend.PoolMean, true); err != nil {
		t.Errorf("298 tokens: %v", err)
	}
	if _, err := loadMPNet(noBias{c}, w, cfg); err == nil {
		t.Error("backend without BiasedAttention: no error")
	} else {
		t.Log(err)
	}
}

// noBias hides the cpu backend's BiasedAttention.
type noBias struct{ backend.Backend }
