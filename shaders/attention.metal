// attention.metal: Metal entry points of attention.h, attention_<storage>_hd<HD>. Grid
// (ceil(maxLen / threads), NH, B) threadgroups of `threads` queries (a multiple of 32), one
// thread each; static threadgroup memory 2*ATT_KTILE*HD floats (as float4): 32 KiB at HD 64,
// the whole of an Apple GPU's threadgroup memory. Buffers: out 0, qkv 1, seqStarts 2, then the
// AttentionArgs (setBytes) at 3.
#include "prelude_metal.h"
#include "attention.h"
#include "attention_mma.h"

#define ATTENTION_ENTRY(S, T, HD)                                                                 \
	KERNEL void attention_##S##_hd##HD(GLOBAL T* out [[buffer(0)]],                              \
		GLOBAL const T* qkv [[buffer(1)]], GLOBAL const int* seqStarts [[buffer(2)]],             \
		constant AttentionArgs& a [[buffer(3)]], uint3 group [[threadgroup_position_in_grid]],    \
		uint3 lid [[thread_position_in_threadgroup]], uint3 size [[threads_per_threadgroup]]) {   \
		SHARED float4 ks[ATT_KTILE * HD / 4];                                                     \
		SHARED float4 vs[ATT_KTILE * HD / 4];                                                     \
		attention<T, HD, false>(out, qkv, seqStarts, a, nullptr, 0, int(group.x), int(group.y),   \
			int(group.z), ks, vs, lid.x, size.x);                                                 \
	}
#define ATTENTION_ENTRIES(S, T) ATTENTION_ENTRY(S, T, 32) ATTENTION_ENTRY(S, T, 64)

FOR_EACH_STORAGE(ATTENTION_ENTRIES)

// attention_mma_<storage>_hd<HD> (16-bit storage): attention_mma.h on simdgroup matrices. Grid
// (ceil(maxLen / (16 W)), NH, B) threadgroups of W * 32 threads, W <= ATTM_WARPS; static threadgroup
// memory ATTM_BUF(HD) elements (27 KiB at HD 64). Same buffers as attention_*. Not yet launched by metalbridge.
#define ATTENTION_MMA_ENTRY(S, T, HD)                                                                 \
	KERNEL void BOUNDS(ATTM_WARPS * SIMD_WIDTH, ATTM_MIN_BLOCKS) attention_mma_##S##_hd##HD(GLOBAL T* out [[buffer(0)]],                              \
		GLOBAL const T* qkv [[buffer(1)]], GLOBAL const int* seqStarts [[buffer(2)]],                 \
		constant AttentionArgs& a [[buffer(3)]], uint3 group [[threadgroup_position_in_grid]],        \
		uint3 lid [[thread_position_in_threadgroup]], uint3 size [[threads_per_threadgroup]]) {      \
		SHARED T buf[ATTM_BUF(HD)];                                                       \
		attention_mma<T, HD, false>(out, qkv, seqStarts, a, nullptr, 0, int(group.x), int(group.y), \
			int(group.z), buf, lid.x, size.x); \
	}
#define ATTENTION_MMA_ENTRIES(S, T) ATTENTION_MMA_ENTRY(S, T, 32) ATTENTION_MMA_ENTRY(S, T, 64)

FOR_EACH_STORAGE16(ATTENTION_MMA_ENTRIES)

// attention_bias_<storage>_hd<HD> and attention_mma_bias_<storage>_hd<HD>: the same with the
// relative position bias rel [NH, 2R-1] (float32) at buffer 3 and AttentionBiasArgs at 4.
// Not yet launched by metalbridge.
#define ATTENTION_BIAS_ENTRY(S, T, HD)                                                             \
	KERNEL void attention_bias_##S##_hd##HD(GLOBAL T* out [[buffer(0)]],                          \
		GLOBAL const T* qkv [[buffer(1)]], GLOBAL const int* seqStarts [[buffer(2)]],              \
		GLOBAL const float* rel [[buffer(3)]], constant AttentionBiasArgs& a [[buffer(4)]],       \
		uint3 group [[threadgroup_position_in_grid]], uint3 lid [[thread_position_in_threadgroup]], \
		uint3 size [[threads_per_threadgroup]]) {                                                  \
		SHARED float4 ks[ATT_KTILE * HD / 4];                                                      \
		SHARED float4 vs[ATT_KTILE * HD / 4];                                                      \
		AttentionArgs args = {a.NH, a.scale};                                                        \
		attention<T, HD, true>(out, qkv, seqStarts, args, rel + int(group.y) * (2 * a.R - 1), a.R,  \
			int(group.x), int(group.y), int(group.z), ks, vs, lid.x, size.x);                      \
	}
#define ATTENTION_BIAS_ENTRIES(S, T) ATTENTION_BIAS_ENTRY(S, T, 32) ATTENTION_BIAS_ENTRY(S, T, 64)

FOR_EACH_STORAGE(ATTENTION_BIAS_ENTRIES)

#define ATTENTION_MMA_BIAS_ENTRY(S, T, HD)                                                         \
	KERNEL void BOUNDS(ATTM_WARPS * SIMD_WIDTH, ATTM_MIN_BLOCKS) attention_mma_bias_##S##_hd##HD(GLOBAL T* out [[buffer(0)]],                      \
		GLOBAL const T* qkv [[buffer(1)]], GLOBAL const int* seqStarts [[buffer(2)]],              \
		GLOBAL const float* rel [[buffer(3)]], constant AttentionBiasArgs& a [[buffer(4)]],       \
		uint3 group [[threadgroup_position_in_grid]], uint3 lid [[thread_position_in_threadgroup]], \
		uint3 size [[threads_per_threadgroup]]) {                                                  \
		SHARED T buf[ATTM_BUF(HD)];                                                    \
		AttentionArgs args = {a.NH, a.scale};                                                        \
		attention_mma<T, HD, true>(out, qkv, seqStarts, args, rel + int(group.y) * (2 * a.R - 1), a.R, \
			int(group.x), int(group.y), int(group.z), buf, lid.x, size.x);                         \
	}
#define ATTENTION_MMA_BIAS_ENTRIES(S, T) ATTENTION_MMA_BIAS_ENTRY(S, T, 32) ATTENTION_MMA_BIAS_ENTRY(S, T, 64)

FOR_EACH_STORAGE16(ATTENTION_MMA_BIAS_ENTRIES)
