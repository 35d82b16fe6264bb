// gelu.h: the activations Linear applies after its GEMM (bias already added by cuBLASLt's BIAS
// epilogue, or here when bias is set).
#pragma once
#include "common.h"

// ActArgs are the scalars of gelu_* and tanh_*; the Go mirror is cuda.actArgs.
struct ActArgs {
	int n;       // elements of x
	int cols;    // row width (bias length)
	int hasBias; // 0: bias is not read
};

// gelu is the exact GELU BERT was trained with: 0.5 x (1 + erf(x / sqrt 2)). cuBLASLt's GELU
// epilogue is the tanh approximation, so it is not used for ActGELU.
DEVICE_FN float gelu(float x) { return 0.5f * x * (1.0f + erf_f(x * 0.70710678118654752f)); }

// ACT_GELU and ACT_TANH select the function of bias_act.
#define ACT_GELU 1
#define ACT_TANH 2

// bias_act computes x[i] = act(x[i] + bias[i % cols]) in place for the elements i = gid,
// gid + gsize, ... of x [n / cols, cols].
template <typename T, int ACT>
DEVICE_FN void bias_act(GLOBAL T* x, GLOBAL const T* bias, ActArgs a, uint gid, uint gsize) {
	for (int i = int(gid); i < a.n; i += int(gsize)) {
		float v = load_f32(x, i);
		if (a.hasBias) v += load_f32(bias, i % a.cols);
		store_f32(x, i, ACT == ACT_GELU ? gelu(v) : tanh_f(v));
	}
}
