package gocore

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/schedule"
)

// rowPipe runs batches of sequences and writes their sentence embeddings into rows of dst, one
// batch behind the device: batch k+1 is enqueued before the rows of batch k are waited for,
// checked and copied out, so a GPU does not idle between batches. One pipe serves several
// calls of run (the windows of a long list), so it does not drain between them either.
type rowPipe struct {
	e    *Encoder
	dst  []float32
	o    arch.Output
	tr   stageTrace
	k    int       // batches launched
	prev *inflight // the batch launched last, not yet finished
	*pipeBufs
}

// pipeBufs are a pipe's host memory, kept between calls (pipeBufPool): a 1000 x 128 call packs
// 1 MB of ids and positions and receives 1.5 MB of rows, and allocating them afresh made the
// garbage collector run about once a call.
type pipeBufs struct {
	in   arch.Batch   // run's packed batch: free again once launched
	rows [2][]float32 // batch k's rows land in rows[k%2] and stay there until copied out
}

var pipeBufPool = sync.Pool{New: func() any { return new(pipeBufs) }}

type inflight struct {
	pending backend.Pending // nil when the rows are in host already (a synchronous backend)
	host    []float32
	index   []int // the row of dst for each of host's rows
}

func (e *Encoder) newRowPipe(dst []float32, o arch.Output) *rowPipe {
	p := &rowPipe{e: e, dst: dst, o: o, pipeBufs: pipeBufPool.Get().(*pipeBufs)}
	p.tr.start()
	return p
}

// run launches the batches of the sequences ids[i], i in rows, of at most batchSize sequences
// and budget tokens; the last may still be in flight when it returns. It stops before a
// forward once ctx is done. A batch that runs out of device memory is run again, with the
// rest, under half its tokens (oom.go). Batch k+1 is packed here, on the calling goroutine,
// while the device runs batch k: a packing goroutine only added hand-offs to the caller's
// thread (tens of microseconds each on the GPU machine), and packing is far shorter than a
// forward.
func (p *rowPipe) run(ctx context.Context, ids [][]int32, rows []int, batchSize, budget int) error {
	plans := planRows(ids, rows, batchSize, budget)
	if _, async := p.e.sh.be.(backend.AsyncDownloader); async && len(plans) > 1 {
		plans = splitTail(ids, plans, tailRows) // not a call of one batch: a query waits at once
	}
	for k := range plans {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.step(packInto(&p.in, ids, plans[k]), plans[k].Index, len(plans) > 1)
		if errors.Is(err, backend.ErrOutOfMemory) {
			rest, smaller, err := splitAfterOOM(plans[k:], err, p.e.Device())
			if err != nil {
				return err
			}
			return p.run(ctx, ids, rest, batchSize, smaller)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// planRows schedules the sequences ids[i], i in rows; the batches' indices are into ids.
func planRows(ids [][]int32, rows []int, batchSize, budget int) []schedule.Batch {
	lengths := make([]int, len(rows))
	for j, i := range rows {
		lengths[j] = len(ids[i])
	}
	plans := schedule.Plan(lengths, batchSize, budget)
	for k := range plans {
		for n, j := range plans[k].Index {
			plans[k].Index[n] = rows[j]
		}
	}
	return plans
}

// tailRows is the most sequences the last of several batches holds on a device with
// asynchronous downloads (GOEMBED_TAIL_ROWS; 0 keeps the plan). The host converts and copies
// out each batch's rows once the device has finished it: for every batch but the last that
// overlaps the next batch's forward, so only the last batch's rows wait on the critical path.
// A short last batch shortens that wait (about 0.3 ms for 500 rows on the H100's host) for a
// little more device time.
var tailRows = envInt("GOEMBED_TAIL_ROWS", 32, 0)

// splitTail cuts the last batch of plans, when it holds more than 2n sequences, so that its n
// shortest (plans put the longest first) come last in a batch of their own.
func splitTail(ids [][]int32, plans []schedule.Batch, n int) []schedule.Batch {
	if n <= 0 || len(plans) == 0 || len(plans[len(plans)-1].Index) <= 2*n {
		return plans
	}
	last := plans[len(plans)-1]
	cut := len(last.Index) - n
	head := schedule.Batch{Index: last.Index[:cut:cut], MaxLen: last.MaxLen}
	tail := schedule.Batch{Index: last.Index[cut:]}
	for _, i := range head.Index {
		head.Tokens += len(ids[i])
	}
	for _, i := range tail.Index {
		tail.Tokens += len(ids[i])
		tail.MaxLen = max(tail.MaxLen, len(ids[i]))
	}
	return append(plans[:len(plans)-1:len(plans)-1], head, tail)
}

// step launches in, whose rows go to rows index of dst, then finishes the batch launched
// before it while the device runs in. async false waits for in's rows at once (one batch alone). After out of memory it finishes that earlier batch and
// returns the error, for the caller to split in.
func (p *rowPipe) step(in *arch.Batch, index []int, async bool) error {
	p.tr.packed(in.B(), in.T())
	H := p.e.Dim()
	host := slices.Grow(p.rows[p.k%2][:0], in.B()*H)[:in.B()*H]
	p.rows[p.k%2] = host
	pending, err := p.e.launch(in, host, p.o, async)
	p.tr.launched()
	if err != nil {
		if errors.Is(err, backend.ErrOutOfMemory) {
			if err := p.finish(); err != nil {
				return err
			}
		}
		return err
	}
	p.k++
	earlier := p.prev
	p.prev = &inflight{pending: pending, host: host, index: index}
	err = p.finishOne(earlier)
	p.tr.downloaded()
	return err
}

// finish waits for the batch in flight, if any, and copies its rows into dst.
func (p *rowPipe) finish() error {
	f := p.prev
	p.prev = nil
	return p.finishOne(f)
}

func (p *rowPipe) finishOne(f *inflight) error {
	if f == nil {
		return nil
	}
	p.tr.lap(nil)
	if err := p.e.finish(f.pending, f.host); err != nil {
		return err
	}
	p.tr.lap(&p.tr.lastWait)
	err := p.e.scatter(p.dst, f.host, f.index)
	p.tr.lap(&p.tr.lastCopy)
	return err
}

// flush finishes the batch in flight after run's err (nil: success) and returns the first error.
func (p *rowPipe) flush(err error) error {
	defer p.tr.print()
	if err == nil {
		err = p.finish()
		p.tr.downloaded()
	}
	return err
}

// release lets go of the download of a batch still in flight after a failure or a panic (its
// rows are not wanted); deferred by every user of a pipe.
func (p *rowPipe) release() {
	if p.prev != nil {
		p.e.finish(p.prev.pending, nil)
		p.prev = nil
	}
	if p.pipeBufs != nil {
		pipeBufPool.Put(p.pipeBufs)
		p.pipeBufs = nil
	}
}
