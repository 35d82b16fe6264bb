// pool.h: one vector per sequence (mean / CLS / max / last token), then optional L2 normalisation.
#pragma once
#include "common.h"

// PoolArgs are the scalars of pool_*; the Go mirror is cuda.poolArgs.
struct PoolArgs {
	int H;         // hidden
	int mode;      // POOL_MEAN, POOL_CLS, POOL_MAX, POOL_LAST (backend.Pooling)
	int normalize; // 1: divide by max(||row||, 1e-12)
};

#define POOL_MEAN 0
#define POOL_CLS 1
#define POOL_MAX 2
#define POOL_LAST 3

// pool computes out[seq] from the rows s0 = seqStarts[seq] .. s1-1 of x [T, H]:
//
//	mean: sum_t x[t] / (s1 - s0)     cls: x[s0]     max: max_t x[t]     last: x[s1-1]
//
// then, when normalize is set, out[seq] /= max(||out[seq]||_2, 1e-12). An empty sequence gives
// zeros. One block per sequence; row holds H floats, red SIMD_WIDTH floats.
template <typename T>
DEVICE_FN void pool(GLOBAL T* out, GLOBAL const T* x, GLOBAL const int* seqStarts, PoolArgs a,
	int seq, SHARED float* row, SHARED float* red, uint tid, uint nt) {
	int s0 = seqStarts[seq], s1 = seqStarts[seq + 1], H = a.H;
	float sq = 0.0f;
	for (int c = int(tid); c < H; c += int(nt)) {
		float v = 0.0f;
		if (s1 > s0) {
			if (a.mode == POOL_CLS) {
				v = load_f32(x, s0 * H + c);
			} else if (a.mode == POOL_LAST) {
				v = load_f32(x, (s1 - 1) * H + c);
			} else if (a.mode == POOL_MAX) {
				v = -3.0e38f;
				for (int t = s0; t < s1; t++) v = max_f(v, load_f32(x, t * H + c));
			} else {
				for (int t = s0; t < s1; t++) v += load_f32(x, t * H + c);
				v /= float(s1 - s0);
			}
		}
		row[c] = v;
		sq += v * v;
	}
	float scale = 1.0f;
	if (a.normalize) scale = 1.0f / max_f(sqrt_f(block_sum(sq, red, tid, nt)), 1e-12f);
	for (int c = int(tid); c < H; c += int(nt)) store_f32(out, seq * H + c, row[c] * scale);
}
