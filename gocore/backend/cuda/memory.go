package cuda

import (
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/half"
)

// Upload converts src to the storage type on the host and copies it to new device memory.
// The copy is ordered on the stream; the driver has read src when the call returns.
func (b *Backend) Upload(src []float32) backend.Tensor {
	if !b.notCapturing("Upload") {
		return &tensor{kind: b.storage, b: b}
	}
	t := b.alloc(len(src), b.storage)
	if t == nil || len(src) == 0 {
		return t
	}
	switch b.storage {
	case kindF16:
		h := make([]uint16, len(src))
		half.EncodeFloat16(h, src)
		b.copyIn(t.ptr, unsafe.Pointer(&h[0]), len(h)*2)
	case kindBF16:
		h := make([]uint16, len(src))
		half.EncodeBFloat16(h, src)
		b.copyIn(t.ptr, unsafe.Pointer(&h[0]), len(h)*2)
	default:
		b.copyIn(t.ptr, unsafe.Pointer(&src[0]), len(src)*4)
	}
	return t
}

func (b *Backend) UploadInt32(src []int32) backend.Tensor {
	if !b.notCapturing("UploadInt32") {
		return &tensor{kind: kindI32, b: b}
	}
	t := b.alloc(len(src), kindI32)
	if t != nil && len(src) > 0 {
		b.copyIn(t.ptr, unsafe.Pointer(&src[0]), len(src)*4)
	}
	return t
}

// WriteInt32 stages src in page-locked memory and enqueues its copy, so the call returns at
// once (a copy from pageable memory makes the driver stage it synchronously). The staged bytes
// must stay untouched until the copy has run, without waiting for the stream (the engine
// enqueues the next batch while the device still runs this one): so staging alternates between
// two page-locked halves (hostbuf.go), and a half is written again only after the event
// recorded when it was left has passed.
func (b *Backend) WriteInt32(dst backend.Tensor, src []int32) {
	t := b.ints("WriteInt32", "dst", dst, len(src))
	if t == nil || len(src) == 0 || !b.notCapturing("WriteInt32") || !b.enter() {
		return
	}
	defer b.leave()
	size := len(src) * 4
	u := &b.upload[b.uploadCur]
	if u.off+size > u.cap {
		if u.cap > 0 && !b.recordEvent(u) {
			return
		}
		b.uploadCur ^= 1
		u = &b.upload[b.uploadCur]
		if !b.reuse(u, size) {
			return
		}
	}
	p := unsafe.Add(u.ptr, u.off)
	copy(unsafe.Slice((*int32)(p), len(src)), src)
	u.off += (size + 15) &^ 15
	b.call("cuMemcpyHtoDAsync_v2", b.drv.cuMemcpyHtoDAsync, t.ptr, uintptr(p), uintptr(size), b.stream)
}

// synced notes that the stream is idle: every staged upload has been read.
func (b *Backend) synced() { b.upload[0].off, b.upload[1].off = 0, 0 }

func (b *Backend) Alloc(n int) backend.Tensor {
	if !b.notCapturing("Alloc") {
		return &tensor{kind: b.storage, b: b}
	}
	return b.alloc(n, b.storage)
}

// alloc returns a tensor of n elements of kind k, zero-filled (on the stream), so that rows no
// op writes, such as the padding rows of a shape bucket, hold finite values; on failure it
// records the error and returns an empty tensor (so callers never get a nil interface).
func (b *Backend) alloc(n int, k kind) *tensor {
	t := &tensor{n: n, kind: k, b: b}
	if n <= 0 {
		t.n = 0
		return t
	}
	if !b.enter() {
		t.n = 0
		return t
	}
	defer b.leave()
	if !b.call("cuMemAlloc_v2", b.drv.cuMemAlloc, uintptr(unsafe.Pointer(&t.ptr)), uintptr(n*k.size())) ||
		!b.call("cuMemsetD8Async", b.drv.cuMemsetD8Async, t.ptr, 0, uintptr(n*k.size()), b.stream) {
		t.n = 0
	}
	return t
}

// copyIn enqueues a host-to-device copy of size bytes on the stream. From pageable memory the
// driver stages src before it returns, so src may be reused at once.
func (b *Backend) copyIn(dst uintptr, src unsafe.Pointer, size int) {
	if !b.enter() {
		return
	}
	defer b.leave()
	b.call("cuMemcpyHtoDAsync_v2", b.drv.cuMemcpyHtoDAsync, dst, uintptr(src), uintptr(size), b.stream)
}

// Free waits for the stream (a kernel may still read t) and releases t's memory.
func (b *Backend) Free(t backend.Tensor) {
	c, ok := t.(*tensor)
	if !ok || c == nil || c.b != b || c.ptr == 0 || b.closed || !b.notCapturing("Free") || !b.enterAlways() {
		return
	}
	defer b.leave()
	purego.SyscallN(b.drv.cuStreamSynchronize, b.stream)
	b.synced()
	purego.SyscallN(b.drv.cuMemFree, c.ptr)
	c.ptr, c.n = 0, 0
}

// enterAlways is enter for cleanup paths: it proceeds even after an earlier error.
func (b *Backend) enterAlways() bool {
	err := b.err
	b.err = nil
	ok := b.enter()
	if b.err == nil {
		b.err = err
	}
	return ok
}

// Download enqueues the copy of src into page-locked staging memory behind the pending work,
// waits for the stream once, and converts the first len(dst) elements to float32.
func (b *Backend) Download(dst []float32, src backend.Tensor) error {
	if !b.notCapturing("Download") {
		return nil // reported by the Sync after the recording
	}
	t := b.floats("Download", "src", src, len(dst))
	if t == nil || len(dst) == 0 {
		return b.Sync()
	}
	if !b.enter() {
		return b.Sync()
	}
	defer b.leave()
	s := b.takeStaging(len(dst) * t.kind.size())
	if s == nil {
		return b.takeErr()
	}
	defer func() { s.busy = false }()
	if !b.call("cuMemcpyDtoHAsync_v2", b.drv.cuMemcpyDtoHAsync, uintptr(s.ptr), t.ptr, uintptr(len(dst)*t.kind.size()), b.stream) ||
		!b.call("cuStreamSynchronize", b.drv.cuStreamSynchronize, b.stream) {
		return b.takeErr()
	}
	b.synced()
	decode(dst, s.ptr, t.kind)
	return b.takeErr()
}

// decode converts len(dst) elements of kind k at p (page-locked staging) to float32.
func decode(dst []float32, p unsafe.Pointer, k kind) {
	switch k {
	case kindF16:
		half.DecodeFloat16(dst, unsafe.Slice((*uint16)(p), len(dst)))
	case kindBF16:
		half.DecodeBFloat16(dst, unsafe.Slice((*uint16)(p), len(dst)))
	default:
		copy(dst, unsafe.Slice((*float32)(p), len(dst)))
	}
}

// Sync waits for the stream and returns the first error since the last Sync (a kernel fault
// shows up here).
func (b *Backend) Sync() error {
	if b.closed || !b.notCapturing("Sync") {
		return b.takeErr()
	}
	if b.enter() {
		if b.call("cuStreamSynchronize", b.drv.cuStreamSynchronize, b.stream) {
			b.synced()
		}
		b.leave()
	}
	return b.takeErr()
}

func (b *Backend) takeErr() error {
	err := b.err
	b.err = nil
	return err
}

// Close waits for pending work and releases the device; tensors not freed go with the context.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	err := b.Sync()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.release()
	b.err = nil
	return err
}

var _ backend.MemoryReporter = (*Backend)(nil)

// FreeMemory returns the device's free and total bytes (cuMemGetInfo), for batch sizing.
func (b *Backend) FreeMemory() (free, total uint64, err error) {
	if !b.enter() {
		return 0, 0, b.takeErr()
	}
	defer b.leave()
	if !b.call("cuMemGetInfo_v2", b.drv.cuMemGetInfo, uintptr(unsafe.Pointer(&free)), uintptr(unsafe.Pointer(&total))) {
		return 0, 0, b.takeErr()
	}
	return free, total, nil
}

// StorageBytes is 2 for float16 and bfloat16 storage, 4 for float32.
func (b *Backend) StorageBytes() int { return b.storage.size() }
