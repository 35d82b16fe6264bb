package backend

import "errors"

// ErrOutOfMemory is what a backend's out-of-memory failure matches (errors.Is): device memory
// for a tensor or a library workspace could not be had. The engine answers it by running the
// batch in smaller pieces; it reaches the caller only when one sequence does not fit.
var ErrOutOfMemory = errors.New("out of device memory")
