"""scripts/demo.py (``make demo``): sinr:predict_range in a standalone QGIS, GeoTIFF + PNG preview."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from tests.helpers.demo import run_demo
from tests.helpers.prediction_helpers import model_file, read_raster  # noqa: F401

pytestmark = pytest.mark.integration  # every test runs scripts/demo.py in a standalone QGIS


def test_demo_writes_the_geotiff_and_a_png_preview(model_file, tmp_path):  # noqa: F811
    out = tmp_path / "demo"
    run = run_demo(tmp_path, "--model", str(model_file), "--species", "Species number1",
                   "--extent=-80,-70,35,45", "--pixel-size", "0.5", "--out", str(out), "--png-width", "300")
    assert run.returncode == 0, run.stdout + run.stderr
    tif, png = out / "Species_number1.tif", out / "Species_number1.png"
    assert f"GeoTIFF: {tif}" in run.stdout and f"Preview: {png}" in run.stdout
    data, info = read_raster(tif)
    assert info["size"] == (20, 20) and info["descriptions"] == ["Species number1"]
    assert np.isnan(data[0, 10, 19]) and np.isfinite(data[0, 10, 4])  # Atlantic masked, Maryland not
    ds = gdal.Open(str(png))
    assert (ds.RasterXSize, ds.RasterYSize) == (300, 300)
    rgb = np.stack([ds.GetRasterBand(i).ReadAsArray() for i in (1, 2, 3)])
    assert (rgb[:, 150, 285] == 255).all()  # the masked ocean renders as the white background
    assert not (rgb[:, 150, 60] == 255).all()  # land is coloured by the style


def test_demo_reports_an_unknown_species(model_file, tmp_path):  # noqa: F811
    run = run_demo(tmp_path, "--model", str(model_file), "--species", "Quercus imaginaria",
                   "--out", str(tmp_path / "o"))
    assert run.returncode == 1
    assert "is not in model" in run.stderr
    assert not list((tmp_path / "o").glob("*.tif"))
