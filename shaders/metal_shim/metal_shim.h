// metal_shim.h: just enough of the Metal Shading Language, in C++14 (MSL's base language up to
// Metal 3.2), for clang++ on Linux to type-check shaders/*.metal without a Mac:
//
//	clang++ -std=c++14 -fsyntax-only -include shaders/metal_shim/metal_shim.h -x c++ shaders/X.metal
//
// (scripts/check_metal.sh runs it over every file). It declares, never defines, what the
// preludes and bodies use: the scalar and vector types, the address-space words, the thread
// position attributes (left to clang, which ignores them with -Wunknown-attributes; the script
// fails on any attribute name Metal does not have), SIMD-group reductions, barriers and the
// metal:: and metal::precise:: math. Signatures follow the Metal Shading Language Specification,
// so a call Metal would reject (a missing overload, a wrong argument count or type, an undeclared
// name, a typo) fails here too.
//
// What it cannot check: address spaces (device, constant and threadgroup are empty here, as
// C++ has none, so passing a threadgroup pointer where a device one is expected passes), the
// rules on kernel signatures (attribute types, buffer index ranges), threadgroup memory limits,
// and anything about code generation. Those need the Metal compiler; see docs/METAL.md.
#pragma once

#define GOEMBED_METAL_SHIM 1 // prelude_metal.h: skip <metal_stdlib>, spell SHARED as below
#define __METAL_VERSION__ 310
#define __HAVE_BFLOAT__ 1 // check the bf16 variants too (Metal 3.1)

// Function qualifier and address spaces. threadgroup is also an attribute name
// ([[threadgroup(0)]]), so it is not defined; prelude_metal.h spells SHARED with this instead.
#define kernel
#define device
#define constant
#define METAL_SHIM_THREADGROUP
#define thread

typedef unsigned int uint;
typedef unsigned short ushort;

// half and bfloat: 16-bit floats that convert to and from float implicitly, as in Metal.
struct half {
	unsigned short bits;
	half() = default;
	half(float);
	operator float() const;
};
struct bfloat {
	unsigned short bits;
	bfloat() = default;
	bfloat(float);
	operator float() const;
};

// Vector types: the constructors and components the kernels use.
struct float2 {
	float x, y;
	float2() = default;
	explicit float2(float);
	float2(float, float);
};
struct float4 {
	float x, y, z, w;
	float4() = default;
	explicit float4(float);
	float4(float, float, float, float);
	float4 operator+(float4) const;
	float4 operator*(float4) const;
	float4 operator*(float) const;
};
struct uint2 {
	uint x, y;
};
struct uint3 {
	uint x, y, z;
};

namespace metal {

enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
void threadgroup_barrier(mem_flags);
void simdgroup_barrier(mem_flags);

// SIMD-group functions (Metal 2.1+ on Apple GPUs).
float simd_sum(float);
half simd_sum(half);
int simd_sum(int);
uint simd_sum(uint);
float simd_max(float);
half simd_max(half);
int simd_max(int);
uint simd_max(uint);
float simd_min(float);
float simd_shuffle_xor(float, ushort);
float simd_broadcast(float, ushort);

// Common and math functions, float and half overloads where the kernels could use them.
template <typename T> T min(T, T);
template <typename T> T max(T, T);
template <typename T> T clamp(T x, T lo, T hi);
float fmin(float, float);
float fmax(float, float);
half fmin(half, half);
half fmax(half, half);
float fma(float, float, float);
float fabs(float);
float abs(float);
int abs(int);
float copysign(float, float);
float exp(float);
float exp2(float);
float log(float);
float sqrt(float);
float rsqrt(float);
float tanh(float);
float floor(float);
float ceil(float);
bool isnan(float);
bool isinf(float);
bool isfinite(float);

namespace precise {
float exp(float);
float exp2(float);
float log(float);
float sqrt(float);
float rsqrt(float);
float tanh(float);
float divide(float, float);
} // namespace precise

namespace fast {
float exp(float);
float exp2(float);
float sqrt(float);
float rsqrt(float);
float tanh(float);
} // namespace fast

// SIMD-group matrices (Metal 2.3+ on Apple GPUs; MSL section 6.7): 8x8 tiles of a SIMD group.
// thread_elements() is the lane's two elements (vec<T, 2> in Metal).
template <typename T> struct simdgroup_matrix_elements {
	T& operator[](int);
	const T& operator[](int) const;
};
template <typename T, int Cols, int Rows> struct simdgroup_matrix {
	simdgroup_matrix() = default;
	simdgroup_matrix_elements<T>& thread_elements();
};
template <typename T, int Cols, int Rows, int K>
void simdgroup_multiply_accumulate(simdgroup_matrix<T, Cols, Rows>& d, const simdgroup_matrix<T, K, Rows>& a,
	const simdgroup_matrix<T, Cols, K>& b, const simdgroup_matrix<T, Cols, Rows>& c);

} // namespace metal
