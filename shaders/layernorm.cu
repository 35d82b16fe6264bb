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
