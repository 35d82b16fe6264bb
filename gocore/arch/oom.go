package arch

import (
	"fmt"

	"github.com/goembed/goembed/gocore/backend"
)

// Out-of-memory support. The engine answers backend.ErrOutOfMemory from a forward by calling
// Trim and running the batch in smaller pieces. A debug limit on the workspace makes the same
// failure happen on any backend (GOEMBED_DEBUG_OOM_AFTER), so that path is tested on the CPU.

// Trim frees the activation workspace (and the graphs that name it): after an out-of-memory
// failure it holds tensors sized for the batch that did not fit.
func (m *Bert) Trim()  { m.ws.trim() }
func (m *MPNet) Trim() { m.ws.trim() }

// SetAllocLimit makes workspace allocations fail with backend.ErrOutOfMemory once the
// workspace would hold more than bytes (4 per element, whatever the storage type); 0 or less
// removes the limit.
func (m *Bert) SetAllocLimit(bytes int64)  { m.ws.limit = bytes }
func (m *MPNet) SetAllocLimit(bytes int64) { m.ws.limit = bytes }

func (ws *workspace) trim() {
	if g, ok := ws.b.(backend.Graphs); ok {
		g.ForgetGraphs()
	}
	ws.free()
}

// reserve says whether name may grow to n elements under the limit, else records the failure.
func (ws *workspace) reserve(name string, n int) bool {
	if ws.limit <= 0 {
		return true
	}
	var live int64
	for k, t := range ws.bufs {
		if k != name {
			live += int64(t.Len())
		}
	}
	if need := 4 * (live + int64(n)); need > ws.limit {
		if ws.err == nil {
			ws.err = fmt.Errorf("%w: workspace tensor %q of %d elements would bring it to %d bytes, over the debug limit of %d (GOEMBED_DEBUG_OOM_AFTER)",
				backend.ErrOutOfMemory, name, n, need, ws.limit)
		}
		return false
	}
	return true
}

// failed returns the allocation failure of this forward's workspace requests, and clears it.
func (ws *workspace) failed() error {
	err := ws.err
	ws.err = nil
	return err
}
