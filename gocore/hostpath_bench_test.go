package gocore

import (
	"testing"

	"github.com/goembed/goembed/gocore/arch"
	"github.com/goembed/goembed/gocore/schedule"
)

// BenchmarkHostPath times the host's work before a 1000 x 128 call's first batch can be
// enqueued: deduplication, planning, packing the first batch (issue 4's 8 ms target counts it).
func BenchmarkHostPath(b *testing.B) {
	ids := make([][]int32, 1000)
	for i := range ids {
		ids[i] = make([]int32, 128)
		for j := range ids[i] {
			ids[i][j] = int32(1000 + (i*7919+j*104729)%29000)
		}
	}
	var rows []int
	b.Run("dedupe", func(b *testing.B) {
		for b.Loop() {
			rows = newDeduper(len(ids)).add(ids, 0, len(ids))
		}
	})
	var plans []schedule.Batch
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			plans = planRows(ids, rows, 1000, 65536)
		}
	})
	b.Run("pack", func(b *testing.B) {
		for b.Loop() {
			pack(ids, plans[0])
		}
	})
	b.Run("packInto", func(b *testing.B) { // what the row pipe does: the batch's slices reused
		var in arch.Batch
		for b.Loop() {
			packInto(&in, ids, plans[0])
		}
	})
}
