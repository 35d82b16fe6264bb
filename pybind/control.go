package pybind

// Calls whose settings travel as JSON, so that a new per-call setting needs no new signature,
// and which report per-text truncation and can be cancelled from Python (Ctrl-C).

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/goembed/goembed/gocore"
)

// callOptions are the JSON settings of EncodeCtl and TokenizeCtl.
type callOptions struct {
	BatchSize    int    `json:"batch_size"`
	Normalize    bool   `json:"normalize"`
	Prompt       string `json:"prompt"`
	MaxSeqLength int    `json:"max_seq_length"`
}

func parseOptions(opts string) (o callOptions, err error) {
	if opts == "" {
		return o, nil
	}
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		return o, fmt.Errorf("ValueError: bad call options %q: %v", opts, err)
	}
	return o, nil
}

// cancelPoll is how often a call looks at Python's cancel flag: well under the one second
// Ctrl-C may take, and negligible work.
const cancelPoll = 5 * time.Millisecond

// watch returns a context cancelled once the int32 at flagPtr (Python-owned, alive for the
// call) becomes nonzero; stop ends the watch. flagPtr 0 means no flag.
func watch(flagPtr uintptr) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	if flagPtr == 0 {
		return ctx, cancel
	}
	flag := (*int32)(mem(flagPtr))
	go func() {
		tick := time.NewTicker(cancelPoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if atomic.LoadInt32(flag) != 0 {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// flags views n bytes at ptr as []bool (Python passes a numpy bool array); nil when ptr is 0.
func flags(ptr uintptr, n int) []bool {
	if ptr == 0 || n == 0 {
		return nil
	}
	return unsafe.Slice((*bool)(mem(ptr)), n)
}

// EncodeCtl embeds n texts into dst (float32, n x dim, C order) with the settings in opts
// (JSON: batch_size, normalize, prompt, max_seq_length). truncPtr, if not 0, is a bool array
// of n that receives whether each text was truncated. cancelPtr, if not 0, is an int32 that
// Python sets to nonzero to stop the call between batches ("Cancelled: ..." error). It returns
// the rows written.
func EncodeCtl(h int64, textPtr uintptr, textLen int, offsPtr uintptr, n int, dstPtr uintptr, opts string, truncPtr uintptr, cancelPtr uintptr) (rows int, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return 0, err
	}
	o, err := parseOptions(opts)
	if err != nil {
		return 0, err
	}
	ts, err := texts(textPtr, textLen, offsPtr, n)
	if err != nil || n == 0 {
		return 0, err
	}
	dst := unsafe.Slice((*float32)(mem(dstPtr)), n*e.Dim())
	ctx, stop := watch(cancelPtr)
	defer stop()
	if err := encodeError(ctx, e.EncodeContext(ctx, ts, dst, o.encodeOptions(truncPtr, n))); err != nil {
		return 0, err
	}
	return n, nil
}

func (o callOptions) encodeOptions(truncPtr uintptr, n int) gocore.EncodeOptions {
	return gocore.EncodeOptions{BatchSize: o.BatchSize, Normalize: o.Normalize, Prompt: o.Prompt,
		MaxSeqLength: o.MaxSeqLength, Truncated: flags(truncPtr, n)}
}

// encodeError maps an encode's error to the exception Python raises.
func encodeError(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && err == ctx.Err():
		return fmt.Errorf("Cancelled: encode stopped between batches")
	}
	return classify(err)
}

// TokenizeCtl writes the token ids of n texts, truncated as opts says (JSON: prompt,
// max_seq_length), into ids (int32, n x width, zero-padded), their counts into lens (int32, n)
// and, if truncPtr is not 0, whether each was truncated into a bool array of n. It returns the
// rows written.
func TokenizeCtl(h int64, textPtr uintptr, textLen int, offsPtr uintptr, n int, opts string, idsPtr uintptr, width int, lensPtr uintptr, truncPtr uintptr) (written int, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return 0, err
	}
	o, err := parseOptions(opts)
	if err != nil {
		return 0, err
	}
	ts, err := texts(textPtr, textLen, offsPtr, n)
	if err != nil || n == 0 {
		return 0, err
	}
	rows, cut, err := e.TokenizeMax(ts, o.Prompt, o.MaxSeqLength)
	if err != nil {
		return 0, classify(err)
	}
	ids := unsafe.Slice((*int32)(mem(idsPtr)), n*width)
	lens := unsafe.Slice((*int32)(mem(lensPtr)), n)
	for i, r := range rows {
		if len(r) > width {
			return 0, fmt.Errorf("ValueError: text %d has %d tokens, buffer holds %d", i, len(r), width)
		}
		copy(ids[i*width:], r)
		lens[i] = int32(len(r))
	}
	copy(flags(truncPtr, n), cut)
	return n, nil
}
