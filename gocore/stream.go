package gocore

import (
	"context"
	"fmt"
	"iter"
)

// StreamOptions are EncodeOptions plus the window size of EncodeStream.
type StreamOptions struct {
	EncodeOptions
	Window int // texts embedded per EncodeWith call; 0 means DefaultWindow
}

// DefaultWindow is the window EncodeStream uses when none is given: 8 batches but at least 256
// texts on the CPU, 65,536 on a GPU. These are the chunks Python's Encoder.encode hands to Go, so
// a stream and encode on the same texts give the same bits.
func (e *Encoder) DefaultWindow(batchSize int) int {
	if batchSize <= 0 {
		batchSize = 32
	}
	if e.Device() != "cpu" {
		return 65536
	}
	return max(8*batchSize, 256)
}

// EncodeStream embeds an unbounded sequence of texts with bounded memory: it pulls Window texts
// at a time from texts, embeds them with EncodeWith, and yields one vector per text in input
// order. At most one window of texts and vectors is held. A window is embedded exactly as
// EncodeWith embeds that slice, so the vectors equal those of EncodeWith on the same windows.
//
// The first error (a bad option, a failed forward, ctx cancelled) is yielded once as
// (nil, err) and ends the sequence. Each yielded vector is the caller's to keep.
//
//	for vec, err := range enc.EncodeStream(ctx, lines, gocore.StreamOptions{}) { ... }
func (e *Encoder) EncodeStream(ctx context.Context, texts iter.Seq[string], o StreamOptions) iter.Seq2[[]float32, error] {
	return func(yield func([]float32, error) bool) {
		window := o.Window
		if window == 0 {
			window = e.DefaultWindow(o.BatchSize)
		}
		if window < 0 {
			yield(nil, fmt.Errorf("window must be positive, got %d", window))
			return
		}
		H := e.Dim()
		buf := make([]string, 0, window)
		// flush embeds buf and yields its rows; false means stop (error or the caller broke off).
		flush := func() bool {
			if len(buf) == 0 {
				return true
			}
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return false
			}
			dst := make([]float32, len(buf)*H)
			if err := e.EncodeWith(buf, dst, o.EncodeOptions); err != nil {
				yield(nil, err)
				return false
			}
			clear(buf) // drop the texts before yielding, so they can be collected
			buf = buf[:0]
			for i := 0; i < len(dst); i += H {
				if !yield(dst[i:i+H:i+H], nil) {
					return false
				}
			}
			return true
		}
		for t := range texts {
			buf = append(buf, t)
			if len(buf) == window && !flush() {
				return
			}
		}
		flush()
	}
}
