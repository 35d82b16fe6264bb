package cuda

import (
	"bytes"
	"testing"
	"time"
)

// TestCompileShaders needs only NVRTC, not a GPU: it compiles every shaders/*.cu for all
// storage types (and, per storage type, as a backend does) for a few architectures, and checks
// that every kernel the launchers use is in the result.
func TestCompileShaders(t *testing.T) {
	n, err := loadNVRTC()
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
