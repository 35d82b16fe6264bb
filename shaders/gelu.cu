// gelu.cu: CUDA entry points of gelu.h, gelu_<storage> and tanh_<storage>. A 1-D grid-stride
// launch over the n elements.
#include "prelude_cuda.h"
#include "gelu.h"

#define ACT_ENTRIES(S, T)                                                                         \
	KERNEL void gelu_##S(T* x, const T* bias, ActArgs a) {                                       \
		bias_act<T, ACT_GELU>(x, bias, a, blockIdx.x * blockDim.x + threadIdx.x, gridDim.x * blockDim.x); \
	}                                                                                             \
	KERNEL void tanh_##S(T* x, const T* bias, ActArgs a) {                                       \
		bias_act<T, ACT_TANH>(x, bias, a, blockIdx.x * blockDim.x + threadIdx.x, gridDim.x * blockDim.x); \
	}

FOR_EACH_STORAGE(ACT_ENTRIES)
