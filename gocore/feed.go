package gocore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// TextFeed is the input of EncodeFeed: a list of a known number of texts that arrives in parts,
// so that a caller who must first convert its texts (Python packs them into UTF-8) can hand
// them over part by part while the first parts are already being embedded.
type TextFeed struct {
	mu      sync.Mutex
	arrived *sync.Cond
	texts   []string
	have    int
	aborted error
}

// NewTextFeed makes a feed of n texts.
func NewTextFeed(n int) *TextFeed {
	f := &TextFeed{texts: make([]string, n)}
	f.arrived = sync.NewCond(&f.mu)
	return f
}

// Len is the number of texts the feed will hold.
func (f *TextFeed) Len() int { return len(f.texts) }

// Add appends the next texts. Their memory must stay valid until EncodeFeed returns.
func (f *TextFeed) Add(part []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted != nil {
		return f.aborted
	}
	if f.have+len(part) > len(f.texts) {
		return fmt.Errorf("the feed holds %d texts; %d more cannot be added after %d", len(f.texts), len(part), f.have)
	}
	f.have += copy(f.texts[f.have:], part)
	f.arrived.Broadcast()
	return nil
}

// Abort ends the feed early: EncodeFeed returns err (or a generic error for nil) once it
// notices, and Add fails. It is how a caller that cannot produce the rest stops the call.
func (f *TextFeed) Abort(err error) {
	if err == nil {
		err = errors.New("the feed of texts was aborted")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aborted == nil {
		f.aborted = err
	}
	f.arrived.Broadcast()
}

// fullFeed is a feed whose texts have all arrived.
func fullFeed(texts []string) *TextFeed {
	f := &TextFeed{texts: texts, have: len(texts)}
	f.arrived = sync.NewCond(&f.mu)
	return f
}

// upTo waits until the first end texts have arrived and returns them, or the abort's error.
func (f *TextFeed) upTo(end int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.have < end && f.aborted == nil {
		f.arrived.Wait()
	}
	if f.aborted != nil {
		return nil, f.aborted
	}
	return f.texts[:end], nil
}

// EncodeFeed is EncodeContext for texts that arrive through feed: on a GPU, with more than a
// window of texts, each window is tokenized as soon as its texts have arrived; otherwise it
// waits for them all. Cancelling ctx does not stop a wait for texts: abort the feed for that.
func (e *Encoder) EncodeFeed(ctx context.Context, feed *TextFeed, dst []float32, o EncodeOptions) error {
	n := feed.Len()
	if !e.pipelined(n) {
		texts, err := feed.upTo(n)
		if err != nil {
			return err
		}
		return e.EncodeContext(ctx, texts, dst, o)
	}
	out, err := e.checkEncode(n, dst, &o)
	if err != nil {
		return err
	}
	return e.encodePipelined(ctx, feed, dst, o, out)
}
