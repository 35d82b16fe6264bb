"""Give MLX's CPU backend an optimised BLAS on Linux, in this process.

The mlx-cpu wheel (what `pip install "mlx[cpu]"` gives on Linux) links the reference BLAS it
bundles (mlx_cpu.libs/libblas-*.so.3.10.0, netlib): its cblas_sgemm runs single-threaded at a
few GFLOP/s, so an MLX-on-CPU figure taken with it measures that library, not MLX. MLX calls only
cblas_sgemm/dgemm/cgemm from it for matmuls. Loading a shim that defines those symbols and
forwards them to OpenBLAS (the scipy-openblas32 wheel goembed's CPU backend uses too) with
RTLD_GLOBAL *before* mlx.core is imported makes libmlx bind to the shim instead: a
library's undefined symbols are looked up in the global scope first, then in its own
dependencies. Nothing else in the process uses unprefixed cblas_* names (torch links MKL
statically, numpy and goembed use the prefixed scipy_* entry points).

    import mlx_openblas
    note = mlx_openblas.enable()   # before `import mlx.core`; returns a description or raises
    import mlx.core as mx
    mlx_openblas.check()            # a matmul went through the shim
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import cache_dir

SHIM_C = r"""
/* cblas_{s,d,c}gemm -> scipy-openblas32's scipy_cblas_{s,d,c}gemm (32-bit ints, same enums). */
typedef int E;
extern void scipy_cblas_sgemm(E, E, E, int, int, int, float, const float *, int, const float *, int,
                              float, float *, int);
extern void scipy_cblas_dgemm(E, E, E, int, int, int, double, const double *, int, const double *, int,
                              double, double *, int);
extern void scipy_cblas_cgemm(E, E, E, int, int, int, const void *, const void *, int, const void *, int,
                              const void *, void *, int);
long goembed_mlx_shim_calls;
void cblas_sgemm(E o, E ta, E tb, int m, int n, int k, float al, const float *a, int lda, const float *b,
                 int ldb, float be, float *c, int ldc) {
    __atomic_add_fetch(&goembed_mlx_shim_calls, 1, __ATOMIC_RELAXED);
    scipy_cblas_sgemm(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}
void cblas_dgemm(E o, E ta, E tb, int m, int n, int k, double al, const double *a, int lda, const double *b,
                 int ldb, double be, double *c, int ldc) {
    scipy_cblas_dgemm(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}
void cblas_cgemm(E o, E ta, E tb, int m, int n, int k, const void *al, const void *a, int lda, const void *b,
                 int ldb, const void *be, void *c, int ldc) {
    scipy_cblas_cgemm(o, ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc);
}
"""

_shim = None


def enable() -> str:
    """Build (once) and load the shim; returns what MLX's matmuls now call. Raises when it
    cannot (not Linux, mlx.core already imported, no scipy-openblas32, no C compiler)."""
    global _shim
    if _shim is not None:
        return _shim[1]
    if not sys.platform.startswith("linux"):
        raise RuntimeError("the OpenBLAS shim is for the Linux mlx-cpu wheel")
    if "mlx.core" in sys.modules:
        raise RuntimeError("mlx.core is already imported: its BLAS is bound")
    import scipy_openblas32 as ob

    libdir, name = ob.get_lib_dir(), ob.get_library()  # .../lib, "scipy_openblas"
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler to build the shim")
    key = hashlib.sha256((SHIM_C + libdir + name).encode()).hexdigest()[:12]
    so = cache_dir() / f"libmlx_openblas_shim-{key}.so"
    if not so.exists():
        src = so.with_suffix(".c")
        src.write_text(SHIM_C)
        tmp = so.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src), f"-L{libdir}", f"-l{name}",
                        f"-Wl,-rpath,{libdir}"], check=True)
        tmp.replace(so)
    lib = ctypes.CDLL(str(so), mode=os.RTLD_GLOBAL | os.RTLD_NOW)
    cfg = ctypes.CDLL(str(Path(libdir) / f"lib{name}.so")).scipy_openblas_get_config
    cfg.restype = ctypes.c_char_p
    _shim = (lib, f"cblas_sgemm -> {cfg().decode()} (scipy-openblas32, RTLD_GLOBAL shim)")
    return _shim[1]


def check() -> None:
    """Raise unless an MLX CPU matmul goes through the shim (call after importing mlx.core)."""
    import mlx.core as mx

    calls = ctypes.c_long.in_dll(_shim[0], "goembed_mlx_shim_calls")
    before = calls.value
    mx.eval(mx.matmul(mx.ones((64, 64)), mx.ones((64, 64)), stream=mx.cpu))
    if calls.value == before:
        raise RuntimeError("MLX's matmul did not reach the OpenBLAS shim")
