package cuda

import (
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"github.com/ebitengine/purego"
)

// GEMM autotuning. cuBLASLt's heuristic ranks algorithms with a model, and for the MiniLM
// shapes on the H100 its first pick ran the up-projection with the GELU epilogue at 257
// TFLOP/s while the down-projection of the same size reached 567. So the first call of a
// large product times the heuristic's top candidates on its real operands and keeps the
// fastest. It never runs under graph capture (no synchronisation is possible there); captured
// buckets are small, launch-bound products where the heuristic's pick is kept.
//
// GOEMBED_CUDA_GEMM_TUNE=0 turns tuning off; =verbose prints each timing to stderr.
var gemmTune = os.Getenv("GOEMBED_CUDA_GEMM_TUNE")

const (
	// tuneCandidates is how many of the heuristic's results are asked for (and timed).
	tuneCandidates = 8
	// tuneMinFlops: smaller products take a few microseconds, where timing costs more than it
	// can save.
	tuneMinFlops = 1 << 30
	// tuneReps launches of each candidate are timed after one untimed launch.
	tuneReps = 3
)

// tune sets p.algo to the fastest of p.cands for this product. The candidates run on the
// call's own operands: each launch writes the same out from the same inputs, so the result
// is the chosen algorithm's. Products whose n rounds up to the same power of two share the
// winner when it is among their candidates.
func (b *Backend) tune(p *gemmPlan, key gemmKey, out, x, w uintptr) {
	if gemmTune == "0" || len(p.cands) < 2 || 2*key.m*key.n*key.k < tuneMinFlops {
		return
	}
	shared := key
	shared.n = 1 << bits.Len(uint(key.n-1))
	if won, ok := b.tunedAlgos[shared]; ok {
		for i := range p.cands {
			if [64]byte(p.cands[i][:64]) == won {
				p.algo = p.cands[i]
				return
			}
		}
	}
	if !b.tuneEvents() {
		return
	}
	d := b.drv
	best, bestMs := -1, float32(0)
	for i := range p.cands {
		if b.matmul(p, &p.cands[i], out, x, w) != nil {
			continue // this candidate cannot run these operands; the others can
		}
		purego.SyscallN(d.cuEventRecord, b.events[0], b.stream)
		ok := true
		for r := 0; r < tuneReps && ok; r++ {
			ok = b.matmul(p, &p.cands[i], out, x, w) == nil
		}
		purego.SyscallN(d.cuEventRecord, b.events[1], b.stream)
		if r, _, _ := purego.SyscallN(d.cuEventSynchronize, b.events[1]); r != 0 || !ok {
			continue
		}
		var ms float32
		if r, _, _ := purego.SyscallN(d.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), b.events[0], b.events[1]); r != 0 {
			continue
		}
		if gemmTune == "verbose" {
			fmt.Fprintf(os.Stderr, "goembed cuda: gemm %dx%dx%d epilogue %d candidate %d: %.1f us\n",
				key.n, key.m, key.k, key.epilogue, i, 1000*ms/tuneReps)
		}
		if best < 0 || ms < bestMs {
			best, bestMs = i, ms
		}
	}
	if best < 0 {
		return // keep the heuristic's pick; the real call reports any error
	}
	p.algo = p.cands[best]
	b.tunedAlgos[shared] = [64]byte(p.algo[:64])
}

// tuneEvents creates the two timing events on first use.
func (b *Backend) tuneEvents() bool {
	for i := range b.events {
		if b.events[i] == 0 && !b.call("cuEventCreate", b.drv.cuEventCreate, uintptr(unsafe.Pointer(&b.events[i])), 0) {
			return false
		}
	}
	return true
}
