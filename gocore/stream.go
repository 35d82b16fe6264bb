package gocore

import (
	"context"
	"fmt"
	"iter"
)

// DefaultWindow is how many texts EncodeStream embeds per EncodeWith call when
// StreamOptions.Window is 0: large enough that length sorting and batching work as well as on
// a list, small enough that a window's texts and vectors stay a few megabytes.
const DefaultWindow = 1024

// StreamOptions are EncodeOptions plus the window size of EncodeStream.
type StreamOptions struct {
	EncodeOptions
	Window int // texts embedded per call; default DefaultWindow
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
			window = DefaultWindow
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
