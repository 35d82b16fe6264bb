// embed.metal: Metal entry points of embed.h, embed_<storage>. Threadgroup: one token, threads a
// multiple of 32; threadgroup memory index 0: H floats (setThreadgroupMemoryLength).
// Buffers 0..8 as in embed.cu, then the EmbedArgs (setBytes) at 9.
#include "prelude_metal.h"
#include "embed.h"

#define EMBED_ENTRY(S, T)                                                                         \
	KERNEL void embed_##S(GLOBAL T* out [[buffer(0)]], GLOBAL const int* ids [[buffer(1)]],       \
		GLOBAL const int* positions [[buffer(2)]], GLOBAL const int* types [[buffer(3)]],         \
		GLOBAL const T* word [[buffer(4)]], GLOBAL const T* pos [[buffer(5)]],                    \
		GLOBAL const T* typ [[buffer(6)]], GLOBAL const T* gamma [[buffer(7)]],                   \
		GLOBAL const T* beta [[buffer(8)]], constant EmbedArgs& a [[buffer(9)]],                  \
		SHARED float* row [[threadgroup(0)]], uint t [[threadgroup_position_in_grid]],            \
		uint tid [[thread_position_in_threadgroup]], uint nt [[threads_per_threadgroup]]) {       \
		SHARED float red[SIMD_WIDTH];                                                             \
		embed<T>(out, ids, positions, types, word, pos, typ, gamma, beta, a, int(t), row, red,    \
			tid, nt);                                                                             \
	}

FOR_EACH_STORAGE(EMBED_ENTRY)

// embed_warp_<storage>: embed_warp, LN_WARP_ROWS tokens a threadgroup of LN_WARP_ROWS * 32
// threads (a SIMD group per token), no threadgroup memory; same buffers. Not yet launched by
// metalbridge.
#define EMBED_WARP_ENTRY(S, T)                                                                    \
	KERNEL void embed_warp_##S(GLOBAL T* out [[buffer(0)]], GLOBAL const int* ids [[buffer(1)]],  \
		GLOBAL const int* positions [[buffer(2)]], GLOBAL const int* types [[buffer(3)]],         \
		GLOBAL const T* word [[buffer(4)]], GLOBAL const T* pos [[buffer(5)]],                    \
		GLOBAL const T* typ [[buffer(6)]], GLOBAL const T* gamma [[buffer(7)]],                   \
		GLOBAL const T* beta [[buffer(8)]], constant EmbedArgs& a [[buffer(9)]],                  \
		uint t [[threadgroup_position_in_grid]], uint tid [[thread_position_in_threadgroup]]) {   \
		embed_warp<T>(out, ids, positions, types, word, pos, typ, gamma, beta, a,                 \
			int(t) * LN_WARP_ROWS + int(tid / SIMD_WIDTH), tid % SIMD_WIDTH);                     \
	}

FOR_EACH_STORAGE(EMBED_WARP_ENTRY)
