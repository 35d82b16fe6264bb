// common.h holds helpers every body shares, written in the common subset (see prelude_cuda.h).
#pragma once

// add_f4 is the element-wise sum of two float4 (the vector loads of the warp-per-row kernels).
DEVICE_FN float4 add_f4(float4 a, float4 b) { return make_f4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

// block_sum returns the sum of v over the nt threads of the block (threadgroup) to every thread.
// nt is a multiple of SIMD_WIDTH and at most SIMD_WIDTH^2; red holds SIMD_WIDTH floats. All
// threads of the block must call it (it has barriers).
DEVICE_FN float block_sum(float v, SHARED float* red, uint tid, uint nt) {
	uint lane = tid % SIMD_WIDTH, warp = tid / SIMD_WIDTH, warps = nt / SIMD_WIDTH;
	v = simd_sum_f(v);
	BARRIER(); // red may still be read by an earlier call
	if (lane == 0) red[warp] = v;
	BARRIER();
	v = lane < warps ? red[lane] : 0.0f;
	return simd_sum_f(v);
}

// layernorm_row normalises the H values in row (already summed into row and into sum, one
// thread's share) and writes (row - mean) / sqrt(var + eps) * gamma + beta to out. Each thread
// touches only columns tid, tid + nt, ..., the ones it wrote into row itself, so out may alias
// the inputs and row needs no barrier. The variance is taken around the mean (two passes over
// row), which stays accurate when the mean is large against the spread.
template <typename T>
DEVICE_FN void layernorm_row(GLOBAL T* out, int base, GLOBAL const T* gamma, GLOBAL const T* beta,
	SHARED float* row, float sum, int H, float eps, SHARED float* red, uint tid, uint nt) {
	float mean = block_sum(sum, red, tid, nt) / float(H);
	float sq = 0.0f;
	for (int i = int(tid); i < H; i += int(nt)) {
		float d = row[i] - mean;
		sq += d * d;
	}
	float rstd = rsqrt_f(block_sum(sq, red, tid, nt) / float(H) + eps);
	for (int i = int(tid); i < H; i += int(nt)) {
		store_f32(out, base + i, (row[i] - mean) * rstd * load_f32(gamma, i) + load_f32(beta, i));
	}
}
