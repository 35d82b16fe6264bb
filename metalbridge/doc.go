// Package metalbridge runs the encoder on an Apple GPU through Metal. It is pure Go: Metal,
// MetalPerformanceShaders and Foundation are loaded at run time with purego's Dlopen, and every
// Objective-C message goes through purego's objc package, so building goembed needs neither cgo
// nor Xcode. It registers itself as device "metal" on darwin (backend "auto" tries it first);
// on other systems a stub registers "metal" and says why it is unavailable.
//
//   - Device: MTLCreateSystemDefaultDevice, one command queue.
//   - Memory: MTLBuffers in MTLResourceStorageModeShared. On Apple silicon the CPU and GPU share
//     memory, so Upload converts straight into the buffer and Download reads the buffer after
//     the GPU is done: there are no staging copies.
//   - Kernels: the entry points of shaders/*.metal, which call the same bodies (shaders/*.h) as
//     the CUDA backend. They are assembled into one self-contained source per storage type
//     (librarySource) and compiled at run time with newLibraryWithSource:options:error: (fast
//     math off); the compute pipelines are cached per (source hash, function) for the life of
//     the process.
//   - GEMMs: MPSMatrixMultiplication. Linear's out = act(x @ w^T + bias) is one MPS GEMM
//     followed by the shared bias + GELU/tanh body (gelu_<dtype>, tanh_<dtype>); a bias with no
//     activation is broadcast into out by a rank-1 MPS GEMM (ones[T,1] @ bias[1,out]) that the
//     main GEMM then accumulates onto (beta = 1).
//   - Ordering: one command buffer per batch. Ops encode into the open command buffer (kernels
//     into one compute encoder, closed around the MPS GEMMs); Sync and Download commit it and
//     wait (waitUntilCompleted) before anything is read.
//
// Precision (the dtype of backend.Open): "auto" and "float16" store tensors as float16,
// "float32" as float32; "tfloat32" is float32 too (Apple GPUs have no TF32). The kernels do all
// their arithmetic (LayerNorm statistics, softmax, pooling) in float32. "bfloat16" is refused.
//
// Threads: every method runs on a locked OS thread inside an Objective-C autorelease pool,
// which it drains on return; objects kept across calls (the command buffer, the encoder,
// buffers, pipelines) are retained explicitly. The backend is used by one goroutine at a time.
//
// Files: doc.go, kernels.go and source.go build everywhere (and are tested on Linux:
// argument mirrors, buffer bindings, the assembled source); the files with Metal code build
// on darwin only. See docs/METAL.md for what is still unverified without a Mac.
package metalbridge
