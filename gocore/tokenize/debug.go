package tokenize

import "sync/atomic"

var debugPanic atomic.Bool

// DebugPanicNext makes the next text tokenized on a worker goroutine panic there (a test of
// the recovery in EncodeBatch; see gocore.DebugPanicNext).
func DebugPanicNext() { debugPanic.Store(true) }

func debugPanicHere() {
	if debugPanic.CompareAndSwap(true, false) {
		panic("debug panic in a tokenizer worker goroutine (tokenize.DebugPanicNext)")
	}
}
