// prelude_metal.h maps the common kernel subset onto the Metal Shading Language; it is the Metal
// twin of prelude_cuda.h and defines the same names. The Metal entry points (*.metal) include it
// first. Bodies never declare threadgroup memory themselves (Metal allows that only in kernel
// functions): entry points declare it and pass SHARED pointers in.
#pragma once

#include <metal_stdlib>
using namespace metal;

#define KERNEL kernel
#define DEVICE_FN inline
#define GLOBAL device
#define SHARED threadgroup
#define BARRIER() threadgroup_barrier(mem_flags::mem_threadgroup)
#define SIMD_WIDTH 32
#define UNROLL _Pragma("unroll")

typedef half half_t;
typedef bfloat bf16_t; // Metal 3.1 (macOS 14, iOS 17)

DEVICE_FN float to_f32(float x) { return x; }
DEVICE_FN float to_f32(half_t x) { return float(x); }
DEVICE_FN float to_f32(bf16_t x) { return float(x); }

template <typename T> DEVICE_FN T from_f32(float x);
template <> DEVICE_FN float from_f32<float>(float x) { return x; }
template <> DEVICE_FN half_t from_f32<half_t>(float x) { return half_t(x == x ? clamp(x, -65504.0f, 65504.0f) : x); }
template <> DEVICE_FN bf16_t from_f32<bf16_t>(float x) { return bf16_t(x); }

template <typename T> DEVICE_FN float load_f32(GLOBAL const T* p, int i) { return to_f32(p[i]); }
template <typename T> DEVICE_FN void store_f32(GLOBAL T* p, int i, float v) { p[i] = from_f32<T>(v); }

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

// Metal has no erf: Abramowitz & Stegun 7.1.26, absolute error under 1.5e-7, which keeps
// the error of GELU(x) = 0.5 x (1 + erf(x / sqrt 2)) under 1e-7 * abs(x). Not yet run on a Mac.
DEVICE_FN float erf_f(float x) {
	float ax = fabs(x);
	float t = 1.0f / fma(0.3275911f, ax, 1.0f);
	float y = t * fma(t, fma(t, fma(t, fma(t, 1.061405429f, -1.453152027f), 1.421413741f), -0.284496736f), 0.254829592f);
	return copysign(1.0f - y * precise::exp(-ax * ax), x);
}
