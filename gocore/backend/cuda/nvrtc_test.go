package cuda

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCompileShaders needs only NVRTC, not a GPU: it compiles every shaders/*.cu for all
// storage types (and, per storage type, as a backend does) for a few architectures, and checks
// that every kernel the launchers use is in the result.
func TestCompileShaders(t *testing.T) {
	n, err := loadNVRTC()
	if dir := wheelLibDir(); err != nil && dir != "" {
		// make test's environment: torch's nvidia-* wheels in the build's .venv (which the
		// search does not see from this package's folder) hold NVRTC, so CI compiles every
		// kernel without a GPU.
		t.Setenv("GOEMBED_CUDA_LIB_DIR", dir)
		n, err = loadNVRTC()
	}
	if err != nil {
		t.Skipf("no NVRTC: %v", err)
	}
	t.Logf("NVRTC %d.%d from %s", n.major, n.minor, n.path)
	archs := []string{"sm_90"}
	if !testing.Short() {
		archs = append(archs, "sm_75", "sm_80") // the pre-bfloat16 path and Ampere
	}
	sfxs := []string{"f32", "f16", "bf16"}
	for _, arch := range archs {
		var all []byte
		for _, u := range units("") {
			start := time.Now()
			bin, err := n.compile(u, arch)
			if err != nil {
				t.Fatalf("%s: %v", arch, err)
			}
			t.Logf("%s %s (all storage types): %d bytes, %v", arch, u.file, len(bin), time.Since(start).Round(time.Millisecond))
			all = append(all, bin...)
		}
		for _, sfx := range sfxs {
			for _, k := range kernelNames(sfx) {
				if !bytes.Contains(all, append([]byte(k), 0)) {
					t.Errorf("%s: kernel %s missing", arch, k)
				}
			}
		}
	}
	// One storage type at a time, as Open compiles (in parallel): only its own kernels.
	t.Setenv("GOEMBED_CACHE_DIR", t.TempDir())
	cubinMu.Lock()
	clear(cubinMem) // compile for real, even after other tests opened backends
	cubinMu.Unlock()
	for _, sfx := range sfxs {
		start := time.Now()
		bins, _, err := n.cubins(units(sfx), "sm_90")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sm_90 %s units (cache %s): %v", sfx, cacheDir(), time.Since(start).Round(time.Millisecond))
		all := bytes.Join(bins, nil)
		for i, u := range units(sfx) {
			for _, k := range kernelNames(sfx) {
				if kernelFile(k) == u.file && !bytes.Contains(bins[i], append([]byte(k), 0)) {
					t.Errorf("%s: kernel %s not in %s", sfx, k, u.file)
				}
			}
		}
		for _, other := range sfxs {
			for _, k := range kernelNames(other) {
				if has := bytes.Contains(all, append([]byte(k), 0)); has != (other == sfx) {
					t.Errorf("%s build: has %s = %v", sfx, k, has)
				}
			}
		}
	}
}

// wheelLibDir is the lib folder of an nvidia CUDA wheel holding NVRTC under the site-packages
// of GOEMBED_PYTHONPATH (set by make test), or "".
func wheelLibDir() string {
	for _, p := range filepath.SplitList(os.Getenv("GOEMBED_PYTHONPATH")) {
		for _, pat := range []string{"nvidia/cu1*/lib", "nvidia/cuda_nvrtc/lib"} {
			m, _ := filepath.Glob(filepath.Join(p, pat, "libnvrtc.so*"))
			if len(m) > 0 {
				return filepath.Dir(m[0])
			}
		}
	}
	return ""
}
