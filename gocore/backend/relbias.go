package backend

// BiasedAttention is optional: attention with a learned bias added to each score by the
// relative position of key and query, as MPNet (and T5) compute it. arch asks for it with a
// type assertion when a model needs it, and says which backend lacks it otherwise.
type BiasedAttention interface {
	// UploadFloat32 copies host values into a new float32 tensor, whatever the storage type:
	// the bias is added to float32 scores and keeps its precision.
	UploadFloat32(src []float32) Tensor

	// AttentionBiased is Attention with the scores
	//
	//	S[i, j] = q_i . k_j / sqrt(HD) + rel[h*(2R-1) + clamp(j-i, 1-R, R-1) + R-1]
	//
	// for query i and key j of one sequence (positions counted from its first token) and head
	// h: rel is a float32 tensor [NH, 2R-1] from UploadFloat32, one row per head, indexed by
	// the relative position j-i (clamped: a table of R >= the longest sequence is exact). A
	// nil rel is plain Attention.
	AttentionBiased(out, qkv, seqStarts, rel Tensor, B, maxLen, NH, HD, R int)
}
