package cuda

import (
	"errors"
	"fmt"
	"testing"

	"github.com/goembed/goembed/gocore/backend"
)

// The typing needs no GPU: the statuses as check and cublasCheck build them.
func TestOutOfMemoryIsTyped(t *testing.T) {
	for _, c := range []struct {
		err  *Error
		want bool
	}{
		{&Error{Call: "cuMemAlloc_v2", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY"}, true},
		{&Error{Call: "cuMemAllocHost_v2", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY"}, true},
		{&Error{Call: "cublasLtMatmul", Code: 3, Name: "CUBLAS_STATUS_ALLOC_FAILED"}, true},
		{&Error{Call: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS"}, false},
	} {
		wrapped := fmt.Errorf("cuda: %w", c.err) // as Backend.fail records it
		if got := errors.Is(wrapped, backend.ErrOutOfMemory); got != c.want {
			t.Errorf("%v: errors.Is(ErrOutOfMemory) = %v, want %v", c.err, got, c.want)
		}
	}
}
