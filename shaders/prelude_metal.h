// prelude_metal.h maps the common kernel subset onto the Metal Shading Language; it is the Metal
// twin of prelude_cuda.h and defines the same names. The Metal entry points (*.metal) include it
// first. Bodies never declare threadgroup memory themselves (Metal allows that only in kernel
// functions): entry points declare it and pass SHARED pointers in.
//
// metalbridge compiles the entry points at run time (newLibraryWithSource:options:error:) with
// fast math off, so x == x, exp2, erf and the divisions keep their IEEE meaning. On Linux,
// scripts/check_metal.sh type-checks the same files with clang++ and metal_shim/metal_shim.h,
// which is included before this file, defines GOEMBED_METAL_SHIM and stands in for
// <metal_stdlib>.
#pragma once

#ifdef GOEMBED_METAL_SHIM
// The shim cannot define the word threadgroup: it is also the attribute [[threadgroup(i)]] of
// the entry points' dynamic threadgroup memory. So entry points write SHARED for the address
// space, and the shim spells it.
#define SHARED METAL_SHIM_THREADGROUP
#else
#include <metal_stdlib>
#define SHARED threadgroup
#endif
using namespace metal;

#define KERNEL kernel
#define DEVICE_FN inline
#define GLOBAL device
#define BARRIER() threadgroup_barrier(mem_flags::mem_threadgroup)
#define SIMD_WIDTH 32 // every Apple GPU; metalbridge checks threadExecutionWidth
#define UNROLL _Pragma("clang loop unroll(full)")

// FOR_EACH_STORAGE(X) expands X(suffix, type) for every storage type the entry points are built
// for, as in prelude_cuda.h: all of them, or the one named by STORAGE_F32, STORAGE_F16 or
// STORAGE_BF16 (metalbridge defines one). bfloat needs Metal 3.1 (macOS 14, iOS 17), whose
// compiler defines __HAVE_BFLOAT__; without it the bf16 variants are left out.
#if defined(STORAGE_F32)
#define FOR_EACH_STORAGE(X) X(f32, float)
#elif defined(STORAGE_F16)
#define FOR_EACH_STORAGE(X) X(f16, half_t)
#elif defined(STORAGE_BF16)
#define FOR_EACH_STORAGE(X) X(bf16, bf16_t)
#elif defined(__HAVE_BFLOAT__)
#define FOR_EACH_STORAGE(X) X(f32, float) X(f16, half_t) X(bf16, bf16_t)
#else
#define FOR_EACH_STORAGE(X) X(f32, float) X(f16, half_t)
#endif

// Storage types: Metal's own 16-bit floats, converted to and from float32 around every use.
typedef half half_t;
#if defined(__HAVE_BFLOAT__)
typedef bfloat bf16_t;
#endif

DEVICE_FN float to_f32(float x) { return x; }
DEVICE_FN float to_f32(half_t x) { return float(x); }
#if defined(__HAVE_BFLOAT__)
DEVICE_FN float to_f32(bf16_t x) { return float(x); }
#endif

template <typename T> DEVICE_FN T from_f32(float x);
template <> DEVICE_FN float from_f32<float>(float x) { return x; }
// float16 saturates at +-65504 instead of overflowing to infinity, as in prelude_cuda.h; a NaN
// stays NaN.
template <> DEVICE_FN half_t from_f32<half_t>(float x) { return half_t(x == x ? clamp(x, -65504.0f, 65504.0f) : x); }
#if defined(__HAVE_BFLOAT__)
template <> DEVICE_FN bf16_t from_f32<bf16_t>(float x) { return bf16_t(x); }
#endif

template <typename T> DEVICE_FN float load_f32(GLOBAL const T* p, int i) { return to_f32(p[i]); }
template <typename T> DEVICE_FN void store_f32(GLOBAL T* p, int i, float v) { p[i] = from_f32<T>(v); }

// SIMD-group reductions: every lane of a full SIMD group takes part and gets the result.
DEVICE_FN float simd_sum_f(float v) { return simd_sum(v); }
DEVICE_FN float simd_max_f(float v) { return simd_max(v); }

DEVICE_FN float4 make_f4(float x, float y, float z, float w) { return float4(x, y, z, w); }
DEVICE_FN float max_f(float a, float b) { return fmax(a, b); }
DEVICE_FN float min_f(float a, float b) { return fmin(a, b); }
DEVICE_FN int min_i(int a, int b) { return min(a, b); }
DEVICE_FN float exp2_f(float x) { return precise::exp2(x); }
DEVICE_FN float sqrt_f(float x) { return precise::sqrt(x); }
DEVICE_FN float rsqrt_f(float x) { return precise::rsqrt(x); }
DEVICE_FN float tanh_f(float x) { return precise::tanh(x); }

// Metal has no erf: Abramowitz & Stegun 7.1.26, absolute error under 1.5e-7 in exact
// arithmetic. Evaluated in float32 (checked on a CPU over |x| <= 8 in steps of 1e-5) it is off
// by at most 5.4e-7 (near |x| = 0.03, where 1 - y e^(-x^2) cancels), and
// GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) by at most 2.8e-7 * abs(x). Not yet run on a Mac.
DEVICE_FN float erf_f(float x) {
	float ax = fabs(x);
	float t = 1.0f / fma(0.3275911f, ax, 1.0f);
	float y = t * fma(t, fma(t, fma(t, fma(t, 1.061405429f, -1.453152027f), 1.421413741f), -0.284496736f), 0.254829592f);
	return copysign(1.0f - y * precise::exp(-ax * ax), x);
}
