// pool.h: one vector per sequence (any set of cls / max / mean / mean_sqrt_len / weightedmean /
// last, side by side), leading tokens optionally left out, then optional L2 normalisation.
#pragma once
#include "common.h"

// PoolArgs are the scalars of pool_*; the Go mirrors are cuda.poolArgs and metalbridge.poolArgs.
struct PoolArgs {
	int H;         // hidden
	int mode;      // a set of POOL_* bits (backend.Pooling); out rows are popcount(mode) * H wide
	int normalize; // 1: divide by max(||row||, 1e-12)
	int skip;      // leading tokens of every sequence left out (include_prompt=false)
};

// The bits of backend.Pooling, in sentence-transformers' concatenation order.
#define POOL_CLS 1
#define POOL_MAX 2
#define POOL_MEAN 4
#define POOL_MEAN_SQRT 8
#define POOL_WEIGHTED 16
#define POOL_LAST 32
#define POOL_SUMS (POOL_MEAN | POOL_MEAN_SQRT | POOL_WEIGHTED)

// pool computes out[seq] from the rows s0 = seqStarts[seq] .. s1-1 of x [T, H], of which the
// first f = min(skip, s1 - s0) are left out and n = s1 - s0 - f kept, as sentence-transformers
// masks a prompt. For each mode in a.mode, in bit order, H values:
//
//	cls: x[s0 + f] (x[s0] if n = 0)    max: max over kept rows (-inf if n = 0)
//	mean: sum / max(n, 1e-9)           mean_sqrt: sum / sqrt(max(n, 1e-9))
//	weightedmean: sum_t (t-s0+1) x[t] / max(sum_t (t-s0+1), 1e-9)    last: x[s1-1] (0 if n = 0)
//
// then, when normalize is set, the whole row /= max(||row||_2, 1e-12). An empty sequence gives
// zeros. One block per sequence; row holds popcount(mode) * H floats, red SIMD_WIDTH floats.
template <typename T>
DEVICE_FN void pool(GLOBAL T* out, GLOBAL const T* x, GLOBAL const int* seqStarts, PoolArgs a,
	int seq, SHARED float* row, SHARED float* red, uint tid, uint nt) {
	int s0 = seqStarts[seq], s1 = seqStarts[seq + 1], H = a.H;
	int f = min_i(a.skip, s1 - s0), n = s1 - s0 - f, k = 0;
	for (int m = a.mode; m != 0; m >>= 1) k += m & 1;
	float sq = 0.0f;
	for (int c = int(tid); c < H; c += int(nt)) {
		float sum = 0.0f, wsum = 0.0f, wtot = 0.0f, mx = -3.0e38f * 4.0f; // overflows to -inf
		if (a.mode & POOL_SUMS) {
			for (int t = s0 + f; t < s1; t++) {
				float v = load_f32(x, t * H + c), w = float(t - s0 + 1);
				sum += v;
				wsum += w * v;
				wtot += w;
			}
		}
		if (a.mode & POOL_MAX) {
			for (int t = s0 + f; t < s1; t++) mx = max_f(mx, load_f32(x, t * H + c));
		}
		int part = 0;
		for (int bit = POOL_CLS; bit <= POOL_LAST; bit <<= 1) {
			if ((a.mode & bit) == 0) continue;
			float v = 0.0f;
			if (s1 > s0) {
				if (bit == POOL_CLS) v = load_f32(x, (n > 0 ? s0 + f : s0) * H + c);
				else if (bit == POOL_MAX) v = mx;
				else if (bit == POOL_MEAN) v = sum / max_f(float(n), 1e-9f);
				else if (bit == POOL_MEAN_SQRT) v = sum / sqrt_f(max_f(float(n), 1e-9f));
				else if (bit == POOL_WEIGHTED) v = wsum / max_f(wtot, 1e-9f);
				else if (n > 0) v = load_f32(x, (s1 - 1) * H + c);
			}
			row[part * H + c] = v;
			sq += v * v;
			part++;
		}
	}
	float scale = 1.0f;
	if (a.normalize) scale = 1.0f / max_f(sqrt_f(block_sum(sq, red, tid, nt)), 1e-12f);
	for (int c = int(tid); c < H; c += int(nt)) {
		for (int p = 0; p < k; p++) store_f32(out, (seq * k + p) * H + c, row[p * H + c] * scale);
	}
}
