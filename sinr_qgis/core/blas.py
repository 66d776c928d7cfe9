"""Matrix products that stay fast inside QGIS, and a check of what can slow them down.

Why this module exists: QGIS on Debian/Ubuntu links GSL, whose reference CBLAS
(``libgslcblas.so.0``) sits in the process's global symbol scope. The dynamic linker searches that
scope first, so numpy's ``cblas_sgemm`` binds to GSL's unoptimised loops instead of numpy's own
BLAS (3.7 instead of ~70 GFLOP/s measured). scipy's BLAS wrappers call the Fortran symbols
(``sgemm_``, ``dgemm_``), which GSL does not define, so they keep the optimised library. scipy
comes with Debian's QGIS and with the Windows and macOS installers; without it numpy's product is
used (correct, but exposed to that capture; Diagnostics says so).
"""
from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

import numpy as np

ENGINE_SCIPY = "scipy BLAS"
ENGINE_NUMPY = "numpy matmul (scipy missing)"


@functools.lru_cache(maxsize=1)
def _scipy_gemms() -> dict[np.dtype, Callable] | None:
    """scipy's sgemm and dgemm, or None when scipy cannot be imported (imported once, on first use)."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}


@functools.lru_cache(maxsize=1)
def _scipy_gemvs() -> dict[np.dtype, Callable]:
    """scipy's sgemv and dgemv (only asked for once ``_scipy_gemms`` found scipy)."""
    from scipy.linalg import blas

    return {np.dtype(np.float32): blas.sgemv, np.dtype(np.float64): blas.dgemv}


def product_engine() -> str:
    """Which code computes :func:`matmul_t`: ``ENGINE_SCIPY`` or ``ENGINE_NUMPY``."""
    return ENGINE_SCIPY if _scipy_gemms() is not None else ENGINE_NUMPY


def matmul_t(x: np.ndarray, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``x @ w.T`` for 2-D arrays x [N, K] and w [M, K] of one float dtype -> C-contiguous [N, M].

    float32 and float64 go through scipy's BLAS gemm (gemv when w has one row): with C-contiguous
    inputs the transposed views are exactly the Fortran-ordered operands gemm wants, so nothing is
    copied and the Fortran-ordered [M, N] result is returned as its C-contiguous transpose. ``out`` (C-contiguous
    [N, M], same dtype) receives the result in place, so a loop of layers can reuse its buffers
    (fresh arrays cost page faults). Other dtypes, mixed dtypes and a missing scipy use numpy's
    ``@`` (same values to float rounding).
    """
    gemms = _scipy_gemms()
    gemm = None if gemms is None or x.dtype != w.dtype else gemms.get(x.dtype)
    if gemm is None or x.ndim != 2 or w.ndim != 2:
        return np.matmul(x, w.T, out=out)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"matmul_t: shapes {x.shape} and {w.shape} do not share their last dimension")
    if x.shape[0] == 0 or w.shape[0] == 0 or x.shape[1] == 0:
        return np.matmul(x, w.T, out=out)  # BLAS rejects empty operands; numpy needs no product for them
    if out is not None and (out.shape != (x.shape[0], w.shape[0]) or out.dtype != x.dtype
                            or not out.flags.c_contiguous):
        raise ValueError(f"matmul_t: out must be C-contiguous {x.dtype} {(x.shape[0], w.shape[0])}")
    if w.shape[0] == 1:
        # one row of w (one species' head): gemv, which streams x once; OpenBLAS's gemm with a
        # one-column result ran 3x slower on [131072, 256] (a further species on a cached canvas)
        y = _scipy_gemvs()[x.dtype](1.0, np.ascontiguousarray(x).T, np.ascontiguousarray(w[0]), trans=1)
        if out is None:
            return y.reshape(-1, 1)
        out[:, 0] = y
        return out
    # ascontiguousarray is a no-op for the C-contiguous arrays every caller passes
    a, b = np.ascontiguousarray(w).T, np.ascontiguousarray(x).T
    if out is None:
        return gemm(1.0, a, b, trans_a=1).T
    gemm(1.0, a, b, beta=0.0, c=out.T, trans_a=1, overwrite_c=1)  # out.T is the Fortran [M, N] gemm writes
    return out


def numpy_matmul_t(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """numpy's own ``x @ w.T``: only to measure whether it is captured (Diagnostics)."""
    return x @ w.T


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def global_cblas_library(symbol: str = "cblas_sgemm") -> str | None:
    """The library that defines ``symbol`` in this process's global symbol scope, or None.

    A library there wins over numpy's own BLAS when numpy calls the plain ``cblas_*`` names
    (Linux distributions' numpy does; pip wheels use renamed symbols and are immune). Inside QGIS
    on Debian/Ubuntu this returns ``.../libgslcblas.so.0``. None on Windows and macOS, where
    symbols are not resolved through one global scope.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        scope = ctypes.CDLL(None)  # dlopen(NULL): the main program and every RTLD_GLOBAL library
        address = ctypes.cast(getattr(scope, symbol), ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None
    info = _DlInfo()
    dladdr = scope.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    if not address or not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return info.dli_fname.decode(errors="replace")
