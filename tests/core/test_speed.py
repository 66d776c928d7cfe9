"""Diagnostics' speed check (core/speed.py): what it measures, when it stops, what it says and why."""
from __future__ import annotations

import itertools

import pytest

from sinr_qgis.core import blas, speed
from sinr_qgis.core.runtime import Predictor
from tests.factories import fixture_bundle

GSL = "/lib/x86_64-linux-gnu/libgslcblas.so.0"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    return Predictor(fixture_bundle(tmp_path_factory.mktemp("m") / "m.sinr", "sin_cos_w32", n_species=4),
                     backend="numpy")


def test_encoder_flops_count_every_layer(predictor):
    # input 4 (sin/cos of lon, lat) -> 32, then 2 blocks of two 32x32 layers; 2 flops per multiply-add
    assert speed.encoder_flops(predictor.bundle.weights) == 2 * (32 * 4 + 4 * 32 * 32)


def test_measure_embed_stops_once_the_budget_is_spent(predictor):
    ticks = itertools.count(0.0, 0.5)  # a fake clock: each reading is 0.5 s later
    done, seconds = speed.measure_embed(predictor, n=20_000, budget_s=0.8, clock=lambda: next(ticks))
    # start at 0.0; after chunk 1 the clock reads 0.5 (< 0.8: go on), after chunk 2 it reads 1.0: stop
    assert done == 2 * speed.CHUNK
    assert seconds == pytest.approx(1.5)


def test_measure_embed_does_all_points_within_a_large_budget(predictor):
    done, seconds = speed.measure_embed(predictor, n=3000, budget_s=60.0)
    assert done == 3000 and seconds > 0


def test_speed_report_of_a_real_predictor(predictor):
    report = speed.speed_report(predictor, n=2048)
    assert report.backend == "numpy" and report.engine == blas.ENGINE_SCIPY
    assert report.locations == 2048 and report.locations_per_s > 0
    assert report.flops_per_location == speed.encoder_flops(predictor.bundle.weights)
    assert report.speed_line().startswith(f"{report.locations_per_s:,.0f} locations/s with numpy")
    print(f"\n{report.speed_line()}\n{report.product_line()}")


def _report(**kw) -> speed.SpeedReport:
    base = dict(backend="numpy", engine=blas.ENGINE_SCIPY, locations=20_000, seconds=0.25,
                flops_per_location=1e6, numpy_gflops=70.0, engine_gflops=60.0, captured_by=None)
    return speed.SpeedReport(**{**base, **kw})


def test_normal_speed_says_normal_and_offers_the_button():
    r = _report()  # 80,000 locations/s x 1 MFLOP = 80 GFLOP/s
    assert r.gflops == pytest.approx(80.0) and not r.slow
    assert r.speed_line() == ("80,000 locations/s with numpy (20,000 points in 0.25 s, 80.0 GFLOP/s): normal; "
                              f"onnxruntime is usually faster still: {speed.INSTALL_HINT}")
    assert _report(backend="onnxruntime").speed_line().endswith(": normal")


def test_captured_numpy_without_scipy_says_why_and_what_to_do():
    r = _report(engine=blas.ENGINE_NUMPY, seconds=5.0, numpy_gflops=3.7, engine_gflops=3.7, captured_by=GSL)
    assert r.slow and r.gflops == pytest.approx(4.0)
    line = r.speed_line()
    assert line.startswith("4,000 locations/s with numpy (20,000 points in 5.00 s, 4.0 GFLOP/s): SLOW, ")
    assert f"numpy's matrix product is bound to a reference BLAS ({GSL}) that QGIS loads" in line
    assert "scipy is missing" in line and "sudo apt install python3-scipy" in line
    assert speed.INSTALL_HINT in line
    assert r.product_line() == (f"{blas.ENGINE_NUMPY}: 3.7 GFLOP/s; numpy matmul 3.7 GFLOP/s "
                                f"(numpy's cblas_sgemm is bound to {GSL}, a reference BLAS QGIS loads)")


def test_capture_avoided_by_scipy_is_reported_but_not_slow():
    r = _report(numpy_gflops=3.7, captured_by=GSL)
    assert not r.slow
    assert r.product_line() == (f"{blas.ENGINE_SCIPY}: 60.0 GFLOP/s; numpy matmul 3.7 GFLOP/s (numpy's "
                                f"cblas_sgemm is bound to {GSL}, a reference BLAS QGIS loads; the plugin uses "
                                "scipy's BLAS instead)")


def test_other_slow_causes():
    no_scipy = _report(engine=blas.ENGINE_NUMPY, seconds=5.0, numpy_gflops=4.2)
    assert "scipy is missing and numpy's matrix product runs at 4.2 GFLOP/s" in no_scipy.why_slow()
    slow_blas = _report(seconds=5.0, engine_gflops=3.9)
    assert "scipy's BLAS runs at 3.9 GFLOP/s here" in slow_blas.why_slow()
    assert "libopenblas0-pthread" in slow_blas.why_slow()
    assert "CPU is busy" in _report(backend="onnxruntime", seconds=5.0).why_slow()


@pytest.mark.parametrize("kw", [{}, {"engine": blas.ENGINE_NUMPY, "seconds": 5.0, "captured_by": GSL},
                                {"seconds": 5.0}, {"backend": "onnxruntime", "seconds": 5.0}])
def test_no_hint_suggests_a_bare_pip_install(kw):
    """A bare ``pip install onnxruntime`` upgrades QGIS's numpy to 2 and breaks its GDAL."""
    r = _report(**kw)
    assert "pip install" not in r.speed_line() + r.product_line()


def test_requesting_onnxruntime_without_it_names_the_button(predictor, monkeypatch):
    from sinr_qgis.core import runtime
    from sinr_qgis.core.errors import BundleError

    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    with pytest.raises(BundleError) as err:
        Predictor(predictor.bundle, backend="onnxruntime")
    assert str(err.value) == ("The onnxruntime backend was requested but onnxruntime is not installed. Install it "
                              "with the Install onnxruntime button of the SINR panel (a plain pip install would "
                              "upgrade QGIS's numpy), or use the numpy backend.")
