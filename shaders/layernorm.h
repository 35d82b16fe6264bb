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
