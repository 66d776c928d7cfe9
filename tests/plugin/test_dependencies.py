"""The plugin in a stock QGIS (no onnxruntime, no torch) and with both installed.

Each case runs tests/plugin/dependency_probe.py in a fresh interpreter. For the stock case a
``sitecustomize`` on PYTHONPATH installs a meta-path finder that makes ``import onnxruntime`` and
``import torch`` fail, in the probe and in every Python it starts (the training interpreter too),
as on a user's machine where they were never installed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.factories import make_bundle
from tests.import_blocker import blocking_site, env_with_site
from tests.tolerances import ap_atol, logit_atol, prob_atol

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("dependency_probe.py")
BLOCKED = ("onnxruntime", "torch")
pytestmark = pytest.mark.integration  # every test boots QGIS in a fresh interpreter


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deps") / "tiny.sinr"
    make_bundle(path, n_species=3, width=16, depth=1)
    return path


def run_probe(bundle: Path, work: Path, block: bool) -> dict:
    home = work / "home"  # QGIS settings of the probe go here, never to the user's profile
    home.mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_DATA_HOME=str(home / ".local" / "share"))
    python = str(ROOT / ".venv" / "bin" / "python")
    if block:
        site = blocking_site(work / "site", BLOCKED)
        env = env_with_site(env, site)
        # The training child gets a clean PYTHONPATH from the plugin, so the interpreter without
        # torch is a wrapper that puts the blocker back, like a Python where torch was never installed.
        wrapper = work / "python-without-torch"
        wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{python}" "$@"\n')
        wrapper.chmod(0o755)
        python = str(wrapper)
    env["SINR_PROBE_TRAINING_PYTHON"] = python
    proc = subprocess.run([sys.executable, str(PROBE), str(bundle), str(work)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"probe failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


def check_common(result: dict) -> None:
    assert result["provider"], "the sinr Processing provider was not registered"
    assert not result["provider_after_unload"]
    assert not result["torch_loaded_in_qgis"], "the plugin imported torch into the QGIS process"
    # Prediction and comparison run in both situations (numpy backend when onnxruntime is missing).
    assert "sinr:predict_range" in result["algorithms"] and "sinr:evaluate_ranges" in result["algorithms"]
    if "predict" in result:
        pred = result["predict"]
        assert "error" not in pred, pred.get("error")
        assert pred["valid"] and pred["bands"] >= 2 and pred["n_valid"] > 0
        assert 0.0 <= pred["min"] <= pred["max"] <= 1.0
    if "compare" in result:
        assert "error" not in result["compare"], result["compare"].get("error")
        assert 0.0 < result["compare"]["MAP"] <= 100.0  # percent


@pytest.fixture(scope="module")
def stock(bundle, tmp_path_factory) -> dict:
    return run_probe(bundle, tmp_path_factory.mktemp("stock"), block=True)


@pytest.fixture(scope="module")
def full(bundle, tmp_path_factory) -> dict:
    return run_probe(bundle, tmp_path_factory.mktemp("full"), block=False)


def test_stock_qgis_without_onnxruntime_and_torch(stock):
    result = stock
    assert result["importable"] == {"onnxruntime": False, "torch": False}
    check_common(result)
    diag = result["diagnostics"]
    assert diag["onnxruntime"] == "not installed"
    assert diag["prediction backend"].startswith("numpy")
    assert "Install onnxruntime button" in diag["prediction backend"]
    # the real speed, measured in the plugin's process, and how the products are computed
    assert " locations/s with numpy (" in diag["prediction speed"]
    assert diag["matrix products"].startswith("scipy BLAS: ")
    # the one command offered for onnxruntime installs into the private folder, never numpy
    install = diag["onnxruntime install"]
    assert install.startswith("missing; private folder ") and "python/dependencies/sinr_qgis/py3" in install
    for line in diag.values():
        if "pip install" in line and "onnxruntime" in line:
            assert "-m pip install --no-deps --only-binary=:all: --target " in line, line
    assert diag["torch (training interpreter)"].startswith("unavailable: PyTorch is missing")
    # Training is shown as unavailable, with the reason and how to install torch.
    assert result["training"].startswith("unavailable: PyTorch is missing")
    assert "pip install torch" in result["training"]
    assert not result["onnxruntime_loaded"]


def test_with_onnxruntime_and_torch(full):
    result = full
    assert result["importable"] == {"onnxruntime": True, "torch": True}
    check_common(result)
    diag = result["diagnostics"]
    import onnxruntime
    import torch

    assert diag["onnxruntime"].startswith(onnxruntime.__version__)
    assert "onnxruntime" in diag["prediction backend"]
    assert diag["torch (training interpreter)"].startswith(torch.__version__), diag
    assert result["training"] == "available", result["training"]


def probe_grid(bundle: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The probe's 0.5 degree land cells: embeddings [N, D], sp000's head row [D], inside its range [N]."""
    from sinr_qgis.core import network
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.grid import Grid
    from sinr_qgis.core.landmask import is_land

    b = ModelBundle.load(bundle)
    lonlat, ok = Grid.from_pixel_size((-100, 30, -80, 45), "EPSG:4326", 0.5).lonlat()
    ll = lonlat[ok & is_land(lonlat)]
    emb = network.embed(b.weights, b.encoding, ll)
    inside = (ll[:, 0] > -95) & (ll[:, 0] < -85) & (ll[:, 1] > 32) & (ll[:, 1] < 42)
    return emb, b.head[0], inside


def test_both_backends_give_the_same_prediction_and_comparison(bundle, stock, full):
    """numpy (stock QGIS) and onnxruntime give the same raster and the same MAP, to float32 rounding."""
    assert stock["predict"]["n_valid"] == full["predict"]["n_valid"]
    emb, head, inside = probe_grid(bundle)
    tol = prob_atol(logit_atol(emb, head))
    for key in ("min", "max", "mean"):
        assert stock["predict"][key] == pytest.approx(full["predict"][key], abs=tol), key
    # each MAP is rounded to 2 decimals: a float32 difference can show as one step of 0.01, and AP
    # itself moves only where near-tied scores swap
    map_tol = 0.01 + 100 * ap_atol(inside, emb @ head) + 1e-9
    assert stock["compare"]["MAP"] == pytest.approx(full["compare"]["MAP"], abs=map_tol)
