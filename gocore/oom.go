package gocore

import (
	"fmt"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/schedule"
)

// Out of device memory. A forward that fails with backend.ErrOutOfMemory (a real CUDA
// allocation failure, or the debug limit GOEMBED_DEBUG_OOM_AFTER on the workspace) frees the
// workspace and is run again in pieces: that batch and every later one are planned again
// under half the failed batch's tokens, down to one sequence per forward. Only when a single sequence does not fit does the call fail, with an error that
// matches backend.ErrOutOfMemory (Python: MemoryError). The smaller budget lasts for the rest
// of the call; the next call starts again from the full one. The results are those of the
// same texts in smaller batches (equal up to the BLAS's rounding, which may depend on the
// number of rows of a GEMM).

// trimmer is an architecture that can free its activation workspace (arch.Bert).
type trimmer interface{ Trim() }

// allocLimiter is an architecture whose workspace takes a debug allocation limit (arch.Bert).
type allocLimiter interface{ SetAllocLimit(bytes int64) }

// SetDebugOOMAfter makes forwards fail as if out of device memory once their activation
// workspace would exceed bytes (4 per element); 0 or less turns it off. It applies to every
// Encoder sharing this one's loaded model. For tests of the out-of-memory path on any device.
func (e *Encoder) SetDebugOOMAfter(bytes int64) error {
	sh := e.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e.closed.Load() || sh.net == nil {
		return ErrClosed
	}
	l, ok := sh.net.(allocLimiter)
	if !ok {
		return fmt.Errorf("the %T architecture has no workspace limit", sh.net)
	}
	l.SetAllocLimit(bytes)
	if t, ok := sh.net.(trimmer); ok {
		t.Trim() // a workspace grown before the limit would hide it
	}
	return nil
}

// splitAfterOOM handles an out-of-memory failure of plans[0]: it returns the rows of plans
// (the failed batch and those after it) to run again under half plans[0]'s tokens, or an error
// when plans[0] is a single sequence.
func splitAfterOOM(plans []schedule.Batch, err error, device string) (rows []int, budget int, _ error) {
	failed := plans[0]
	if len(failed.Index) == 1 {
		return nil, 0, fmt.Errorf("%w: one sequence of %d tokens does not fit on %s (%v)",
			backend.ErrOutOfMemory, failed.Tokens, device, err)
	}
	for _, p := range plans {
		rows = append(rows, p.Index...)
	}
	return rows, max(failed.Tokens/2, 1), nil
}
