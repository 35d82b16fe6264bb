// attention_mma.h: attention.h's function on tensor cores, for 16-bit storage (half, bfloat16).
//
// Flash-attention tiling through the fragment API of the preludes (frag_*: 16x16 tiles of one
// SIMD group; mma.sync on CUDA, simdgroup_matrix on Metal). A block of W SIMD groups (W <= ATTM_WARPS,
// the launcher's choice) takes 16 W queries of one (sequence, head); each SIMD group owns 16 of
// them: its Q tile stays in operand registers, its O accumulator (16 x HD, float32) and the
// softmax statistics (running max m and partial sums l, float32, per row) in accumulator
// registers. The block walks the sequence's keys in tiles of ATTM_K(HD), staged in threadgroup
// memory in the storage type as rows [key][dim] (K read as frag_load_bt, V as frag_load_b) by
// asynchronous copies one tile ahead, into two slots; the queries are staged in rows of their
// own, which take the output at the end. Per tile:
// S = Q K^T (float32 accumulation), scaled by log2(e)/sqrt(HD), keys past the sequence masked
// to -3e38, online-softmax steps of 16*ATTM_STEP(HD) keys (rescale O and l by exp2(m_old - m)),
// P = exp2(S - m) rounded to the storage type, O += P V. Rows are padded by ATTM_PAD elements
// (16 bytes) so that the fragment loads (ldmatrix on CUDA) hit distinct shared-memory banks.
// The launcher picks W SIMD groups a block (16 W queries; up to 8, 128 queries, when a whole
// sequence of up to 128 tokens fits one block and K, V are read once per (sequence, head)).
//
// Versus attention.h (exact float32 arithmetic on CUDA cores): Q, K, V are multiplied as
// stored (16-bit) with float32 accumulation, and P is rounded to the storage type before P V;
// the sum l is over the unrounded P. With BIAS, rel_bias (attention.h) is added to each scaled
// score, as attention() does.
#pragma once
#include "common.h"

#define ATTM_WARPS 8 // most SIMD groups a block (each takes 16 queries)
#define ATTM_Q (16 * ATTM_WARPS) // most queries a block
// ATTM_K(HD): keys per staged tile. At HD 64 the tiles are small enough that the whole buffer
// stays within Metal's 32 KiB of threadgroup memory. (ATTM_K32: the HD 32 size, a multiple of
// 16, overridable for experiments.)
#ifndef ATTM_K32
#define ATTM_K32 64
#endif
#define ATTM_K(HD) ((HD) == 32 ? ATTM_K32 : 16)
#define ATTM_PAD 8                        // elements of row padding
// ATTM_BUF(HD): elements of a block's threadgroup memory: ATTM_Q query rows, then two tile
// slots of ATTM_K(HD) key rows and as many value rows (30 KiB at HD 32, 27 KiB at HD 64).
#define ATTM_BUF(HD) ((ATTM_Q + 4 * ATTM_K(HD)) * ((HD) + ATTM_PAD))
// ATTM_STEP(HD): 16-key steps per online-softmax step (ATTM_K(HD) / 16 is a multiple of it). Larger
// steps rescale O less often but hold more scores in registers; measured on the H100 (NOTES.md):
// HD 32 is fastest with 4 (95 registers), HD 64 with 1 (95 registers; 4 takes 134, which halves
// the resident 8-warp blocks).
#define ATTM_STEP(HD) ((HD) == 32 ? (ATTM_K32 >= 64 ? 4 : ATTM_K32 / 16) : 1)
// ATTM_MIN_BLOCKS: blocks of the largest size (ATTM_WARPS SIMD groups) that must fit an SM
// (the entry points' BOUNDS): 3 caps registers at 80 (95 without; no spills), so that 6 blocks
// of 4 SIMD groups fit an H100 SM instead of 5.
#ifndef ATTM_MIN_BLOCKS
#define ATTM_MIN_BLOCKS 3
#endif

// attention_mma_step is one online-softmax step of a SIMD group over ATTM_STEP(HD)*16 keys of the
// staged tile (ks, vs: their first rows; n keys valid, kn steps of 16 holding keys): S = Q K^T,
// scale, bias (BIAS: rel_bias(hrow, R, rel0 + key - query), key and query counted from the
// step's first key and the group's first query), mask, new row max, rescale O and l,
// P = exp2(S - m), O += P V.
template <typename T, int HD, bool BIAS>
DEVICE_FN void attention_mma_step(PRIVATE frag_c* o, PRIVATE float* m, PRIVATE float* l, PRIVATE const frag_a<T>* qf,
	SHARED const T* ks, SHARED const T* vs, int LD, int n, int kn, float scale, GLOBAL const float* hrow, int R,
	int rel0, uint lane) {
	frag_c s[ATTM_STEP(HD)];
	UNROLL
	for (int c = 0; c < ATTM_STEP(HD); c++) {
		frag_zero(s[c]);
		if (c < kn) {
			UNROLL
			for (int kk = 0; kk < HD / 16; kk++) {
				frag_b<T> kb;
				frag_load_bt(kb, ks + c * 16 * LD + kk * 16, LD, lane);
				frag_mma(s[c], qf[kk], kb);
			}
		}
	}
	float mx[FRAG_C_ROWS];
	UNROLL
	for (int r = 0; r < FRAG_C_ROWS; r++) mx[r] = m[r];
	UNROLL
	for (int c = 0; c < ATTM_STEP(HD); c++) {
		UNROLL
		for (int i = 0; i < FRAG_C_N; i++) {
			int key = c * 16 + frag_c_col(i, lane);
			float x = s[c].v[i] * scale;
			if (BIAS) x += rel_bias(hrow, R, rel0 + key - frag_c_row(frag_c_slot(i), lane));
			x = key < n ? x : -3.0e38f;
			s[c].v[i] = x;
			mx[frag_c_slot(i)] = max_f(mx[frag_c_slot(i)], x);
		}
	}
	float corr[FRAG_C_ROWS];
	UNROLL
	for (int r = 0; r < FRAG_C_ROWS; r++) {
		mx[r] = frag_row_max(mx[r]);
		corr[r] = exp2_f(m[r] - mx[r]);
		m[r] = mx[r];
		l[r] *= corr[r];
	}
	UNROLL
	for (int c = 0; c < ATTM_STEP(HD); c++) {
		UNROLL
		for (int i = 0; i < FRAG_C_N; i++) {
			float p = exp2_f(s[c].v[i] - mx[frag_c_slot(i)]);
			s[c].v[i] = p;
			l[frag_c_slot(i)] += p;
		}
	}
	UNROLL
	for (int dd = 0; dd < HD / 16; dd++) {
		UNROLL
		for (int i = 0; i < FRAG_C_N; i++) o[dd].v[i] *= corr[frag_c_slot(i)];
	}
	UNROLL
	for (int c = 0; c < ATTM_STEP(HD); c++) {
		if (c < kn) {
			frag_a<T> pa;
			frag_c_to_a(pa, s[c]);
			UNROLL
			for (int dd = 0; dd < HD / 16; dd++) {
				frag_b<T> vb;
				frag_load_b(vb, vs + c * 16 * LD + dd * 16, LD, lane);
				frag_mma(o[dd], pa, vb);
			}
		}
	}
}

// attention_mma_stage requests the key and value rows k0 .. k0+ATTM_K(HD)-1 of head h into a
// tile slot (keys first, then values; zeros past the sequence: a zero P times an unwritten V
// could be NaN) without waiting for them (async_copy16).
template <typename T, int HD>
DEVICE_FN void attention_mma_stage(SHARED T* slot, GLOBAL const T* qkv, int s0, int k0, int L, int ld, int H, int h,
	uint tid, int NT) {
	const int LD = HD + ATTM_PAD, HD8 = HD / 8, KT = ATTM_K(HD);
	for (int e = int(tid); e < 2 * KT * HD8; e += NT) {
		int j = e / HD8 % KT, d = (e % HD8) * 8, kv = e / (KT * HD8); // kv: 0 key, 1 value
		bool in = k0 + j < L;
		async_copy16(slot + (kv * KT + j) * LD + d, qkv + (s0 + (in ? k0 + j : 0)) * ld + (1 + kv) * H + h * HD + d, in);
	}
}

// attention_mma computes attention()'s output for queries qblock*16*W .. +16*W-1 of sequence
// seq, head h, with nt = W*SIMD_WIDTH threads (tid), W = 1..ATTM_WARPS. buf holds ATTM_BUF(HD)
// elements, 16-byte aligned: ATTM_Q query rows (the block's queries, later its output), then
// two slots for key/value tiles. The loads are asynchronous and one tile ahead: the queries
// and the first tile are requested together, and tile t+1 while tile t is used, so a block
// waits for memory about once rather than once per tile. qkv and out rows (3*NH*HD and NH*HD
// elements) are 16-byte aligned. HD is 32 or 64. BIAS, hrow and R as for attention().
template <typename T, int HD, bool BIAS>
DEVICE_FN void attention_mma(GLOBAL T* out, GLOBAL const T* qkv, GLOBAL const int* seqStarts, AttentionArgs a,
	GLOBAL const float* hrow, int R, int qblock, int h, int seq, SHARED T* buf, uint tid, uint nt) {
	const int LD = HD + ATTM_PAD, HD8 = HD / 8, NT = int(nt), NQ = NT / SIMD_WIDTH * 16, KT = ATTM_K(HD);
	int s0 = seqStarts[seq], L = seqStarts[seq + 1] - s0;
	int q0 = qblock * NQ;
	if (q0 >= L) return; // the whole block leaves before any barrier
	int H = a.NH * HD, ld = 3 * H;
	uint warp = tid / SIMD_WIDTH, lane = tid % SIMD_WIDTH;
	int wq = q0 + int(warp) * 16; // this SIMD group's first query
	bool busy = wq < L;
	SHARED T* qs = buf;
	SHARED T* tiles = buf + ATTM_Q * LD;

	// Request the block's queries (zeros past the sequence) and the first tile.
	for (int e = int(tid); e < NQ * HD8; e += NT) {
		int r = e / HD8, d = (e % HD8) * 8;
		bool in = q0 + r < L;
		async_copy16(qs + r * LD + d, qkv + (s0 + (in ? q0 + r : 0)) * ld + h * HD + d, in);
	}
	attention_mma_stage<T, HD>(tiles, qkv, s0, 0, L, ld, H, h, tid, NT);
	async_commit();

	frag_c o[HD / 16];
	UNROLL
	for (int dd = 0; dd < HD / 16; dd++) frag_zero(o[dd]);
	float m[FRAG_C_ROWS], l[FRAG_C_ROWS];
	UNROLL
	for (int r = 0; r < FRAG_C_ROWS; r++) {
		m[r] = -3.0e38f;
		l[r] = 0.0f; // this lane's part of the row sum
	}
	frag_a<T> qf[HD / 16];
	int tilesN = (L + KT - 1) / KT;
	for (int t = 0; t < tilesN; t++) {
		if (t + 1 < tilesN) {
			// The slot of tile t+1 held tile t-1, which every group left before the barrier
			// that ended the previous iteration.
			attention_mma_stage<T, HD>(tiles + ((t + 1) & 1) * 2 * KT * LD, qkv, s0, (t + 1) * KT, L, ld, H, h, tid, NT);
			async_commit();
			async_wait<1>(); // all but the newest request: tile t (and the queries) have landed
		} else {
			async_wait<0>();
		}
		BARRIER(); // ... for every thread's copies
		if (t == 0) {
			UNROLL
			for (int kk = 0; kk < HD / 16; kk++) frag_load_a(qf[kk], qs + int(warp) * 16 * LD + kk * 16, LD, lane);
		}
		if (busy) {
			SHARED const T* ks = tiles + (t & 1) * 2 * KT * LD;
			int k0 = t * KT, n = min_i(KT, L - k0), kn = (n + 15) / 16; // key steps of 16 holding keys
			UNROLL
			for (int c0 = 0; c0 < KT / 16; c0 += ATTM_STEP(HD)) {
				if (c0 < kn) {
					attention_mma_step<T, HD, BIAS>(o, m, l, qf, ks + c0 * 16 * LD, ks + (KT + c0 * 16) * LD, LD,
						n - c0 * 16, kn - c0, a.scale, hrow, R, k0 + c0 * 16 - wq, lane);
				}
			}
		}
		BARRIER(); // tile t's slot is free again
	}
	// Normalise and round to T into this group's own query rows (only it read them), then write
	// whole rows, 16 bytes a thread.
	if (busy) {
		float inv[FRAG_C_ROWS];
		UNROLL
		for (int r = 0; r < FRAG_C_ROWS; r++) inv[r] = 1.0f / frag_row_sum(l[r]);
		UNROLL
		for (int dd = 0; dd < HD / 16; dd++) {
			UNROLL
			for (int i = 0; i < FRAG_C_N; i++) {
				int r = int(warp) * 16 + frag_c_row(frag_c_slot(i), lane);
				qs[r * LD + dd * 16 + frag_c_col(i, lane)] = from_f32<T>(o[dd].v[i] * inv[frag_c_slot(i)]);
			}
		}
	}
	BARRIER();
	for (int e = int(tid); e < NQ * HD8; e += NT) {
		int r = e / HD8, d = (e % HD8) * 8;
		if (q0 + r < L) store8_16(out + (s0 + q0 + r) * H + h * HD + d, qs + r * LD + d);
	}
}
