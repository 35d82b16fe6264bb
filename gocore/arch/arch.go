// Package arch holds the encoder architectures, each written once as calls on backend.Backend.
package arch

import (
	"fmt"
	"os"
	"strings"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/weights"
)

// Batch is one forward's input: sequences packed end to end (no padding).
type Batch struct {
	IDs       []int32 // [T] token ids
	Positions []int32 // [T] position of each token in its sequence
	SeqStarts []int32 // [B+1] row where each sequence starts; the last entry is T
	MaxLen    int     // longest sequence
}

// B is the number of sequences, T the number of tokens.
func (b *Batch) B() int { return len(b.SeqStarts) - 1 }
func (b *Batch) T() int { return len(b.IDs) }

// Encoder is a loaded architecture.
type Encoder interface {
	// Hidden is the width of the token vectors.
	Hidden() int
	// Dim is the width of the sentence embedding: the pooling modes times Hidden, or the last
	// Dense module's out_features.
	Dim() int
	// Forward runs the batch through the transformer and the model's sentence-transformers
	// modules (Pooling, Dense, Normalize): the first B rows of the returned [*, Dim] tensor are
	// the sequences' embeddings. The tensor belongs to the encoder's workspace and holds them
	// until the next Forward.
	Forward(in *Batch, o Output) (backend.Tensor, error)
	// Tokens is the last hidden state of the last Forward, [*, Hidden]: its first T rows are the
	// batch's token vectors in packed order, until the next Forward.
	Tokens() backend.Tensor
	// Close frees the weights and workspace.
	Close()
}

// Load builds the encoder for a model's config.json on backend b, with the model's Pooling,
// Dense and Normalize modules.
func Load(b backend.Backend, m *modeldir.Model) (Encoder, error) {
	w, err := weights.Open(m.Weights...)
	if err != nil {
		return nil, err
	}
	defer w.Close() // weights are copied to the backend
	switch m.Config.ModelType {
	case "bert":
		enc, err := loadBert(b, w, m.Config)
		return withHead(b, m, enc, err)
	case "mpnet":
		enc, err := loadMPNet(b, w, m.Config)
		return withHead(b, m, enc, err)
	default:
		return nil, fmt.Errorf("%s: model_type %q is not supported (supported: bert, mpnet)", m.Dir, m.Config.ModelType)
	}
}

// headed is an architecture whose pooling and later modules come from the model folder.
type headed interface {
	Encoder
	setHead(*head)
}

// withHead gives a freshly loaded architecture (unless loading it failed with err) the model's
// Pooling, Dense and Normalize modules, and closes it if they cannot be loaded.
func withHead[E headed](b backend.Backend, m *modeldir.Model, enc E, err error) (Encoder, error) {
	if err != nil {
		return nil, err
	}
	h, err := loadHead(b, m, enc.Hidden())
	if err != nil {
		enc.Close()
		return nil, err
	}
	enc.setHead(h)
	return enc, nil
}

// checkpoint reads named tensors from a checkpoint into backend tensors, checking shapes. A
// BertModel saved inside a task model carries a "bert." prefix; both spellings are accepted.
type checkpoint struct {
	b      backend.Backend
	w      *weights.File
	prefix string
	owned  []backend.Tensor
}

func (c *checkpoint) host(name string, shape ...int) ([]float32, error) {
	full := c.prefix + name
	got := c.w.Shape(full)
	if got == nil {
		return nil, fmt.Errorf("weight %q missing from the checkpoint (%s)", full, strings.Join(c.w.Files(), ", "))
	}
	if fmt.Sprint(got) != fmt.Sprint(shape) {
		return nil, fmt.Errorf("%s: weight %q has shape %v, config.json implies %v", c.w.Path(full), full, got, shape)
	}
	v, _, err := c.w.Float32(full)
	return v, err
}

func (c *checkpoint) upload(v []float32) backend.Tensor {
	t := c.b.Upload(v)
	c.owned = append(c.owned, t)
	return t
}

func (c *checkpoint) tensor(name string, shape ...int) (backend.Tensor, error) {
	v, err := c.host(name, shape...)
	if err != nil {
		return nil, err
	}
	return c.upload(v), nil
}

// concat reads several tensors with the same trailing shape and uploads them as one, rows
// stacked (used to fuse the Q, K and V projections into one GEMM).
func (c *checkpoint) concat(names []string, shape ...int) (backend.Tensor, error) {
	var all []float32
	for _, n := range names {
		v, err := c.host(n, shape...)
		if err != nil {
			return nil, err
		}
		all = append(all, v...)
	}
	return c.upload(all), nil
}

func (c *checkpoint) free() {
	for _, t := range c.owned {
		c.b.Free(t)
	}
	c.owned = nil
}

// workspace keeps activation tensors between forwards, grown when a batch needs more. grew
// says a tensor was replaced since the last look: graphs that named the old one are stale.
type workspace struct {
	b       backend.Backend
	bufs    map[string]backend.Tensor
	seen    map[shape]bool // large shapes forwarded so far (bucket)
	scratch []int32
	grew    bool
	limit   int64 // debug: see SetAllocLimit
	err     error // a refused allocation, for Forward to return
}

func newWorkspace(b backend.Backend) *workspace {
	return &workspace{b: b, bufs: map[string]backend.Tensor{}, seen: map[shape]bool{}}
}

func (ws *workspace) get(name string, n int) backend.Tensor {
	if t, ok := ws.bufs[name]; ok && t.Len() >= n {
		return t
	}
	if !ws.reserve(name, max(n, 1)) {
		return nil
	}
	if t, ok := ws.bufs[name]; ok {
		ws.b.Free(t)
	}
	t := ws.b.Alloc(max(n, 1))
	ws.bufs[name] = t
	ws.grew = true
	return t
}

// int32s writes v into the int32 tensor name, followed by copies of fill up to n elements.
func (ws *workspace) int32s(name string, v []int32, n int, fill int32) backend.Tensor {
	n = max(n, len(v))
	t, ok := ws.bufs[name]
	if !ok || t.Len() < n {
		if !ws.reserve(name, max(n, 1)) {
			return nil
		}
		if ok {
			ws.b.Free(t)
		}
		t = ws.b.UploadInt32(make([]int32, max(n, 1)))
		ws.bufs[name] = t
		ws.grew = true
	}
	if n > len(v) {
		ws.scratch = append(append(ws.scratch[:0], v...), make([]int32, n-len(v))...)
		for i := len(v); i < n; i++ {
			ws.scratch[i] = fill
		}
		v = ws.scratch
	}
	ws.b.WriteInt32(t, v)
	return t
}

func (ws *workspace) free() {
	for _, t := range ws.bufs {
		ws.b.Free(t)
	}
	ws.bufs = map[string]backend.Tensor{}
}

// Shape buckets. On a backend that replays graphs (backend.Graphs), a forward is launched with
// its sizes rounded up, so that one captured graph serves every batch of a bucket: T to 8 steps
// per power of two (at most 1/8 more tokens), B and the longest sequence to powers of two. The
// kernels read the real sequence bounds from seqStarts on the device: padding tokens belong to
// no sequence (attention and pooling never read them, and GEMMs and LayerNorm are row by row),
// and padding sequences are empty (pooled to zeros, never downloaded).
//
// Above graphTokens padding would cost more than launches save, so the exact sizes are used,
// and a graph only for a shape seen before (a call of 1,000 texts of one length comes back as
// the same batches): its first forward runs op by op, which also times its GEMMs' candidates
// (no timing is possible during a capture), and a shape that never comes back costs no capture.
const graphTokens = 4096

// maxSeenShapes bounds the large shapes a workspace remembers.
const maxSeenShapes = 256

// largeGraphs is turned off by GOEMBED_LARGE_GRAPHS=0 (for A/B timings): shapes above
// graphTokens then always run op by op.
var largeGraphs = os.Getenv("GOEMBED_LARGE_GRAPHS") != "0"

type shape struct{ T, B, MaxLen int }

func (in *Batch) shape() shape { return shape{in.T(), in.B(), in.MaxLen} }

// bucket returns the launch shape of in and whether to replay a graph for it; seen holds the
// large shapes met so far.
func bucket(in *Batch, graphs bool, seen map[shape]bool) (shape, bool) {
	s := in.shape()
	switch {
	case !graphs:
		return s, false
	case roundTokens(s.T) <= graphTokens:
		return shape{roundTokens(s.T), pow2(s.B), pow2(max(s.MaxLen, 16))}, true
	case !largeGraphs:
		return s, false
	case seen[s]:
		return s, true
	}
	if len(seen) >= maxSeenShapes {
		clear(seen)
	}
	seen[s] = true
	return s, false
}

// roundTokens rounds n up to a multiple of 8 up to 64, then to m * 2^e with 8 <= m < 16.
func roundTokens(n int) int {
	if n <= 64 {
		return max((n+7)&^7, 8)
	}
	step := 1
	for step*16 <= n {
		step *= 2
	}
	return (n + step - 1) / step * step
}

func pow2(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}
