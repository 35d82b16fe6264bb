package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGemm checks each GEMM against a float64 loop, with every transpose, padded row strides
// (whose padding must be neither read into the result nor written) and alpha, beta.
func TestGemm(t *testing.T) {
	libs := map[string]*blasLib{"gonum": gonumBLAS(nil)}
	if lib, err := loadBLAS(); err == nil && lib.path != "" {
		libs["blas"] = lib
	}
	const pad = 3
	for name, lib := range libs {
		for _, s := range [][3]int{{1, 1, 1}, {2, 3, 4}, {17, 33, 65}, {64, 7, 130}} {
			for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
				m, n, k := s[0], s[1], s[2]
				t.Run(fmt.Sprintf("%s/m%d_n%d_k%d_transA%v_transB%v", name, m, n, k, tr[0], tr[1]), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(m), uint64(n*k)))
					ra, ca := m, k
					if tr[0] {
						ra, ca = k, m
					}
					rb, cb := k, n
					if tr[1] {
						rb, cb = n, k
					}
					lda, ldb, ldc := ca+pad, cb+pad, n+pad
					a, b, c := randoms(rng, ra*lda, 1), randoms(rng, rb*ldb, 1), randoms(rng, m*ldc, 1)
					for _, p := range []struct {
						v   []float32
						ld  int
						col int
					}{{a, lda, ca}, {b, ldb, cb}} {
						for i := range p.v {
							if i%p.ld >= p.col {
								p.v[i] = float32(math.NaN()) // must never be read
							}
						}
					}
					at := func(x []float32, ld int, trans bool, i, j int) float64 {
						if trans {
							i, j = j, i
						}
						return float64(x[i*ld+j])
					}
					const alpha, beta = 0.5, -2
					want := make([]float64, len(c))
					for i := range want {
						want[i] = float64(c[i]) // padding stays as it was
					}
					for i := range m {
						for j := range n {
							var v float64
							for l := range k {
								v += at(a, lda, tr[0], i, l) * at(b, ldb, tr[1], l, j)
							}
							want[i*ldc+j] = alpha*v + beta*float64(c[i*ldc+j])
						}
					}
					lib.sgemm(tr[0], tr[1], m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					near(t, "sgemm", c, want, 1e-5)
				})
			}
		}
	}
}

// TestGemmBatch checks sgemmBatch against one sgemm per product, with the library's batch call
// and with the loop that stands in for it, on interleaved operands as attention's heads are.
func TestGemmBatch(t *testing.T) {
	libs := map[string]*blasLib{"gonum": gonumBLAS(nil)}
	if lib, err := loadBLAS(); err == nil && lib.path != "" {
		libs["blas"] = lib
		if lib.batch == nil {
			t.Logf("%s has no cblas_sgemm_batch_strided: testing the loop", lib.describe())
		}
	}
	const count, pad = 5, 3
	for name, lib := range libs {
		for _, s := range [][3]int{{1, 1, 1}, {7, 7, 4}, {83, 83, 32}, {83, 32, 83}, {130, 17, 9}} {
			for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
				m, n, k := s[0], s[1], s[2]
				t.Run(fmt.Sprintf("%s/m%d_n%d_k%d_transA%v_transB%v", name, m, n, k, tr[0], tr[1]), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(m*n), uint64(k)))
					ra, ca := m, k
					if tr[0] {
						ra, ca = k, m
					}
					rb, cb := k, n
					if tr[1] {
						rb, cb = n, k
					}
					// The i-th A and B lie side by side in rows of count*columns + pad; the C
					// are stacked, each rows*ldc long.
					lda, ldb, ldc := count*ca+pad, count*cb+pad, n+pad
					a, b := randoms(rng, ra*lda, 1), randoms(rng, rb*ldb, 1)
					c := randoms(rng, count*m*ldc, 1)
					want := append([]float32(nil), c...)
					const alpha, beta = 0.5, -2
					for i := range count {
						lib.sgemm(tr[0], tr[1], m, n, k, alpha, a[i*ca:], lda, b[i*cb:], ldb, beta, want[i*m*ldc:], ldc)
					}
					for _, useLib := range []bool{true, false} {
						got := append([]float32(nil), c...)
						l := &blasLib{sgemm: lib.sgemm, batch: lib.batch}
						if !useLib {
							l.batch = nil
						}
						l.sgemmBatch(tr[0], tr[1], m, n, k, alpha, a, lda, ca, b, ldb, cb, beta, got, ldc, m*ldc, count)
						near(t, fmt.Sprintf("sgemmBatch (library's: %v)", useLib && lib.batch != nil), got, f64(want), 1e-6)
					}
				})
			}
		}
	}
}

// TestFindBLAS checks the search order: GOEMBED_BLAS first, then the scipy-openblas32 wheel
// in SearchPaths and the Python paths, then the system, then gonum.
func TestFindBLAS(t *testing.T) {
	t.Run("GOEMBED_BLAS=gonum", func(t *testing.T) {
		t.Setenv("GOEMBED_BLAS", "gonum")
		lib, err := findBLAS()
		if err != nil || lib.path != "" || !strings.Contains(lib.describe(), "gonum") {
			t.Fatalf("got %v, %v", lib, err)
		}
	})
	for _, bad := range []string{"/nonexistent/libblas.so", "libc.so.6"} {
		t.Run("GOEMBED_BLAS="+bad, func(t *testing.T) {
			t.Setenv("GOEMBED_BLAS", bad)
			if _, err := findBLAS(); err == nil || !strings.Contains(err.Error(), "GOEMBED_BLAS="+bad) {
				t.Fatalf("error = %v, want one naming GOEMBED_BLAS=%s", err, bad)
			}
		})
	}
	t.Run("SearchPaths", func(t *testing.T) {
		var site string
		for _, dir := range sitePackages() {
			if _, err := os.Stat(filepath.Join(dir, "scipy_openblas32", "lib", "libscipy_openblas.so")); err == nil {
				site = dir
				break
			}
		}
		if site == "" {
			t.Skip("scipy-openblas32 is not installed (pip install scipy-openblas32; GOEMBED_PYTHONPATH=its site-packages)")
		}
		for _, env := range []string{"GOEMBED_BLAS", "GOEMBED_PYTHONPATH", "PYTHONPATH", "VIRTUAL_ENV"} {
			t.Setenv(env, "")
		}
		defer func(old []string) { SearchPaths = old }(SearchPaths)
		SearchPaths = []string{t.TempDir(), site}
		lib, err := findBLAS()
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(site, "scipy_openblas32", "lib", "libscipy_openblas.so"); lib.path != want {
			t.Fatalf("found %q, want %q", lib.describe(), want)
		}
		t.Log(lib.describe())
	})
	t.Run("nothing found", func(t *testing.T) {
		lib, err := loadBLAS()
		if err != nil || lib.path != "" {
			t.Skip("a BLAS is installed here")
		}
		if d := lib.describe(); !strings.Contains(d, "gonum") || !strings.Contains(d, "libopenblas.so.0") {
			t.Errorf("describe = %q: should say what was tried", d)
		}
	})
}

// TestSingleThreaded checks that OpenBLAS is held to one thread inside and restored after,
// also when callers overlap.
func TestSingleThreaded(t *testing.T) {
	lib, err := loadBLAS()
	if err != nil || lib.setThreads == nil {
		t.Skip("no OpenBLAS with openblas_set_num_threads here")
	}
	before := lib.getThreads()
	lib.singleThreaded(func() {
		lib.singleThreaded(func() {})
		if n := lib.getThreads(); n != 1 {
			t.Errorf("inside: %d threads, want 1", n)
		}
	})
	if n := lib.getThreads(); n != before {
		t.Errorf("after: %d threads, want %d", n, before)
	}
}
