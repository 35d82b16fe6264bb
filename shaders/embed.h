// embed.h: embedding gather + LayerNorm, the first step of a BERT encoder.
#pragma once
#include "common.h"
#include "layernorm.h"

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

// embed_warp is embed for H a multiple of 4*SIMD_WIDTH up to LN_WARP_MAXCH*4*SIMD_WIDTH, the
// way add_layernorm_warp is add_layernorm: one SIMD group per token t, the row in registers, no
// threadgroup memory. Same sums in the same order as embed. The tables, gamma, beta and out
// are 16-byte (float) or 8-byte (16-bit types) aligned.
template <typename T>
DEVICE_FN void embed_warp(GLOBAL T* out, GLOBAL const int* ids, GLOBAL const int* positions,
	GLOBAL const int* types, GLOBAL const T* word, GLOBAL const T* pos, GLOBAL const T* typ,
	GLOBAL const T* gamma, GLOBAL const T* beta, EmbedArgs a, int t, uint lane) {
	if (t >= a.T) return; // t is the same for the whole SIMD group
	int w = ids[t] * a.H, p = positions[t] * a.H, nch = a.H / (4 * SIMD_WIDTH);
	int y = a.typeMode == 1 ? types[t] * a.H : 0;
	float4 v[LN_WARP_MAXCH];
	float sum = 0.0f;
	UNROLL
	for (int c = 0; c < LN_WARP_MAXCH; c++) {
		if (c < nch) {
			int i = (c * SIMD_WIDTH + int(lane)) * 4;
			float4 x = load4_f32(word, w + i);
			if (a.typeMode != 0) x = add_f4(x, load4_f32(typ, y + i));
			x = add_f4(x, load4_f32(pos, p + i));
			v[c] = x;
			sum += (x.x + x.y) + (x.z + x.w);
		}
	}
	layernorm_warp_row(out, t * a.H, gamma, beta, v, sum, a.H, a.eps, nch, lane);
}
