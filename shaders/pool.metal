// pool.metal: Metal entry points of pool.h, pool_<storage>. Threadgroup: one sequence, threads a
// multiple of 32; threadgroup memory index 0: H floats (setThreadgroupMemoryLength).
// Buffers: out 0, x 1, seqStarts 2, then the PoolArgs (setBytes) at 3.
#include "prelude_metal.h"
#include "pool.h"

#define POOL_ENTRY(S, T)                                                                          \
	KERNEL void pool_##S(GLOBAL T* out [[buffer(0)]], GLOBAL const T* x [[buffer(1)]],            \
		GLOBAL const int* seqStarts [[buffer(2)]], constant PoolArgs& a [[buffer(3)]],            \
		SHARED float* row [[threadgroup(0)]], uint seq [[threadgroup_position_in_grid]],          \
		uint tid [[thread_position_in_threadgroup]], uint nt [[threads_per_threadgroup]]) {       \
		SHARED float red[SIMD_WIDTH];                                                             \
		pool<T>(out, x, seqStarts, a, int(seq), row, red, tid, nt);                               \
	}

FOR_EACH_STORAGE(POOL_ENTRY)
