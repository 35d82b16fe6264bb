package gocore

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"time"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/schedule"
	"github.com/goembed/goembed/gocore/tokenize"
)

// pipelineWindow is how many texts one tokenization step takes when a GPU embeds a long list.
// Tokenizing is CPU work on all cores and a GPU forward mostly waits for the device, so the
// next window is tokenized while the current one runs: the GPU does not wait for the whole
// list's tokenization first.
var pipelineWindow = 4096

// pipelineOnCPU lets tests run the pipeline on the CPU backend (where tokenizing and the
// forwards compete for the same cores, so it is off).
var pipelineOnCPU = false

// pipelined says whether EncodeWith tokenizes ahead in windows.
func (e *Encoder) pipelined(n int) bool {
	return n > pipelineWindow && (e.be.Name() != "cpu" || pipelineOnCPU)
}

// traceStages (GOEMBED_TRACE=1) prints where a pipelined call's time went, to stderr.
var traceStages = os.Getenv("GOEMBED_TRACE") == "1"

// encodePipelined is EncodeWith for a GPU and more than one window of texts: a goroutine
// tokenizes window k+1 while this one runs the forwards of window k. Duplicates are found across
// the whole call, as in encodeIDs.
func (e *Encoder) encodePipelined(texts []string, dst []float32, o EncodeOptions) error {
	type window struct {
		start, end int
		err        error
		took       time.Duration
	}
	ids := make([][]int32, len(texts))
	ready := make(chan window, 1) // one window tokenized ahead
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(ready)
		for start := 0; start < len(texts); start += pipelineWindow {
			w := window{start: start, end: min(start+pipelineWindow, len(texts))}
			t0 := time.Now()
			w.err = e.tokenizeWindow(texts, ids, w.start, w.end, o.Prompt)
			w.took = time.Since(t0)
			select {
			case ready <- w:
			case <-stop:
				return
			}
			if w.err != nil {
				return
			}
		}
	}()
	t0 := time.Now()
	var tokenizing, waiting, computing time.Duration
	d := newDeduper(len(texts))
	for {
		tw := time.Now()
		w, ok := <-ready
		waiting += time.Since(tw)
		if !ok {
			break
		}
		if w.err != nil {
			return w.err
		}
		tokenizing += w.took
		tc := time.Now()
		if err := e.encodeRows(ids, d.add(ids, w.start, w.end), dst, o.BatchSize, o.Normalize); err != nil {
			return err
		}
		computing += time.Since(tc)
	}
	d.copyDuplicates(dst, e.Dim())
	if traceStages {
		fmt.Fprintf(os.Stderr, "goembed trace: %d texts in %v: tokenize %v (in a goroutine), forwards %v, waiting for tokens %v\n",
			len(texts), time.Since(t0).Round(time.Millisecond), tokenizing.Round(time.Millisecond),
			computing.Round(time.Millisecond), waiting.Round(time.Millisecond))
	}
	return nil
}

// tokenizeWindow fills ids[start:end]; an error names the text's index in the whole call. A
// panic becomes an error: this runs on its own goroutine, where one would end the process.
func (e *Encoder) tokenizeWindow(texts []string, ids [][]int32, start, end int, prompt string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while tokenizing: %v", r)
		}
	}()
	w, err := e.Tokenize(texts[start:end], prompt)
	var te *tokenize.TextError
	if errors.As(err, &te) {
		te.Index += start
	}
	if err != nil {
		return err
	}
	copy(ids[start:end], w)
	return nil
}

// packAhead yields the packed batches of plans in order. With several batches a goroutine packs
// batch k+1 while batch k runs, so a GPU does not wait for the host between forwards; a single
// batch (a query) is packed inline, with no goroutine to start.
func packAhead(ids [][]int32, plans []schedule.Batch) iter.Seq2[int, *arch.Batch] {
	return func(yield func(int, *arch.Batch) bool) {
		if len(plans) == 1 {
			yield(0, pack(ids, plans[0]))
			return
		}
		ready := make(chan *arch.Batch, 1)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			defer close(ready)
			for _, plan := range plans {
				select {
				case ready <- pack(ids, plan): // pack only appends: it cannot panic on valid plans
				case <-stop:
					return
				}
			}
		}()
		k := 0
		for in := range ready {
			if !yield(k, in) {
				return
			}
			k++
		}
	}
}

// stageTrace adds up, when traceStages is on, where the host's time goes per batch of
// encodeRows: host work between forwards (waiting for the packed batch, copying out rows),
// enqueueing the forward (on a GPU: launches, which overlap the device's work), and waiting for
// the pooled rows (on a GPU: the device's remaining work).
type stageTrace struct {
	batches, seqs, tokens  int
	t                      time.Time
	pack, launch, download time.Duration
}

func (s *stageTrace) start() {
	if traceStages {
		s.t = time.Now()
	}
}

func (s *stageTrace) lap(d *time.Duration) {
	if traceStages {
		now := time.Now()
		*d += now.Sub(s.t)
		s.t = now
	}
}

func (s *stageTrace) packed(seqs, tokens int) {
	s.batches, s.seqs, s.tokens = s.batches+1, s.seqs+seqs, s.tokens+tokens
	s.lap(&s.pack)
}
func (s *stageTrace) launched()   { s.lap(&s.launch) }
func (s *stageTrace) downloaded() { s.lap(&s.download) }

func (s *stageTrace) print() {
	if traceStages && s.batches > 0 {
		r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
		fmt.Fprintf(os.Stderr, "goembed trace: %d batches, %d sequences, %d tokens: host %v, enqueue %v, wait+download %v\n",
			s.batches, s.seqs, s.tokens, r(s.pack), r(s.launch), r(s.download))
	}
}
