//go:build darwin

package metalbridge

import (
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
)

// Per-op timings with the shared bodies and sizes of backendtest (MiniLM shapes, T = 4096):
//
//	go test -run '^$' -bench . ./metalbridge
func benchOpen(b *testing.B) func() backend.Backend {
	return func() backend.Backend {
		be := openOrSkip(b, "float16")
		b.Log(be.Describe())
		return be
	}
}

func BenchmarkLinear(b *testing.B)    { backendtest.LinearBenchmark(b, benchOpen(b)) }
func BenchmarkAttention(b *testing.B) { backendtest.AttentionBenchmark(b, benchOpen(b)) }
