package cuda

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cublasLt holds the cuBLASLt entry points (libcublasLt.so.*) Linear uses.
type cublasLt struct {
	path    string
	version uintptr

	cublasLtCreate, cublasLtDestroy                                      uintptr
	cublasLtMatmulDescCreate, cublasLtMatmulDescDestroy                  uintptr
	cublasLtMatmulDescSetAttribute                                       uintptr
	cublasLtMatrixLayoutCreate, cublasLtMatrixLayoutDestroy              uintptr
	cublasLtMatmulPreferenceCreate, cublasLtMatmulPreferenceDestroy      uintptr
	cublasLtMatmulPreferenceSetAttribute, cublasLtMatmulAlgoGetHeuristic uintptr
	cublasLtMatmul                                                       uintptr

	// The algorithm search (gemmsearch.go).
	cublasLtMatmulAlgoCheck, cublasLtMatmulAlgoCapGetAttribute                 uintptr
	cublasLtMatmulAlgoConfigSetAttribute, cublasLtMatmulAlgoConfigGetAttribute uintptr
}

// cuBLASLt and CUDA library constants (cublasLt.h, cublas_api.h, library_types.h).
const (
	cudaR32F  = 0
	cudaR16F  = 2
	cudaR16BF = 14

	cublasCompute32F         = 68
	cublasCompute32FFastTF32 = 77

	cublasOpT = 1

	ltDescTransA      = 3
	ltDescTransB      = 4
	ltDescEpilogue    = 7
	ltDescBiasPointer = 8

	ltEpilogueDefault  = 1
	ltEpilogueBias     = 4
	ltEpilogueGELU     = 32
	ltEpilogueGELUBias = 36

	ltPrefMaxWorkspaceBytes = 1

	// workspaceBytes is what NVIDIA suggests for Hopper (32 MiB).
	workspaceBytes = 32 << 20
	// heuristicResultSize is sizeof(cublasLtMatmulHeuristicResult_t): algo (8 uint64),
	// workspaceSize, state, wavesCount, reserved[4].
	heuristicResultSize = 64 + 8 + 4 + 4 + 16
)

func loadCublasLt() (*cublasLt, error) {
	h, path, err := libCublasLt.open()
	if err != nil {
		return nil, err
	}
	l := &cublasLt{path: path}
	var getVersion uintptr
	err = symbols(h, path, map[string]*uintptr{
		"cublasLtGetVersion":                   &getVersion,
		"cublasLtCreate":                       &l.cublasLtCreate,
		"cublasLtDestroy":                      &l.cublasLtDestroy,
		"cublasLtMatmulDescCreate":             &l.cublasLtMatmulDescCreate,
		"cublasLtMatmulDescDestroy":            &l.cublasLtMatmulDescDestroy,
		"cublasLtMatmulDescSetAttribute":       &l.cublasLtMatmulDescSetAttribute,
		"cublasLtMatrixLayoutCreate":           &l.cublasLtMatrixLayoutCreate,
		"cublasLtMatrixLayoutDestroy":          &l.cublasLtMatrixLayoutDestroy,
		"cublasLtMatmulPreferenceCreate":       &l.cublasLtMatmulPreferenceCreate,
		"cublasLtMatmulPreferenceDestroy":      &l.cublasLtMatmulPreferenceDestroy,
		"cublasLtMatmulPreferenceSetAttribute": &l.cublasLtMatmulPreferenceSetAttribute,
		"cublasLtMatmulAlgoGetHeuristic":       &l.cublasLtMatmulAlgoGetHeuristic,
		"cublasLtMatmul":                       &l.cublasLtMatmul,
		"cublasLtMatmulAlgoCheck":              &l.cublasLtMatmulAlgoCheck,
		"cublasLtMatmulAlgoCapGetAttribute":    &l.cublasLtMatmulAlgoCapGetAttribute,
		"cublasLtMatmulAlgoConfigSetAttribute": &l.cublasLtMatmulAlgoConfigSetAttribute,
		"cublasLtMatmulAlgoConfigGetAttribute": &l.cublasLtMatmulAlgoConfigGetAttribute,
	})
	if err != nil {
		return nil, err
	}
	l.version, _, _ = purego.SyscallN(getVersion)
	return l, nil
}

func (l *cublasLt) check(call string, r uintptr) error {
	if int32(r) == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(int32(r)), Name: cublasStatusName(int32(r))}
}

func cublasStatusName(s int32) string {
	switch s {
	case 1:
		return "CUBLAS_STATUS_NOT_INITIALIZED"
	case 3:
		return "CUBLAS_STATUS_ALLOC_FAILED"
	case 7:
		return "CUBLAS_STATUS_INVALID_VALUE"
	case 8:
		return "CUBLAS_STATUS_ARCH_MISMATCH"
	case 11:
		return "CUBLAS_STATUS_MAPPING_ERROR"
	case 13:
		return "CUBLAS_STATUS_EXECUTION_FAILED"
	case 14:
		return "CUBLAS_STATUS_INTERNAL_ERROR"
	case 15:
		return "CUBLAS_STATUS_NOT_SUPPORTED"
	case 16:
		return "CUBLAS_STATUS_LICENSE_ERROR"
	}
	return fmt.Sprintf("cublasStatus %d", s)
}

// gemmKey identifies a planned product: sizes and epilogue (the dtype is fixed per backend).
type gemmKey struct {
	m, n, k  int
	epilogue int32
}

// gemmPlan is what cuBLASLt needs for one gemmKey, kept across calls: the descriptors and the
// algorithm its heuristic picked. Only the bias pointer changes between calls.
type gemmPlan struct {
	desc, a, b, c uintptr
	algo          [heuristicResultSize]byte // the chosen heuristic result; algo is its first 64 bytes
	// cands are the heuristic's ranked candidates (algo = cands[0] until tuned; gemmtune.go).
	cands [][heuristicResultSize]byte
	tuned bool
}

// maxPlans bounds the plan cache: token counts vary from batch to batch, and a plan costs a few
// hundred bytes of host memory plus cuBLASLt descriptors.
const maxPlans = 512

// plan returns the cached plan for key, creating it on first use.
func (b *Backend) plan(key gemmKey) (*gemmPlan, error) {
	if p, ok := b.plans[key]; ok {
		return p, nil
	}
	if len(b.plans) >= maxPlans {
		b.freePlans()
	}
	lt := b.lt
	p := &gemmPlan{}
	computeType, dataType := b.ltTypes()
	r, _, _ := purego.SyscallN(lt.cublasLtMatmulDescCreate, uintptr(unsafe.Pointer(&p.desc)), computeType, cudaR32F)
	if err := lt.check("cublasLtMatmulDescCreate", r); err != nil {
		return nil, err
	}
	setDesc := func(attr uintptr, v int32) error {
		r, _, _ := purego.SyscallN(lt.cublasLtMatmulDescSetAttribute, p.desc, attr, uintptr(unsafe.Pointer(&v)), 4)
		return lt.check("cublasLtMatmulDescSetAttribute", r)
	}
	// Row-major out[n, m] = x[n, k] W[m, k]^T is column-major out^T[m, n] = W^T^T x^T: A is W,
	// seen column-major as [k, m] with ld k and transposed; B is x, column-major [k, n], ld k.
	if err := setDesc(ltDescTransA, cublasOpT); err != nil {
		p.destroy(lt)
		return nil, err
	}
	if err := setDesc(ltDescEpilogue, key.epilogue); err != nil {
		p.destroy(lt)
		return nil, err
	}
	layout := func(dst *uintptr, rows, cols, ld int) error {
		r, _, _ := purego.SyscallN(lt.cublasLtMatrixLayoutCreate, uintptr(unsafe.Pointer(dst)), dataType,
			uintptr(rows), uintptr(cols), uintptr(ld))
		return lt.check("cublasLtMatrixLayoutCreate", r)
	}
	for _, err := range []error{
		layout(&p.a, key.k, key.m, key.k),
		layout(&p.b, key.k, key.n, key.k),
		layout(&p.c, key.m, key.n, key.m),
	} {
		if err != nil {
			p.destroy(lt)
			return nil, err
		}
	}
	// The heuristic needs a bias pointer only to know the epilogue reads one; any aligned
	// device address does (the real one is set before each call).
	if key.epilogue == ltEpilogueBias || key.epilogue == ltEpilogueGELUBias {
		if err := p.setBias(lt, b.workspace); err != nil {
			p.destroy(lt)
			return nil, err
		}
	}
	var found int32
	cands := make([][heuristicResultSize]byte, tuneCandidates)
	r, _, _ = purego.SyscallN(lt.cublasLtMatmulAlgoGetHeuristic, b.ltHandle, p.desc, p.a, p.b, p.c, p.c,
		b.ltPref, uintptr(len(cands)), uintptr(unsafe.Pointer(&cands[0])), uintptr(unsafe.Pointer(&found)))
	if err := lt.check("cublasLtMatmulAlgoGetHeuristic", r); err != nil {
		p.destroy(lt)
		return nil, err
	}
	if found < 1 {
		p.destroy(lt)
		return nil, fmt.Errorf("cuBLASLt has no algorithm for %d x %d x %d (epilogue %d)", key.m, key.n, key.k, key.epilogue)
	}
	p.cands = cands[:found]
	p.algo = p.cands[0]
	b.plans[key] = p
	return p, nil
}

// ltTypes returns the cuBLASLt compute type and the data type of every matrix for this
// backend's dtype (the scale type is always 32-bit float).
func (b *Backend) ltTypes() (computeType, dataType uintptr) {
	computeType, dataType = cublasCompute32F, cudaR32F
	switch b.storage {
	case kindF16:
		dataType = cudaR16F
	case kindBF16:
		dataType = cudaR16BF
	}
	if b.dtype == "tfloat32" {
		computeType = cublasCompute32FFastTF32
	}
	return computeType, dataType
}

func (p *gemmPlan) setBias(lt *cublasLt, bias uintptr) error {
	v := uint64(bias)
	r, _, _ := purego.SyscallN(lt.cublasLtMatmulDescSetAttribute, p.desc, ltDescBiasPointer, uintptr(unsafe.Pointer(&v)), 8)
	return lt.check("cublasLtMatmulDescSetAttribute(BIAS_POINTER)", r)
}

func (p *gemmPlan) destroy(lt *cublasLt) {
	for _, l := range []uintptr{p.a, p.b, p.c} {
		if l != 0 {
			purego.SyscallN(lt.cublasLtMatrixLayoutDestroy, l)
		}
	}
	if p.desc != 0 {
		purego.SyscallN(lt.cublasLtMatmulDescDestroy, p.desc)
	}
}

func (b *Backend) freePlans() {
	for k, p := range b.plans {
		p.destroy(b.lt)
		delete(b.plans, k)
	}
}

// gemm enqueues out[n, m] = x[n, k] w[m, k]^T (+ bias[m], then GELU when epilogue says so) on
// the stream. All pointers are device memory in the storage type.
func (b *Backend) gemm(out, x, w, bias uintptr, n, k, m int, epilogue int32) error {
	p, err := b.plan(gemmKey{m: m, n: n, k: k, epilogue: epilogue})
	if err != nil {
		return err
	}
	if bias != 0 {
		if err := p.setBias(b.lt, bias); err != nil {
			return err
		}
	}
	if !p.tuned && !b.capturing {
		p.tuned = true
		b.tune(p, gemmKey{m: m, n: n, k: k, epilogue: epilogue}, out, x, w)
	}
	return b.matmul(p, &p.algo, out, x, w)
}

// matmul enqueues one cublasLtMatmul of plan p with the heuristic result algo.
func (b *Backend) matmul(p *gemmPlan, algo *[heuristicResultSize]byte, out, x, w uintptr) error {
	alpha, beta := b.scalars()
	r, _, _ := purego.SyscallN(b.lt.cublasLtMatmul, b.ltHandle, p.desc, alpha, w, p.a, x, p.b, beta,
		out, p.c, out, p.c, uintptr(unsafe.Pointer(&algo[0])), b.workspace, workspaceBytes, b.stream)
	return b.lt.check("cublasLtMatmul", r)
}
