//go:build darwin

package metalbridge

import (
	"fmt"
	"runtime"
	"time"

	"github.com/ebitengine/purego/objc"

	"github.com/goembed/goembed/gocore/backend"
)

func init() {
	backend.Register("metal", func(dtype string) (backend.Backend, error) {
		b, err := Open(dtype)
		if err != nil {
			return nil, err // not a nil *Backend inside a non-nil interface
		}
		return b, nil
	})
}

// kind is the element type of a tensor.
type kind uint8

const (
	kindF32 kind = iota
	kindF16
	kindI32
)

func (k kind) size() int {
	if k == kindF16 {
		return 2
	}
	return 4
}

// suffix names the kernel variant of a storage kind: layernorm_f16, ...
func (k kind) suffix() string { return [...]string{"f32", "f16", "i32"}[k] }

// mpsType is the MPSDataType of a float storage kind.
func (k kind) mpsType() uint32 {
	if k == kindF16 {
		return mpsDataTypeFloat16
	}
	return mpsDataTypeFloat32
}

// tensor is one MTLBuffer (shared storage) owned by one Backend.
type tensor struct {
	buf  objc.ID // id<MTLBuffer>, retained; 0 when empty or freed
	n    int
	kind kind
	b    *Backend
}

func (t *tensor) Len() int { return t.n }

// Backend runs the ops on the system default Metal device. Like every backend it is used by
// one goroutine at a time.
type Backend struct {
	rt *runtimeLibs

	dtype   string // as asked: "float16", "float32", "tfloat32"
	storage kind   // element type of float tensors

	dev        objc.ID // id<MTLDevice>
	queue      objc.ID // id<MTLCommandQueue>
	name       string
	unified    bool
	maxTG      int    // maxThreadgroupMemoryLength, bytes
	maxBuf     uint64 // maxBufferLength, bytes
	workingSet uint64 // recommendedMaxWorkingSetSize, bytes

	pipes       map[string]pipeline // by kernel name
	sourceKey   string
	compileTime time.Duration // 0 when the pipelines came from this process's cache

	dummy objc.ID // a 16-byte buffer bound for absent optional inputs
	ones  *tensor // ones[T] in the storage type, the left factor of Linear's bias GEMM
	gemms map[gemmKey]objc.ID
	live  map[*tensor]struct{}

	// The batch being encoded: the open command buffer and compute encoder (both retained; 0
	// when none), whether the encoder has dynamic threadgroup memory set, and the objects to
	// release once the command buffer has completed.
	cmd    objc.ID
	enc    objc.ID
	encTG  bool
	onDone []objc.ID

	err    error
	closed bool
}

var _ backend.Backend = (*Backend)(nil)

// Open opens the system default Metal device with dtype "auto", "float16", "float32" or
// "tfloat32" (computed as float32).
func Open(dtype string) (*Backend, error) {
	var storage kind
	switch dtype {
	case "", "auto", "float16":
		dtype, storage = "float16", kindF16
	case "float32", "tfloat32":
		storage = kindF32
	case "bfloat16":
		return nil, fmt.Errorf("metal: dtype bfloat16 is not supported yet (auto, float16, float32)")
	default:
		return nil, fmt.Errorf("metal: dtype %q is not supported (auto, float16, float32, tfloat32)", dtype)
	}
	rt := loadRuntime()
	if rt.err != nil {
		return nil, fmt.Errorf("metal: %w", rt.err)
	}
	b := &Backend{rt: rt, dtype: dtype, storage: storage, dev: rt.device,
		gemms: map[gemmKey]objc.ID{}, live: map[*tensor]struct{}{}}
	pool := b.lock()
	defer b.unlock(pool)
	if err := b.open(); err != nil {
		b.release()
		return nil, fmt.Errorf("metal: %w", err)
	}
	return b, nil
}

// open queries the device, creates the queue and the pipelines.
func (b *Backend) open() error {
	d := b.dev
	b.name = goString(d.Send(selName))
	b.unified = objc.Send[bool](d, selHasUnifiedMemory)
	b.maxTG = int(objc.Send[uint64](d, selMaxThreadgroupMemory))
	b.maxBuf = objc.Send[uint64](d, selMaxBufferLength)
	b.workingSet = objc.Send[uint64](d, selRecommendedWorkingSet)
	if b.queue = d.Send(selNewCommandQueue); b.queue == 0 {
		return fmt.Errorf("%s: newCommandQueue failed", b.name)
	}
	lib, compiled, err := compile(b.rt, d, b.storage.suffix())
	if err != nil {
		return err
	}
	b.pipes, b.sourceKey, b.compileTime = lib.pipes, lib.key, compiled
	for name, p := range b.pipes {
		if p.simdWidth != simdWidth {
			return fmt.Errorf("%s: %s runs %d-wide SIMD groups; the kernels assume %d", b.name, name, p.simdWidth, simdWidth)
		}
	}
	if b.dummy = d.Send(selNewBufferLength, uint(16), uint(resourceStorageModeShared)); b.dummy == 0 {
		return fmt.Errorf("%s: newBufferWithLength failed", b.name)
	}
	return nil
}

// release frees what open and later calls acquired; the caller holds the thread and a pool.
func (b *Backend) release() {
	if b.cmd != 0 {
		b.flush()
	}
	for t := range b.live {
		release(t.buf)
		t.buf, t.n = 0, 0
	}
	for k, g := range b.gemms {
		release(g)
		delete(b.gemms, k)
	}
	release(b.dummy, b.queue)
	*b = Backend{rt: b.rt, dtype: b.dtype, err: b.err, closed: true}
}

func (b *Backend) Name() string { return "metal" }

func (b *Backend) Describe() string {
	mem := "discrete memory"
	if b.unified {
		mem = "unified memory"
	}
	src := fmt.Sprintf("compiled in %.2fs", b.compileTime.Seconds())
	if b.compileTime == 0 {
		src = "from this process's pipeline cache"
	}
	note := ""
	if b.dtype == "tfloat32" {
		note = " (Apple GPUs have no TF32: float32)"
	}
	return fmt.Sprintf("metal %s%s: %s (%s, %.1f GiB working set, %d KiB threadgroup memory); storage %s, "+
		"fp32 kernel arithmetic; GEMMs by MPSMatrixMultiplication; kernels from shaders/*.metal (source %s) %s",
		b.dtype, note, b.name, mem, float64(b.workingSet)/(1<<30), b.maxTG/1024, b.storage.suffix(), b.sourceKey, src)
}

// failf records the first error; later ops are skipped until Sync returns it.
func (b *Backend) failf(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("metal: "+format, args...)
	}
}

// lock pins the goroutine to its OS thread and opens an autorelease pool there (pools are per
// thread); unlock drains it. Objects the runtime hands out autoreleased are valid in between.
func (b *Backend) lock() uintptr {
	runtime.LockOSThread()
	return b.rt.poolPush()
}

func (b *Backend) unlock(pool uintptr) {
	b.rt.poolPop(pool)
	runtime.UnlockOSThread()
}

// enter starts every op: false (with b.err set) if the backend already failed or was closed;
// else the caller must defer b.unlock on the returned pool.
func (b *Backend) enter() (uintptr, bool) {
	if b.closed {
		b.failf("backend used after Close")
		return 0, false
	}
	if b.err != nil {
		return 0, false
	}
	return b.lock(), true
}

// tensorOf returns t as a tensor of this backend holding at least n elements of kind k, else
// records why not and returns nil.
func (b *Backend) tensorOf(op, name string, t backend.Tensor, n int, k kind) *tensor {
	if b.err != nil {
		return nil
	}
	c, ok := t.(*tensor)
	switch {
	case t == nil || (ok && c == nil):
		b.failf("%s: %s is nil", op, name)
	case !ok:
		b.failf("%s: %s is a %T, not a metal tensor", op, name, t)
	case c.b != b:
		b.failf("%s: %s belongs to another metal backend", op, name)
	case c.kind != k:
		b.failf("%s: %s holds %s, want %s", op, name, c.kind.suffix(), k.suffix())
	case c.n < n || (n > 0 && c.buf == 0):
		b.failf("%s: %s has %d elements, need %d (freed?)", op, name, c.n, n)
	default:
		return c
	}
	return nil
}

// floats is tensorOf for float tensors in the storage type; ints for int32 tensors.
func (b *Backend) floats(op, name string, t backend.Tensor, n int) *tensor {
	return b.tensorOf(op, name, t, n, b.storage)
}

func (b *Backend) ints(op, name string, t backend.Tensor, n int) *tensor {
	return b.tensorOf(op, name, t, n, kindI32)
}

// optFloats is floats for an optional input: nil gives a nil tensor and ok.
func (b *Backend) optFloats(op, name string, t backend.Tensor, n int) (*tensor, bool) {
	if t == nil {
		return nil, b.err == nil
	}
	c := b.floats(op, name, t, n)
	return c, c != nil
}

// fitsInt32 checks the index arithmetic of the kernels (int32) for a [rows, cols] operand.
func (b *Backend) fitsInt32(op string, rows, cols int) bool {
	if rows < 0 || cols < 0 || int64(rows)*int64(cols) >= 1<<31 {
		b.failf("%s: %d x %d elements overflow the kernels' 32-bit indices", op, rows, cols)
		return false
	}
	return true
}
