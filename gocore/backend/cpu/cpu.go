// Package cpu is the numerical reference backend: every op in float32 on the host, GEMMs through
// a BLAS loaded at run time (see blas.go). All parallelism is the backend's own: each op splits
// its work over GOMAXPROCS goroutines, and those call the BLAS single-threaded. Each GPU
// backend is tested against it (gocore/backend/backendtest).
//
// Statistics that decide accuracy (LayerNorm mean and variance, softmax sums, mean pooling,
// L2 norms) are accumulated in float64, so that the reference is closer to exact than any
// backend it judges.
//
// Ops never return errors: the first failure (a wrong length, an index out of range, a tensor
// of another backend) is recorded, later ops are skipped, and Sync or Download report it.
package cpu

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/goembed/goembed/gocore/backend"
)

func init() {
	backend.Register("cpu", func(dtype string) (backend.Backend, error) {
		switch dtype {
		case "", "auto", "float32":
			return New()
		}
		return nil, &backend.DTypeError{Msg: fmt.Sprintf("cpu: dtype %q is not supported: the CPU computes in float32 (use \"auto\" or \"float32\")", dtype)}
	})
}

// Backend runs the ops on the host. Like every backend it is used by one goroutine at a time;
// it fans work out to its own goroutines inside each op.
type Backend struct {
	blas    *blasLib
	workers int
	err     error
	closed  bool
	spare   [][]float32 // per-worker scratch, kept between ops (see scratch)
}

var _ backend.Backend = (*Backend)(nil)

// New opens a CPU backend with GOMAXPROCS workers and the first BLAS that loads (see
// SearchPaths); it fails only when GOEMBED_BLAS names a library that cannot be used.
func New() (*Backend, error) {
	lib, err := loadBLAS()
	if err != nil {
		return nil, err
	}
	return &Backend{blas: lib, workers: runtime.GOMAXPROCS(0)}, nil
}

// tensor is host memory: f for float32 storage, i for int32 indices (exactly one is set).
type tensor struct {
	f []float32
	i []int32
}

func (t *tensor) Len() int {
	if t.i != nil {
		return len(t.i)
	}
	return len(t.f)
}

func (b *Backend) Name() string { return "cpu" }

func (b *Backend) Describe() string {
	return fmt.Sprintf("cpu float32, %d workers; GEMM: %s", b.workers, b.blas.describe())
}

func (b *Backend) Upload(src []float32) backend.Tensor {
	return &tensor{f: append(make([]float32, 0, len(src)), src...)}
}

func (b *Backend) UploadInt32(src []int32) backend.Tensor {
	return &tensor{i: append(make([]int32, 0, len(src)), src...)}
}

func (b *Backend) WriteInt32(dst backend.Tensor, src []int32) {
	if d := b.ints("WriteInt32", "dst", dst, len(src)); d != nil {
		copy(d, src)
	}
}

func (b *Backend) Alloc(n int) backend.Tensor { return &tensor{f: make([]float32, n)} }

func (b *Backend) Free(t backend.Tensor) {
	if t, ok := t.(*tensor); ok {
		t.f, t.i = nil, nil
	}
}

func (b *Backend) Download(dst []float32, src backend.Tensor) error {
	if s := b.floats("Download", "src", src, len(dst)); s != nil {
		copy(dst, s)
	}
	return b.err
}

func (b *Backend) Sync() error {
	err := b.err
	b.err = nil
	return err
}

func (b *Backend) Close() error {
	b.closed = true
	b.spare = nil
	return nil
}

// failf records the first error; ops check b.ok() before doing anything.
func (b *Backend) failf(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("cpu: "+format, args...)
	}
}

func (b *Backend) ok() bool {
	if b.closed && b.err == nil {
		b.err = errors.New("cpu: backend used after Close")
	}
	return b.err == nil
}

// floats returns the float32 storage of t when it holds at least n elements, else records why
// not and returns nil.
func (b *Backend) floats(op, name string, t backend.Tensor, n int) []float32 {
	if !b.ok() {
		return nil
	}
	c, isCPU := t.(*tensor)
	switch {
	case t == nil:
		b.failf("%s: %s is nil", op, name)
	case !isCPU:
		b.failf("%s: %s is a %T, not a cpu tensor", op, name, t)
	case c.f == nil && c.i != nil:
		b.failf("%s: %s holds int32, want float32", op, name)
	case n < 0:
		b.failf("%s: %s would have %d elements", op, name, n)
	case len(c.f) < n:
		b.failf("%s: %s has %d elements, need %d (freed?)", op, name, len(c.f), n)
	default:
		return c.f[:n:n]
	}
	return nil
}

// optFloats is floats for an optional input: nil stays nil.
func (b *Backend) optFloats(op, name string, t backend.Tensor, n int) []float32 {
	if t == nil {
		return nil
	}
	return b.floats(op, name, t, n)
}

// ints is floats for int32 tensors.
func (b *Backend) ints(op, name string, t backend.Tensor, n int) []int32 {
	if !b.ok() {
		return nil
	}
	c, isCPU := t.(*tensor)
	switch {
	case t == nil:
		b.failf("%s: %s is nil", op, name)
	case !isCPU:
		b.failf("%s: %s is a %T, not a cpu tensor", op, name, t)
	case n < 0:
		b.failf("%s: %s would have %d elements", op, name, n)
	case c.i == nil && n > 0:
		b.failf("%s: %s holds float32 or was freed, want int32", op, name)
	case len(c.i) < n:
		b.failf("%s: %s has %d elements, need %d", op, name, len(c.i), n)
	default:
		return c.i[:n:n]
	}
	return nil
}

// seqStarts reads B+1 sequence offsets and checks they are non-decreasing from 0, at most maxLen
// apart (maxLen < 0: any) and end within T (T < 0: any). It returns nil on failure.
func (b *Backend) seqStarts(op string, t backend.Tensor, B, maxLen, T int) []int32 {
	s := b.ints(op, "seqStarts", t, B+1)
	if s == nil {
		return nil
	}
	if s[0] != 0 {
		b.failf("%s: seqStarts[0] = %d, want 0", op, s[0])
		return nil
	}
	for i := range B {
		n := int(s[i+1] - s[i])
		if n < 0 || (maxLen >= 0 && n > maxLen) {
			b.failf("%s: sequence %d has length %d (maxLen %d)", op, i, n, maxLen)
			return nil
		}
	}
	if T >= 0 && int(s[B]) > T {
		b.failf("%s: sequences end at token %d, beyond the %d tokens of the input", op, s[B], T)
		return nil
	}
	return s
}

// scratch returns b.workers buffers of at least n float32 each, one per worker of an op, kept
// for the next op so that a forward does not allocate (and collect) them layer after layer.
func (b *Backend) scratch(n int) [][]float32 {
	if len(b.spare) != b.workers {
		b.spare = make([][]float32, b.workers)
	}
	for w, s := range b.spare {
		if len(s) < n {
			b.spare[w] = make([]float32, n)
		}
	}
	return b.spare
}

// parallel calls f on contiguous chunks of [0, n), at least grain items each, one goroutine per
// chunk and at most b.workers chunks.
func (b *Backend) parallel(n, grain int, f func(lo, hi int)) {
	chunks := min(b.workers, (n+grain-1)/max(grain, 1))
	if chunks <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for c := range chunks {
		wg.Go(func() {
			defer b.recoverPanic()
			f(n*c/chunks, n*(c+1)/chunks)
		})
	}
	wg.Wait()
}

// recoverPanic records a panic in a worker goroutine as the backend's error: an unrecovered
// panic off the caller's goroutine would abort the whole (Python) process.
func (b *Backend) recoverPanic() {
	if r := recover(); r != nil {
		b.failf("internal error in a worker: %v", r)
	}
}

// tasks calls f(w, i) for every i in [0, n), handing items out one at a time to b.workers
// goroutines (w is the goroutine's index, for per-worker scratch); for work of uneven size.
func (b *Backend) tasks(n int, f func(w, i int)) {
	workers := min(b.workers, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			defer b.recoverPanic()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(w, i)
			}
		})
	}
	wg.Wait()
}
