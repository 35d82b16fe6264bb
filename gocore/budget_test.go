package gocore

import (
	"errors"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/cpu"
	"github.com/goembed/goembed/gocore/modeldir"
)

// fakeMemory is the CPU backend reporting free device memory, as a GPU does.
type fakeMemory struct {
	backend.Backend
	free uint64
	err  error
}

func (f fakeMemory) FreeMemory() (uint64, uint64, error) { return f.free, 80 << 30, f.err }
func (f fakeMemory) StorageBytes() int                   { return 2 }

// TestGPUBudgetFromFreeMemory: the token budget of a GPU forward shrinks when the free memory
// after loading would not hold its activations twice, within [256, gpuTokenBudget].
func TestGPUBudgetFromFreeMemory(t *testing.T) {
	be, err := cpu.New()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	c := modeldir.Config{HiddenSize: 384, IntermediateSize: 1536}
	perToken := uint64(8 + 2*(6*384+1536)) // 7,688 bytes a token of all-MiniLM-L6-v2 in float16
	for _, tc := range []struct {
		free uint64
		err  error
		want int
	}{
		{80 << 30, nil, gpuTokenBudget},                   // an empty H100: the default
		{100 << 20, nil, int((100 << 20) / 2 / perToken)}, // 100 MiB free: 6,819 tokens
		{1 << 20, nil, minGPUTokenBudget},                 // almost nothing: the floor, then splits (oom.go)
		{0, errors.New("no answer"), gpuTokenBudget},
	} {
		if got := gpuBudgetFor(fakeMemory{be, tc.free, tc.err}, c); got != tc.want {
			t.Errorf("free %d (err %v): budget %d, want %d", tc.free, tc.err, got, tc.want)
		}
	}
	if got := gpuBudgetFor(be, c); got != gpuTokenBudget {
		t.Errorf("a backend that reports no memory: %d, want %d", got, gpuTokenBudget)
	}
}
