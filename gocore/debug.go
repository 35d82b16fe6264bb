package gocore

import (
	"fmt"
	"sync/atomic"

	"github.com/goembed/goembed/gocore/tokenize"
)

// debugPanicCaller makes the next forward panic on the caller's goroutine, under the device
// lock, as a bug there would; see DebugPanicNext.
var debugPanicCaller atomic.Bool

// DebugPanicNext makes the next encode panic on purpose, to test that no panic escapes:
// where "caller" panics in the goroutine that called Encode (inside the next forward, holding
// the device lock), "worker" in a tokenizer worker goroutine (the next batch tokenized on
// several goroutines). The panic must come back as an error and leave the Encoder usable.
func DebugPanicNext(where string) error {
	switch where {
	case "caller":
		debugPanicCaller.Store(true)
	case "worker":
		tokenize.DebugPanicNext()
	default:
		return fmt.Errorf("debug panic: where must be \"caller\" or \"worker\", got %q", where)
	}
	return nil
}

func debugPanicHere() {
	if debugPanicCaller.CompareAndSwap(true, false) {
		panic("debug panic in the caller goroutine (gocore.DebugPanicNext)")
	}
}
