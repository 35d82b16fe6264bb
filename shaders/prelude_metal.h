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
#define BOUNDS(threads, blocks) // prelude_cuda.h's register budget: the Metal compiler decides
#define DEVICE_FN inline
#define GLOBAL device
#define PRIVATE thread // pointers to a thread's own arrays
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

// Four consecutive values at index i, as in prelude_cuda.h (element by element here).
template <typename T> DEVICE_FN float4 load4_f32(GLOBAL const T* p, int i) {
	return float4(to_f32(p[i]), to_f32(p[i + 1]), to_f32(p[i + 2]), to_f32(p[i + 3]));
}
template <typename T> DEVICE_FN void store4_f32(GLOBAL T* p, int i, float4 v) {
	p[i] = from_f32<T>(v.x);
	p[i + 1] = from_f32<T>(v.y);
	p[i + 2] = from_f32<T>(v.z);
	p[i + 3] = from_f32<T>(v.w);
}

// SIMD-group reductions: every lane of a full SIMD group takes part and gets the result.
DEVICE_FN float simd_sum_f(float v) { return simd_sum(v); }
DEVICE_FN float simd_max_f(float v) { return simd_max(v); }

DEVICE_FN float4 make_f4(float x, float y, float z, float w) { return float4(x, y, z, w); }
DEVICE_FN float max_f(float a, float b) { return fmax(a, b); }
DEVICE_FN float min_f(float a, float b) { return fmin(a, b); }
DEVICE_FN int min_i(int a, int b) { return min(a, b); }
DEVICE_FN int max_i(int a, int b) { return max(a, b); }
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

// FOR_EACH_STORAGE16(X) is FOR_EACH_STORAGE restricted to the 16-bit storage types, as in
// prelude_cuda.h: the tensor-core kernels (attention_mma_*) exist only for those.
#if defined(STORAGE_F32)
#define FOR_EACH_STORAGE16(X)
#elif defined(STORAGE_F16)
#define FOR_EACH_STORAGE16(X) X(f16, half_t)
#elif defined(STORAGE_BF16)
#define FOR_EACH_STORAGE16(X) X(bf16, bf16_t)
#elif defined(__HAVE_BFLOAT__)
#define FOR_EACH_STORAGE16(X) X(f16, half_t) X(bf16, bf16_t)
#else
#define FOR_EACH_STORAGE16(X) X(f16, half_t)
#endif

// Copies of 8 consecutive 16-bit storage values, as in prelude_cuda.h (element by element here).
template <typename T> DEVICE_FN void copy8_16(SHARED T* dst, GLOBAL const T* src) {
	for (int i = 0; i < 8; i++) dst[i] = src[i];
}
template <typename T> DEVICE_FN void zero8_16(SHARED T* dst) {
	for (int i = 0; i < 8; i++) dst[i] = T(0.0f);
}
template <typename T> DEVICE_FN void load8_16(thread T* v, GLOBAL const T* src) {
	for (int i = 0; i < 8; i++) v[i] = src[i];
}

// Asynchronous copies, the API of prelude_cuda.h: plain copies here (the wait is the BARRIER
// that follows it in the bodies).
template <typename T> DEVICE_FN void async_copy16(SHARED T* dst, GLOBAL const T* src, bool valid) {
	if (valid) {
		copy8_16(dst, src);
	} else {
		zero8_16(dst);
	}
}
DEVICE_FN void async_commit() {}
template <int N> DEVICE_FN void async_wait() {}

// Tensor-core fragments: 16x16 tiles owned by one SIMD group, the API of prelude_cuda.h (see
// there) over 2x2 simdgroup_matrix<float, 8, 8>. Operands are held as float (converted from the
// storage type on load), so that half and bfloat share one path. Element (r, c) of an 8x8
// simdgroup matrix lives in lane l as thread_elements()[e] with r = 4*l4 + 2*l2 + l1 and
// c = 4*l3 + 2*l0 + e (lk: bit k of l), the layout MLX's steel kernels rely on; a 16x16 tile's
// element i of a lane is 8x8 block (i >> 2, (i >> 1) & 1), element i & 1. Not yet run on a Mac.
#define FRAG_C_N 8
#define FRAG_C_ROWS 2
struct frag_c { float v[FRAG_C_N]; };
template <typename T> struct frag_a { float v[FRAG_C_N]; };
template <typename T> struct frag_b { float v[FRAG_C_N]; };

DEVICE_FN int frag_c_slot(int i) { return i >> 2; }
DEVICE_FN int frag_c_row(int slot, uint lane) {
	return 8 * slot + int(((lane >> 4) & 1u) * 4u + ((lane >> 2) & 1u) * 2u + ((lane >> 1) & 1u));
}
DEVICE_FN int frag_c_col(int i, uint lane) { return ((i >> 1) & 1) * 8 + int(((lane >> 3) & 1u) * 4u + (lane & 1u) * 2u) + (i & 1); }
DEVICE_FN float frag_row_max(float v) {
	v = fmax(v, simd_shuffle_xor(v, ushort(1)));
	return fmax(v, simd_shuffle_xor(v, ushort(8)));
}
DEVICE_FN float frag_row_sum(float v) {
	v += simd_shuffle_xor(v, ushort(1));
	return v + simd_shuffle_xor(v, ushort(8));
}
DEVICE_FN void frag_zero(thread frag_c& c) {
	for (int i = 0; i < FRAG_C_N; i++) c.v[i] = 0.0f;
}
template <typename T> DEVICE_FN void frag_load_a(thread frag_a<T>& a, SHARED const T* p, int ld, uint lane) {
	for (int i = 0; i < FRAG_C_N; i++) a.v[i] = float(p[frag_c_row(frag_c_slot(i), lane) * ld + frag_c_col(i, lane)]);
}
template <typename T> DEVICE_FN void frag_load_bt(thread frag_b<T>& b, SHARED const T* p, int ld, uint lane) {
	// B[k][n] with k the row of element i and n its column
	for (int i = 0; i < FRAG_C_N; i++) b.v[i] = float(p[frag_c_col(i, lane) * ld + frag_c_row(frag_c_slot(i), lane)]);
}
template <typename T> DEVICE_FN void frag_load_b(thread frag_b<T>& b, SHARED const T* p, int ld, uint lane) {
	for (int i = 0; i < FRAG_C_N; i++) b.v[i] = float(p[frag_c_row(frag_c_slot(i), lane) * ld + frag_c_col(i, lane)]);
}
template <typename T> DEVICE_FN void store8_16(GLOBAL T* dst, SHARED const T* src) {
	for (int i = 0; i < 8; i++) dst[i] = src[i];
}
template <typename T> DEVICE_FN void frag_mma(thread frag_c& c, thread const frag_a<T>& a, thread const frag_b<T>& b) {
	simdgroup_matrix<float, 8, 8> ma[4], mb[4], mc[4];
	for (int k = 0; k < 4; k++) {
		for (int e = 0; e < 2; e++) {
			ma[k].thread_elements()[e] = a.v[2 * k + e];
			mb[k].thread_elements()[e] = b.v[2 * k + e];
			mc[k].thread_elements()[e] = c.v[2 * k + e];
		}
	}
	// block (m, n) = k = 2m + n: C(m, n) += A(m, 0) B(0, n) + A(m, 1) B(1, n)
	for (int m = 0; m < 2; m++) {
		for (int n = 0; n < 2; n++) {
			simdgroup_multiply_accumulate(mc[2 * m + n], ma[2 * m], mb[n], mc[2 * m + n]);
			simdgroup_multiply_accumulate(mc[2 * m + n], ma[2 * m + 1], mb[2 + n], mc[2 * m + n]);
		}
	}
	for (int k = 0; k < 4; k++) {
		for (int e = 0; e < 2; e++) c.v[2 * k + e] = mc[k].thread_elements()[e];
	}
}
// The operand is held as float: round it through T so that both languages multiply the same P.
template <typename T> DEVICE_FN void frag_c_to_a(thread frag_a<T>& a, thread const frag_c& c) {
	for (int i = 0; i < FRAG_C_N; i++) a.v[i] = float(T(c.v[i]));
}
