package gocore

import (
	"errors"
	"fmt"
	"os"
	"time"

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
