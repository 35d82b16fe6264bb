//go:build !darwin

package metalbridge

import (
	"fmt"
	"runtime"

	"github.com/goembed/goembed/gocore/backend"
)

// On systems other than macOS "metal" is registered all the same, so that asking for it says
// why it cannot open instead of calling the device unknown.
func init() {
	backend.Register("metal", func(string) (backend.Backend, error) {
		return nil, fmt.Errorf("metal: Metal needs macOS on Apple silicon (this build is %s/%s)", runtime.GOOS, runtime.GOARCH)
	})
}
