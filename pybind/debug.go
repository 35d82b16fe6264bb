package pybind

import (
	"fmt"

	"github.com/goembed/goembed/gocore"
)

// Debug hooks for the reliability tests (tests/test_hostile_models.py and friends): they
// provoke the failures that must never take the interpreter down.

// DebugPanic makes the next encode panic on purpose: where is "caller" (the goroutine gopy
// called, inside a forward) or "worker" (a tokenizer worker goroutine).
func DebugPanic(where string) (err error) {
	defer guard(&err)
	if err := gocore.DebugPanicNext(where); err != nil {
		return fmt.Errorf("ValueError: %v", err)
	}
	return nil
}

// DebugLoadCount is the number of models loaded onto a device so far: Encoders that share a
// loaded model count once.
func DebugLoadCount() int64 { return gocore.Loads() }

// DebugOOMAfter makes the forwards of an encoder's model fail as out of memory once their
// workspace would exceed bytes; 0 turns it off (GOEMBED_DEBUG_OOM_AFTER sets it at load).
func DebugOOMAfter(h int64, bytes int64) (err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return err
	}
	if err := e.SetDebugOOMAfter(bytes); err != nil {
		return classify(err)
	}
	return nil
}
