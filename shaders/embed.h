// embed.h: embedding gather + LayerNorm, the first step of a BERT encoder.
#pragma once
#include "common.h"

// EmbedArgs are the scalars of embed_*; the Go mirror is cuda.embedArgs.
struct EmbedArgs {
	int T;        // tokens
	int H;        // hidden
	float eps;    // LayerNorm epsilon
	int typeMode; // 0: no token-type table; 1: typ[types[t]]; 2: typ[0] for every token
};

// embed computes, for token t,
//
//	v      = word[ids[t]] + typ[types[t]] + pos[positions[t]]   (each table [rows, H])
//	out[t] = LayerNorm(v) * gamma + beta                        (out [T, H])
//
// One block per token; row holds H floats of threadgroup memory, red SIMD_WIDTH floats.
template <typename T>
DEVICE_FN void embed(GLOBAL T* out, GLOBAL const int* ids, GLOBAL const int* positions,
	GLOBAL const int* types, GLOBAL const T* word, GLOBAL const T* pos, GLOBAL const T* typ,
	GLOBAL const T* gamma, GLOBAL const T* beta, EmbedArgs a, int t,
	SHARED float* row, SHARED float* red, uint tid, uint nt) {
	int w = ids[t] * a.H, p = positions[t] * a.H;
	int y = a.typeMode == 1 ? types[t] * a.H : 0;
	float sum = 0.0f;
	for (int i = int(tid); i < a.H; i += int(nt)) {
		float v = load_f32(word, w + i); // BERT's order: (word + type) + position
		if (a.typeMode != 0) v += load_f32(typ, y + i);
		v += load_f32(pos, p + i);
		row[i] = v;
		sum += v;
	}
	layernorm_row(out, t * a.H, gamma, beta, row, sum, a.H, a.eps, red, tid, nt);
}
