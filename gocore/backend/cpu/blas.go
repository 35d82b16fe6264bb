package cpu

// The GEMMs come from a BLAS found at run time with purego's dlopen, so that nothing is needed at
// build time and a missing library costs speed, not a crash. Search order:
//
//  1. $GOEMBED_BLAS: a path to a shared library with cblas_sgemm (or scipy_cblas_sgemm);
//     "gonum" forces the pure-Go fallback. A path that does not load is an error.
//  2. The scipy-openblas32 wheel (scipy_openblas32/lib/libscipy_openblas.so, symbols prefixed
//     scipy_) in the directories of SearchPaths, $GOEMBED_PYTHONPATH, $PYTHONPATH, the
//     site-packages of $VIRTUAL_ENV and $CONDA_PREFIX, and the usual user, pyenv and system
//     site-packages.
//  3. The system's libopenblas.so.0, libopenblas.so or libblas.so.3 (cblas_sgemm).
//  4. gonum.org/v1/gonum/blas/gonum, pure Go.
//
// The library is loaded once per process, at the first New.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// SearchPaths are extra site-packages directories searched for the scipy-openblas32 wheel before
// the environment's; the Python binding sets them from sys.path. Set before the first New.
var SearchPaths []string

// gemmFunc computes C = alpha * op(A) @ op(B) + beta * C with row-major matrices: op(A) is [m, k]
// (A is [k, m] when transA), op(B) is [k, n] (B is [n, k] when transB), C is [m, n]; lda, ldb and
// ldc are row strides in elements. a, b and c start at the first element of their matrix.
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// batchGemmFunc computes count products like gemmFunc, the i-th on the matrices that start
// i*strideA, i*strideB and i*strideC elements into a, b and c.
type batchGemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC, count int)

// sgemmBatch computes count products of the same shape, as batchGemmFunc says: in one call to
// cblas_sgemm_batch_strided when the library has it (recent OpenBLAS, such as the 0.3.34 of the
// scipy-openblas32 wheel), else one sgemm after another. For small products the one call saves
// much of the time: OpenBLAS takes about 1 us to set up each call, and its batch runs products
// of up to 100^3 multiply-adds through kernels that skip the packing (attention's products for
// 12 heads of 32, BenchmarkAttentionGemm: 5x faster at 8 tokens, 2x at 32, 1.2x at 83-128, the
// same at 256).
func (l *blasLib) sgemmBatch(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC, count int) {
	if l.batch != nil {
		l.batch(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, count)
		return
	}
	for i := range count {
		l.sgemm(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
	}
}

// blasLib is the GEMM in use and what to say about it.
type blasLib struct {
	sgemm   gemmFunc
	batch   batchGemmFunc // the library's cblas_sgemm_batch_strided, or nil (see sgemmBatch)
	path    string        // "" for gonum
	config  string        // the library's own description, when it has one
	threads int           // the library's thread count, 0 when unknown
	notes   []string

	getThreads func() int32 // OpenBLAS's openblas_get_num_threads, or nil
	setThreads func(int32)  // openblas_set_num_threads, or nil
	pinMu      sync.Mutex
	pinned     int   // callers inside singleThreaded
	saved      int32 // the thread count to restore
}

// singleThreaded runs f with the library held to one thread: the ops split their GEMMs into
// blocks over their own goroutines instead. A multi-threaded OpenBLAS called from several
// goroutines at once has its threads fight over the cores, and after each call its threads
// spin for a while, starving the goroutines that apply bias and GELU; on the 2-core machine
// attention's small products ran 10-20x slower and Linear 1.3-1.6x slower that way. Even one
// multi-threaded sgemm per Linear over all T rows, with only the activation on goroutines, made
// a forward of 32 sequences of 83 tokens slower (441 ms against 383; OpenBLAS 0.3.34): its QKV
// product ran 12% faster, but the spinning threads doubled the time of the attention after it
// and slowed the GELU by a quarter. The setting is process-wide, so it is counted, and the
// last caller out restores the thread count the first one found. A library without
// openblas_set_num_threads is used as it is.
func (l *blasLib) singleThreaded(f func()) {
	if l.setThreads == nil {
		f()
		return
	}
	l.pinMu.Lock()
	if l.pinned++; l.pinned == 1 {
		if l.saved = l.getThreads(); l.saved != 1 {
			l.setThreads(1)
		}
	}
	l.pinMu.Unlock()
	defer func() {
		l.pinMu.Lock()
		if l.pinned--; l.pinned == 0 && l.saved != 1 {
			l.setThreads(l.saved)
		}
		l.pinMu.Unlock()
	}()
	f()
}

func (l *blasLib) describe() string {
	if l.path == "" {
		s := "gonum (pure Go)"
		if len(l.notes) > 0 {
			s += "; no BLAS loaded: " + strings.Join(l.notes, "; ")
		}
		return s
	}
	s := l.path
	if l.config != "" {
		s += " (" + l.config + ")"
	}
	if l.setThreads != nil {
		return fmt.Sprintf("%s, one thread per worker (library default %d)", s, l.threads)
	}
	return s + ", its own threading"
}

var (
	blasOnce   sync.Once
	blasLoaded *blasLib
	blasErr    error
)

func loadBLAS() (*blasLib, error) {
	blasOnce.Do(func() { blasLoaded, blasErr = findBLAS() })
	return blasLoaded, blasErr
}

func findBLAS() (*blasLib, error) {
	switch env := os.Getenv("GOEMBED_BLAS"); env {
	case "":
	case "gonum":
		return gonumBLAS([]string{"GOEMBED_BLAS=gonum"}), nil
	default:
		lib, err := openCBLAS(env)
		if err != nil {
			return nil, fmt.Errorf("cpu: GOEMBED_BLAS=%s: %w", env, err)
		}
		return lib, nil
	}
	var notes []string
	for _, dir := range sitePackages() {
		path := filepath.Join(dir, "scipy_openblas32", "lib", "libscipy_openblas.so")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		lib, err := openCBLAS(path)
		if err == nil {
			return lib, nil
		}
		notes = append(notes, err.Error())
	}
	system := []string{"libopenblas.so.0", "libopenblas.so", "libblas.so.3"}
	for _, name := range system {
		lib, err := openCBLAS(name)
		if err == nil {
			return lib, nil
		}
		if !strings.Contains(err.Error(), "No such file") {
			notes = append(notes, err.Error())
		}
	}
	notes = append(notes, "not found: scipy-openblas32 in site-packages, "+strings.Join(system, ", "))
	return gonumBLAS(notes), nil
}

// sitePackages lists the directories that may hold Python packages, most specific first.
func sitePackages() []string {
	dirs := append([]string(nil), SearchPaths...)
	for _, env := range []string{"GOEMBED_PYTHONPATH", "PYTHONPATH"} {
		dirs = append(dirs, filepath.SplitList(os.Getenv(env))...)
	}
	var globs []string
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if prefix := os.Getenv(env); prefix != "" {
			globs = append(globs, filepath.Join(prefix, "lib", "python3*", "site-packages"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		globs = append(globs, filepath.Join(home, ".local", "lib", "python3*", "site-packages"),
			filepath.Join(home, ".pyenv", "versions", "*", "lib", "python3*", "site-packages"))
	}
	globs = append(globs, "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages")
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		dirs = append(dirs, m...)
	}
	return dirs
}

// openCBLAS loads a CBLAS with 32-bit integers from path (a file or a name for the loader path).
func openCBLAS(path string) (*blasLib, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		if strings.HasPrefix(err.Error(), path) { // dlerror names the file already
			return nil, err
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var prefix string
	sym, err := purego.Dlsym(h, "scipy_cblas_sgemm")
	if err == nil {
		prefix = "scipy_"
	} else if sym, err = purego.Dlsym(h, "cblas_sgemm"); err != nil {
		purego.Dlclose(h)
		return nil, fmt.Errorf("%s: no cblas_sgemm or scipy_cblas_sgemm", path)
	}
	// void cblas_sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
	var cblasSgemm func(order, transA, transB, m, n, k int32, alpha float32, a []float32, lda int32,
		b []float32, ldb int32, beta float32, c []float32, ldc int32)
	purego.RegisterFunc(&cblasSgemm, sym)
	const rowMajor, noTrans, trans = 101, 111, 112
	tr := func(t bool) int32 {
		if t {
			return trans
		}
		return noTrans
	}
	lib := &blasLib{path: path}
	lib.sgemm = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		cblasSgemm(rowMajor, tr(transA), tr(transB), int32(m), int32(n), int32(k), alpha, a, int32(lda), b, int32(ldb), beta, c, int32(ldc))
	}
	if sym, err := purego.Dlsym(h, prefix+"cblas_sgemm_batch_strided"); err == nil {
		var batch func(order, transA, transB, m, n, k int32, alpha float32, a []float32, lda, strideA int32,
			b []float32, ldb, strideB int32, beta float32, c []float32, ldc, strideC, count int32)
		purego.RegisterFunc(&batch, sym)
		lib.batch = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC, count int) {
			if m == 0 || n == 0 || count == 0 {
				return
			}
			batch(rowMajor, tr(transA), tr(transB), int32(m), int32(n), int32(k), alpha, a, int32(lda), int32(strideA),
				b, int32(ldb), int32(strideB), beta, c, int32(ldc), int32(strideC), int32(count))
		}
	}
	get, errGet := purego.Dlsym(h, prefix+"openblas_get_num_threads")
	set, errSet := purego.Dlsym(h, prefix+"openblas_set_num_threads")
	if errGet == nil && errSet == nil {
		purego.RegisterFunc(&lib.getThreads, get)
		purego.RegisterFunc(&lib.setThreads, set)
		lib.threads = int(lib.getThreads())
	}
	if sym, err := purego.Dlsym(h, prefix+"openblas_get_config"); err == nil {
		var config func() string
		purego.RegisterFunc(&config, sym)
		lib.config = strings.TrimSpace(config())
	}
	return lib, nil
}

// gonumBLAS is the pure-Go fallback; gonum's Sgemm splits large products across goroutines.
func gonumBLAS(notes []string) *blasLib {
	tr := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	return &blasLib{notes: notes, sgemm: func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m == 0 || n == 0 {
			return
		}
		// gonum wants each slice to end where its matrix does.
		ra, ca := m, k
		if transA {
			ra, ca = k, m
		}
		rb, cb := k, n
		if transB {
			rb, cb = n, k
		}
		gonum.Implementation{}.Sgemm(tr(transA), tr(transB), m, n, k, alpha,
			a[:span(ra, ca, lda)], lda, b[:span(rb, cb, ldb)], ldb, beta, c[:span(m, n, ldc)], ldc)
	}}
}

// span is the number of elements a rows x cols matrix with row stride ld covers.
func span(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return ld*(rows-1) + cols
}
