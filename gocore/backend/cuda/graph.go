package cuda

import (
	"os"
	"unsafe"

	"github.com/ebitengine/purego"
)

// CUDA graphs (backend.Graphs). A forward of all-MiniLM-L6-v2 is 44 launches; enqueued one by
// one from Go each costs several microseconds of host time, which decides the latency of a
// small batch. Replay captures the launches of one shape bucket once (stream capture records
// every kernel with its argument values, cuBLASLt's GEMMs included) and then starts them all
// with one cuGraphLaunch.
//
// maxGraphs bounds the saved graphs; the least recently used goes first. A bucket's graph holds
// only host-side launch descriptions (device memory belongs to the workspace it names).
const maxGraphs = 64

type graph struct {
	exec uintptr // CUgraphExec
	used uint64  // b.graphTick at the last launch
}

// graphsOff is set by GOEMBED_CUDA_GRAPHS=0: Replay then runs record every time (for A/B
// timings and to rule graphs out when hunting a bug).
var graphsOff = os.Getenv("GOEMBED_CUDA_GRAPHS") == "0"

// Replay launches the graph saved under key, capturing record's ops into it on first use.
func (b *Backend) Replay(key any, record func()) {
	if b.err != nil {
		return
	}
	if b.capturing {
		b.failf("Replay inside a graph recording")
		return
	}
	if graphsOff {
		record()
		return
	}
	b.graphTick++
	g, ok := b.graphs[key]
	if !ok {
		if g = b.capture(record); g == nil {
			return
		}
		if len(b.graphs) >= maxGraphs {
			b.evictGraph()
		}
		b.graphs[key] = g
	}
	g.used = b.graphTick
	if !b.enter() {
		return
	}
	defer b.leave()
	b.call("cuGraphLaunch", b.drv.cuGraphLaunch, g.exec, b.stream)
}

// capture records the ops record enqueues on the stream into an executable graph; on failure
// it returns nil with b.err set.
func (b *Backend) capture(record func()) *graph {
	if !b.enter() {
		return nil
	}
	ok := b.call("cuStreamBeginCapture_v2", b.drv.cuStreamBeginCapture, b.stream, cuStreamCaptureModeRelaxed)
	b.leave()
	if !ok {
		return nil
	}
	b.capturing = true
	record() // each op enters and leaves; the capture belongs to the stream, not the thread
	b.capturing = false
	// End the capture even when an op failed, or the stream stays in capture mode.
	if !b.enterAlways() {
		return nil
	}
	defer b.leave()
	var cg uintptr
	r, _, _ := purego.SyscallN(b.drv.cuStreamEndCapture, b.stream, uintptr(unsafe.Pointer(&cg)))
	if b.err != nil || !b.check("cuStreamEndCapture", r) {
		if cg != 0 {
			purego.SyscallN(b.drv.cuGraphDestroy, cg)
		}
		return nil
	}
	defer purego.SyscallN(b.drv.cuGraphDestroy, cg)
	g := &graph{}
	if !b.call("cuGraphInstantiateWithFlags", b.drv.cuGraphInstantiate, uintptr(unsafe.Pointer(&g.exec)), cg, 0) {
		return nil
	}
	return g
}

// check records a driver result like call does.
func (b *Backend) check(name string, r uintptr) bool {
	if err := b.drv.check(name, r); err != nil {
		b.fail(err)
		return false
	}
	return true
}

func (b *Backend) evictGraph() {
	var oldest any
	var at uint64
	for k, g := range b.graphs {
		if oldest == nil || g.used < at {
			oldest, at = k, g.used
		}
	}
	if g := b.graphs[oldest]; g != nil {
		b.destroyGraph(g)
	}
	delete(b.graphs, oldest)
}

// ForgetGraphs destroys every saved graph. A graph still running is freed when it completes.
func (b *Backend) ForgetGraphs() {
	if len(b.graphs) == 0 || b.closed {
		return
	}
	for k, g := range b.graphs {
		b.destroyGraph(g)
		delete(b.graphs, k)
	}
}

func (b *Backend) destroyGraph(g *graph) {
	if !b.enterAlways() {
		return
	}
	defer b.leave()
	purego.SyscallN(b.drv.cuGraphExecDestroy, g.exec)
}

// notCapturing fails op when it is called inside a graph recording, where it would be
// captured into the graph (a copy) or break the capture (a synchronisation).
func (b *Backend) notCapturing(op string) bool {
	if b.capturing {
		b.failf("%s inside a graph recording (only ops may be recorded)", op)
		return false
	}
	return true
}
