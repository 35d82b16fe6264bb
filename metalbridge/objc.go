//go:build darwin

package metalbridge

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
)

// The frameworks are opened by their install names; on macOS 11 and later they live in the dyld
// shared cache rather than on disk, and dlopen finds them there.
const (
	metalPath      = "/System/Library/Frameworks/Metal.framework/Metal"
	mpsPath        = "/System/Library/Frameworks/MetalPerformanceShaders.framework/MetalPerformanceShaders"
	foundationPath = "/System/Library/Frameworks/Foundation.framework/Foundation"
	objcPath       = "/usr/lib/libobjc.A.dylib"
)

// Metal and MPS constants (Metal/MTLResource.h, Metal/MTLCommandBuffer.h,
// MetalPerformanceShaders/MPSCoreTypes.h).
const (
	// MTLResourceStorageModeShared << MTLResourceStorageModeShift, default CPU cache mode and
	// hazard tracking: memory both the CPU and the GPU address, tracked by Metal.
	resourceStorageModeShared = 0

	commandBufferStatusError = 5 // MTLCommandBufferStatusError

	mpsDataTypeFloat16 = 0x10000000 | 16 // MPSDataTypeFloatBit | 16
	mpsDataTypeFloat32 = 0x10000000 | 32 // MPSDataTypeFloatBit | 32
)

// mtlSize mirrors MTLSize: three NSUIntegers. purego passes it by value as the C ABI does (on
// arm64 a 24-byte struct goes as a pointer to a copy).
type mtlSize struct {
	Width, Height, Depth uint64
}

// Selectors, registered once (sel_registerName takes the runtime's lock).
var (
	selAlloc       = objc.RegisterName("alloc")
	selNew         = objc.RegisterName("new")
	selRetain      = objc.RegisterName("retain")
	selRelease     = objc.RegisterName("release")
	selStringUTF8  = objc.RegisterName("stringWithUTF8String:")
	selUTF8String  = objc.RegisterName("UTF8String")
	selDescription = objc.RegisterName("localizedDescription")

	// MTLDevice
	selName                  = objc.RegisterName("name")
	selHasUnifiedMemory      = objc.RegisterName("hasUnifiedMemory")
	selMaxBufferLength       = objc.RegisterName("maxBufferLength")
	selMaxThreadgroupMemory  = objc.RegisterName("maxThreadgroupMemoryLength")
	selRecommendedWorkingSet = objc.RegisterName("recommendedMaxWorkingSetSize")
	selNewCommandQueue       = objc.RegisterName("newCommandQueue")
	selNewBufferLength       = objc.RegisterName("newBufferWithLength:options:")
	selNewBufferBytes        = objc.RegisterName("newBufferWithBytes:length:options:")
	selNewLibrarySource      = objc.RegisterName("newLibraryWithSource:options:error:")
	selNewPipeline           = objc.RegisterName("newComputePipelineStateWithFunction:error:")

	// MTLCompileOptions, MTLLibrary, MTLComputePipelineState, MTLBuffer
	selSetFastMathEnabled  = objc.RegisterName("setFastMathEnabled:")
	selNewFunctionWithName = objc.RegisterName("newFunctionWithName:")
	selMaxTotalThreads     = objc.RegisterName("maxTotalThreadsPerThreadgroup")
	selThreadExecWidth     = objc.RegisterName("threadExecutionWidth")
	selStaticThreadgroup   = objc.RegisterName("staticThreadgroupMemoryLength")
	selContents            = objc.RegisterName("contents")

	// MTLCommandQueue, MTLCommandBuffer
	selCommandBuffer      = objc.RegisterName("commandBuffer")
	selComputeEncoder     = objc.RegisterName("computeCommandEncoder")
	selBlitEncoder        = objc.RegisterName("blitCommandEncoder")
	selCommit             = objc.RegisterName("commit")
	selWaitUntilCompleted = objc.RegisterName("waitUntilCompleted")
	selStatus             = objc.RegisterName("status")
	selError              = objc.RegisterName("error")

	// MTLComputeCommandEncoder, MTLBlitCommandEncoder
	selSetPipeline        = objc.RegisterName("setComputePipelineState:")
	selSetBuffer          = objc.RegisterName("setBuffer:offset:atIndex:")
	selSetBytes           = objc.RegisterName("setBytes:length:atIndex:")
	selSetThreadgroupMem  = objc.RegisterName("setThreadgroupMemoryLength:atIndex:")
	selDispatchGroups     = objc.RegisterName("dispatchThreadgroups:threadsPerThreadgroup:")
	selEndEncoding        = objc.RegisterName("endEncoding")
	selCopyFromBufferSize = objc.RegisterName("copyFromBuffer:sourceOffset:toBuffer:destinationOffset:size:")

	// MPSMatrixDescriptor, MPSMatrix, MPSMatrixMultiplication
	selMatrixDescriptor = objc.RegisterName("matrixDescriptorWithRows:columns:rowBytes:dataType:")
	selInitMatrix       = objc.RegisterName("initWithBuffer:descriptor:")
	selInitMatMul       = objc.RegisterName("initWithDevice:transposeLeft:transposeRight:resultRows:resultColumns:interiorColumns:alpha:beta:")
	selEncodeMatMul     = objc.RegisterName("encodeToCommandBuffer:leftMatrix:rightMatrix:resultMatrix:")
)

// runtimeLibs holds what the process loads once: the frameworks' C entry points, the classes and
// the system default device. A failure is kept and returned by every Open.
type runtimeLibs struct {
	createSystemDefaultDevice func() objc.ID
	mpsSupportsDevice         func(objc.ID) bool
	poolPush                  func() uintptr
	poolPop                   func(uintptr)

	classNSString, classCompileOptions                  objc.Class
	classMatrixDescriptor, classMatrix, classMatrixMult objc.Class

	device objc.ID // MTLCreateSystemDefaultDevice, retained for the life of the process
	err    error
}

var (
	libsOnce sync.Once
	theLibs  runtimeLibs
)

// loadRuntime opens Metal, MetalPerformanceShaders and Foundation and finds the default device.
func loadRuntime() *runtimeLibs {
	libsOnce.Do(func() {
		l := &theLibs
		l.err = l.load()
	})
	return &theLibs
}

func (l *runtimeLibs) load() error {
	open := func(path string) (uintptr, error) {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return 0, fmt.Errorf("dlopen %s: %w", path, err)
		}
		return h, nil
	}
	// A symbol of an umbrella framework may live in a sub-framework it re-exports
	// (MPSSupportsMTLDevice is in MPSCore): look in everything loaded when the handle fails.
	sym := func(h uintptr, lib, name string, fn any) error {
		addr, err := purego.Dlsym(h, name)
		if err != nil {
			if addr, err = purego.Dlsym(purego.RTLD_DEFAULT, name); err != nil {
				return fmt.Errorf("%s: %s: %w", lib, name, err)
			}
		}
		purego.RegisterFunc(fn, addr)
		return nil
	}
	var errs []string
	add := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if _, err := open(foundationPath); err != nil {
		add(err)
	}
	if h, err := open(objcPath); err != nil {
		add(err)
	} else {
		add(sym(h, "libobjc", "objc_autoreleasePoolPush", &l.poolPush))
		add(sym(h, "libobjc", "objc_autoreleasePoolPop", &l.poolPop))
	}
	if h, err := open(metalPath); err != nil {
		add(err)
	} else {
		add(sym(h, "Metal", "MTLCreateSystemDefaultDevice", &l.createSystemDefaultDevice))
	}
	if h, err := open(mpsPath); err != nil {
		add(err)
	} else {
		add(sym(h, "MetalPerformanceShaders", "MPSSupportsMTLDevice", &l.mpsSupportsDevice))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	for _, c := range []struct {
		dst  *objc.Class
		name string
	}{
		{&l.classNSString, "NSString"},
		{&l.classCompileOptions, "MTLCompileOptions"},
		{&l.classMatrixDescriptor, "MPSMatrixDescriptor"},
		{&l.classMatrix, "MPSMatrix"},
		{&l.classMatrixMult, "MPSMatrixMultiplication"},
	} {
		if *c.dst = objc.GetClass(c.name); *c.dst == 0 {
			errs = append(errs, "no Objective-C class "+c.name)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	pool := l.poolPush()
	defer l.poolPop(pool)
	l.device = l.createSystemDefaultDevice()
	if l.device == 0 {
		return errors.New("MTLCreateSystemDefaultDevice found no Metal device")
	}
	if !l.mpsSupportsDevice(l.device) {
		return fmt.Errorf("MetalPerformanceShaders does not support %s", goString(l.device.Send(selName)))
	}
	return nil
}

// nsString returns an autoreleased NSString holding a copy of s.
func (l *runtimeLibs) nsString(s string) objc.ID {
	return objc.ID(l.classNSString).Send(selStringUTF8, s)
}

// goString copies an NSString into Go memory.
func goString(ns objc.ID) string {
	if ns == 0 {
		return ""
	}
	p := objc.Send[*byte](ns, selUTF8String)
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// errorString is an NSError's localizedDescription, or what when err is nil.
func errorString(err objc.ID, what string) string {
	if err == 0 {
		return what
	}
	return goString(err.Send(selDescription))
}

// release sends release to each non-nil object.
func release(ids ...objc.ID) {
	for _, id := range ids {
		if id != 0 {
			id.Send(selRelease)
		}
	}
}
