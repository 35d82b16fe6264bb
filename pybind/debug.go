package pybind

import (
	"fmt"

	"github.com/goembed/goembed/gocore"
)

// Debug hooks for the reliability tests (tests/test_hostile_models.py and friends): they
// provoke the failures that must never take the interpreter down.

// DebugPanic makes the next encode panic on purpose: where is "caller" (the goroutine gopy
// called, inside a forward) or "worker" (a tokenizer worker goroutine).
// It returns whether the panic is armed.
func DebugPanic(where string) (armed bool, err error) {
	defer guard(&err)
	if err := gocore.DebugPanicNext(where); err != nil {
		return false, fmt.Errorf("ValueError: %v", err)
	}
	return true, nil
}

// DebugLoadCount is the number of models loaded onto a device so far: Encoders that share a
// loaded model count once.
func DebugLoadCount() int64 { return gocore.Loads() }

// DebugOOMAfter makes the forwards of an encoder's model fail as out of memory once their
// workspace would exceed bytes; 0 turns it off (GOEMBED_DEBUG_OOM_AFTER sets it at load). It
// returns whether the limit is set.
func DebugOOMAfter(h int64, bytes int64) (set bool, err error) {
	defer guard(&err)
	e, err := lookup(h)
	if err != nil {
		return false, err
	}
	if err := e.SetDebugOOMAfter(bytes); err != nil {
		return false, classify(err)
	}
	return bytes > 0, nil
}
