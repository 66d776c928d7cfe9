"""Matrix products that QGIS's GSL cannot capture (core/blas.py), and the numpy backend built on them.

QGIS on Debian/Ubuntu links GSL, whose reference CBLAS sits in the process's global symbol scope,
so Debian numpy's ``cblas_sgemm`` binds to it (~15x slower). The capture test reproduces that in
QGIS's own interpreter and checks, through the dynamic linker's binding log, that numpy is
captured there while the plugin's products go through scipy's BLAS, with the right numbers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core import blas, network
from sinr_qgis.core.runtime import Predictor
from tests.factories import fixture_bundle
from tests.tolerances import f32_atol, logit_atol

PROBE = Path(__file__).with_name("gsl_capture_probe.py")
# QGIS's interpreter: the Python this venv was made from (Debian's, with Debian's numpy and scipy)
QGIS_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _random(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_t_is_x_times_w_transposed(dtype):
    x, w = _random((300, 64), dtype, 1), _random((40, 64), dtype, 2)
    got = blas.matmul_t(x, w)
    want = x.astype(np.float64) @ w.astype(np.float64).T
    assert got.shape == (300, 40) and got.dtype == dtype and got.flags.c_contiguous
    # float32: each of the 64 products rounds (tolerances.py); float64 is exact to 1e-12 here
    tol = 64 * np.finfo(np.float32).eps * np.abs(x).max() * np.abs(w).sum(axis=1).max() \
        if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_t_with_one_row_uses_gemv_with_the_same_values(dtype, monkeypatch):
    """One species' head (w [1, K]) goes through gemv (3x faster than gemm with a one-column result
    on a cached canvas); values equal the float64 product to the same rounding bound as gemm."""
    x, w = _random((500, 64), dtype, 16), _random((1, 64), dtype, 17)
    calls = []
    gemv = blas._scipy_gemvs()[np.dtype(dtype)]
    counted = {np.dtype(dtype): lambda *a, **k: calls.append(1) or gemv(*a, **k)}
    monkeypatch.setattr(blas, "_scipy_gemvs", lambda: counted)
    want = x.astype(np.float64) @ w.astype(np.float64).T
    # float32: each of the 64 products rounds (tolerances.py); float64 is exact to 1e-12 here
    tol = 64 * np.finfo(np.float32).eps * np.abs(x).max() * np.abs(w).sum() if dtype == np.float32 else 1e-12
    got = blas.matmul_t(x, w)
    assert got.shape == (500, 1) and got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)
    out = np.full((500, 1), np.nan, dtype)
    assert blas.matmul_t(x, w, out=out) is out
    np.testing.assert_array_equal(out, got)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="out must be"):
        blas.matmul_t(x, w, out=np.empty((500, 2), dtype))


def test_matmul_t_uses_scipy_here_and_numpy_without_it(monkeypatch):
    assert blas.product_engine() == blas.ENGINE_SCIPY  # scipy comes with Debian's QGIS
    x, w = _random((50, 8), np.float32, 3), _random((5, 8), np.float32, 4)
    with_scipy = blas.matmul_t(x, w)
    monkeypatch.setattr(blas, "_scipy_gemms", lambda: None)
    assert blas.product_engine() == blas.ENGINE_NUMPY
    np.testing.assert_allclose(blas.matmul_t(x, w), with_scipy, rtol=0, atol=f32_atol(with_scipy))


def test_matmul_t_edge_cases():
    x = _random((0, 8), np.float32, 5)
    assert blas.matmul_t(x, _random((3, 8), np.float32, 6)).shape == (0, 3)
    # mixed dtypes and integers fall back to numpy's product, same values
    xi, wi = np.arange(6).reshape(2, 3), np.arange(12).reshape(4, 3)
    assert (blas.matmul_t(xi, wi) == xi @ wi.T).all()
    mixed = blas.matmul_t(np.ones((2, 3), np.float32), np.ones((4, 3), np.float64))
    assert mixed.shape == (2, 4) and (mixed == 3).all()
    # a non-contiguous view is accepted (copied once, as numpy would)
    xs = _random((10, 16), np.float32, 7)[:, ::2]
    w = _random((3, 8), np.float32, 8)
    np.testing.assert_allclose(blas.matmul_t(xs, w), xs @ w.T, rtol=0, atol=f32_atol(xs @ w.T) * 8)
    with pytest.raises(ValueError, match="last dimension"):
        blas.matmul_t(_random((2, 3), np.float32, 9), _random((2, 4), np.float32, 10))


def test_products_copy_no_operand():
    """The transposed views are the Fortran operands gemm wants: the only allocation is the result."""
    x, w = _random((20000, 256), np.float32, 11), _random((256, 256), np.float32, 12)
    blas.matmul_t(x[:10], w)  # scipy imported and warmed up outside the measurement
    tracemalloc.start()
    out = blas.matmul_t(x, w)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.nbytes == 20000 * 256 * 4
    assert peak < out.nbytes * 1.05, f"peak {peak} B for a {out.nbytes} B result: an operand was copied"


def test_embed_features_allocates_only_its_activations():
    """Per layer: one gemm output plus the block's two temporaries; never a copy of h or a weight."""
    rng = np.random.default_rng(13)
    weights = {network.INPUT_W: rng.standard_normal((256, 4), dtype=np.float32),
               network.INPUT_B: rng.standard_normal(256, dtype=np.float32)}
    for i in range(2):
        for k, shape in zip(network.block_keys(i), [(256, 256), (256,), (256, 256), (256,)]):
            weights[k] = rng.standard_normal(shape, dtype=np.float32) * 0.05
    x = rng.standard_normal((8192, 4), dtype=np.float32)
    network.embed_features(weights, x[:10])
    tracemalloc.start()
    h = network.embed_features(weights, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # h, t and t2 alive at once at most: 3 activations of [8192, 256] float32
    assert peak < 3 * h.nbytes * 1.05, f"peak {peak} B > 3 activations of {h.nbytes} B"


def test_numpy_backend_equals_onnxruntime(tmp_path):
    """The scipy-BLAS products give the onnxruntime backend's numbers to float32 tolerance."""
    bundle = fixture_bundle(tmp_path / "m.sinr", "sin_cos_w64", n_species=7, seed=4)
    lonlat = np.column_stack([np.linspace(-170, 170, 999), np.linspace(-60, 70, 999)]).astype(np.float32)
    fast, ref = Predictor(bundle, "numpy"), Predictor(bundle, "onnxruntime")
    e_np, e_ort = fast.embed(lonlat), ref.embed(lonlat)
    np.testing.assert_allclose(e_np, e_ort, rtol=0, atol=f32_atol(e_ort))
    np.testing.assert_allclose(fast.logits(e_np), ref.logits(e_ort), rtol=0, atol=logit_atol(e_ort, bundle.head))


def _gsl() -> str:
    name = ctypes.util.find_library("gslcblas")
    if name is None:
        pytest.fail("libgslcblas.so.0 is not installed; it comes with QGIS on Debian/Ubuntu "
                    "(apt-get install libgslcblas0, as scripts/setup.sh does)")
    return name


def _bindings(log_dir: Path, symbol: str) -> list[tuple[str, str]]:
    """(file that calls, library it was bound to) for every binding of ``symbol`` in the ld.so logs."""
    pattern = re.compile(r"binding file (\S+) \[\d+\] to (\S+) \[\d+\]: normal symbol `" + re.escape(symbol) + "'")
    found = []
    for log in log_dir.iterdir():
        found += pattern.findall(log.read_text(errors="replace"))
    return found


def _run_probe(mode: str, gsl: str, bundle: Path, tmp: Path) -> tuple[dict, Path, dict]:
    """Run the probe in QGIS's interpreter with the dynamic linker's binding log on; (JSON, log folder, arrays)."""
    if not QGIS_PYTHON.is_file():
        pytest.fail(f"QGIS's interpreter {QGIS_PYTHON} was not found")
    name = f"{mode}-{'gsl' if gsl != 'none' else 'plain'}"
    logs = tmp / f"ld-{name}"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(logs / "ld"))
    out = tmp / f"{name}.npz"
    proc = subprocess.run([str(QGIS_PYTHON), "-I", str(PROBE), mode, gsl, str(bundle), str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as arrays:
        return json.loads(proc.stdout.strip().splitlines()[-1]), logs, dict(arrays)


def test_gsl_captures_numpy_but_not_the_numpy_backend(tmp_path):
    """numpy binds its cblas_* pointers when it loads, so the binding log shows the capture but
    not who calls it. What goes through GSL is told by its numbers instead: GSL's reference loops
    sum in another order than OpenBLAS, so a product that goes through GSL changes in its last
    bits when GSL is loaded; one that does not is bit-for-bit the same with and without GSL."""
    gsl = _gsl()
    bundle = fixture_bundle(tmp_path / "m.sinr", "sin_cos_w64", n_species=9, seed=6)
    path = tmp_path / "m.sinr"

    # 1. Debian's numpy in QGIS's interpreter: its float32 product is bound to GSL's reference CBLAS
    info, logs, captured = _run_probe("numpy", gsl, path, tmp_path)
    assert "libgslcblas" in (info["global_cblas"] or ""), info
    numpy_binds = [(f, lib) for f, lib in _bindings(logs, "cblas_sgemm") if "_multiarray_umath" in f]
    assert numpy_binds and all("libgslcblas" in lib for _, lib in numpy_binds), numpy_binds
    plain_info, _, plain = _run_probe("numpy", "none", path, tmp_path)
    assert plain_info["global_cblas"] is None
    assert not np.array_equal(captured["y"], plain["y"]), "numpy's product did not go through GSL"
    assert info["max_error"] < 1e-3  # captured, not wrong: GSL computes the same product slowly
    print(f"\nnumpy float32 matmul: {2 * 2048 * 256 * 256 / info['seconds'] / 1e9:.1f} GFLOP/s under GSL, "
          f"{2 * 2048 * 256 * 256 / plain_info['seconds'] / 1e9:.1f} without")

    # 2. The numpy backend in the same situation: scipy's sgemm_ (OpenBLAS), untouched by GSL
    info, logs, with_gsl = _run_probe("backend", gsl, path, tmp_path)
    assert info["engine"] == blas.ENGINE_SCIPY and "libgslcblas" in (info["global_cblas"] or ""), info
    fortran = [(f, lib) for f, lib in _bindings(logs, "sgemm_") if "_fblas" in f]
    assert fortran and all("gsl" not in lib for _, lib in fortran), fortran
    plain_info, _, without_gsl = _run_probe("backend", "none", path, tmp_path)
    for key in ("emb", "logits"):
        assert np.array_equal(with_gsl[key], without_gsl[key]), f"GSL changed the backend's {key}"
    ref = Predictor(bundle, "numpy")  # this process: pip's numpy, immune to the capture
    want = ref.embed(with_gsl["lonlat"])
    np.testing.assert_allclose(with_gsl["emb"], want, rtol=0, atol=f32_atol(want))
    np.testing.assert_allclose(with_gsl["logits"], ref.logits(want), rtol=0, atol=logit_atol(want, bundle.head))
    print(f"numpy backend: {5000 / info['seconds']:,.0f} locations/s under GSL, "
          f"{5000 / plain_info['seconds']:,.0f} without (width {bundle.embedding_dim}, depth 2)")


def test_no_global_cblas_in_a_plain_python():
    assert blas.global_cblas_library() is None or "gsl" not in blas.global_cblas_library()


def test_matmul_t_writes_into_out():
    x, w = _random((64, 16), np.float32, 14), _random((8, 16), np.float32, 15)
    out = np.full((64, 8), np.nan, np.float32)
    assert blas.matmul_t(x, w, out=out) is out
    np.testing.assert_allclose(out, x @ w.T, rtol=0, atol=f32_atol(x @ w.T))
    with pytest.raises(ValueError, match="out must be"):
        blas.matmul_t(x, w, out=np.empty((8, 64), np.float32).T)  # Fortran-ordered: refused


def test_the_plugin_has_no_other_matrix_product():
    """Every matrix product of the plugin goes through blas.matmul_t: a numpy ``@``, ``dot``,
    ``matmul``, ``einsum``, ``inner`` or ``tensordot`` anywhere else would be captured inside QGIS."""
    import ast

    package = Path(blas.__file__).resolve().parents[1]
    names = {"dot", "matmul", "einsum", "inner", "tensordot", "vdot"}
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == Path(blas.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult):
                found.append(f"{path.relative_to(package)}:{node.lineno} @")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names:
                found.append(f"{path.relative_to(package)}:{node.lineno} {node.func.attr}()")
    assert not found, f"use sinr_qgis.core.blas.matmul_t instead: {found}"
