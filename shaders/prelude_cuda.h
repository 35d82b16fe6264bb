// prelude_cuda.h maps the common kernel subset onto CUDA C++ (compiled at run time by NVRTC).
//
// Bodies (*.h) use only what the preludes define: address-space words on pointers (GLOBAL,
// SHARED), DEVICE_FN helpers, BARRIER(), SIMD reductions over SIMD_WIDTH lanes, the math
// helpers below, and the storage types half_t / bf16_t read and written through load_f32 and
// store_f32. Entry points (*.cu) read the thread ids and pass them in.
//
// No CUDA header is included: NVRTC needs no include path, and half/bfloat16 conversions are one
// PTX instruction each.
#pragma once

#define KERNEL extern "C" __global__
#define DEVICE_FN __device__ __forceinline__
#define GLOBAL
#define SHARED
#define BARRIER() __syncthreads()
#define SIMD_WIDTH 32
#define UNROLL _Pragma("unroll")

typedef unsigned int uint;

// FOR_EACH_STORAGE(X) expands X(suffix, type) for every storage type the entry points are built
// for: all three, or the one named by -DSTORAGE_F32, -DSTORAGE_F16 or -DSTORAGE_BF16 (a backend
// compiles only its own; a third of the NVRTC time).
#if defined(STORAGE_F32)
#define FOR_EACH_STORAGE(X) X(f32, float)
#elif defined(STORAGE_F16)
#define FOR_EACH_STORAGE(X) X(f16, half_t)
#elif defined(STORAGE_BF16)
#define FOR_EACH_STORAGE(X) X(bf16, bf16_t)
#else
#define FOR_EACH_STORAGE(X) X(f32, float) X(f16, half_t) X(bf16, bf16_t)
#endif

// Storage types: 16-bit patterns, converted to and from float32 around every use.
struct half_t { unsigned short bits; };
struct bf16_t { unsigned short bits; };

DEVICE_FN float to_f32(float x) { return x; }
DEVICE_FN float to_f32(half_t x) {
	float f;
	asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
	return f;
}
DEVICE_FN float to_f32(bf16_t x) { return __uint_as_float(((uint)x.bits) << 16); }

template <typename T> DEVICE_FN T from_f32(float x);
template <> DEVICE_FN float from_f32<float>(float x) { return x; }
// float16 saturates at +-65504 instead of overflowing to infinity, so that a later LayerNorm
// sees a large finite value and never makes a NaN; a NaN stays NaN.
template <> DEVICE_FN half_t from_f32<half_t>(float x) {
	half_t h;
	if (x == x) x = fminf(fmaxf(x, -65504.0f), 65504.0f);
	asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
	return h;
}
template <> DEVICE_FN bf16_t from_f32<bf16_t>(float x) {
	bf16_t h;
#if __CUDA_ARCH__ >= 800
	asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(x));
#else
	uint u = __float_as_uint(x);
	if ((u & 0x7fffffffu) > 0x7f800000u) {
		h.bits = 0x7fc0;
	} else {
		h.bits = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
	}
#endif
	return h;
}

template <typename T> DEVICE_FN float load_f32(GLOBAL const T* p, int i) { return to_f32(p[i]); }
template <typename T> DEVICE_FN void store_f32(GLOBAL T* p, int i, float v) { p[i] = from_f32<T>(v); }

// SIMD (warp) reductions: every lane of a full warp takes part and gets the result.
DEVICE_FN float simd_sum_f(float v) {
	for (int o = SIMD_WIDTH / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}
DEVICE_FN float simd_max_f(float v) {
	for (int o = SIMD_WIDTH / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

DEVICE_FN float4 make_f4(float x, float y, float z, float w) { return make_float4(x, y, z, w); }
DEVICE_FN float max_f(float a, float b) { return fmaxf(a, b); }
DEVICE_FN float min_f(float a, float b) { return fminf(a, b); }
DEVICE_FN int min_i(int a, int b) { return a < b ? a : b; }
DEVICE_FN float exp2_f(float x) { return exp2f(x); }
DEVICE_FN float sqrt_f(float x) { return sqrtf(x); }
DEVICE_FN float rsqrt_f(float x) { return rsqrtf(x); }
DEVICE_FN float erf_f(float x) { return erff(x); }
DEVICE_FN float tanh_f(float x) { return tanhf(x); }
