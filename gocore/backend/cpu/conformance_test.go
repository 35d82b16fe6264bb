package cpu_test

import (
	"testing"

	"github.com/goembed/goembed/gocore/backend"
	"github.com/goembed/goembed/gocore/backend/backendtest"
	_ "github.com/goembed/goembed/gocore/backend/cpu"
)

// TestConformance runs the shared suite on the CPU backend itself: it checks the suite's cases
// run and that results do not depend on the instance (the reference is a second backend).
func TestConformance(t *testing.T) {
	backendtest.Run(t, func() backend.Backend {
		b, _, err := backend.Open("cpu", "float32")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}, backendtest.TolFloat32)
}
