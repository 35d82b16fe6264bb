// layernorm.cu: CUDA entry points of layernorm.h, layernorm_<storage>. Block: one row, blockDim.x
// threads (a multiple of 32); dynamic shared memory: H floats.
#include "prelude_cuda.h"
#include "layernorm.h"

#define LAYERNORM_ENTRY(S, T)                                                                     \
	KERNEL void layernorm_##S(T* out, const T* x, const T* residual, const T* gamma, const T* beta, \
		LayerNormArgs a) {                                                                        \
		extern __shared__ float smem[];                                                           \
		__shared__ float red[SIMD_WIDTH];                                                         \
		add_layernorm<T>(out, x, residual, gamma, beta, a, blockIdx.x, smem, red, threadIdx.x,    \
			blockDim.x);                                                                          \
	}

FOR_EACH_STORAGE(LAYERNORM_ENTRY)

// layernorm_warp_<storage>: add_layernorm_warp, LN_WARP_ROWS rows a block of
// LN_WARP_ROWS * 32 threads (a warp per row), grid ceil(T / LN_WARP_ROWS); no shared memory.
#define LAYERNORM_WARP_ENTRY(S, T)                                                                \
	KERNEL void layernorm_warp_##S(T* out, const T* x, const T* residual, const T* gamma,         \
		const T* beta, LayerNormArgs a) {                                                         \
		add_layernorm_warp<T>(out, x, residual, gamma, beta, a,                                   \
			int(blockIdx.x) * LN_WARP_ROWS + int(threadIdx.x / SIMD_WIDTH), threadIdx.x % SIMD_WIDTH); \
	}

FOR_EACH_STORAGE(LAYERNORM_WARP_ENTRY)
