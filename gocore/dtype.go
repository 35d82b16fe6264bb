package gocore

import "fmt"

// DTypeError says that no device could compute in the requested dtype: the CPU computes in
// float32 only, and "auto" found no GPU for float16, bfloat16 or tfloat32.
type DTypeError struct {
	DType string
	Err   error // why each device refused
}

func (e *DTypeError) Error() string {
	return fmt.Sprintf("dtype %q needs a GPU (the CPU computes in float32; use dtype=\"auto\" or \"float32\" there), "+
		"and no GPU backend could be opened: %v", e.DType, e.Err)
}

func (e *DTypeError) Unwrap() error { return e.Err }

// dtypeHint turns the failure of device "auto" with a GPU-only dtype into a DTypeError, so the
// message leads with the cause rather than with every device's reason.
func dtypeHint(opts Options, err error) error {
	auto := opts.Device == "" || opts.Device == "auto"
	switch opts.DType {
	case "float16", "bfloat16", "tfloat32":
		if auto {
			return &DTypeError{DType: opts.DType, Err: err}
		}
	}
	return err
}
