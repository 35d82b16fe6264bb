package cuda

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// driver holds the CUDA driver API entry points (libcuda.so.1). Only the _v2 ABI of each call
// is used, the one cuda.h's macros select.
type driver struct {
	path string

	cuInit, cuDriverGetVersion, cuGetErrorName, cuGetErrorString          uintptr
	cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute  uintptr
	cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease uintptr
	cuCtxSetCurrent, cuCtxSynchronize                                     uintptr
	cuStreamCreate, cuStreamDestroy, cuStreamSynchronize                  uintptr
	cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost                  uintptr
	cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemsetD8Async                 uintptr
	cuModuleLoadData, cuModuleUnload, cuModuleGetFunction, cuLaunchKernel uintptr
	cuFuncSetAttribute                                                    uintptr
	cuStreamBeginCapture, cuStreamEndCapture, cuGraphInstantiate          uintptr
	cuGraphLaunch, cuGraphExecDestroy, cuGraphDestroy                     uintptr
	cuEventCreate, cuEventDestroy, cuEventRecord, cuEventSynchronize      uintptr
	cuEventElapsedTime, cuMemGetInfo                                      uintptr
}

// CUDA driver constants (cuda.h).
const (
	cuDeviceAttrMultiprocessorCount    = 16
	cuDeviceAttrComputeCapabilityMajor = 75
	cuDeviceAttrComputeCapabilityMinor = 76
	cuStreamNonBlocking                = 1
	cuStreamCaptureModeRelaxed         = 2
	cuFuncAttrMaxDynamicSharedSize     = 8
	cudaErrorNoDevice                  = 100
)

func loadDriver() (*driver, error) {
	h, path, err := libDriver.open()
	if err != nil {
		return nil, err
	}
	d := &driver{path: path}
	err = symbols(h, path, map[string]*uintptr{
		"cuInit":                       &d.cuInit,
		"cuDriverGetVersion":           &d.cuDriverGetVersion,
		"cuGetErrorName":               &d.cuGetErrorName,
		"cuGetErrorString":             &d.cuGetErrorString,
		"cuDeviceGetCount":             &d.cuDeviceGetCount,
		"cuDeviceGet":                  &d.cuDeviceGet,
		"cuDeviceGetName":              &d.cuDeviceGetName,
		"cuDeviceGetAttribute":         &d.cuDeviceGetAttribute,
		"cuDeviceTotalMem_v2":          &d.cuDeviceTotalMem,
		"cuDevicePrimaryCtxRetain":     &d.cuDevicePrimaryCtxRetain,
		"cuDevicePrimaryCtxRelease_v2": &d.cuDevicePrimaryCtxRelease,
		"cuCtxSetCurrent":              &d.cuCtxSetCurrent,
		"cuCtxSynchronize":             &d.cuCtxSynchronize,
		"cuStreamCreate":               &d.cuStreamCreate,
		"cuStreamDestroy_v2":           &d.cuStreamDestroy,
		"cuStreamSynchronize":          &d.cuStreamSynchronize,
		"cuMemAlloc_v2":                &d.cuMemAlloc,
		"cuMemFree_v2":                 &d.cuMemFree,
		"cuMemAllocHost_v2":            &d.cuMemAllocHost,
		"cuMemFreeHost":                &d.cuMemFreeHost,
		"cuMemcpyHtoDAsync_v2":         &d.cuMemcpyHtoDAsync,
		"cuMemcpyDtoHAsync_v2":         &d.cuMemcpyDtoHAsync,
		"cuMemsetD8Async":              &d.cuMemsetD8Async,
		"cuModuleLoadData":             &d.cuModuleLoadData,
		"cuModuleUnload":               &d.cuModuleUnload,
		"cuModuleGetFunction":          &d.cuModuleGetFunction,
		"cuLaunchKernel":               &d.cuLaunchKernel,
		"cuFuncSetAttribute":           &d.cuFuncSetAttribute,
		"cuStreamBeginCapture_v2":      &d.cuStreamBeginCapture,
		"cuStreamEndCapture":           &d.cuStreamEndCapture,
		"cuGraphInstantiateWithFlags":  &d.cuGraphInstantiate,
		"cuGraphLaunch":                &d.cuGraphLaunch,
		"cuGraphExecDestroy":           &d.cuGraphExecDestroy,
		"cuGraphDestroy":               &d.cuGraphDestroy,
		"cuEventCreate":                &d.cuEventCreate,
		"cuEventDestroy_v2":            &d.cuEventDestroy,
		"cuEventRecord":                &d.cuEventRecord,
		"cuEventSynchronize":           &d.cuEventSynchronize,
		"cuMemGetInfo_v2":              &d.cuMemGetInfo,
		"cuEventElapsedTime":           &d.cuEventElapsedTime,
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// check turns a CUresult into an error naming the call: nil for CUDA_SUCCESS.
func (d *driver) check(call string, r uintptr) error {
	res := int32(r)
	if res == 0 {
		return nil
	}
	var name, desc *byte
	purego.SyscallN(d.cuGetErrorName, uintptr(res), uintptr(unsafe.Pointer(&name)))
	purego.SyscallN(d.cuGetErrorString, uintptr(res), uintptr(unsafe.Pointer(&desc)))
	return &Error{Call: call, Code: int(res), Name: goString(name), Desc: goString(desc)}
}

// Error is a failed CUDA driver, cuBLASLt or NVRTC call.
type Error struct {
	Call string // the function, e.g. "cuMemAlloc_v2"
	Code int    // its status code
	Name string // e.g. "CUDA_ERROR_OUT_OF_MEMORY"
	Desc string
}

func (e *Error) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s failed: status %d", e.Call, e.Code)
	}
	if e.Desc == "" {
		return fmt.Sprintf("%s failed: %s (%d)", e.Call, e.Name, e.Code)
	}
	return fmt.Sprintf("%s failed: %s (%d): %s", e.Call, e.Name, e.Code, e.Desc)
}

// goString copies a NUL-terminated C string (static storage of a library) into Go memory.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := uintptr(0); ; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			return string(b)
		}
		b = append(b, c)
	}
}

// cstr returns s as NUL-terminated bytes; pass &b[0] to C and keep b alive across the call.
func cstr(s string) []byte { return append([]byte(s), 0) }
