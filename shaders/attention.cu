// attention.cu: CUDA entry points of attention.h, attention_<storage>_hd<HD>. Grid
// (ceil(maxLen / blockDim.x), NH, B); block: blockDim.x queries (a multiple of 32), one thread
// each; static shared memory 2*ATT_KTILE*HD floats (as float4).
#include "prelude_cuda.h"
#include "attention.h"
#include "attention_mma.h"

#define ATTENTION_ENTRY(S, T, HD)                                                                 \
	KERNEL void attention_##S##_hd##HD(T* out, const T* qkv, const int* seqStarts, AttentionArgs a) { \
		__shared__ float4 ks[ATT_KTILE * HD / 4];                                                 \
		__shared__ float4 vs[ATT_KTILE * HD / 4];                                                 \
		attention<T, HD, false>(out, qkv, seqStarts, a, nullptr, 0, blockIdx.x, blockIdx.y, blockIdx.z, \
			ks, vs, threadIdx.x, blockDim.x);                                                     \
	}
#define ATTENTION_ENTRIES(S, T) ATTENTION_ENTRY(S, T, 32) ATTENTION_ENTRY(S, T, 64)

FOR_EACH_STORAGE(ATTENTION_ENTRIES)

// attention_mma_<storage>_hd<HD> (16-bit storage, sm_80+): attention_mma.h. Grid
// (ceil(maxLen / (16 W)), NH, B), block W * 32 threads, W <= ATTM_WARPS; static shared memory
// ATTM_BUF(HD) elements (30 KiB at HD 32, 27 KiB at HD 64).
#define ATTENTION_MMA_ENTRY(S, T, HD)                                                                  \
	KERNEL void BOUNDS(ATTM_WARPS * SIMD_WIDTH, ATTM_MIN_BLOCKS) attention_mma_##S##_hd##HD(T* out, const T* qkv, const int* seqStarts, AttentionArgs a) { \
		__shared__ __align__(16) T buf[ATTM_BUF(HD)];                                      \
		attention_mma<T, HD, false>(out, qkv, seqStarts, a, nullptr, 0, blockIdx.x, blockIdx.y, blockIdx.z, \
			buf, threadIdx.x, blockDim.x); \
	}
#define ATTENTION_MMA_ENTRIES(S, T) ATTENTION_MMA_ENTRY(S, T, 32) ATTENTION_MMA_ENTRY(S, T, 64)

FOR_EACH_STORAGE16(ATTENTION_MMA_ENTRIES)

// attention_bias_<storage>_hd<HD> and attention_mma_bias_<storage>_hd<HD>: the same with the
// relative position bias rel [NH, 2R-1] (float32) added to the scores; launched as above.
#define ATTENTION_BIAS_ENTRY(S, T, HD)                                                             \
	KERNEL void attention_bias_##S##_hd##HD(T* out, const T* qkv, const int* seqStarts, const float* rel, \
		AttentionBiasArgs a) {                                                                    \
		__shared__ float4 ks[ATT_KTILE * HD / 4];                                                  \
		__shared__ float4 vs[ATT_KTILE * HD / 4];                                                  \
		AttentionArgs args = {a.NH, a.scale};                                                        \
		attention<T, HD, true>(out, qkv, seqStarts, args, rel + blockIdx.y * (2 * a.R - 1), a.R, blockIdx.x, \
			blockIdx.y, blockIdx.z, ks, vs, threadIdx.x, blockDim.x);                              \
	}
#define ATTENTION_BIAS_ENTRIES(S, T) ATTENTION_BIAS_ENTRY(S, T, 32) ATTENTION_BIAS_ENTRY(S, T, 64)

FOR_EACH_STORAGE(ATTENTION_BIAS_ENTRIES)

#define ATTENTION_MMA_BIAS_ENTRY(S, T, HD)                                                         \
	KERNEL void BOUNDS(ATTM_WARPS * SIMD_WIDTH, ATTM_MIN_BLOCKS) attention_mma_bias_##S##_hd##HD(T* out, const T* qkv, const int* seqStarts, const float* rel, \
		AttentionBiasArgs a) {                                                                    \
		__shared__ __align__(16) T buf[ATTM_BUF(HD)];                                  \
		AttentionArgs args = {a.NH, a.scale};                                                        \
		attention_mma<T, HD, true>(out, qkv, seqStarts, args, rel + blockIdx.y * (2 * a.R - 1), a.R, blockIdx.x, \
			blockIdx.y, blockIdx.z, buf, threadIdx.x, blockDim.x);                                 \
	}
#define ATTENTION_MMA_BIAS_ENTRIES(S, T) ATTENTION_MMA_BIAS_ENTRY(S, T, 32) ATTENTION_MMA_BIAS_ENTRY(S, T, 64)

FOR_EACH_STORAGE16(ATTENTION_MMA_BIAS_ENTRIES)
