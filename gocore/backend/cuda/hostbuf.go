package cuda

import (
	"errors"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/goembed/goembed/gocore/backend"
)

// Page-locked host buffers and asynchronous downloads (backend.AsyncDownloader).
//
// The engine enqueues batch k+1 before it waits for the rows of batch k, so that the device
// never idles while the host converts rows or prepares the next batch (a CUPTI trace of the
// corpus showed the GPU idle about 1.2 ms between batches when every batch ended in a stream
// synchronisation). Host memory that a queued copy still reads or writes must then stay
// untouched without waiting for the whole stream: each buffer carries an event recorded after
// its last copy, and is reused only once that event has passed.

// cuEventDisableTiming makes events cheaper to record and wait for (CU_EVENT_DISABLE_TIMING).
const cuEventDisableTiming = 2

// hostBuf is page-locked host memory and the event that follows the last copy using it.
type hostBuf struct {
	ptr   unsafe.Pointer
	cap   int
	off   int     // upload halves: bytes written since the half was (re)started
	event uintptr // created on first record
	busy  bool    // staging: held by a Pending until its Wait
}

// recordEvent marks the end, on the stream, of the copies enqueued so far that use h.
func (b *Backend) recordEvent(h *hostBuf) bool {
	if h.event == 0 && !b.call("cuEventCreate", b.drv.cuEventCreate, uintptr(unsafe.Pointer(&h.event)), cuEventDisableTiming) {
		return false
	}
	return b.call("cuEventRecord", b.drv.cuEventRecord, h.event, b.stream)
}

// waitEvent waits until the copies recorded on h have run.
func (b *Backend) waitEvent(h *hostBuf) bool {
	return h.event == 0 || b.call("cuEventSynchronize", b.drv.cuEventSynchronize, h.event)
}

// reuse waits for h's recorded copies, then empties it; a buffer of fewer than need bytes is
// replaced by one of twice that (at least 1 MiB), so buffers grow rarely.
func (b *Backend) reuse(h *hostBuf, need int) bool {
	if !b.waitEvent(h) {
		return false
	}
	h.off = 0
	if h.cap >= need {
		return true
	}
	grow := max(2*need, 1<<20)
	if h.ptr != nil {
		purego.SyscallN(b.drv.cuMemFreeHost, uintptr(h.ptr))
		h.ptr, h.cap = nil, 0
	}
	if !b.call("cuMemAllocHost_v2", b.drv.cuMemAllocHost, uintptr(unsafe.Pointer(&h.ptr)), uintptr(grow)) {
		h.ptr = nil
		return false
	}
	h.cap = grow
	return true
}

// takeStaging returns a free staging buffer of at least size bytes, marked busy: the smallest
// free one that is large enough, else a free one grown, else a new one. A free buffer's last
// download has been waited for.
func (b *Backend) takeStaging(size int) *hostBuf {
	var fit, largest *hostBuf
	for _, s := range b.staging {
		if s.busy {
			continue
		}
		if s.cap >= size && (fit == nil || s.cap < fit.cap) {
			fit = s
		}
		if largest == nil || s.cap > largest.cap {
			largest = s
		}
	}
	pick := fit
	if pick == nil {
		pick = largest
	}
	if pick == nil {
		pick = &hostBuf{}
		b.staging = append(b.staging, pick)
	}
	if !b.reuse(pick, size) {
		return nil
	}
	pick.busy = true
	return pick
}

// freeHostBufs releases the upload halves and the staging buffers; the stream is idle.
func (b *Backend) freeHostBufs() {
	bufs := []*hostBuf{&b.upload[0], &b.upload[1]}
	bufs = append(bufs, b.staging...)
	for _, h := range bufs {
		if h.ptr != nil {
			purego.SyscallN(b.drv.cuMemFreeHost, uintptr(h.ptr))
		}
		if h.event != 0 {
			purego.SyscallN(b.drv.cuEventDestroy, h.event)
		}
		*h = hostBuf{}
	}
	b.staging = nil
}

var _ backend.AsyncDownloader = (*Backend)(nil)

// DownloadAsync enqueues the copy of src's first n elements into a staging buffer and returns
// without waiting (backend.AsyncDownloader). An error recorded by the ops enqueued since the
// last Sync is returned here, and then nothing is pending.
func (b *Backend) DownloadAsync(src backend.Tensor, n int) (backend.Pending, error) {
	if !b.notCapturing("DownloadAsync") {
		return nil, b.takeErr()
	}
	t := b.floats("DownloadAsync", "src", src, n)
	if t == nil || b.err != nil || !b.enter() {
		return nil, b.takeErr()
	}
	defer b.leave()
	size := n * t.kind.size()
	s := b.takeStaging(max(size, 1))
	if s == nil {
		return nil, b.takeErr()
	}
	if (size > 0 && !b.call("cuMemcpyDtoHAsync_v2", b.drv.cuMemcpyDtoHAsync, uintptr(s.ptr), t.ptr, uintptr(size), b.stream)) ||
		!b.recordEvent(s) {
		b.waitEvent(s) // the buffer may be free again only once nothing queued can write it
		s.busy = false
		return nil, b.takeErr()
	}
	return &pending{b: b, s: s, kind: t.kind, n: n}, nil
}

// pending is an asynchronous download (backend.Pending).
type pending struct {
	b    *Backend
	s    *hostBuf
	kind kind
	n    int
}

var errWaitedTwice = errors.New("cuda: Pending.Wait called twice")

// Wait waits for the copy's event, converts up to n elements into dst and frees the buffer.
func (p *pending) Wait(dst []float32) error {
	b, s := p.b, p.s
	if s == nil {
		return errWaitedTwice
	}
	p.s = nil
	if b.closed {
		return errors.New("cuda: backend closed while a download was pending")
	}
	if !b.enterAlways() {
		return b.takeErr()
	}
	defer b.leave()
	ok := b.waitEvent(s)
	s.busy = false
	if ok && dst != nil {
		if len(dst) > p.n {
			dst = dst[:p.n]
		}
		decode(dst, s.ptr, p.kind)
	}
	return b.takeErr()
}
