package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/goembed/goembed/shaders"
)

// nvrtc holds the NVRTC entry points (libnvrtc.so.*): shaders/ is compiled at run time for the
// GPU in hand, so building goembed needs no CUDA SDK.
type nvrtc struct {
	path         string
	major, minor int32

	nvrtcCreateProgram, nvrtcCompileProgram, nvrtcDestroyProgram uintptr
	nvrtcGetProgramLogSize, nvrtcGetProgramLog                   uintptr
	nvrtcGetCUBINSize, nvrtcGetCUBIN                             uintptr
	errorString                                                  func(int32) string
}

func loadNVRTC() (*nvrtc, error) {
	h, path, err := libNVRTC.open()
	if err != nil {
		return nil, err
	}
	// libnvrtc dlopens libnvrtc-builtins by soname when it compiles; outside the loader path
	// (pip wheels, a toolkit not in ld.so.conf) that fails unless the copy beside it is loaded
	// first, after which the loader finds it by its soname.
	if filepath.IsAbs(path) {
		found, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "libnvrtc-builtins.so.*"))
		for _, f := range found {
			if !strings.Contains(filepath.Base(f), ".alt.") {
				purego.Dlopen(f, purego.RTLD_NOW|purego.RTLD_GLOBAL)
			}
		}
	}
	n := &nvrtc{path: path}
	var version, getErrorString uintptr
	err = symbols(h, path, map[string]*uintptr{
		"nvrtcVersion":           &version,
		"nvrtcGetErrorString":    &getErrorString,
		"nvrtcCreateProgram":     &n.nvrtcCreateProgram,
		"nvrtcCompileProgram":    &n.nvrtcCompileProgram,
		"nvrtcDestroyProgram":    &n.nvrtcDestroyProgram,
		"nvrtcGetProgramLogSize": &n.nvrtcGetProgramLogSize,
		"nvrtcGetProgramLog":     &n.nvrtcGetProgramLog,
		"nvrtcGetCUBINSize":      &n.nvrtcGetCUBINSize,
		"nvrtcGetCUBIN":          &n.nvrtcGetCUBIN,
	})
	if err != nil {
		return nil, err
	}
	purego.RegisterFunc(&n.errorString, getErrorString)
	purego.SyscallN(version, uintptr(unsafe.Pointer(&n.major)), uintptr(unsafe.Pointer(&n.minor)))
	return n, nil
}

func (n *nvrtc) check(call string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(int32(r)), Name: n.errorString(int32(r))}
}

// compileOptions are the NVRTC flags besides the architecture and the storage define. No
// fast-math: erf, exp2 and the divisions keep their IEEE accuracy.
var compileOptions = []string{"--std=c++17", "--extra-device-vectorization"}

// A unit is one NVRTC program: one shaders/*.cu file, built for one storage type (define, e.g.
// "STORAGE_F16") or, with define "", for all of them.
type unit struct {
	file, define string
}

// units lists the programs of a backend whose storage kernels have suffix sfx ("f16"), or with
// sfx "" those holding every storage type; they are compiled in parallel, attention.cu being
// much the slowest.
func units(sfx string) []unit {
	names, _ := shaders.Files(".cu")
	var us []unit
	for _, n := range names {
		u := unit{file: n}
		if sfx != "" {
			u.define = "STORAGE_" + strings.ToUpper(sfx)
		}
		us = append(us, u)
	}
	return us
}

// options returns the NVRTC flags of u for arch (e.g. "sm_90").
func (u unit) options(arch string) []string {
	opts := append([]string{"--gpu-architecture=" + arch}, compileOptions...)
	if u.define != "" {
		opts = append(opts, "-D"+u.define)
	}
	// Kernel experiments: extra flags such as -DATTM_MIN_BLOCKS=1 compare compile-time variants
	// in one build (they are part of the cache key, like every option).
	return append(opts, strings.Fields(os.Getenv("GOEMBED_NVRTC_FLAGS"))...)
}

// cacheKey hashes everything the machine code of u depends on: its source, every header, the
// flags and the NVRTC version.
func (n *nvrtc) cacheKey(u unit, arch string) string {
	names, files := shaders.Files(".h")
	_, cu := shaders.Files(".cu")
	h := sha256.New()
	fmt.Fprintf(h, "nvrtc %d.%d\nopts %q\n%s %d\n%s", n.major, n.minor, u.options(arch), u.file, len(cu[u.file]), cu[u.file])
	for _, name := range names {
		fmt.Fprintf(h, "%s %d\n%s", name, len(files[name]), files[name])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

var (
	cubinMu  sync.Mutex
	cubinMem = map[string][]byte{}
)

// cacheDir is $GOEMBED_CACHE_DIR/nvrtc, else the user cache folder ($XDG_CACHE_HOME or
// ~/.cache) + goembed/nvrtc.
func cacheDir() string {
	if d := os.Getenv("GOEMBED_CACHE_DIR"); d != "" {
		return filepath.Join(d, "nvrtc")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "goembed", "nvrtc")
}

// cubins returns the machine code of every unit for arch, in order: from this process's
// memory, else from the on-disk cache, else compiled by NVRTC (in parallel) and stored in both.
// cached says whether NVRTC was skipped for all of them.
func (n *nvrtc) cubins(us []unit, arch string) (bins [][]byte, cached bool, err error) {
	cubinMu.Lock()
	defer cubinMu.Unlock()
	bins = make([][]byte, len(us))
	errs := make([]error, len(us))
	dir := cacheDir()
	cached = true
	var wg sync.WaitGroup
	for i, u := range us {
		key := n.cacheKey(u, arch)
		if b, ok := cubinMem[key]; ok {
			bins[i] = b
			continue
		}
		file := ""
		if dir != "" {
			file = filepath.Join(dir, strings.TrimSuffix(u.file, ".cu")+"-"+arch+"-"+key+".cubin")
			if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
				bins[i], cubinMem[key] = b, b
				continue
			}
		}
		cached = false
		wg.Go(func() {
			bins[i], errs[i] = n.compile(u, arch)
			if errs[i] == nil && file != "" {
				writeCache(dir, file, bins[i])
			}
		})
	}
	wg.Wait()
	for i, u := range us {
		if errs[i] != nil {
			return nil, false, errs[i]
		}
		cubinMem[n.cacheKey(u, arch)] = bins[i]
	}
	return bins, cached, nil
}

// writeCache stores bin atomically; failures (a read-only home) only cost a compile per process.
func writeCache(dir, file string, bin []byte) {
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	tmp := fmt.Sprintf("%s.%d.tmp", file, os.Getpid())
	if os.WriteFile(tmp, bin, 0o644) == nil && os.Rename(tmp, file) == nil {
		return
	}
	os.Remove(tmp)
}

// compile runs NVRTC over u for arch and returns the cubin; a failed compile returns the
// compiler's log. The #includes resolve to shaders/*.h, handed to NVRTC in memory.
func (n *nvrtc) compile(u unit, arch string) ([]byte, error) {
	_, cu := shaders.Files(".cu")
	_, headers := shaders.Files(".h")
	var pin runtime.Pinner
	defer pin.Unpin()
	cs := func(s string) *byte {
		b := cstr(s)
		pin.Pin(&b[0])
		return &b[0]
	}
	var hdrs, names, opts []*byte
	for name, text := range headers {
		hdrs = append(hdrs, cs(text))
		names = append(names, cs(name))
	}
	for _, o := range u.options(arch) {
		opts = append(opts, cs(o))
	}
	pin.Pin(&hdrs[0])
	pin.Pin(&names[0])
	pin.Pin(&opts[0])

	var prog uintptr
	r, _, _ := purego.SyscallN(n.nvrtcCreateProgram, uintptr(unsafe.Pointer(&prog)),
		uintptr(unsafe.Pointer(cs(cu[u.file]))), uintptr(unsafe.Pointer(cs(u.file))),
		uintptr(len(hdrs)), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(unsafe.Pointer(&names[0])))
	if err := n.check("nvrtcCreateProgram", r); err != nil {
		return nil, err
	}
	defer purego.SyscallN(n.nvrtcDestroyProgram, uintptr(unsafe.Pointer(&prog)))

	r, _, _ = purego.SyscallN(n.nvrtcCompileProgram, prog, uintptr(len(opts)), uintptr(unsafe.Pointer(&opts[0])))
	if err := n.check("nvrtcCompileProgram", r); err != nil {
		return nil, fmt.Errorf("compiling shaders/%s for %s: %w\n%s", u.file, arch, err, n.log(prog))
	}
	var size uintptr
	r, _, _ = purego.SyscallN(n.nvrtcGetCUBINSize, prog, uintptr(unsafe.Pointer(&size)))
	if err := n.check("nvrtcGetCUBINSize", r); err != nil {
		return nil, err
	}
	bin := make([]byte, size)
	r, _, _ = purego.SyscallN(n.nvrtcGetCUBIN, prog, uintptr(unsafe.Pointer(&bin[0])))
	if err := n.check("nvrtcGetCUBIN", r); err != nil {
		return nil, err
	}
	return bin, nil
}

// log returns NVRTC's compile log (warnings and errors).
func (n *nvrtc) log(prog uintptr) string {
	var size uintptr
	purego.SyscallN(n.nvrtcGetProgramLogSize, prog, uintptr(unsafe.Pointer(&size)))
	if size <= 1 {
		return ""
	}
	b := make([]byte, size)
	purego.SyscallN(n.nvrtcGetProgramLog, prog, uintptr(unsafe.Pointer(&b[0])))
	return strings.TrimRight(string(b), "\x00\n")
}
