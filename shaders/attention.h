// attention.h: softmax(Q K^T / sqrt(HD)) V over packed sequences, one head at a time.
//
// The simplest exact scheme that handles any sequence length in one pass: each thread owns one
// query row (its q and output accumulator stay in registers, HD floats each), the block walks
// the keys of its sequence in tiles of ATT_KTILE rows staged in threadgroup memory as float32
// (float4, so that one shared-memory load, the same address for the whole SIMD group, feeds
// four FMAs), and the softmax runs online: running max m and sum l in float32, the accumulator
// rescaled when the max grows, once per chunk of ATT_CHUNK keys. Scores use exp2 with log2(e)
// folded into the scale. No mask is needed: a block only reads keys of its own sequence.
// CUDA cores only; tensor cores (mma / simdgroup_matrix) are the next step for speed.
#pragma once
#include "common.h"

// AttentionArgs are the scalars of attention_*; the Go mirror is cuda.attentionArgs.
struct AttentionArgs {
	int NH;      // heads; H = NH * HD
	float scale; // log2(e) / sqrt(HD)
};

// AttentionBiasArgs are the scalars of attention_bias_* (relative position bias, MPNet); the Go
// mirror is cuda.attentionBiasArgs. The bias table rel [NH, 2R-1] is float32 whatever the storage.
struct AttentionBiasArgs {
	int NH;      // heads
	float scale; // log2(e) / sqrt(HD)
	int R;       // the table spans relative positions 1-R .. R-1
};

#define LOG2E_F 1.4426950408889634f

// rel_bias is the bias of key j for query i of one head: hrow[clamp(j - i, 1-R, R-1) + R-1],
// times log2(e) (the scores are in base 2).
DEVICE_FN float rel_bias(GLOBAL const float* hrow, int R, int rel) {
	return hrow[min_i(max_i(rel, 1 - R), R - 1) + R - 1] * LOG2E_F;
}

#define ATT_KTILE 64 // keys staged per tile
#define ATT_CHUNK 8  // keys scored between rescales

// attention computes, for query i of sequence seq (rows s0 = seqStarts[seq] .. s1-1 of qkv
// [T, 3H]) and head h,
//
//	out[s0+i, h*HD:(h+1)*HD] = sum_j softmax_j(q_i . k_j / sqrt(HD)) v_j
//
// over the keys j of the same sequence. The block handles queries qblock*nt .. qblock*nt+nt-1;
// ks and vs hold ATT_KTILE*HD/4 float4 each. HD is a multiple of 4. With BIAS, rel_bias(hrow,
// R, j - i) is added to each score (hrow: head h's row of the table); without, hrow is unread.
template <typename T, int HD, bool BIAS>
DEVICE_FN void attention(GLOBAL T* out, GLOBAL const T* qkv, GLOBAL const int* seqStarts,
	AttentionArgs a, GLOBAL const float* hrow, int R, int qblock, int h, int seq, SHARED float4* ks,
	SHARED float4* vs, uint tid, uint nt) {
	const int HD4 = HD / 4;
	int s0 = seqStarts[seq], L = seqStarts[seq + 1] - s0;
	int q0 = qblock * int(nt);
	if (q0 >= L) return; // the whole block leaves before any barrier
	int H = a.NH * HD, ld = 3 * H;
	int qi = q0 + int(tid);
	bool active = qi < L;

	float q[HD], acc[HD];
	for (int d = 0; d < HD; d++) {
		q[d] = active ? load_f32(qkv, (s0 + qi) * ld + h * HD + d) * a.scale : 0.0f;
		acc[d] = 0.0f;
	}
	float m = -3.0e38f, l = 0.0f;

	for (int k0 = 0; k0 < L; k0 += ATT_KTILE) {
		int n = min_i(ATT_KTILE, L - k0);
		BARRIER(); // the previous tile is no longer read
		// Stage the tile's n keys, and zeros up to the next whole chunk (read, with weight 0,
		// by the last chunk): a short sequence loads only its own keys.
		int rows = (n + ATT_CHUNK - 1) / ATT_CHUNK * ATT_CHUNK;
		for (int e = int(tid); e < ATT_KTILE * HD4; e += int(nt)) {
			int j = e / HD4, d = (e % HD4) * 4;
			if (j >= rows) break;
			float4 kv = make_f4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
			if (j < n) {
				int r = (s0 + k0 + j) * ld + h * HD + d;
				kv = make_f4(load_f32(qkv, r + H), load_f32(qkv, r + H + 1), load_f32(qkv, r + H + 2), load_f32(qkv, r + H + 3));
				vv = make_f4(load_f32(qkv, r + 2 * H), load_f32(qkv, r + 2 * H + 1), load_f32(qkv, r + 2 * H + 2),
					load_f32(qkv, r + 2 * H + 3));
			}
			ks[e] = kv;
			vs[e] = vv;
		}
		BARRIER();
		if (active) {
			for (int c = 0; c < n; c += ATT_CHUNK) {
				float s[ATT_CHUNK];
				float cm = m;
				UNROLL
				for (int j = 0; j < ATT_CHUNK; j++) {
					float dot = 0.0f;
					UNROLL
					for (int d = 0; d < HD4; d++) {
						float4 k = ks[(c + j) * HD4 + d];
						dot += q[4 * d] * k.x + q[4 * d + 1] * k.y + q[4 * d + 2] * k.z + q[4 * d + 3] * k.w;
					}
					if (BIAS) dot += rel_bias(hrow, R, k0 + c + j - qi);
					s[j] = c + j < n ? dot : -3.0e38f;
					cm = max_f(cm, s[j]);
				}
				float corr = exp2_f(m - cm);
				l *= corr;
				for (int d = 0; d < HD; d++) acc[d] *= corr;
				UNROLL
				for (int j = 0; j < ATT_CHUNK; j++) {
					float p = exp2_f(s[j] - cm);
					l += p;
					UNROLL
					for (int d = 0; d < HD4; d++) {
						float4 v = vs[(c + j) * HD4 + d];
						acc[4 * d] += p * v.x;
						acc[4 * d + 1] += p * v.y;
						acc[4 * d + 2] += p * v.z;
						acc[4 * d + 3] += p * v.w;
					}
				}
				m = cm;
			}
		}
	}
	if (active) {
		float inv = 1.0f / l;
		for (int d = 0; d < HD; d++) store_f32(out, (s0 + qi) * H + h * HD + d, acc[d] * inv);
	}
}
