package cuda

import "github.com/goembed/goembed/gocore/backend"

// Is makes errors.Is(err, backend.ErrOutOfMemory) true for the driver's and cuBLASLt's
// out-of-memory statuses (device or pinned host memory), so the engine can split the batch.
func (e *Error) Is(target error) bool {
	return target == backend.ErrOutOfMemory &&
		(e.Name == "CUDA_ERROR_OUT_OF_MEMORY" || e.Name == "CUBLAS_STATUS_ALLOC_FAILED")
}
