package metalbridge

import "strings"

// This file holds what the Metal launchers share with the kernels and can be checked without
// a Mac (kernels_test.go): the argument structs, the entry point names and the order in which
// each entry point's buffers are bound.

// Argument structs mirror the <Op>Args structs of shaders/*.h field by field (4-byte fields, no
// padding). A launcher copies one with setBytes:length:atIndex: into the index after its
// buffers, where the entry point reads it as `constant <Op>Args& a`.
type (
	// embedArgs mirrors EmbedArgs in shaders/embed.h.
	embedArgs struct {
		T, H     int32
		Eps      float32
		TypeMode int32 // 0: no type table; 1: typ[types[t]]; 2: typ[0]
	}
	// layerNormArgs mirrors LayerNormArgs in shaders/layernorm.h.
	layerNormArgs struct {
		T, H        int32
		Eps         float32
		HasResidual int32
	}
	// actArgs mirrors ActArgs in shaders/gelu.h.
	actArgs struct {
		N, Cols, HasBias int32
	}
	// attentionArgs mirrors AttentionArgs in shaders/attention.h.
	attentionArgs struct {
		NH    int32
		Scale float32 // log2(e) / sqrt(HD)
	}
	// attentionBiasArgs mirrors AttentionBiasArgs in shaders/attention.h.
	attentionBiasArgs struct {
		NH    int32
		Scale float32
		R     int32
	}
	// poolArgs mirrors PoolArgs in shaders/pool.h.
	poolArgs struct {
		H, Mode, Normalize, Skip int32
	}
)

// bindings lists, per entry point family, the parameters of shaders/<op>.metal in
// [[buffer(i)]] order: the launchers pass their tensors in this order, then the argument
// struct ("a"). kernels_test.go checks it against the .metal sources.
var bindings = map[string][]string{
	"embed": {"out", "ids", "positions", "types", "word", "pos", "typ", "gamma", "beta", "a"},
	// embed_warp_* (a SIMD group per token, shaders/embed.h): same buffers, not launched yet
	"embed_warp": {"out", "ids", "positions", "types", "word", "pos", "typ", "gamma", "beta", "a"},
	"layernorm":  {"out", "x", "residual", "gamma", "beta", "a"},
	// layernorm_warp_* (a SIMD group per row, shaders/layernorm.h): same buffers, not launched yet
	"layernorm_warp": {"out", "x", "residual", "gamma", "beta", "a"},
	"gelu":           {"x", "bias", "a"},
	"tanh":           {"x", "bias", "a"},
	"attention":      {"out", "qkv", "seqStarts", "a"},
	// attention_mma_* (tensor-core attention, shaders/attention_mma.h): same buffers; the
	// launcher does not use it yet (untried on Apple GPUs)
	"attention_mma": {"out", "qkv", "seqStarts", "a"},
	"pool":          {"out", "x", "seqStarts", "a"},
	// attention_bias_* (relative position bias, MPNet); attention_mma_bias_* is not launched yet
	"attention_bias":     {"out", "qkv", "seqStarts", "rel", "a"},
	"attention_mma_bias": {"out", "qkv", "seqStarts", "rel", "a"},
}

// dynamicThreadgroup marks the families whose entry points take dynamic threadgroup memory
// ([[threadgroup(0)]], H floats): the launcher sets its length before each dispatch.
var dynamicThreadgroup = map[string]bool{"embed": true, "layernorm": true, "pool": true}

// kernelNames are the entry points of shaders/*.metal for the storage type with suffix sfx
// ("f16") that the launchers use; Open builds a pipeline for each.
func kernelNames(sfx string) []string {
	return []string{"embed_" + sfx, "layernorm_" + sfx, "gelu_" + sfx, "tanh_" + sfx, "pool_" + sfx,
		"attention_" + sfx + "_hd32", "attention_" + sfx + "_hd64",
		"attention_bias_" + sfx + "_hd32", "attention_bias_" + sfx + "_hd64"}
}

// family is the bindings key of an entry point name: the longest key that the name starts
// with, followed by '_' (attention_bias_f16_hd64: attention_bias).
func family(name string) string {
	best := ""
	for k := range bindings {
		if strings.HasPrefix(name, k+"_") && len(k) > len(best) {
			best = k
		}
	}
	return best
}

// simdWidth is SIMD_WIDTH of prelude_metal.h: the kernels' reductions assume it, and Open
// checks every pipeline's threadExecutionWidth against it.
const simdWidth = 32

// rowThreads picks the threadgroup size of a kernel with one threadgroup per row of width
// cols: about four columns a thread, a multiple of 32, between 32 and limit (the pipeline's
// maxTotalThreadsPerThreadgroup, at most 1024 = SIMD_WIDTH^2 for block_sum).
func rowThreads(cols, limit int) int {
	limit = min(limit, simdWidth*simdWidth) / simdWidth * simdWidth
	t := (cols/4 + simdWidth - 1) / simdWidth * simdWidth
	return max(min(t, limit), simdWidth)
}

// attentionThreads picks the threadgroup size of attention_*_hd<HD>: one thread per query of
// the longest sequence rounded up to a SIMD group, at most 128 (HD 32) or 64 (HD 64), whose
// q and accumulator registers (2*HD floats a thread) bound the occupancy, and at most limit.
func attentionThreads(maxLen, HD, limit int) int {
	most := 64
	if HD == 32 {
		most = 128
	}
	most = max(min(most, limit/simdWidth*simdWidth), simdWidth)
	return min((maxLen+simdWidth-1)/simdWidth*simdWidth, most)
}

// threadgroupBytes rounds a dynamic threadgroup memory length up to the 16 bytes
// setThreadgroupMemoryLength:atIndex: requires.
func threadgroupBytes(n int) int { return (n + 15) &^ 15 }
