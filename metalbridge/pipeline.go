//go:build darwin

package metalbridge

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/ebitengine/purego/objc"
)

// pipeline is one compute pipeline state and the limits Metal reports for it.
type pipeline struct {
	state      objc.ID // id<MTLComputePipelineState>, retained for the life of the process
	maxThreads int     // maxTotalThreadsPerThreadgroup
	simdWidth  int     // threadExecutionWidth
	staticTG   int     // staticThreadgroupMemoryLength, bytes
}

// library is the compiled shaders for one storage type: a pipeline per kernel name.
type library struct {
	key   string // sourceKey of the source
	pipes map[string]pipeline
}

var (
	libMu    sync.Mutex
	libCache = map[string]*library{} // by device and source key
)

// compile returns the pipelines of the kernels for storage suffix sfx on dev: from this
// process's cache, else by compiling librarySource with newLibraryWithSource:options:error:
// (taking 0.1 to 1 s) and building a pipeline per kernel. took is 0 for a cache hit. Metal keeps
// its own on-disk cache of compiled functions, so a second process mostly pays the front end.
func compile(rt *runtimeLibs, dev objc.ID, sfx string) (lib *library, took time.Duration, err error) {
	src, err := librarySource(sfx)
	if err != nil {
		return nil, 0, err
	}
	key := sourceKey(src)
	libMu.Lock()
	defer libMu.Unlock()
	cacheKey := fmt.Sprintf("%x/%s", uintptr(dev), key)
	if lib := libCache[cacheKey]; lib != nil {
		return lib, 0, nil
	}
	start := time.Now()
	opts := objc.ID(rt.classCompileOptions).Send(selNew)
	defer release(opts)
	opts.Send(selSetFastMathEnabled, false)
	var nserr objc.ID
	mtlLib := dev.Send(selNewLibrarySource, rt.nsString(src), opts, unsafe.Pointer(&nserr))
	if mtlLib == 0 {
		return nil, 0, fmt.Errorf("compiling shaders/*.metal (%s): %s", sfx, errorString(nserr, "no library and no error"))
	}
	defer release(mtlLib)
	lib = &library{key: key, pipes: map[string]pipeline{}}
	for _, name := range kernelNames(sfx) {
		fn := mtlLib.Send(selNewFunctionWithName, rt.nsString(name))
		if fn == 0 {
			return nil, 0, fmt.Errorf("shaders/*.metal (%s) define no kernel %s", sfx, name)
		}
		nserr = 0
		state := dev.Send(selNewPipeline, fn, unsafe.Pointer(&nserr))
		release(fn)
		if state == 0 {
			return nil, 0, fmt.Errorf("pipeline %s: %s", name, errorString(nserr, "no pipeline and no error"))
		}
		lib.pipes[name] = pipeline{
			state:      state,
			maxThreads: int(objc.Send[uint64](state, selMaxTotalThreads)),
			simdWidth:  int(objc.Send[uint64](state, selThreadExecWidth)),
			staticTG:   int(objc.Send[uint64](state, selStaticThreadgroup)),
		}
	}
	libCache[cacheKey] = lib
	return lib, max(time.Since(start), time.Nanosecond), nil
}

// commandBuffer returns the open command buffer, starting one when there is none.
func (b *Backend) commandBuffer() objc.ID {
	if b.cmd == 0 {
		b.cmd = b.queue.Send(selCommandBuffer).Send(selRetain)
	}
	return b.cmd
}

// computeEncoder returns the open compute encoder, opening one on the command buffer.
func (b *Backend) computeEncoder() objc.ID {
	if b.enc == 0 {
		b.enc = b.commandBuffer().Send(selComputeEncoder).Send(selRetain)
		b.encTG = false
	}
	return b.enc
}

// endEncoder closes the compute encoder, if one is open: MPS kernels and blits encode on the
// command buffer itself, and a command buffer is committed with no encoder open.
func (b *Backend) endEncoder() {
	if b.enc != 0 {
		b.enc.Send(selEndEncoding)
		release(b.enc)
		b.enc, b.encTG = 0, false
	}
}

// releaseOnDone keeps id alive until the command buffer has completed.
func (b *Backend) releaseOnDone(id objc.ID) { b.onDone = append(b.onDone, id) }

// flush commits the command buffer and waits for it, then releases what the batch held. A
// command buffer that failed on the GPU records its error.
func (b *Backend) flush() {
	if b.cmd == 0 {
		return
	}
	b.endEncoder()
	b.cmd.Send(selCommit)
	b.cmd.Send(selWaitUntilCompleted)
	if objc.Send[uint64](b.cmd, selStatus) == commandBufferStatusError {
		b.failf("command buffer failed: %s", errorString(b.cmd.Send(selError), "no error given"))
	}
	release(b.cmd)
	release(b.onDone...)
	b.cmd, b.onDone = 0, b.onDone[:0]
}

// dispatch encodes kernel name on the compute encoder: bufs bound at [[buffer(0)]],
// [[buffer(1)]], ... (nil for an absent optional input, bound to a dummy buffer), the argument
// struct args (argSize bytes, copied now) at the next index, tgMem bytes of dynamic threadgroup
// memory at [[threadgroup(0)]] (0 for kernels without), and groups threadgroups of threads
// threads. The caller has entered.
func (b *Backend) dispatch(name string, groups [3]int, threads, tgMem int, args unsafe.Pointer, argSize uintptr, bufs ...*tensor) {
	p, ok := b.pipes[name]
	switch {
	case !ok:
		b.failf("no pipeline %s", name)
		return
	case len(bufs) != len(bindings[family(name)])-1:
		b.failf("%s: %d buffers bound, the kernel takes %d", name, len(bufs), len(bindings[family(name)])-1)
		return
	case (tgMem > 0) != dynamicThreadgroup[family(name)]:
		b.failf("%s: dynamic threadgroup memory %d bytes, kernel takes it: %v", name, tgMem, dynamicThreadgroup[family(name)])
		return
	case threads < 1 || threads > p.maxThreads:
		b.failf("%s: %d threads a threadgroup, the pipeline allows 1..%d", name, threads, p.maxThreads)
		return
	case p.staticTG+threadgroupBytes(tgMem) > b.maxTG:
		b.failf("%s: %d bytes of threadgroup memory (%d static), the device has %d", name, p.staticTG+threadgroupBytes(tgMem), p.staticTG, b.maxTG)
		return
	case groups[0] == 0 || groups[1] == 0 || groups[2] == 0:
		return
	}
	// A length set for [[threadgroup(0)]] stays set for later dispatches of the encoder; a
	// kernel without dynamic memory gets a fresh encoder rather than rely on Metal ignoring it.
	if tgMem == 0 && b.encTG {
		b.endEncoder()
	}
	enc := b.computeEncoder()
	enc.Send(selSetPipeline, p.state)
	for i, t := range bufs {
		buf := b.dummy
		if t != nil && t.buf != 0 {
			buf = t.buf
		}
		enc.Send(selSetBuffer, buf, uint(0), uint(i))
	}
	enc.Send(selSetBytes, args, uint(argSize), uint(len(bufs)))
	if tgMem > 0 {
		enc.Send(selSetThreadgroupMem, uint(threadgroupBytes(tgMem)), uint(0))
		b.encTG = true
	}
	enc.Send(selDispatchGroups,
		mtlSize{uint64(groups[0]), uint64(groups[1]), uint64(groups[2])},
		mtlSize{uint64(threads), 1, 1})
}

// rowKernelOK checks the sizes of a kernel with one threadgroup per row of H floats in dynamic
// threadgroup memory.
func (b *Backend) rowKernelOK(op, kernel string, rows, H int) bool {
	if b.err != nil {
		return false
	}
	p, ok := b.pipes[kernel]
	if !ok {
		b.failf("no pipeline %s", kernel)
		return false
	}
	if most := (b.maxTG - p.staticTG) / 16 * 4; H <= 0 || H > most {
		b.failf("%s: H = %d outside 1..%d (threadgroup memory)", op, H, most)
		return false
	}
	return b.fitsInt32(op, rows, H)
}
