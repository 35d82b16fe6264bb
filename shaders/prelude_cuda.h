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
// BOUNDS(threads, blocks) after an entry point's "void": at most that many threads a block, and
// registers few enough for that many blocks an SM (__launch_bounds__).
#define BOUNDS(threads, blocks) __launch_bounds__(threads, blocks)
#define DEVICE_FN __device__ __forceinline__
#define GLOBAL
#define SHARED
#define PRIVATE // thread-private address space (Metal: thread), for pointers to a thread's arrays
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

// Four consecutive values at index i (a multiple of 4; 16-byte aligned for float, 8-byte for the
// 16-bit types), as one vector access.
DEVICE_FN float4 load4_f32(GLOBAL const float* p, int i) { return *(const float4*)(p + i); }
template <typename T> DEVICE_FN float4 load4_f32(GLOBAL const T* p, int i) {
	uint2 u = *(const uint2*)(p + i);
	T e[4];
	e[0].bits = (unsigned short)(u.x & 0xffffu);
	e[1].bits = (unsigned short)(u.x >> 16);
	e[2].bits = (unsigned short)(u.y & 0xffffu);
	e[3].bits = (unsigned short)(u.y >> 16);
	return make_float4(to_f32(e[0]), to_f32(e[1]), to_f32(e[2]), to_f32(e[3]));
}
DEVICE_FN void store4_f32(GLOBAL float* p, int i, float4 v) { *(float4*)(p + i) = v; }
template <typename T> DEVICE_FN void store4_f32(GLOBAL T* p, int i, float4 v) {
	T e[4] = {from_f32<T>(v.x), from_f32<T>(v.y), from_f32<T>(v.z), from_f32<T>(v.w)};
	*(uint2*)(p + i) = make_uint2(uint(e[0].bits) | (uint(e[1].bits) << 16), uint(e[2].bits) | (uint(e[3].bits) << 16));
}

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
DEVICE_FN int max_i(int a, int b) { return a > b ? a : b; }
DEVICE_FN float exp2_f(float x) { return exp2f(x); }
DEVICE_FN float sqrt_f(float x) { return sqrtf(x); }
DEVICE_FN float rsqrt_f(float x) { return rsqrtf(x); }
DEVICE_FN float erf_f(float x) { return erff(x); }
DEVICE_FN float tanh_f(float x) { return tanhf(x); }

// FOR_EACH_STORAGE16(X) is FOR_EACH_STORAGE restricted to the 16-bit storage types: the
// tensor-core kernels (attention_mma_*) exist only for those.
#if defined(STORAGE_F32)
#define FOR_EACH_STORAGE16(X)
#elif defined(STORAGE_F16)
#define FOR_EACH_STORAGE16(X) X(f16, half_t)
#elif defined(STORAGE_BF16)
#define FOR_EACH_STORAGE16(X) X(bf16, bf16_t)
#else
#define FOR_EACH_STORAGE16(X) X(f16, half_t) X(bf16, bf16_t)
#endif

// Copies of 8 consecutive 16-bit storage values (16 bytes, both pointers 16-byte aligned).
template <typename T> DEVICE_FN void copy8_16(SHARED T* dst, GLOBAL const T* src) {
	*(uint4*)dst = *(const uint4*)src;
}
template <typename T> DEVICE_FN void zero8_16(SHARED T* dst) { *(uint4*)dst = make_uint4(0u, 0u, 0u, 0u); }
template <typename T> DEVICE_FN void load8_16(T v[8], GLOBAL const T* src) {
	uint4 u = *(const uint4*)src;
	uint w[4] = {u.x, u.y, u.z, u.w};
	UNROLL
	for (int i = 0; i < 8; i++) v[i].bits = (unsigned short)(w[i / 2] >> (16 * (i & 1)));
}

// Asynchronous copies global -> threadgroup memory, 16 bytes each (both 16-byte aligned), the
// same API in prelude_metal.h: async_copy16(dst, src, valid) starts a copy of src (zeros when
// !valid; src must still be a readable address) without holding the thread, async_commit() closes
// the group of copies started since the last one, async_wait<N>() waits until at most the N
// newest groups are still in flight. A BARRIER() after the wait makes the data visible to the
// block. CUDA: cp.async (sm_80+; before it, a plain copy).
template <typename T> DEVICE_FN void async_copy16(SHARED T* dst, GLOBAL const T* src, bool valid) {
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
		:: "r"((uint)__cvta_generic_to_shared(dst)), "l"(src), "r"(valid ? 16 : 0) : "memory");
#else
	if (valid) {
		copy8_16(dst, src);
	} else {
		zero8_16(dst);
	}
#endif
}
DEVICE_FN void async_commit() {
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
template <int N> DEVICE_FN void async_wait() {
#if __CUDA_ARCH__ >= 800
	asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");
#endif
}

// Tensor-core fragments: 16x16 tiles owned by one SIMD group (warp), the same API in
// prelude_metal.h. frag_a<T> is a 16x16 left operand, frag_b<T> a 16x16 right operand, both of
// storage type T (half_t or bf16_t); frag_c is a 16x16 float32 accumulator whose FRAG_C_N
// elements per lane are c.v[i], at row frag_c_row(frag_c_slot(i), lane) and column
// frag_c_col(i, lane). A lane's elements lie on FRAG_C_ROWS rows (slots); frag_row_max and
// frag_row_sum combine a per-row value over the lanes that share the row.
//   frag_load_a(a, p, ld, lane):  A[r][c] = p[r*ld + c]
//   frag_load_bt(b, p, ld, lane): B[k][n] = p[n*ld + k]   (B given transposed: rows of n)
//   frag_load_b(b, p, ld, lane):  B[k][n] = p[k*ld + n]
//   frag_mma(c, a, b):            c += A B, float32 accumulation
//   frag_c_to_a(a, c):            A = c rounded to T (an accumulator reused as a left operand)
// CUDA: two mma.sync.m16n8k16 (sm_80+) per frag_mma; the register layouts are PTX's.
#define FRAG_C_N 8
#define FRAG_C_ROWS 2
struct frag_c { float v[FRAG_C_N]; };
template <typename T> struct frag_a { uint r[4]; };
template <typename T> struct frag_b { uint r[4]; };

DEVICE_FN int frag_c_slot(int i) { return (i >> 1) & 1; }
DEVICE_FN int frag_c_row(int slot, uint lane) { return int(lane >> 2) + 8 * slot; }
DEVICE_FN int frag_c_col(int i, uint lane) { return (i >> 2) * 8 + int(lane & 3u) * 2 + (i & 1); }
DEVICE_FN float frag_row_max(float v) {
	v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
	return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
DEVICE_FN float frag_row_sum(float v) {
	v += __shfl_xor_sync(0xffffffffu, v, 1);
	return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
DEVICE_FN void frag_zero(frag_c& c) {
	UNROLL
	for (int i = 0; i < FRAG_C_N; i++) c.v[i] = 0.0f;
}
// The loads are ldmatrix (four 8x8 matrices; each lane gives one 16-byte row address, so rows
// must be 16-byte aligned): the register layouts come out as mma.sync wants them. The two
// ldmatrix helpers are internal to the frag_* API (no Metal twin; bodies do not call them).
__device__ __forceinline__ void frag_ldmatrix4(uint r[4], const void* row) {
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
		: "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		: "r"((uint)__cvta_generic_to_shared(row)));
}
__device__ __forceinline__ void frag_ldmatrix4_trans(uint r[4], const void* row) {
	asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
		: "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
		: "r"((uint)__cvta_generic_to_shared(row)));
}
// A: r[0] rows 0-7 cols 0-7, r[1] rows 8-15 cols 0-7, r[2] rows 0-7 cols 8-15, r[3] rows 8-15
// cols 8-15; lane l addresses row (l & 7) + 8 ((l >> 3) & 1) of matrix l >> 3.
template <typename T> DEVICE_FN void frag_load_a(frag_a<T>& a, SHARED const T* p, int ld, uint lane) {
	frag_ldmatrix4(a.r, p + (int(lane & 7u) + 8 * int((lane >> 3) & 1u)) * ld + 8 * int(lane >> 4));
}
// B given by rows of n: r[0] n 0-7 k 0-7, r[1] n 0-7 k 8-15, r[2] n 8-15 k 0-7, r[3] n 8-15 k 8-15.
template <typename T> DEVICE_FN void frag_load_bt(frag_b<T>& b, SHARED const T* p, int ld, uint lane) {
	frag_ldmatrix4(b.r, p + (int(lane & 7u) + 8 * int(lane >> 4)) * ld + 8 * int((lane >> 3) & 1u));
}
// B given by rows of k (B[k][n] = p[k*ld + n]), transposed by ldmatrix: r[0] k 0-7 n 0-7,
// r[1] k 8-15 n 0-7, r[2] k 0-7 n 8-15, r[3] k 8-15 n 8-15.
template <typename T> DEVICE_FN void frag_load_b(frag_b<T>& b, SHARED const T* p, int ld, uint lane) {
	frag_ldmatrix4_trans(b.r, p + (int(lane & 7u) + 8 * int((lane >> 3) & 1u)) * ld + 8 * int(lane >> 4));
}
// Stores 8 consecutive 16-bit values from threadgroup memory to device memory (16 bytes).
template <typename T> DEVICE_FN void store8_16(GLOBAL T* dst, SHARED const T* src) {
	*(uint4*)dst = *(const uint4*)src;
}
#if __CUDA_ARCH__ >= 800
DEVICE_FN void frag_mma(frag_c& c, const frag_a<half_t>& a, const frag_b<half_t>& b) {
	UNROLL
	for (int n = 0; n < 2; n++)
		asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
			: "+f"(c.v[4 * n]), "+f"(c.v[4 * n + 1]), "+f"(c.v[4 * n + 2]), "+f"(c.v[4 * n + 3])
			: "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[2 * n]), "r"(b.r[2 * n + 1]));
}
DEVICE_FN void frag_mma(frag_c& c, const frag_a<bf16_t>& a, const frag_b<bf16_t>& b) {
	UNROLL
	for (int n = 0; n < 2; n++)
		asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
			: "+f"(c.v[4 * n]), "+f"(c.v[4 * n + 1]), "+f"(c.v[4 * n + 2]), "+f"(c.v[4 * n + 3])
			: "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[2 * n]), "r"(b.r[2 * n + 1]));
}
DEVICE_FN void frag_c_to_a(frag_a<half_t>& a, const frag_c& c) {
	UNROLL
	for (int k = 0; k < 4; k++) asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(a.r[k]) : "f"(c.v[2 * k + 1]), "f"(c.v[2 * k]));
}
DEVICE_FN void frag_c_to_a(frag_a<bf16_t>& a, const frag_c& c) {
	UNROLL
	for (int k = 0; k < 4; k++) asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(a.r[k]) : "f"(c.v[2 * k + 1]), "f"(c.v[2 * k]));
}
#else
// No mma.sync before sm_80: the launcher never picks attention_mma_* there.
template <typename T> DEVICE_FN void frag_mma(frag_c& c, const frag_a<T>& a, const frag_b<T>& b) { __trap(); }
template <typename T> DEVICE_FN void frag_c_to_a(frag_a<T>& a, const frag_c& c) { __trap(); }
#endif
