//go:build darwin

package metalbridge

import (
	"unsafe"

	"github.com/ebitengine/purego/objc"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/half"
)

// Buffers live in shared storage: the CPU reads and writes them through contents, the GPU
// through the same pages. A fresh buffer is written at once (no command can use it yet); a
// buffer the open command buffer may use is written by a blit in command order (WriteInt32),
// and read only after the command buffer has completed (Download).

// contents is the CPU address of t's buffer (a plain pointer: no autorelease pool needed).
func (t *tensor) contents() unsafe.Pointer { return objc.Send[unsafe.Pointer](t.buf, selContents) }

// Upload converts src to the storage type straight into a new shared buffer.
func (b *Backend) Upload(src []float32) backend.Tensor {
	t := b.alloc(len(src), b.storage)
	if t.buf == 0 || len(src) == 0 {
		return t
	}
	switch b.storage {
	case kindF16:
		half.EncodeFloat16(unsafe.Slice((*uint16)(t.contents()), len(src)), src)
	default:
		copy(unsafe.Slice((*float32)(t.contents()), len(src)), src)
	}
	return t
}

func (b *Backend) UploadInt32(src []int32) backend.Tensor {
	t := b.alloc(len(src), kindI32)
	if t.buf != 0 && len(src) > 0 {
		copy(unsafe.Slice((*int32)(t.contents()), len(src)), src)
	}
	return t
}

// WriteInt32 overwrites dst[:len(src)]. With no batch open nothing on the GPU can use dst, so
// it writes the buffer at once; otherwise it copies src into a new buffer and encodes a blit
// from it, so that the ops already encoded read the old values and later ones the new.
func (b *Backend) WriteInt32(dst backend.Tensor, src []int32) {
	t := b.ints("WriteInt32", "dst", dst, len(src))
	if t == nil || len(src) == 0 {
		return
	}
	pool, ok := b.enter()
	if !ok {
		return
	}
	defer b.unlock(pool)
	if b.cmd == 0 {
		copy(unsafe.Slice((*int32)(t.contents()), len(src)), src)
		return
	}
	size := uint(4 * len(src))
	staging := b.dev.Send(selNewBufferBytes, unsafe.Pointer(&src[0]), size, uint(resourceStorageModeShared))
	if staging == 0 {
		b.failf("WriteInt32: newBufferWithBytes(%d bytes) failed", size)
		return
	}
	b.releaseOnDone(staging)
	b.endEncoder()
	blit := b.commandBuffer().Send(selBlitEncoder)
	blit.Send(selCopyFromBufferSize, staging, uint(0), t.buf, uint(0), size)
	blit.Send(selEndEncoding)
}

func (b *Backend) Alloc(n int) backend.Tensor { return b.alloc(n, b.storage) }

// alloc returns a tensor of n elements of kind k; on failure it records the error and returns
// an empty tensor (so callers never get a nil interface).
func (b *Backend) alloc(n int, k kind) *tensor {
	t := &tensor{n: n, kind: k, b: b}
	if n <= 0 {
		t.n = 0
		return t
	}
	size := uint64(n) * uint64(k.size())
	pool, ok := b.enter()
	if !ok {
		t.n = 0
		return t
	}
	defer b.unlock(pool)
	if size > b.maxBuf {
		b.failf("Alloc: %d bytes exceed the device's maxBufferLength %d", size, b.maxBuf)
		t.n = 0
		return t
	}
	if t.buf = b.dev.Send(selNewBufferLength, uint(size), uint(resourceStorageModeShared)); t.buf == 0 {
		b.failf("Alloc: newBufferWithLength(%d bytes) failed (out of memory?)", size)
		t.n = 0
		return t
	}
	b.live[t] = struct{}{}
	return t
}

// Free releases t's buffer. A command buffer that uses it keeps it alive until it completes.
func (b *Backend) Free(t backend.Tensor) {
	c, ok := t.(*tensor)
	if !ok || c == nil || c.b != b || c.buf == 0 || b.closed {
		return
	}
	p := b.lock()
	defer b.unlock(p)
	release(c.buf)
	delete(b.live, c)
	c.buf, c.n = 0, 0
}

// Download waits for the batch, then converts the first len(dst) elements of src to float32,
// reading the shared buffer in place.
func (b *Backend) Download(dst []float32, src backend.Tensor) error {
	t := b.floats("Download", "src", src, len(dst))
	if t == nil {
		return b.Sync()
	}
	pool, ok := b.enter()
	if !ok {
		return b.Sync()
	}
	defer b.unlock(pool)
	b.flush()
	if b.err != nil || len(dst) == 0 {
		return b.takeErr()
	}
	switch t.kind {
	case kindF16:
		half.DecodeFloat16(dst, unsafe.Slice((*uint16)(t.contents()), len(dst)))
	default:
		copy(dst, unsafe.Slice((*float32)(t.contents()), len(dst)))
	}
	return b.takeErr()
}

// Sync commits the batch, waits for it and returns the first error since the last Sync (a
// fault on the GPU shows up here).
func (b *Backend) Sync() error {
	if !b.closed && b.cmd != 0 {
		p := b.lock()
		b.flush()
		b.unlock(p)
	}
	return b.takeErr()
}

func (b *Backend) takeErr() error {
	err := b.err
	b.err = nil
	return err
}

// Close waits for pending work and releases the queue and every tensor not yet freed.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	err := b.Sync()
	p := b.lock()
	defer b.unlock(p)
	b.release()
	b.err = nil
	return err
}
