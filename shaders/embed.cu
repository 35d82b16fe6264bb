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

// embed_warp_<storage>: embed_warp, LN_WARP_ROWS tokens a block of LN_WARP_ROWS * 32 threads (a
// warp per token), grid ceil(T / LN_WARP_ROWS); no shared memory.
#define EMBED_WARP_ENTRY(S, T)                                                                    \
	KERNEL void embed_warp_##S(T* out, const int* ids, const int* positions, const int* types,    \
		const T* word, const T* pos, const T* typ, const T* gamma, const T* beta, EmbedArgs a) {  \
		embed_warp<T>(out, ids, positions, types, word, pos, typ, gamma, beta, a,                 \
			int(blockIdx.x) * LN_WARP_ROWS + int(threadIdx.x / SIMD_WIDTH), threadIdx.x % SIMD_WIDTH); \
	}

FOR_EACH_STORAGE(EMBED_WARP_ENTRY)
