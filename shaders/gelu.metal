// gelu.metal: Metal entry points of gelu.h, gelu_<storage> and tanh_<storage>. A 1-D
// grid-stride dispatch over the n elements. Buffers: x 0, bias 1, then the ActArgs (setBytes) at 2.
#include "prelude_metal.h"
#include "gelu.h"

#define ACT_ENTRIES(S, T)                                                                         \
	KERNEL void gelu_##S(GLOBAL T* x [[buffer(0)]], GLOBAL const T* bias [[buffer(1)]],           \
		constant ActArgs& a [[buffer(2)]], uint gid [[thread_position_in_grid]],                  \
		uint gsize [[threads_per_grid]]) {                                                        \
		bias_act<T, ACT_GELU>(x, bias, a, gid, gsize);                                            \
	}                                                                                             \
	KERNEL void tanh_##S(GLOBAL T* x [[buffer(0)]], GLOBAL const T* bias [[buffer(1)]],           \
		constant ActArgs& a [[buffer(2)]], uint gid [[thread_position_in_grid]],                  \
		uint gsize [[threads_per_grid]]) {                                                        \
		bias_act<T, ACT_TANH>(x, bias, a, gid, gsize);                                            \
	}

FOR_EACH_STORAGE(ACT_ENTRIES)
