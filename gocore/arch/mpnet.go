package arch

import (
	"fmt"
	"math"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/weights"
)

// MPNet is MPNet's encoder (Song et al. 2020) as transformers' MPNetModel computes it:
// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/mpnet/modeling_mpnet.py
// BERT's post-LayerNorm layers without token types; positions counted from padding_idx + 1 as
// in RoBERTa; a learned bias per head and relative-position bucket, shared by all layers, added
// to the attention scores. all-mpnet-base-v2 is an MPNetModel.
type MPNet struct {
	b                  backend.Backend
	ba                 backend.BiasedAttention
	H, NH, HD, F, L    int
	vocab, maxPos      int
	eps                float32
	word, pos          backend.Tensor
	embNormW, embNormB backend.Tensor
	rel                backend.Tensor // [NH, 2*maxPos-1] float32: bias by relative position j-i
	layers             []bertLayer
	head               *head
	ckpt               *checkpoint
	ws                 *workspace
	positions          []int32
}

var mpnetNames = layerNames{"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
	"attention.LayerNorm"}

// mpnetPad is MPNetEmbeddings.padding_idx: a pad token takes position 1, the others count on
// from 2.
const mpnetPad = 1

// The bucketing of relative positions (MPNetEncoder.compute_position_bias's defaults).
const (
	mpnetBuckets     = 32
	mpnetMaxDistance = 128
)

func loadMPNet(b backend.Backend, w *weights.File, cfg modeldir.Config) (_ *MPNet, err error) {
	H, NH, F, L := cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.NumHiddenLayers
	if H <= 0 || NH <= 0 || F <= 0 || L <= 0 || H%NH != 0 || cfg.VocabSize <= 0 || cfg.MaxPositionEmbeddings <= mpnetPad+1 {
		return nil, fmt.Errorf("config.json: implausible sizes (hidden %d, heads %d, ffn %d, layers %d, vocab %d, positions %d)",
			H, NH, F, L, cfg.VocabSize, cfg.MaxPositionEmbeddings)
	}
	if cfg.HiddenAct != "" && cfg.HiddenAct != "gelu" {
		return nil, fmt.Errorf("config.json: hidden_act %q is not supported (MPNet uses exact gelu)", cfg.HiddenAct)
	}
	if n := cfg.RelativeAttentionNumBuckets; n != 0 && n != mpnetBuckets {
		return nil, fmt.Errorf("config.json: relative_attention_num_buckets %d is not supported (transformers buckets MPNet's relative positions into %d)", n, mpnetBuckets)
	}
	ba, ok := b.(backend.BiasedAttention)
	if !ok {
		return nil, fmt.Errorf("the %s backend cannot run MPNet yet: it has no attention with a relative position bias (backend.BiasedAttention)", b.Name())
	}
	c := &checkpoint{b: b, w: w}
	if !w.Has("embeddings.word_embeddings.weight") && w.Has("mpnet.embeddings.word_embeddings.weight") {
		c.prefix = "mpnet."
	}
	m := &MPNet{b: b, ba: ba, H: H, NH: NH, HD: H / NH, F: F, L: L, vocab: cfg.VocabSize, maxPos: cfg.MaxPositionEmbeddings,
		eps: float32(cfg.LayerNormEps), head: defaultHead(H), ckpt: c, ws: newWorkspace(b)}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()

	// The checkpoint-to-internal naming table.
	load := func(dst *backend.Tensor, name string, shape ...int) {
		if err == nil {
			*dst, err = c.tensor(name, shape...)
		}
	}
	load(&m.word, "embeddings.word_embeddings.weight", m.vocab, H)
	load(&m.pos, "embeddings.position_embeddings.weight", m.maxPos, H)
	load(&m.embNormW, "embeddings.LayerNorm.weight", H)
	load(&m.embNormB, "embeddings.LayerNorm.bias", H)
	if err == nil {
		var buckets []float32
		if buckets, err = c.host("encoder.relative_attention_bias.weight", mpnetBuckets, NH); err == nil {
			t := ba.UploadFloat32(relativeBiasTable(buckets, NH, m.maxPos))
			c.owned = append(c.owned, t)
			m.rel = t
		}
	}
	if err == nil {
		m.layers, err = c.layers(L, H, F, mpnetNames)
	}
	if err != nil {
		return nil, err
	}
	return m, b.Sync()
}

// relativeBucket is MPNetEncoder.relative_position_bucket for one relative position j-i
// (bidirectional, 32 buckets, exact below 8, logarithmic up to 128), with its float32
// arithmetic, so that the boundary cases (|j-i| = 16, 32, 64, 128) fall as in torch.
func relativeBucket(rel int) int {
	half := mpnetBuckets / 2
	exact := half / 2
	ret, n := 0, -rel
	if n < 0 {
		ret, n = half, -n
	}
	if n < exact {
		return ret + n
	}
	lg := float32(math.Log(float64(float32(n) / float32(exact))))
	large := exact + int(lg/float32(math.Log(float64(mpnetMaxDistance)/float64(exact)))*float32(half-exact))
	return ret + min(large, half-1)
}

// relativeBiasTable expands the bucket biases [mpnetBuckets, NH] (relative_attention_bias) to
// one row per head of the biases of relative positions 1-R .. R-1: [NH, 2R-1].
func relativeBiasTable(buckets []float32, NH, R int) []float32 {
	t := make([]float32, NH*(2*R-1))
	for k := 1 - R; k < R; k++ {
		bk := relativeBucket(k)
		for h := range NH {
			t[h*(2*R-1)+k+R-1] = buckets[bk*NH+h]
		}
	}
	return t
}

// Hidden is the model width.
func (m *MPNet) Hidden() int { return m.H }

// Dim is the width of the sentence embedding.
func (m *MPNet) Dim() int { return m.head.dim() }

// Tokens is the last hidden state of the last Forward; see Encoder.Tokens.
func (m *MPNet) Tokens() backend.Tensor { return m.ws.bufs["hidden"] }

func (m *MPNet) setHead(h *head) {
	m.head.free(m.b)
	m.head = h
}

// Forward embeds, runs the layers and the sentence-transformers modules; see Encoder.Forward.
func (m *MPNet) Forward(in *Batch, o Output) (backend.Tensor, error) {
	b, H, F := m.b, m.H, m.F
	if in.MaxLen+mpnetPad >= m.maxPos {
		return nil, fmt.Errorf("sequence of %d tokens exceeds MPNet's %d positions (max_position_embeddings %d less padding_idx + 1)",
			in.MaxLen, m.maxPos-mpnetPad-1, m.maxPos)
	}
	for _, id := range in.IDs {
		if id < 0 || int(id) >= m.vocab {
			return nil, fmt.Errorf("token id %d outside the vocabulary of %d", id, m.vocab)
		}
	}
	// create_position_ids_from_input_ids: each non-pad token counts on from padding_idx + 1.
	m.positions = m.positions[:0]
	for s := range in.B() {
		n := int32(mpnetPad)
		for _, id := range in.IDs[in.SeqStarts[s]:in.SeqStarts[s+1]] {
			p := int32(mpnetPad)
			if id != mpnetPad {
				n++
				p = n
			}
			m.positions = append(m.positions, p)
		}
	}
	g, graphs := b.(backend.Graphs)
	s, replay := bucket(in, graphs, m.ws.seen)
	T, B := s.T, s.B
	ws := m.ws
	ids := ws.int32s("ids", in.IDs, T, 0)
	pos := ws.int32s("positions", m.positions, T, 0)
	seqs := ws.int32s("seq_starts", in.SeqStarts, B+1, int32(in.T()))
	x := ws.get("hidden", T*H)
	qkv := ws.get("qkv", T*3*H)
	ctx := ws.get("attn_ctx", T*H)
	proj := ws.get("proj", T*H)
	ffn := ws.get("ffn_act", T*F)
	hb := m.head.buffers(ws, B)
	if err := ws.failed(); err != nil {
		return nil, err
	}

	forward := func() {
		b.Embed(x, ids, pos, nil, m.word, m.pos, nil, m.embNormW, m.embNormB, T, H, m.eps)
		for _, l := range m.layers {
			b.Linear(qkv, x, l.qkvW, l.qkvB, T, H, 3*H, backend.ActNone)
			m.ba.AttentionBiased(ctx, qkv, seqs, m.rel, B, s.MaxLen, m.NH, m.HD, m.maxPos)
			b.Linear(proj, ctx, l.attnOutW, l.attnOutB, T, H, H, backend.ActNone)
			b.AddLayerNorm(x, proj, x, l.attnNormW, l.attnNormB, T, H, m.eps)
			b.Linear(ffn, x, l.ffnInW, l.ffnInB, T, H, F, backend.ActGELU)
			b.Linear(proj, ffn, l.ffnOutW, l.ffnOutB, T, F, H, backend.ActNone)
			b.AddLayerNorm(x, proj, x, l.outNormW, l.outNormB, T, H, m.eps)
		}
		m.head.forward(b, x, seqs, B, o, hb)
	}
	if graphs && ws.grew {
		g.ForgetGraphs() // they name tensors that were just replaced
		ws.grew = false
	}
	if replay {
		g.Replay(graphKey{s, m.head.pool, o}, forward)
	} else {
		forward()
	}
	return m.head.result(hb, o), nil
}

// Close frees weights and workspace.
func (m *MPNet) Close() {
	m.head.free(m.b)
	m.ckpt.free()
	m.ws.free()
}
