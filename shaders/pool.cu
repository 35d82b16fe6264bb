// pool.cu: CUDA entry points of pool.h, pool_<storage>. Block: one sequence, blockDim.x threads
// (a multiple of 32); dynamic shared memory: H floats.
#include "prelude_cuda.h"
#include "pool.h"

#define POOL_ENTRY(S, T)                                                                          \
	KERNEL void pool_##S(T* out, const T* x, const int* seqStarts, PoolArgs a) {                  \
		extern __shared__ float smem[];                                                           \
		__shared__ float red[SIMD_WIDTH];                                                         \
		pool<T>(out, x, seqStarts, a, blockIdx.x, smem, red, threadIdx.x, blockDim.x);           \
	}

FOR_EACH_STORAGE(POOL_ENTRY)
