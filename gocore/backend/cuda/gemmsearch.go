package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/ebitengine/purego"
)

// GEMM algorithm search. The heuristic returns at most 8 configurations, ranked by a model;
// cuBLASLt can run thousands. Timing all of them for the MiniLM products on the H100 (13,484
// timings, 66 s; dev/kernels/NOTES.md, session 7) found configurations faster than the
// heuristic's best by 17% (qkv), 6% (ffn_up with GELU), 5% (ffn_down) and 2% (attn_out), all in
// the heuristic's own algorithm with a different tile, cluster shape or custom option. So a
// large product's tuning goes on from the heuristic's fastest pick by coordinate descent:
// every value of one attribute with the others held, keeping the fastest, attribute after
// attribute, until a round changes nothing: a few hundred timings, 0.7-1.9 s a product on the
// H100, mostly each kernel variant's first (lazily loaded) launch; so the winner is kept on disk.

// cuBLASLt algorithm capability and configuration attributes (cublasLt.h).
const (
	ltCapTileIDs         = 6
	ltCapCustomOptionMax = 7
	ltCapStagesIDs       = 13

	ltConfigID           = 0
	ltConfigTileID       = 1
	ltConfigSplitK       = 2
	ltConfigSwizzling    = 4
	ltConfigCustomOption = 5
	ltConfigStagesID     = 6
	ltConfigClusterShape = 8
)

const (
	// searchMinFlops: products this large (the MiniLM ones from about 10,000 tokens) are
	// searched; smaller ones take the fastest of the heuristic's candidates.
	searchMinFlops = 1 << 34
	// maxSearchRounds bounds the passes over the attributes.
	maxSearchRounds = 3
	// maxCustomOption bounds the custom options tried (the H100's winners used 1 and 3).
	maxCustomOption = 15
)

// searchClusters are the thread-block cluster shapes tried (cublasLtClusterShape_t: automatic,
// 1x1, 2x1, 4x1, 1x2, 2x2, 1x4). Algorithms without clusters reject all but the first.
var searchClusters = []uint32{0, 2, 3, 4, 5, 6, 8}

// searchAttr is one configuration attribute the search varies, with the values it tries.
type searchAttr struct {
	attr   uintptr
	size   uintptr // bytes: the cluster shape is a uint16, the others uint32
	values []uint32
}

// searchAround returns the fastest configuration found from start (timed at startMs) by
// varying the tile, cluster shape, custom option and stages of start's algorithm.
func (b *Backend) searchAround(p *gemmPlan, key gemmKey, start [heuristicResultSize]byte, startMs float32,
	out, x, w uintptr) ([heuristicResultSize]byte, float32) {
	lt := b.lt
	customs := make([]uint32, min(max(capInt32(lt, &start, ltCapCustomOptionMax), 0), maxCustomOption)+1)
	for i := range customs {
		customs[i] = uint32(i)
	}
	attrs := []searchAttr{
		{ltConfigTileID, 4, capUint32s(lt, &start, ltCapTileIDs)},
		{ltConfigClusterShape, 2, searchClusters},
		{ltConfigCustomOption, 4, customs},
		{ltConfigStagesID, 4, capUint32s(lt, &start, ltCapStagesIDs)},
	}
	best, bestMs := start, startMs
	tried := map[[64]byte]bool{[64]byte(start[:64]): true}
	for round := 0; round < maxSearchRounds; round++ {
		changed := false
		for _, a := range attrs {
			from := best
			for _, v := range a.values {
				c := from
				if !setConfig(lt, &c, a.attr, v, a.size) || tried[[64]byte(c[:64])] {
					continue
				}
				tried[[64]byte(c[:64])] = true
				if !b.checkAlgo(p, &c) {
					continue
				}
				ms, ok := b.timeAlgo(p, &c, out, x, w)
				if gemmTune == "verbose" && ok {
					fmt.Fprintf(os.Stderr, "goembed cuda: gemm %dx%dx%d epilogue %d search (%s): %.1f us\n",
						key.n, key.m, key.k, key.epilogue, describeAlgo(lt, &c), 1000*ms)
				}
				if ok && ms < bestMs {
					best, bestMs, changed = c, ms, true
				}
			}
		}
		if !changed {
			break
		}
	}
	return best, bestMs
}

// searchCache keeps each search's winner on disk, in GOEMBED_CACHE_DIR's gemm folder beside
// the NVRTC cache: one file of the 64 configuration bytes per (GPU, cuBLASLt version, dtype,
// product bucket), so that a process pays for a search once per machine. A file is only a
// candidate: it is checked by cuBLASLt for the plan and timed against the heuristic's picks.
func (b *Backend) searchFile(bucket gemmKey) string {
	dir := cacheDir()
	if dir == "" {
		return ""
	}
	id := fmt.Sprintf("%s|sm_%d%d|%d SMs|cuBLASLt %d|%s|m %d k %d n %d epilogue %d", b.name, b.ccMajor, b.ccMinor,
		b.sms, b.lt.version, b.dtype, bucket.m, bucket.k, bucket.n, bucket.epilogue)
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(filepath.Dir(dir), "gemm", hex.EncodeToString(sum[:12])+".algo")
}

func (b *Backend) loadSearch(bucket gemmKey) (algo [64]byte, ok bool) {
	file := b.searchFile(bucket)
	if file == "" {
		return algo, false
	}
	data, err := os.ReadFile(file)
	if err != nil || len(data) != len(algo) {
		return algo, false
	}
	return [64]byte(data), true
}

func (b *Backend) saveSearch(bucket gemmKey, algo [64]byte) {
	if file := b.searchFile(bucket); file != "" {
		writeCache(filepath.Dir(file), file, algo[:])
	}
}

// checkAlgo reports whether cuBLASLt accepts algo (its first 64 bytes) for plan p, within our
// workspace; it fills the rest of the heuristic result.
func (b *Backend) checkAlgo(p *gemmPlan, algo *[heuristicResultSize]byte) bool {
	var res [heuristicResultSize]byte
	r, _, _ := purego.SyscallN(b.lt.cublasLtMatmulAlgoCheck, b.ltHandle, p.desc, p.a, p.b, p.c, p.c,
		uintptr(unsafe.Pointer(&algo[0])), uintptr(unsafe.Pointer(&res[0])))
	if r != 0 {
		return false
	}
	ws := *(*uint64)(unsafe.Pointer(&res[64]))
	copy(algo[64:], res[64:])
	return ws <= workspaceBytes
}

// capUint32s reads an array-valued capability (tile or stage ids).
func capUint32s(lt *cublasLt, algo *[heuristicResultSize]byte, attr uintptr) []uint32 {
	var size uintptr
	r, _, _ := purego.SyscallN(lt.cublasLtMatmulAlgoCapGetAttribute, uintptr(unsafe.Pointer(&algo[0])), attr,
		0, 0, uintptr(unsafe.Pointer(&size)))
	if r != 0 || size < 4 {
		return nil
	}
	v := make([]uint32, size/4)
	r, _, _ = purego.SyscallN(lt.cublasLtMatmulAlgoCapGetAttribute, uintptr(unsafe.Pointer(&algo[0])), attr,
		uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)*4), uintptr(unsafe.Pointer(&size)))
	if r != 0 {
		return nil
	}
	return v[:size/4]
}

func capInt32(lt *cublasLt, algo *[heuristicResultSize]byte, attr uintptr) int32 {
	var v int32
	var size uintptr
	r, _, _ := purego.SyscallN(lt.cublasLtMatmulAlgoCapGetAttribute, uintptr(unsafe.Pointer(&algo[0])), attr,
		uintptr(unsafe.Pointer(&v)), 4, uintptr(unsafe.Pointer(&size)))
	if r != 0 {
		return 0
	}
	return v
}

// setConfig sets a configuration attribute of size bytes (2 or 4) to v.
func setConfig(lt *cublasLt, algo *[heuristicResultSize]byte, attr uintptr, v uint32, size uintptr) bool {
	v16 := uint16(v)
	ptr := unsafe.Pointer(&v)
	if size == 2 {
		ptr = unsafe.Pointer(&v16)
	}
	r, _, _ := purego.SyscallN(lt.cublasLtMatmulAlgoConfigSetAttribute, uintptr(unsafe.Pointer(&algo[0])), attr,
		uintptr(ptr), size)
	return r == 0
}

// describeAlgo names a configuration for verbose tuning output.
func describeAlgo(lt *cublasLt, algo *[heuristicResultSize]byte) string {
	get := func(attr uintptr, size uintptr) uint64 {
		var v uint64
		var written uintptr
		purego.SyscallN(lt.cublasLtMatmulAlgoConfigGetAttribute, uintptr(unsafe.Pointer(&algo[0])), attr,
			uintptr(unsafe.Pointer(&v)), size, uintptr(unsafe.Pointer(&written)))
		return v
	}
	return fmt.Sprintf("id %d tile %d stages %d cluster %d splitk %d swizzle %d custom %d",
		get(ltConfigID, 4), get(ltConfigTileID, 4), get(ltConfigStagesID, 4), get(ltConfigClusterShape, 2),
		get(ltConfigSplitK, 4), get(ltConfigSwizzling, 4), get(ltConfigCustomOption, 4))
}
