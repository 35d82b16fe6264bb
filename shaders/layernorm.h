// layernorm.h: residual add + LayerNorm over rows of H.
#pragma once
#include "common.h"

// LayerNormArgs are the scalars of layernorm_*; the Go mirror is cuda.layerNormArgs.
struct LayerNormArgs {
	int T;          // rows
	int H;          // row width
	float eps;      // added to the variance
	int hasResidual; // 0: residual is not read
};

// add_layernorm computes, for row t of [T, H],
//
//	v   = x[t] + residual[t]
//	out[t] = (v - mean(v)) / sqrt(var(v) + eps) * gamma + beta
//
// with mean and (biased) variance in float32. One block per row; row holds H floats of
// threadgroup memory, red SIMD_WIDTH floats. out may alias x or residual.
template <typename T>
DEVICE_FN void add_layernorm(GLOBAL T* out, GLOBAL const T* x, GLOBAL const T* residual,
	GLOBAL const T* gamma, GLOBAL const T* beta, LayerNormArgs a, int t,
	SHARED float* row, SHARED float* red, uint tid, uint nt) {
	int base = t * a.H;
	float sum = 0.0f;
	for (int i = int(tid); i < a.H; i += int(nt)) {
		float v = load_f32(x, base + i);
		if (a.hasResidual) v += load_f32(residual, base + i);
		row[i] = v;
		sum += v;
	}
	layernorm_row(out, base, gamma, beta, row, sum, a.H, a.eps, red, tid, nt);
}

#define LN_WARP_ROWS 4  // rows (SIMD groups) per block of add_layernorm_warp
#define LN_WARP_MAXCH 8 // H <= LN_WARP_MAXCH * 4 * SIMD_WIDTH (1024)

// layernorm_warp_row finishes a row that one SIMD group holds in registers (v: its lane's
// chunks of 4 consecutive values, nch = H / (4*SIMD_WIDTH) of them; sum: the lane's part of the
// row sum): out[base..] = (v - mean) / sqrt(var + eps) * gamma + beta, in two passes in float32.
template <typename T>
DEVICE_FN void layernorm_warp_row(GLOBAL T* out, int base, GLOBAL const T* gamma, GLOBAL const T* beta,
	PRIVATE const float4* v, float sum, int H, float eps, int nch, uint lane) {
	float mean = simd_sum_f(sum) / float(H);
	float sq = 0.0f;
	UNROLL
	for (int c = 0; c < LN_WARP_MAXCH; c++) {
		if (c < nch) {
			float dx = v[c].x - mean, dy = v[c].y - mean, dz = v[c].z - mean, dw = v[c].w - mean;
			sq += (dx * dx + dy * dy) + (dz * dz + dw * dw);
		}
	}
	float rstd = rsqrt_f(simd_sum_f(sq) / float(H) + eps);
	UNROLL
	for (int c = 0; c < LN_WARP_MAXCH; c++) {
		if (c < nch) {
			int i = (c * SIMD_WIDTH + int(lane)) * 4;
			float4 g = load4_f32(gamma, i), b = load4_f32(beta, i);
			store4_f32(out, base + i,
				make_f4((v[c].x - mean) * rstd * g.x + b.x, (v[c].y - mean) * rstd * g.y + b.y,
					(v[c].z - mean) * rstd * g.z + b.z, (v[c].w - mean) * rstd * g.w + b.w));
		}
	}
}

// add_layernorm_warp is add_layernorm for H a multiple of 4*SIMD_WIDTH up to
// LN_WARP_MAXCH*4*SIMD_WIDTH: one SIMD group per row t, the row in registers (4 consecutive
// values a lane per chunk, one vector load each), SIMD reductions only: no threadgroup memory
// and no barrier. Same arithmetic as add_layernorm (two passes over the row in float32). x,
// residual, gamma, beta and out are 16-byte (float) or 8-byte (16-bit types) aligned.
template <typename T>
DEVICE_FN void add_layernorm_warp(GLOBAL T* out, GLOBAL const T* x, GLOBAL const T* residual,
	GLOBAL const T* gamma, GLOBAL const T* beta, LayerNormArgs a, int t, uint lane) {
	if (t >= a.T) return; // t is the same for the whole SIMD group
	int base = t * a.H, nch = a.H / (4 * SIMD_WIDTH);
	float4 v[LN_WARP_MAXCH];
	float sum = 0.0f;
	UNROLL
	for (int c = 0; c < LN_WARP_MAXCH; c++) {
		if (c < nch) {
			int i = (c * SIMD_WIDTH + int(lane)) * 4;
			float4 xv = load4_f32(x, base + i);
			if (a.hasResidual) xv = add_f4(xv, load4_f32(residual, base + i));
			v[c] = xv;
			sum += (xv.x + xv.y) + (xv.z + xv.w);
		}
	}
	layernorm_warp_row(out, base, gamma, beta, v, sum, a.H, a.eps, nch, lane);
}
