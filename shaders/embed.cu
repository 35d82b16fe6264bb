// embed.cu: CUDA entry points of embed.h, embed_<storage>. Block: one token, blockDim.x threads
// (a multiple of 32); dynamic shared memory: H floats.
#include "prelude_cuda.h"
#include "embed.h"

#define EMBED_ENTRY(S, T)                                                                         \
	KERNEL void embed_##S(T* out, const int* ids, const int* positions, const int* types,         \
		const T* word, const T* pos, const T* typ, const T* gamma, const T* beta, EmbedArgs a) {  \
		extern __shared__ float smem[];                                                           \
		__shared__ float red[SIMD_WIDTH];                                                         \
		embed<T>(out, ids, positions, types, word, pos, typ, gamma, beta, a, blockIdx.x, smem,    \
			red, threadIdx.x, blockDim.x);                                                        \
	}

FOR_EACH_STORAGE(EMBED_ENTRY)
