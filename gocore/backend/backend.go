// Package backend defines the small set of coarse operations a BERT-family encoder needs, and a
// registry of the devices that implement them ("cpu", "cuda", "metal").
//
// Shape vocabulary (used in Go, kernels and tests alike; see gocore/doc.go):
//
//	B  batch      sequences in one forward
//	T  tokens     real tokens in one forward, all sequences packed end to end (no padding)
//	H  hidden     model width
//	NH heads      attention heads; HD = H / NH is the head dimension
//	F  ffn        intermediate (feed-forward) width
//
// Layout: every matrix is row-major, the last axis contiguous. Activations are [T, H]: the
// tokens of sequence b are rows seqStarts[b] .. seqStarts[b+1]-1. Linear weights keep PyTorch's
// layout [out, in], so y = x @ W^T + b.
//
// Ops do not return errors: a backend records the first failure and reports it from Sync or
// Download (as CUDA reports sticky errors), so the model code reads like the paper.
package backend

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Tensor is memory owned by one backend: a flat array of elements in the backend's storage
// type (float32 on the CPU, float16 or bfloat16 on a GPU by default) or int32 for indices.
type Tensor interface {
	// Len is the number of elements.
	Len() int
}

// Activation is applied by Linear after the bias.
type Activation int

const (
	ActNone Activation = iota
	ActGELU            // exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))), as BERT was trained
	ActTanh            // used by some Dense heads
)

// Pooling is a set of pooling modes, each reducing the token vectors of one sequence to one
// vector of H. With several modes the pooled row concatenates their vectors in the order of the
// constants, which is sentence-transformers' order (cls, max, mean, mean_sqrt_len_tokens,
// weightedmean, lasttoken), so the row is Count()*H wide.
type Pooling int

const (
	PoolCLS          Pooling = 1 << iota // the first token
	PoolMax                              // element-wise maximum
	PoolMean                             // average over the sequence's tokens
	PoolMeanSqrtLen                      // sum over the tokens / sqrt(their count)
	PoolWeightedMean                     // sum of (position+1) * token / sum of (position+1)
	PoolLast                             // the last token

	PoolAll = PoolLast<<1 - 1 // every mode: the valid bits
)

var poolNames = [...]string{"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"}

// Count is the number of modes in the set.
func (p Pooling) Count() int {
	n := 0
	for m := p & PoolAll; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// Valid says p names at least one mode and nothing else.
func (p Pooling) Valid() bool { return p > 0 && p&^PoolAll == 0 }

// String is the sentence-transformers name of each mode, joined by "+" ("cls+mean").
func (p Pooling) String() string {
	var names []string
	for i, n := range poolNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if !p.Valid() {
		return fmt.Sprintf("Pooling(%d)", int(p))
	}
	return strings.Join(names, "+")
}

// PoolingByName returns the mode a sentence-transformers name stands for ("mean", "lasttoken", ...).
func PoolingByName(name string) (Pooling, bool) {
	for i, n := range poolNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Backend is a device that runs the encoder. A Backend is used by one goroutine at a time;
// the engine serialises forwards.
type Backend interface {
	// Name is the registry name ("cpu", "cuda", "metal").
	Name() string
	// Describe says which device and libraries are in use, for logs and `info`.
	Describe() string

	// Upload copies host float32 values into a new tensor in the storage type.
	Upload(src []float32) Tensor
	// UploadInt32 copies host indices into a new int32 tensor.
	UploadInt32(src []int32) Tensor
	// WriteInt32 overwrites the first len(src) elements of an int32 tensor.
	WriteInt32(dst Tensor, src []int32)
	// Alloc returns an uninitialised tensor of n elements in the storage type.
	Alloc(n int) Tensor
	// Free releases a tensor; using it afterwards is a bug.
	Free(t Tensor)
	// Download waits for pending work, then copies the first len(dst) elements of src to the host as float32.
	Download(dst []float32, src Tensor) error
	// Sync waits for pending work and returns the first error recorded since the last Sync.
	Sync() error
	// Close releases the device; the backend is unusable afterwards.
	Close() error

	// Embed computes out[t] = LayerNorm(word[ids[t]] + pos[positions[t]] + typ[types[t]]) * gamma + beta
	// for t < T. typ and types may be nil (no token-type embeddings). out is [T, H].
	Embed(out, ids, positions, types, word, pos, typ, gamma, beta Tensor, T, H int, eps float32)

	// Linear computes out = act(x @ w^T + bias): x [T, in], w [out, in], bias [out] (may be nil), out [T, out].
	Linear(out, x, w, bias Tensor, T, in, outDim int, act Activation)

	// Attention computes softmax(Q K^T / sqrt(HD)) V independently per sequence and head.
	// qkv is [T, 3H]: columns [0,H) are Q, [H,2H) K, [2H,3H) V, head h at columns h*HD..(h+1)*HD
	// of each. seqStarts (int32, B+1 entries) delimits the sequences; maxLen is the longest.
	// out is [T, H] with the heads concatenated.
	Attention(out, qkv, seqStarts Tensor, B, maxLen, NH, HD int)

	// AddLayerNorm computes out = LayerNorm(x + residual) * gamma + beta over rows of H,
	// statistics in float32. out may alias x or residual.
	AddLayerNorm(out, x, residual, gamma, beta Tensor, T, H int, eps float32)

	// Pool reduces each sequence of x [T, H] to one row of out [B, K*H], K = mode.Count(): the
	// modes' vectors side by side, in the order of the Pooling constants. The first skip tokens
	// of every sequence are left out (include_prompt=false), as sentence-transformers masks
	// them: a sequence left with no tokens pools to zeros, except cls (its first token) and max
	// (-inf). When normalize is set, each row is divided by max(||row||, 1e-12) as
	// torch.nn.functional.normalize does. With mode PoolCLS, skip 0 and seqStarts 0, 1, ..., B
	// it L2-normalises the rows of x.
	Pool(out, x, seqStarts Tensor, B, H int, mode Pooling, skip int, normalize bool)
}

// Graphs is optional: a backend that implements it can record the ops of a forward once and
// replay them as one launch (a CUDA graph), which removes the per-op launch cost that decides
// the time of small batches. The engine uses it when the backend has it.
type Graphs interface {
	// Replay runs the ops that record enqueues. The first call with a key records them into a
	// graph (record runs once; its ops are captured, not run) and launches the graph; later
	// calls with the same key launch the saved graph and do not call record. So the ops must
	// take the same tensors and sizes on every call with one key: the key (comparable) names
	// everything they depend on, and only the contents of their tensors change between calls
	// (written by WriteInt32 before the call, or by earlier ops). Inside record only ops may be
	// called: no Upload, WriteInt32, Alloc, Free, Download or Sync. Failures are reported like
	// the ops' own, by the next Sync or Download.
	Replay(key any, record func())
	// ForgetGraphs drops every saved graph; call it before freeing or replacing a tensor that
	// a graph uses.
	ForgetGraphs()
}

// MemoryReporter is optional: a device with its own memory (a GPU) says how much of it is free,
// so the engine can size its batches to fit.
type MemoryReporter interface {
	// FreeMemory returns the free and the total bytes of device memory.
	FreeMemory() (free, total uint64, err error)
	// StorageBytes is the size of one element in the storage type.
	StorageBytes() int
}

// AsyncDownloader is optional: a backend whose ops run asynchronously (CUDA) can start a
// download without waiting for it, so the engine enqueues batch k+1 before it waits for the
// rows of batch k and the device never idles between batches.
type AsyncDownloader interface {
	// DownloadAsync enqueues the copy of src's first n elements behind the pending work and
	// returns at once. It returns the first error recorded since the last Sync (the failure of
	// an op just enqueued), and then no Pending.
	DownloadAsync(src Tensor, n int) (Pending, error)
}

// Pending is a download under way. Exactly one Wait must follow (its buffer is held until then),
// by the goroutine that uses the backend at that time; ops may be enqueued in between.
type Pending interface {
	// Wait waits for the copy and converts its elements to float32 into dst (len(dst) of them;
	// a nil dst only releases the download). It returns the first error recorded since the last
	// Sync, such as a kernel fault.
	Wait(dst []float32) error
}

// Factory opens a backend. dtype is "auto", "float32", "tfloat32", "float16" or "bfloat16".
type Factory func(dtype string) (Backend, error)

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
)

// Register makes a backend available under name; backends call it from init.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// Names lists the registered backends.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var names []string
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// autoOrder is the preference of "auto": the first that opens wins.
var autoOrder = []string{"metal", "cuda", "cpu"}

// Open opens the named backend. "auto" tries Metal, then CUDA, then the CPU, and returns why
// each GPU backend was passed over in notes.
func Open(name, dtype string) (b Backend, notes []string, err error) {
	if name == "" {
		name = "auto"
	}
	if name != "auto" {
		mu.Lock()
		f, ok := factories[name]
		mu.Unlock()
		if !ok {
			return nil, nil, fmt.Errorf("unknown device %q: available are auto, %s", name, strings.Join(Names(), ", "))
		}
		b, err := f(dtype)
		return b, nil, err
	}
	for _, n := range autoOrder {
		mu.Lock()
		f, ok := factories[n]
		mu.Unlock()
		if !ok {
			continue
		}
		b, err := f(dtype)
		if err == nil {
			return b, notes, nil
		}
		notes = append(notes, fmt.Sprintf("%s unavailable: %v", n, err))
	}
	return nil, notes, fmt.Errorf("no backend could be opened: %s", strings.Join(notes, "; "))
}
