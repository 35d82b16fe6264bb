package cpu_test

import (
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
	"github.com/goembed/goembed/gocore/backend/cpu"
)

// Run with GOEMBED_BLAS=gonum to time the pure-Go fallback instead of the BLAS found.

func open(b *testing.B) func() backend.Backend {
	return func() backend.Backend {
		be, err := cpu.New()
		if err != nil {
			b.Fatal(err)
		}
		b.Log(be.Describe())
		return be
	}
}

func BenchmarkLinear(b *testing.B)    { backendtest.LinearBenchmark(b, open(b)) }
func BenchmarkAttention(b *testing.B) { backendtest.AttentionBenchmark(b, open(b)) }
