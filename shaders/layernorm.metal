// layernorm.metal: Metal entry points of layernorm.h, layernorm_<storage>. Threadgroup: one row,
// threads a multiple of 32; threadgroup memory index 0: H floats (setThreadgroupMemoryLength).
// Buffers 0..4 as in layernorm.cu, then the LayerNormArgs (setBytes) at 5.
#include "prelude_metal.h"
#include "layernorm.h"

#define LAYERNORM_ENTRY(S, T)                                                                     \
	KERNEL void layernorm_##S(GLOBAL T* out [[buffer(0)]], GLOBAL const T* x [[buffer(1)]],       \
		GLOBAL const T* residual [[buffer(2)]], GLOBAL const T* gamma [[buffer(3)]],              \
		GLOBAL const T* beta [[buffer(4)]], constant LayerNormArgs& a [[buffer(5)]],              \
		SHARED float* row [[threadgroup(0)]], uint t [[threadgroup_position_in_grid]],            \
		uint tid [[thread_position_in_threadgroup]], uint nt [[threads_per_threadgroup]]) {       \
		SHARED float red[SIMD_WIDTH];                                                             \
		add_layernorm<T>(out, x, residual, gamma, beta, a, int(t), row, red, tid, nt);            \
	}

FOR_EACH_STORAGE(LAYERNORM_ENTRY)

// layernorm_warp_<storage>: add_layernorm_warp, LN_WARP_ROWS rows a threadgroup of
// LN_WARP_ROWS * 32 threads (a SIMD group per row), no threadgroup memory; same buffers.
// Not yet launched by metalbridge.
#define LAYERNORM_WARP_ENTRY(S, T)                                                                \
	KERNEL void layernorm_warp_##S(GLOBAL T* out [[buffer(0)]], GLOBAL const T* x [[buffer(1)]],  \
		GLOBAL const T* residual [[buffer(2)]], GLOBAL const T* gamma [[buffer(3)]],              \
		GLOBAL const T* beta [[buffer(4)]], constant LayerNormArgs& a [[buffer(5)]],              \
		uint t [[threadgroup_position_in_grid]], uint tid [[thread_position_in_threadgroup]]) {   \
		add_layernorm_warp<T>(out, x, residual, gamma, beta, a, int(t) * LN_WARP_ROWS + int(tid / SIMD_WIDTH), \
			tid % SIMD_WIDTH);                                                                    \
	}

FOR_EACH_STORAGE(LAYERNORM_WARP_ENTRY)
