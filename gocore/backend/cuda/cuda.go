// Package cuda runs the encoder on an NVIDIA GPU. Everything is loaded at run time through
// purego, so building goembed needs neither cgo nor the CUDA SDK:
//
//   - the driver API (libcuda.so.1): the device's primary context, one non-blocking stream,
//     device memory, the kernels of shaders/;
//   - cuBLASLt: the GEMMs of Linear, with the bias fused as an epilogue;
//   - NVRTC: shaders/*.cu compiled once per (source hash, GPU architecture) and cached on disk
//     (see cacheDir).
//
// Where the libraries are looked for is in lib.go; if one is missing or there is no GPU, Open
// fails with an error that names every path tried, and device "auto" falls back to the CPU.
//
// Precision (the dtype of backend.Open): "auto" and "float16" store tensors as float16,
// "bfloat16" as bfloat16, "float32" and "tfloat32" as float32 ("tfloat32" lets the GEMMs round
// their inputs to TF32). Whatever the storage, GEMMs accumulate in float32 and the kernels do
// all their arithmetic (LayerNorm statistics, softmax, pooling) in float32.
//
// Threads: a CUDA context is current per OS thread, while goroutines move between threads. Each
// method locks its goroutine to its thread and makes the context current on entry (cheap: no
// driver round trip) and unlocks on return, so the backend needs no worker goroutine and may be
// called from any goroutine, one at a time. All work is enqueued on one stream in call order;
// Sync and Download wait for it. Kernel parameters are written into page-locked host memory
// allocated by the driver, never into movable Go memory.
package cuda

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/goembed/goembed/gocore/backend"
)

func init() {
	backend.Register("cuda", func(dtype string) (backend.Backend, error) {
		b, err := Open(dtype)
		if err != nil {
			return nil, err // not a nil *Backend inside a non-nil interface
		}
		return b, nil
	})
}

// kind is the element type of a tensor on the device.
type kind uint8

const (
	kindF32 kind = iota
	kindF16
	kindBF16
	kindI32
)

func (k kind) size() int {
	if k == kindF16 || k == kindBF16 {
		return 2
	}
	return 4
}

// suffix names the kernel variant of a storage kind: layernorm_f16, ...
func (k kind) suffix() string { return [...]string{"f32", "f16", "bf16", "i32"}[k] }

// tensor is device memory owned by one Backend.
type tensor struct {
	ptr  uintptr // CUdeviceptr; 0 when empty or freed
	n    int
	kind kind
	b    *Backend
}

func (t *tensor) Len() int { return t.n }

// libs are the process-wide libraries, loaded once (a failure is kept and returned every time).
type libs struct {
	drv   *driver
	lt    *cublasLt
	rtc   *nvrtc
	err   error
	count int // GPUs
}

var (
	libsOnce sync.Once
	theLibs  libs
)

func loadLibs() *libs {
	libsOnce.Do(func() {
		// dlerror's message is per thread: keep dlopen and dlerror on one.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		l := &theLibs
		var errs []string
		var err error
		if l.drv, err = loadDriver(); err != nil {
			errs = append(errs, "CUDA driver: "+err.Error())
		}
		if l.lt, err = loadCublasLt(); err != nil {
			errs = append(errs, "cuBLASLt: "+err.Error())
		}
		if l.rtc, err = loadNVRTC(); err != nil {
			errs = append(errs, "NVRTC: "+err.Error())
		}
		if l.drv != nil {
			// Initialise even when another library is missing, so the error says whether there
			// is a GPU at all.
			r, _, _ := purego.SyscallN(l.drv.cuInit, 0)
			if err := l.drv.check("cuInit", r); err != nil {
				errs = append([]string{"no usable GPU: " + err.Error()}, errs...)
			} else {
				var n int32
				r, _, _ = purego.SyscallN(l.drv.cuDeviceGetCount, uintptr(unsafe.Pointer(&n)))
				if err := l.drv.check("cuDeviceGetCount", r); err != nil {
					errs = append(errs, err.Error())
				} else if n == 0 {
					errs = append([]string{"no GPU found"}, errs...)
				}
				l.count = int(n)
			}
		}
		if len(errs) > 0 {
			l.err = errors.New(strings.Join(errs, "; "))
		}
	})
	return &theLibs
}

// Backend runs the ops on one GPU. Like every backend it is used by one goroutine at a time.
type Backend struct {
	drv *driver
	lt  *cublasLt
	rtc *nvrtc

	dtype string // as asked: "float16", "bfloat16", "float32", "tfloat32"
	// attentionSIMT keeps 16-bit attention on the CUDA-core kernel (GOEMBED_CUDA_ATTENTION=simt)
	attentionSIMT bool
	// attmWarpsOverride, when non-zero, sets the warps of an attention_mma block (benchmarks)
	attmWarpsOverride int
	// layerNormBlock keeps AddLayerNorm and Embed on the block-per-row kernels (GOEMBED_CUDA_LAYERNORM=block)
	layerNormBlock bool
	storage        kind // element type of float tensors

	dev      int32
	ctx      uintptr
	stream   uintptr
	name     string
	ccMajor  int
	ccMinor  int
	sms      int
	totalMem uint64
	cached   bool // the shaders came from the NVRTC cache

	modules []uintptr
	funcs   map[string]uintptr

	ltHandle  uintptr
	ltPref    uintptr
	workspace uintptr
	plans     map[gemmKey]*gemmPlan
	// tunedAlgos maps a product whose n is rounded up to a power of two to the configuration
	// that won its timing (gemmtune.go), so nearby token counts reuse it.
	tunedAlgos map[gemmKey][64]byte
	searches   int        // GEMM searches run (gemmsearch.go), for tests
	events     [2]uintptr // for timing GEMM candidates; created on first use

	// pinned is page-locked host memory: the kernel parameter block (paramBytes) followed by
	// cuBLASLt's alpha and beta. upload holds the sources of WriteInt32's asynchronous copies,
	// in two halves taken in turn; staging receives downloads, one buffer per download under
	// way (hostbuf.go).
	pinned    unsafe.Pointer
	upload    [2]hostBuf
	uploadCur int
	staging   []*hostBuf

	// graphs are the saved CUDA graphs by key (graph.go); capturing is set while Replay records.
	graphs    map[any]*graph
	graphTick uint64
	capturing bool

	// geluEpilogue makes Linear use cuBLASLt's GELU_BIAS epilogue (tanh approximation) for
	// ActGELU instead of its own exact erf kernel: on for 16-bit storage, see gelu.go.
	geluEpilogue bool

	p params // the launch being built (see params)

	err    error
	closed bool
}

var _ backend.Backend = (*Backend)(nil)

// Open opens device 0 with dtype "auto", "float16", "bfloat16", "float32" or "tfloat32".
func Open(dtype string) (*Backend, error) {
	var storage kind
	switch dtype {
	case "", "auto", "float16":
		dtype, storage = "float16", kindF16
	case "bfloat16":
		storage = kindBF16
	case "float32", "tfloat32":
		storage = kindF32
	default:
		return nil, fmt.Errorf("cuda: dtype %q is not supported (auto, float16, bfloat16, float32, tfloat32)", dtype)
	}
	l := loadLibs()
	if l.err != nil {
		return nil, fmt.Errorf("cuda: %w", l.err)
	}
	b := &Backend{drv: l.drv, lt: l.lt, rtc: l.rtc, dtype: dtype, storage: storage,
		funcs: map[string]uintptr{}, plans: map[gemmKey]*gemmPlan{}, tunedAlgos: map[gemmKey][64]byte{}, graphs: map[any]*graph{},
		geluEpilogue: storage != kindF32, attentionSIMT: os.Getenv("GOEMBED_CUDA_ATTENTION") == "simt",
		layerNormBlock: os.Getenv("GOEMBED_CUDA_LAYERNORM") == "block"}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := b.open(); err != nil {
		b.release()
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return b, nil
}

// open sets up device 0: context, stream, properties, kernels, cuBLASLt, host buffers.
func (b *Backend) open() error {
	d := b.drv
	call := func(name string, fn uintptr, args ...uintptr) error {
		r, _, _ := purego.SyscallN(fn, args...)
		return d.check(name, r)
	}
	if err := call("cuDeviceGet", d.cuDeviceGet, uintptr(unsafe.Pointer(&b.dev)), 0); err != nil {
		return err
	}
	if err := call("cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&b.ctx)), uintptr(b.dev)); err != nil {
		return err
	}
	if err := call("cuCtxSetCurrent", d.cuCtxSetCurrent, b.ctx); err != nil {
		return err
	}
	var name [256]byte
	if err := call("cuDeviceGetName", d.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), 256, uintptr(b.dev)); err != nil {
		return err
	}
	b.name = strings.TrimRight(string(name[:]), "\x00")
	attr := func(a int) int {
		var v int32
		purego.SyscallN(d.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(a), uintptr(b.dev))
		return int(v)
	}
	b.ccMajor, b.ccMinor = attr(cuDeviceAttrComputeCapabilityMajor), attr(cuDeviceAttrComputeCapabilityMinor)
	b.sms = attr(cuDeviceAttrMultiprocessorCount)
	purego.SyscallN(d.cuDeviceTotalMem, uintptr(unsafe.Pointer(&b.totalMem)), uintptr(b.dev))
	if b.storage == kindBF16 && b.ccMajor < 8 {
		return fmt.Errorf("bfloat16 needs compute capability 8.0 or newer; %s has %d.%d", b.name, b.ccMajor, b.ccMinor)
	}
	if err := call("cuStreamCreate", d.cuStreamCreate, uintptr(unsafe.Pointer(&b.stream)), cuStreamNonBlocking); err != nil {
		return err
	}

	arch := fmt.Sprintf("sm_%d%d", b.ccMajor, b.ccMinor)
	bins, cached, err := b.rtc.cubins(units(b.storage.suffix()), arch)
	if err != nil {
		return err
	}
	b.cached = cached
	us := units(b.storage.suffix())
	byFile := map[string]uintptr{}
	for i, bin := range bins {
		var m uintptr
		if err := call("cuModuleLoadData", d.cuModuleLoadData, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&bin[0]))); err != nil {
			return err
		}
		b.modules = append(b.modules, m)
		byFile[us[i].file] = m
	}
	for _, k := range kernelNames(b.storage.suffix()) {
		var f uintptr
		kn := cstr(k)
		if err := call("cuModuleGetFunction("+k+")", d.cuModuleGetFunction, uintptr(unsafe.Pointer(&f)), byFile[kernelFile(k)], uintptr(unsafe.Pointer(&kn[0]))); err != nil {
			return err
		}
		b.funcs[k] = f
	}

	if err := call("cuMemAlloc_v2", d.cuMemAlloc, uintptr(unsafe.Pointer(&b.workspace)), workspaceBytes); err != nil {
		return err
	}
	if err := call("cuMemAllocHost_v2", d.cuMemAllocHost, uintptr(unsafe.Pointer(&b.pinned)), pinnedBytes); err != nil {
		return err
	}
	lt := b.lt
	r, _, _ := purego.SyscallN(lt.cublasLtCreate, uintptr(unsafe.Pointer(&b.ltHandle)))
	if err := lt.check("cublasLtCreate", r); err != nil {
		return err
	}
	r, _, _ = purego.SyscallN(lt.cublasLtMatmulPreferenceCreate, uintptr(unsafe.Pointer(&b.ltPref)))
	if err := lt.check("cublasLtMatmulPreferenceCreate", r); err != nil {
		return err
	}
	ws := uint64(workspaceBytes)
	r, _, _ = purego.SyscallN(lt.cublasLtMatmulPreferenceSetAttribute, b.ltPref, ltPrefMaxWorkspaceBytes, uintptr(unsafe.Pointer(&ws)), 8)
	return lt.check("cublasLtMatmulPreferenceSetAttribute", r)
}

// release frees what open and later calls acquired; the caller has locked the OS thread.
func (b *Backend) release() {
	d := b.drv
	if b.ctx != 0 {
		purego.SyscallN(d.cuCtxSetCurrent, b.ctx)
	}
	if b.stream != 0 {
		purego.SyscallN(d.cuStreamSynchronize, b.stream)
	}
	for k, g := range b.graphs {
		purego.SyscallN(d.cuGraphExecDestroy, g.exec)
		delete(b.graphs, k)
	}
	b.freePlans()
	for _, e := range b.events {
		if e != 0 {
			purego.SyscallN(d.cuEventDestroy, e)
		}
	}
	if b.ltPref != 0 {
		purego.SyscallN(b.lt.cublasLtMatmulPreferenceDestroy, b.ltPref)
	}
	if b.ltHandle != 0 {
		purego.SyscallN(b.lt.cublasLtDestroy, b.ltHandle)
	}
	if b.workspace != 0 {
		purego.SyscallN(d.cuMemFree, b.workspace)
	}
	if b.pinned != nil {
		purego.SyscallN(d.cuMemFreeHost, uintptr(b.pinned))
	}
	b.freeHostBufs()
	for _, m := range b.modules {
		purego.SyscallN(d.cuModuleUnload, m)
	}
	if b.stream != 0 {
		purego.SyscallN(d.cuStreamDestroy, b.stream)
	}
	if b.ctx != 0 {
		purego.SyscallN(d.cuDevicePrimaryCtxRelease, uintptr(b.dev))
	}
	*b = Backend{drv: b.drv, lt: b.lt, rtc: b.rtc, dtype: b.dtype, err: b.err, closed: true}
}

func (b *Backend) Name() string { return "cuda" }

func (b *Backend) Describe() string {
	src := "compiled by NVRTC"
	if b.cached {
		src = "from the NVRTC cache"
	}
	return fmt.Sprintf("cuda %s: %s (sm_%d%d, %d SMs, %.0f GiB); storage %s, fp32 accumulate; "+
		"driver %s, cuBLASLt %d (%s), NVRTC %d.%d (%s), kernels %s",
		b.dtype, b.name, b.ccMajor, b.ccMinor, b.sms, float64(b.totalMem)/(1<<30), b.storage.suffix(),
		b.drv.path, b.lt.version, b.lt.path, b.rtc.major, b.rtc.minor, b.rtc.path, src)
}

// failf records the first error; later ops are skipped until Sync returns it.
func (b *Backend) failf(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("cuda: "+format, args...)
	}
}

func (b *Backend) fail(err error) {
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("cuda: %w", err)
	}
}

// enter starts every method that touches the device: it returns false (with b.err set) if the
// backend already failed or was closed; else the goroutine is locked to its OS thread with the
// context current, and the caller must defer b.leave().
func (b *Backend) enter() bool {
	if b.closed {
		b.failf("backend used after Close")
		return false
	}
	if b.err != nil {
		return false
	}
	runtime.LockOSThread()
	r, _, _ := purego.SyscallN(b.drv.cuCtxSetCurrent, b.ctx)
	if err := b.drv.check("cuCtxSetCurrent", r); err != nil {
		runtime.UnlockOSThread()
		b.fail(err)
		return false
	}
	return true
}

func (b *Backend) leave() { runtime.UnlockOSThread() }

// call runs a driver function and records its failure.
func (b *Backend) call(name string, fn uintptr, args ...uintptr) bool {
	r, _, _ := purego.SyscallN(fn, args...)
	if err := b.drv.check(name, r); err != nil {
		b.fail(err)
		return false
	}
	return true
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
		b.failf("%s: %s is a %T, not a cuda tensor", op, name, t)
	case c.b != b:
		b.failf("%s: %s belongs to another cuda backend", op, name)
	case c.kind != k:
		b.failf("%s: %s holds %s, want %s", op, name, c.kind.suffix(), k.suffix())
	case c.n < n || (n > 0 && c.ptr == 0):
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

// ptr is t's device address, 0 for nil.
func (t *tensor) devptr() uintptr {
	if t == nil {
		return 0
	}
	return t.ptr
}

// fitsInt32 checks the index arithmetic of the kernels (int32) for a [rows, cols] operand.
func (b *Backend) fitsInt32(op string, rows, cols int) bool {
	if rows < 0 || cols < 0 || int64(rows)*int64(cols) >= 1<<31 {
		b.failf("%s: %d x %d elements overflow the kernels' 32-bit indices", op, rows, cols)
		return false
	}
	return true
}
