package arch

import (
	"fmt"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/weights"
)

// Output says what a Forward computes after the transformer, besides the model's own modules.
type Output struct {
	Skip      int  // leading tokens of each sequence left out of pooling (a prompt, include_prompt=false)
	Normalize bool // L2-normalise the sentence embedding even if the model has no Normalize module
}

// head is the sentence-transformers modules after the transformer, as run by
// SentenceTransformer.forward: Pooling, then each Dense, then Normalize (sentence-transformers
// 6.0: sentence_transformer/modules/pooling.py, base/modules/dense.py, base/modules/normalize.py).
type head struct {
	hidden    int
	pool      backend.Pooling
	dense     []denseLayer
	normalize bool // a Normalize module
	owned     []backend.Tensor
}

type denseLayer struct {
	w, bias backend.Tensor // [out, in], [out] or nil
	in, out int
	act     backend.Activation
}

// defaultHead is mean pooling without further modules, as sentence-transformers builds for a
// plain transformers folder.
func defaultHead(hidden int) *head { return &head{hidden: hidden, pool: backend.PoolMean} }

// loadHead reads the model's Pooling, Dense and Normalize modules onto b.
func loadHead(b backend.Backend, m *modeldir.Model, hidden int) (_ *head, err error) {
	h := &head{hidden: hidden, pool: m.Pooling, normalize: m.Normalize}
	if !h.pool.Valid() {
		return nil, fmt.Errorf("%s: no valid pooling mode (%d)", m.Dir, int(m.Pooling))
	}
	defer func() {
		if err != nil {
			h.free(b)
		}
	}()
	width := h.pool.Count() * hidden
	for _, d := range m.Dense {
		if d.In != width {
			return nil, fmt.Errorf("%s: in_features %d, but the module before gives vectors of %d", d.Dir, d.In, width)
		}
		l := denseLayer{in: d.In, out: d.Out, act: d.Activation}
		if err := h.loadDense(b, d, &l); err != nil {
			return nil, err
		}
		h.dense = append(h.dense, l)
		width = d.Out
	}
	return h, b.Sync()
}

func (h *head) loadDense(b backend.Backend, d modeldir.Dense, l *denseLayer) error {
	w, err := weights.Open(d.Weights)
	if err != nil {
		return err
	}
	defer w.Close()
	c := &checkpoint{b: b, w: w}
	defer func() { h.owned = append(h.owned, c.owned...) }()
	if l.w, err = c.tensor("linear.weight", d.Out, d.In); err != nil {
		return fmt.Errorf("%s: %w", d.Weights, err)
	}
	if d.Bias {
		if l.bias, err = c.tensor("linear.bias", d.Out); err != nil {
			return fmt.Errorf("%s: %w", d.Weights, err)
		}
	}
	return nil
}

// dim is the width of the sentence embedding.
func (h *head) dim() int {
	if len(h.dense) > 0 {
		return h.dense[len(h.dense)-1].out
	}
	return h.pool.Count() * h.hidden
}

// headBufs are the head's tensors for one forward, taken from the workspace before recording.
type headBufs struct {
	pooled, normed, rows backend.Tensor
	dense                []backend.Tensor
}

func (h *head) buffers(ws *workspace, B int) headBufs {
	t := headBufs{pooled: ws.get("pooled", B*h.pool.Count()*h.hidden)}
	for i, d := range h.dense {
		t.dense = append(t.dense, ws.get(fmt.Sprintf("dense%d", i), B*d.out))
	}
	if len(h.dense) > 0 {
		t.normed = ws.get("normed", B*h.dim())
		rows := make([]int32, B+1)
		for i := range rows {
			rows[i] = int32(i)
		}
		t.rows = ws.int32s("rows", rows, B+1, int32(B))
	}
	return t
}

// forward pools x [T, hidden] into B sentence embeddings [B, dim], left in result(t, o).
// Without Dense, normalisation is fused into the pooling; after Dense it is a pool over
// one-row sequences.
func (h *head) forward(b backend.Backend, x, seqs backend.Tensor, B int, o Output, t headBufs) {
	normalize := o.Normalize || h.normalize
	b.Pool(t.pooled, x, seqs, B, h.hidden, h.pool, o.Skip, normalize && len(h.dense) == 0)
	y := t.pooled
	for i, d := range h.dense {
		b.Linear(t.dense[i], y, d.w, d.bias, B, d.in, d.out, d.act)
		y = t.dense[i]
	}
	if normalize && len(h.dense) > 0 {
		b.Pool(t.normed, y, t.rows, B, h.dim(), backend.PoolCLS, 0, true)
	}
}

// result is the tensor forward leaves the sentence embeddings in.
func (h *head) result(t headBufs, o Output) backend.Tensor {
	switch {
	case len(h.dense) == 0:
		return t.pooled
	case o.Normalize || h.normalize:
		return t.normed
	default:
		return t.dense[len(t.dense)-1]
	}
}

func (h *head) free(b backend.Backend) {
	for _, t := range h.owned {
		b.Free(t)
	}
	h.owned = nil
}
