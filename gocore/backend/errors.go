package backend

import "errors"

// ErrOutOfMemory is what a backend's out-of-memory failure matches (errors.Is): device memory
// for a tensor or a library workspace could not be had. The engine answers it by running the
// batch in smaller pieces; it reaches the caller only when one sequence does not fit.
var ErrOutOfMemory = errors.New("out of device memory")

// ErrUnsupportedDType is what a backend's refusal of a dtype matches (errors.Is): a usage
// error (Python ValueError), not an unavailable device.
var ErrUnsupportedDType = errors.New("unsupported dtype")

// DTypeError is a backend's refusal of a dtype, with the message to show.
type DTypeError struct{ Msg string }

func (e *DTypeError) Error() string        { return e.Msg }
func (e *DTypeError) Is(target error) bool { return target == ErrUnsupportedDType }
