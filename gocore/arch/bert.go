package arch

import (
	"fmt"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/weights"
)

// Bert is BERT's encoder (Devlin et al. 2019) as transformers' BertModel computes it:
// https://github.com/huggingface/transformers/blob/v4.46.0/src/transformers/models/bert/modeling_bert.py
// Post-LayerNorm layers, exact-erf GELU, absolute position embeddings. MiniLM, E5, BGE and GTE
// checkpoints are BertModels.
type Bert struct {
	b                  backend.Backend
	H, NH, HD, F, L    int
	vocab, maxPos      int
	eps                float32
	word, pos, typ     backend.Tensor
	embNormW, embNormB backend.Tensor
	layers             []bertLayer
	head               *head
	ckpt               *checkpoint
	ws                 *workspace
}

type bertLayer struct {
	qkvW, qkvB           backend.Tensor // query, key and value stacked: [3H, H], [3H]
	attnOutW, attnOutB   backend.Tensor
	attnNormW, attnNormB backend.Tensor
	ffnInW, ffnInB       backend.Tensor
	ffnOutW, ffnOutB     backend.Tensor
	outNormW, outNormB   backend.Tensor
}

// layerNames are where a layer's attention tensors sit in a checkpoint, after the layer's
// prefix (encoder.layer.N.): BERT's and MPNet's differ only there.
type layerNames struct{ q, k, v, attnOut, attnNorm string }

var bertNames = layerNames{"attention.self.query", "attention.self.key", "attention.self.value",
	"attention.output.dense", "attention.output.LayerNorm"}

// layers reads L post-LayerNorm layers of width H and feed-forward width F, with Q, K and V
// stacked into one projection.
func (c *checkpoint) layers(L, H, F int, n layerNames) ([]bertLayer, error) {
	layers := make([]bertLayer, L)
	var err error
	load := func(dst *backend.Tensor, name string, shape ...int) {
		if err == nil {
			*dst, err = c.tensor(name, shape...)
		}
	}
	for i := range layers {
		l, p := &layers[i], fmt.Sprintf("encoder.layer.%d.", i)
		if err == nil {
			ws, bs := make([]string, 3), make([]string, 3)
			for j, name := range []string{n.q, n.k, n.v} {
				ws[j], bs[j] = p+name+".weight", p+name+".bias"
			}
			if l.qkvW, err = c.concat(ws, H, H); err == nil {
				l.qkvB, err = c.concat(bs, H)
			}
		}
		load(&l.attnOutW, p+n.attnOut+".weight", H, H)
		load(&l.attnOutB, p+n.attnOut+".bias", H)
		load(&l.attnNormW, p+n.attnNorm+".weight", H)
		load(&l.attnNormB, p+n.attnNorm+".bias", H)
		load(&l.ffnInW, p+"intermediate.dense.weight", F, H)
		load(&l.ffnInB, p+"intermediate.dense.bias", F)
		load(&l.ffnOutW, p+"output.dense.weight", H, F)
		load(&l.ffnOutB, p+"output.dense.bias", H)
		load(&l.outNormW, p+"output.LayerNorm.weight", H)
		load(&l.outNormB, p+"output.LayerNorm.bias", H)
	}
	return layers, err
}

func loadBert(b backend.Backend, w *weights.File, cfg modeldir.Config) (_ *Bert, err error) {
	H, NH, F, L := cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.NumHiddenLayers
	if H <= 0 || NH <= 0 || F <= 0 || L <= 0 || H%NH != 0 || cfg.VocabSize <= 0 || cfg.MaxPositionEmbeddings <= 0 {
		return nil, fmt.Errorf("config.json: implausible sizes (hidden %d, heads %d, ffn %d, layers %d, vocab %d, positions %d)",
			H, NH, F, L, cfg.VocabSize, cfg.MaxPositionEmbeddings)
	}
	if cfg.HiddenAct != "" && cfg.HiddenAct != "gelu" {
		return nil, fmt.Errorf("config.json: hidden_act %q is not supported (BERT uses exact gelu)", cfg.HiddenAct)
	}
	if cfg.PositionEmbeddingType != "" && cfg.PositionEmbeddingType != "absolute" {
		return nil, fmt.Errorf("config.json: position_embedding_type %q is not supported", cfg.PositionEmbeddingType)
	}
	c := &checkpoint{b: b, w: w}
	if !w.Has("embeddings.word_embeddings.weight") && w.Has("bert.embeddings.word_embeddings.weight") {
		c.prefix = "bert."
	}
	m := &Bert{b: b, H: H, NH: NH, HD: H / NH, F: F, L: L, vocab: cfg.VocabSize, maxPos: cfg.MaxPositionEmbeddings,
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
	types := max(cfg.TypeVocabSize, 1)
	load(&m.word, "embeddings.word_embeddings.weight", m.vocab, H)
	load(&m.pos, "embeddings.position_embeddings.weight", m.maxPos, H)
	load(&m.typ, "embeddings.token_type_embeddings.weight", types, H)
	load(&m.embNormW, "embeddings.LayerNorm.weight", H)
	load(&m.embNormB, "embeddings.LayerNorm.bias", H)
	if err == nil {
		m.layers, err = c.layers(L, H, F, bertNames)
	}
	if err != nil {
		return nil, err
	}
	return m, b.Sync()
}

// Hidden is the model width.
func (m *Bert) Hidden() int { return m.H }

// Dim is the width of the sentence embedding.
func (m *Bert) Dim() int { return m.head.dim() }

// Tokens is the last hidden state of the last Forward; see Encoder.Tokens.
func (m *Bert) Tokens() backend.Tensor { return m.ws.bufs["hidden"] }

func (m *Bert) setHead(h *head) {
	m.head.free(m.b)
	m.head = h
}

// Forward embeds, runs the layers and the sentence-transformers modules; see Encoder.Forward.
func (m *Bert) Forward(in *Batch, o Output) (backend.Tensor, error) {
	b, H, F := m.b, m.H, m.F
	if in.MaxLen > m.maxPos {
		return nil, fmt.Errorf("sequence of %d tokens exceeds max_position_embeddings %d", in.MaxLen, m.maxPos)
	}
	for _, id := range in.IDs {
		if id < 0 || int(id) >= m.vocab {
			return nil, fmt.Errorf("token id %d outside the vocabulary of %d", id, m.vocab)
		}
	}
	g, graphs := b.(backend.Graphs)
	s, replay := bucket(in, graphs, m.ws.seen)
	T, B := s.T, s.B
	ws := m.ws
	ids := ws.int32s("ids", in.IDs, T, 0)
	pos := ws.int32s("positions", in.Positions, T, 0)
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
		b.Embed(x, ids, pos, nil, m.word, m.pos, m.typ, m.embNormW, m.embNormB, T, H, m.eps)
		for _, l := range m.layers {
			b.Linear(qkv, x, l.qkvW, l.qkvB, T, H, 3*H, backend.ActNone)
			b.Attention(ctx, qkv, seqs, B, s.MaxLen, m.NH, m.HD)
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

// graphKey names a captured forward: the launch shape, the pooling and the output options; the
// tensors are the workspace's, which stay put until it grows (then every graph is forgotten).
type graphKey struct {
	shape
	pool backend.Pooling
	Output
}

// Close frees weights and workspace.
func (m *Bert) Close() {
	m.head.free(m.b)
	m.ckpt.free()
	m.ws.free()
}
