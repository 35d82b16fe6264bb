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

// gemmSearch is turned off by GOEMBED_CUDA_GEMM_SEARCH=0: large products then take the fastest
// of the heuristic's candidates, as small ones do.
var gemmSearch = os.Getenv("GOEMBED_CUDA_GEMM_SEARCH") != "0"

const (
	// tuneCandidates is how many of the heuristic's results are asked for (and timed).
	tuneCandidates = 8
	// tuneMinFlops: smaller products take a few microseconds, where timing costs more than it
	// can save.
	tuneMinFlops = 1 << 30
	// tuneReps launches of each candidate are timed after one untimed launch.
	tuneReps = 3
)

// tune sets p.algo to the fastest configuration found for this product. The candidates run on
// the call's own operands: each launch writes the same out from the same inputs, so the result
// is the chosen configuration's.
//
// The first product of a bucket times the heuristic's candidates and, when large enough,
// searches on from the fastest (gemmsearch.go; the search's winner is kept on disk, see
// searchFile). Later products of the bucket take its winner without timing when it is among
// their own heuristic candidates, and otherwise time their candidates and the winner: a
// configuration found at one n is not always the fastest at another (wave quantisation).
func (b *Backend) tune(p *gemmPlan, key gemmKey, out, x, w uintptr) {
	flops := 2 * key.m * key.n * key.k
	if gemmTune == "0" || flops < tuneMinFlops {
		return
	}
	bucket := key
	bucket.n = 1 << bits.Len(uint(key.n-1))
	won, ok := b.tunedAlgos[bucket]
	search := gemmSearch && flops >= searchMinFlops
	if !ok && search {
		if won, ok = b.loadSearch(bucket); ok {
			b.tunedAlgos[bucket] = won
		}
	}
	cands := p.cands
	if ok {
		for i := range p.cands {
			if [64]byte(p.cands[i][:64]) == won {
				p.algo = p.cands[i]
				return
			}
		}
		var c [heuristicResultSize]byte
		copy(c[:], won[:])
		if b.checkAlgo(p, &c) {
			cands = append(cands[:len(cands):len(cands)], c)
		}
	}
	if !b.tuneEvents() {
		return
	}
	best, bestMs := -1, float32(0)
	for i := range cands {
		ms, ok := b.timeAlgo(p, &cands[i], out, x, w)
		if !ok {
			continue // this candidate cannot run these operands; the others can
		}
		if gemmTune == "verbose" {
			fmt.Fprintf(os.Stderr, "goembed cuda: gemm %dx%dx%d epilogue %d candidate %d (%s): %.1f us\n",
				key.n, key.m, key.k, key.epilogue, i, describeAlgo(b.lt, &cands[i]), 1000*ms)
		}
		if best < 0 || ms < bestMs {
			best, bestMs = i, ms
		}
	}
	if best < 0 {
		return // keep the heuristic's pick; the real call reports any error
	}
	p.algo = cands[best]
	if ok {
		return // the bucket's winner stays what its first product found
	}
	if search {
		p.algo, bestMs = b.searchAround(p, key, p.algo, bestMs, out, x, w)
		b.searches++
		b.saveSearch(bucket, [64]byte(p.algo[:64]))
	}
	if gemmTune == "verbose" {
		fmt.Fprintf(os.Stderr, "goembed cuda: gemm %dx%dx%d epilogue %d: chose %s: %.1f us\n",
			key.n, key.m, key.k, key.epilogue, describeAlgo(b.lt, &p.algo), 1000*bestMs)
	}
	b.tunedAlgos[bucket] = [64]byte(p.algo[:64])
}

// timeAlgo returns the mean time in ms of tuneReps launches of algo after an untimed one.
func (b *Backend) timeAlgo(p *gemmPlan, algo *[heuristicResultSize]byte, out, x, w uintptr) (float32, bool) {
	d := b.drv
	if b.matmul(p, algo, out, x, w) != nil {
		return 0, false
	}
	purego.SyscallN(d.cuEventRecord, b.events[0], b.stream)
	for r := 0; r < tuneReps; r++ {
		if b.matmul(p, algo, out, x, w) != nil {
			return 0, false
		}
	}
	purego.SyscallN(d.cuEventRecord, b.events[1], b.stream)
	if r, _, _ := purego.SyscallN(d.cuEventSynchronize, b.events[1]); r != 0 {
		return 0, false
	}
	var ms float32
	if r, _, _ := purego.SyscallN(d.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), b.events[0], b.events[1]); r != 0 {
		return 0, false
	}
	return ms / tuneReps, true
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
