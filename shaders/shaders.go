// Package shaders holds the GPU kernels of goembed, written once and compiled for each GPU
// language at run time.
//
// Layout, one op per file name:
//
//	prelude_cuda.h, prelude_metal.h  the language mapping: address spaces, barriers, SIMD
//	                                 reductions, math, half types (see prelude_cuda.h)
//	common.h                         helpers shared by the bodies (block reductions, LayerNorm row)
//	<op>.h                           the kernel body and its argument struct, in the common subset
//	<op>.cu                          thin CUDA entry points, one per storage type
//	                                 (layernorm_f16, attention_bf16_hd64, ...)
//	<op>.metal                       the same entry points in Metal, same names, same bodies
//	metal_shim/                      C++ stand-ins for the Metal types, so that clang++ on Linux
//	                                 type-checks the .metal files (scripts/check_metal.sh)
//
// Ops: embed (gather + LayerNorm), layernorm (residual + LayerNorm), gelu (bias + GELU/tanh),
// attention (packed sequences, online softmax; *_bias_* variants add a relative position bias),
// pool (mean/CLS/max/last + L2 normalise).
//
// Every entry point exists in both languages and calls the same body (parity_test.go).
//
// Each <op>.h declares an <Op>Args struct of 4-byte fields that the kernels take by value (Metal:
// by constant reference); the Go launchers mirror it field by field (gocore/backend/cuda and
// metalbridge check the mirrors against these files in their tests).
package shaders

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

// FS holds every shader source.
//
//go:embed *.h *.cu *.metal
var FS embed.FS

// Files returns the contents of the files of FS whose names end in ext (".h", ".cu", ".metal"), by name,
// and the names in sorted order.
func Files(ext string) (names []string, files map[string]string) {
	files = map[string]string{}
	entries, _ := fs.ReadDir(FS, ".")
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		b, err := FS.ReadFile(e.Name())
		if err != nil {
			continue
		}
		names = append(names, e.Name())
		files[e.Name()] = string(b)
	}
	sort.Strings(names)
	return names, files
}
