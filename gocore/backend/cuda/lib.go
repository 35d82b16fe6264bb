package cuda

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ebitengine/purego"
)

// library describes one shared library to find: the environment variable that names its file,
// the sonames to try (newest first), and where pip's nvidia-* wheels put it.
type library struct {
	env      string   // full path of the file, e.g. GOEMBED_LIBCUBLASLT
	sonames  []string // e.g. libcublasLt.so.13, libcublasLt.so.12
	wheelDir []string // under site-packages, e.g. nvidia/cublas/lib
	toolkit  bool     // also look in the CUDA toolkit (not for the driver)
}

var (
	libDriver = library{
		env:     "GOEMBED_LIBCUDA",
		sonames: []string{"libcuda.so.1", "libcuda.so"},
	}
	libCublasLt = library{
		env:      "GOEMBED_LIBCUBLASLT",
		sonames:  []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"},
		wheelDir: []string{"nvidia/cu13/lib", "nvidia/cublas/lib"},
		toolkit:  true,
	}
	libNVRTC = library{
		env:      "GOEMBED_LIBNVRTC",
		sonames:  []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"},
		wheelDir: []string{"nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"},
		toolkit:  true,
	}
)

// driverDirs are where distributions and containers put libcuda.so.1 when the loader path does
// not have it. The toolkit's lib64/stubs copy is never used: it only returns errors.
var driverDirs = []string{
	"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
	"/usr/local/nvidia/lib64", "/usr/lib/wsl/lib",
}

// searchPaths lists, in order, the files (absolute) and bare sonames (for the loader) to try:
//
//  1. the library's own variable (a file), then GOEMBED_CUDA_LIB_DIR (a folder);
//  2. pip's nvidia-* wheels in every site-packages we can find (CUDA 13's nvidia/cu13/lib
//     layout first, then CUDA 12's per-library folders);
//  3. the CUDA toolkit: /usr/local/cuda-13*/lib64 first, then /usr/local/cuda/lib64, then any
//     other /usr/local/cuda-*/lib64, newest first;
//  4. the bare sonames, which the dynamic loader resolves (LD_LIBRARY_PATH, ld.so.cache).
//
// The driver (libcuda) skips 2 and 3 and tries the usual driver folders after the loader.
func (l library) searchPaths() []string {
	var paths []string
	add := func(dir string) {
		for _, s := range l.sonames {
			paths = append(paths, filepath.Join(dir, s))
		}
	}
	if f := os.Getenv(l.env); f != "" {
		paths = append(paths, f)
	}
	if d := os.Getenv("GOEMBED_CUDA_LIB_DIR"); d != "" {
		add(d)
	}
	if len(l.wheelDir) > 0 {
		for _, sp := range sitePackages() {
			for _, w := range l.wheelDir {
				add(filepath.Join(sp, w))
			}
		}
	}
	if l.toolkit {
		for _, d := range toolkitDirs() {
			add(d)
		}
	}
	paths = append(paths, l.sonames...)
	if !l.toolkit {
		for _, d := range driverDirs {
			add(d)
		}
	}
	return dedupe(paths)
}

// toolkitDirs lists the lib64 folders of installed CUDA toolkits, CUDA 13 first.
func toolkitDirs() []string {
	var v13, other []string
	found, _ := filepath.Glob("/usr/local/cuda-*/lib64")
	sort.Sort(sort.Reverse(sort.StringSlice(found)))
	for _, d := range found {
		if strings.HasPrefix(filepath.Base(filepath.Dir(d)), "cuda-13") {
			v13 = append(v13, d)
		} else {
			other = append(other, d)
		}
	}
	dirs := append(v13, "/usr/local/cuda/lib64")
	return append(dirs, other...)
}

// sitePackages guesses the Python site-packages folders where pip may have put nvidia-* wheels:
// PYTHONPATH entries, the active virtualenv or conda prefix, the prefix of the running program
// (python itself, when goembed is loaded as an extension), of the python3 on PATH, ./.venv, the
// user site, /usr/local and /usr.
func sitePackages() []string {
	var roots, dirs []string
	for _, p := range filepath.SplitList(os.Getenv("PYTHONPATH")) {
		if p != "" {
			dirs = append(dirs, p)
		}
	}
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if p := os.Getenv(v); p != "" {
			roots = append(roots, p)
		}
	}
	if exe, err := os.Executable(); err == nil {
		roots = append(roots, filepath.Dir(filepath.Dir(exe)))
	}
	for _, py := range []string{"python3", "python"} {
		if p, err := exec.LookPath(py); err == nil {
			if p, err = filepath.EvalSymlinks(p); err == nil {
				roots = append(roots, filepath.Dir(filepath.Dir(p)))
			}
		}
	}
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, filepath.Join(wd, ".venv"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".local"))
	}
	roots = append(roots, "/usr/local", "/usr")
	for _, r := range roots {
		for _, pat := range []string{"lib/python3*/site-packages", "lib/python3*/dist-packages", "lib64/python3*/site-packages"} {
			m, _ := filepath.Glob(filepath.Join(r, pat))
			sort.Sort(sort.Reverse(sort.StringSlice(m)))
			dirs = append(dirs, m...)
		}
	}
	return dedupe(dirs)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// open loads the first library of l that dlopen accepts. Its error names every path tried and
// why each failed, folders without the file grouped together.
func (l library) open() (handle uintptr, path string, err error) {
	var absent, failed []string
	for _, p := range l.searchPaths() {
		if filepath.IsAbs(p) {
			if _, err := os.Stat(p); err != nil {
				if d := filepath.Dir(p); len(absent) == 0 || absent[len(absent)-1] != d {
					absent = append(absent, d)
				}
				continue
			}
		}
		h, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, p, nil
		}
		failed = append(failed, fmt.Sprintf("%s (%v)", p, err))
	}
	msg := fmt.Sprintf("%s not found; dlopen failed for %s", strings.Join(l.sonames, ", "), strings.Join(failed, "; "))
	if len(absent) > 0 {
		msg += "; no such file in " + strings.Join(dedupe(absent), ", ")
	}
	return 0, "", errors.New(msg)
}

// symbols resolves each name into its *uintptr.
func symbols(handle uintptr, lib string, syms map[string]*uintptr) error {
	var missing []string
	for name, p := range syms {
		f, err := purego.Dlsym(handle, name)
		if err != nil || f == 0 {
			missing = append(missing, name)
			continue
		}
		*p = f
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return errors.New(lib + " lacks " + strings.Join(missing, ", "))
	}
	return nil
}
