package gocore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/schedule"
	"github.com/goembed/goembed/gocore/tokenize"
)

// pipelineWindow is how many texts one tokenization step takes when a GPU embeds a long list.
// Tokenizing is CPU work on all cores and a GPU forward mostly waits for the device, so the
// next window is tokenized while the current one runs: the GPU does not wait for the whole
// list's tokenization first.
var pipelineWindow = envInt("GOEMBED_PIPELINE_WINDOW", 4096, 1)

// pipelineMin is the fewest texts a GPU encode tokenizes in windows (GOEMBED_PIPELINE_MIN).
// From a few hundred texts on, the device starts on the first window while the next ones are
// tokenized (1,000 texts of 128 tokens take about 3 ms to tokenize on the H100's host, a third
// of the forward); below, the goroutines' hand-offs cost about what they would hide.
var pipelineMin = envInt("GOEMBED_PIPELINE_MIN", 512, 2)

// pipelineOnCPU lets tests run the pipeline on the CPU backend (where tokenizing and the
// forwards compete for the same cores, so it is off).
var pipelineOnCPU = false

// pipelined says whether EncodeWith tokenizes ahead in windows.
func (e *Encoder) pipelined(n int) bool {
	return n >= min(pipelineMin, pipelineWindow+1) && (e.Device() != "cpu" || pipelineOnCPU)
}

// traceStages (GOEMBED_TRACE=1) prints where a pipelined call's time went, to stderr.
var traceStages = os.Getenv("GOEMBED_TRACE") == "1"

// encodePipelined is EncodeWith for a GPU and more than one window of texts, in three stages
// that overlap: a goroutine tokenizes window k+1 while a second one finds the duplicates of
// window k, schedules its batches and packs them, and this goroutine only launches batches and
// copies out rows. One row pipe takes the batches of every window, so the device does not drain
// between windows. Duplicates are found across the whole call, as in encodeIDs.
func (e *Encoder) encodePipelined(ctx context.Context, feed *TextFeed, dst []float32, o EncodeOptions, out arch.Output) error {
	type window struct {
		start, end int
		err        error
		took       time.Duration
	}
	type job struct {
		plan schedule.Batch
		in   *arch.Batch
		err  error
	}
	n := feed.Len()
	ids := make([][]int32, n)
	size := pipelineWindow            // read once: the goroutines may outlive an early return
	windows := make(chan window, 1)   // one window tokenized ahead
	jobs := make(chan job, 2)         // two batches packed ahead
	free := make(chan *arch.Batch, 4) // launched batches, whose slices the batcher reuses
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stop)
		feed.Abort(errCallEnded) // a tokenizer waiting for texts that will not come
		wg.Wait()                // the tokenizer writes o.Truncated, which the caller may free once this returns
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(windows)
		// The first window is small (an eighth of the call, at most an eighth of a window), so
		// the device starts after a short wait; each next window is twice the last, up to size,
		// and is tokenized while the device works through the batches before it.
		for start, step := 0, max(1, min(size/8, n/8)); start < n; start, step = start+step, min(2*step, size) {
			w := window{start: start, end: min(start+step, n)}
			texts, err := feed.upTo(w.end)
			t0 := time.Now()
			if w.err = err; err == nil {
				w.err = e.tokenizeWindow(texts, ids, w.start, w.end, o)
			}
			w.took = time.Since(t0)
			select {
			case windows <- w:
			case <-stop:
				return
			}
			if w.err != nil {
				return
			}
		}
	}()
	var tokenizing time.Duration // written by the batcher, read after jobs is closed
	var budget atomic.Int64      // lowered after an out-of-memory failure
	budget.Store(int64(e.tokenBudget()))
	d := newDeduper(n)
	_, async := e.sh.be.(backend.AsyncDownloader)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for w := range windows {
			if w.err != nil {
				select {
				case jobs <- job{err: w.err}:
				case <-stop:
				}
				return
			}
			tokenizing += w.took
			plans := planRows(ids, d.add(ids, w.start, w.end), o.BatchSize, int(budget.Load()))
			if w.end == n && async && len(plans) > 0 {
				plans = splitTail(ids, plans, tailRows) // the call's last batch (rowpipe.go)
			}
			for _, plan := range plans {
				var in *arch.Batch
				select {
				case in = <-free:
				default:
					in = &arch.Batch{}
				}
				select {
				case jobs <- job{plan: plan, in: packInto(in, ids, plan)}:
				case <-stop:
					return
				}
			}
		}
	}()
	t0 := time.Now()
	var waiting time.Duration
	p := e.newRowPipe(dst, out)
	defer p.release()
	for {
		tw := time.Now()
		j, ok := <-jobs
		waiting += time.Since(tw)
		if !ok {
			break
		}
		if j.err != nil {
			return j.err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := p.step(j.in, j.plan.Index, true)
		select {
		case free <- j.in: // launched: free for the batcher to pack into
		default:
		}
		if errors.Is(err, backend.ErrOutOfMemory) {
			var rows []int
			var smaller int
			if rows, smaller, err = splitAfterOOM([]schedule.Batch{j.plan}, err, e.Device()); err == nil {
				budget.Store(int64(smaller)) // for the windows not yet scheduled
				err = p.run(ctx, ids, rows, o.BatchSize, smaller)
			}
		}
		if err != nil {
			return err
		}
	}
	if err := p.flush(nil); err != nil {
		return err
	}
	d.copyDuplicates(dst, e.Dim())
	if traceStages {
		fmt.Fprintf(os.Stderr, "goembed trace: %d texts in %v: tokenize %v (in a goroutine), waiting for packed batches %v\n",
			n, time.Since(t0).Round(time.Millisecond), tokenizing.Round(time.Millisecond), waiting.Round(time.Millisecond))
	}
	return nil
}

// errCallEnded aborts the feed of a call that has returned.
var errCallEnded = errors.New("the encode call has ended")

// tokenizeProcs is how many goroutines tokenize a window while the forwards run: all cores but
// two. Go's scheduler has no priorities, so with a tokenizer goroutine on every core the
// goroutine that launches the next batch waited up to milliseconds for a core (the GPU idled
// about 7 ms at each window in a CUPTI trace of the corpus).
func tokenizeProcs() int { return max(1, runtime.GOMAXPROCS(0)-2) }

// tokenizeWindow fills ids[start:end] (and o.Truncated[start:end]); an error names the text's
// index in the whole call. A panic becomes an error: this runs on its own goroutine, where one
// would end the process.
func (e *Encoder) tokenizeWindow(texts []string, ids [][]int32, start, end int, o EncodeOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while tokenizing: %v", r)
		}
	}()
	w, truncated, err := e.tokenizeOn(texts[start:end], o.Prompt, o.MaxSeqLength, tokenizeProcs())
	var te *tokenize.TextError
	if errors.As(err, &te) {
		te.Index += start
	}
	if err != nil {
		return err
	}
	copy(ids[start:end], w)
	if o.Truncated != nil {
		copy(o.Truncated[start:end], truncated)
	}
	return nil
}

// envInt reads a positive integer setting from the environment (for measuring alternatives
// without a rebuild); unset or below min keeps def.
func envInt(name string, def, min int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= min {
		return v
	}
	return def
}

// stageTrace adds up, when traceStages is on, where the host's time goes per batch of
// encodeRows: waiting for the packed batch, enqueueing its forward and download (on a GPU:
// launches, which overlap the device's work), and waiting for the previous batch's rows and
// copying them out (on a GPU: while the device runs the batch just enqueued).
type stageTrace struct {
	batches, seqs, tokens  int
	t                      time.Time
	pack, launch, download time.Duration
	firstPack, firstLaunch time.Duration // the first batch's: the device idles until it is enqueued
	lastWait, lastCopy     time.Duration // the last finished batch's wait for its rows and copy out
}

func (s *stageTrace) start() {
	if traceStages {
		s.t = time.Now()
	}
}

// lap adds the time since the last lap to d (nil: to nothing); lastWait and lastCopy are set
// rather than added to, and their time is also counted as download.
func (s *stageTrace) lap(d *time.Duration) {
	if !traceStages {
		return
	}
	now := time.Now()
	switch {
	case d == &s.lastWait || d == &s.lastCopy:
		*d = now.Sub(s.t)
		s.download += *d
	case d != nil:
		*d += now.Sub(s.t)
	}
	s.t = now
}

func (s *stageTrace) packed(seqs, tokens int) {
	s.batches, s.seqs, s.tokens = s.batches+1, s.seqs+seqs, s.tokens+tokens
	s.lap(&s.pack)
}
func (s *stageTrace) launched() {
	s.lap(&s.launch)
	if s.batches == 1 {
		s.firstPack, s.firstLaunch = s.pack, s.launch
	}
}
func (s *stageTrace) downloaded() { s.lap(&s.download) }

func (s *stageTrace) print() {
	if traceStages && s.batches > 0 {
		r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
		fmt.Fprintf(os.Stderr, "goembed trace: %d batches, %d sequences, %d tokens: host %v, enqueue %v, wait for the previous batch+copy out %v (first batch: plan+pack %v, enqueue %v; last batch: wait %v, copy out %v)\n",
			s.batches, s.seqs, s.tokens, r(s.pack), r(s.launch), r(s.download), r(s.firstPack), r(s.firstLaunch),
			s.lastWait.Round(time.Microsecond), s.lastCopy.Round(time.Microsecond))
	}
}
