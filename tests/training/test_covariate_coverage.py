"""Covariate models learn only where the covariates exist (issue 16, kind 3): records without a value
in every covariate are left out and counted, and random absences are drawn where every covariate
has a value, never given the raster mean."""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.covariates import CovariateStack
from sinr_qgis.core.errors import CovariateError
from sinr_qgis.core.occurrences import occurrences_from_arrays
from sinr_qgis.core.train_checks import check_covariates_cover
from training.cli import main
from training.data import keep_covered, random_points_in_bounds, random_sphere_points
from training.negatives import CoveredArea, pseudo_negative_pool

NODATA = -9999.0


def _raster(path: Path, values: np.ndarray, x0: float, y1: float, res: float = 1.0,
            names: tuple[str, ...] = ("temp", "rain")) -> Path:
    """A lon/lat GeoTIFF whose top-left corner is (x0, y1); ``values`` [bands, H, W], NODATA = missing."""
    bands, h, w = values.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((x0, res, 0, y1, 0, -res))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(values[b].astype(np.float32))
        band.SetNoDataValue(NODATA)
        band.SetDescription(names[b])
    ds = None
    return path


def _two_bands(tmp_path: Path) -> Path:
    """lon 0..20, lat 0..10 at 1 degree; band 2 ('rain') is nodata in the cell lon 5..6, lat 5..6."""
    temp = np.arange(200, dtype=np.float32).reshape(10, 20)
    rain = np.full((10, 20), 500.0, np.float32)
    rain[4, 5] = NODATA  # row 4 = lat 5..6 (top row is lat 9..10)
    return _raster(tmp_path / "cov.tif", np.stack([temp, rain]), 0.0, 10.0)


def test_records_without_every_covariate_are_left_out_and_counted(tmp_path):
    stack = CovariateStack.open([_two_bands(tmp_path)])
    # at cell centres: a bilinear read there is the cell's own value
    lon = [0.5, 10.5, 19.5, 5.5, 30.0, 10.5, -5.0]
    lat = [0.5, 9.5, 4.5, 5.5, 5.0, 2.5, 5.0]
    species = ["a", "a", "b", "b", "c", "c", "d"]
    occ = occurrences_from_arrays(lon, lat, species, origin="obs.csv")
    covered = keep_covered(occ, stack)
    # kept: the 3 inside with both values, and c's record at (10.5, 2.5); left out: the rain-nodata
    # cell (5.5, 5.5), and the two records beyond the raster (30 E, 5 W)
    assert covered.n_removed == 3
    assert covered.species_removed == ["d"]  # c keeps one record, d had only one outside
    np.testing.assert_array_equal(covered.occ.lon, [0.5, 10.5, 19.5, 10.5])
    np.testing.assert_array_equal(covered.occ.species, ["a", "a", "b", "c"])
    # temp = 20 * row + col at row = floor(10 - lat), col = floor(lon): exact float32 integers
    np.testing.assert_array_equal(covered.env, [[180.0, 500.0], [10.0, 500.0], [119.0, 500.0], [150.0, 500.0]])
    assert covered.provenance() == {"n_removed_no_covariates": 3, "n_species_no_covariates": 1,
                                    "species_no_covariates": ["d"]}
    assert covered.text("cov.tif") == (
        "covariates (cov.tif): 4 of 7 records have a value in every covariate; 3 outside the rasters or on a "
        "nodata cell are left out, and with them 1 species that have no other record: d.")


def test_rasters_that_miss_most_records_are_refused_as_before_training(tmp_path):
    cov = _two_bands(tmp_path)
    stack = CovariateStack.open([cov])
    occ = occurrences_from_arrays([50.0, 60.0], [40.0, 45.0], ["a", "b"], origin="obs.csv")
    message = (r"The covariate rasters \(cov.tif\) do not cover the observations: only 0 of 2 points \(0%\) fall on "
               r"cells with values in every raster, at least 50% are needed. Rasters cover cov.tif: lon 0.00 to 20.00, "
               r"lat 0.00 to 10.00; the points span lon 50.00 to 60.00, lat 40.00 to 45.00. Use rasters that cover "
               r"the study area.")
    with pytest.raises(CovariateError, match=message):
        keep_covered(occ, stack)
    # one rule for the check before training (Processing, the Train dialog) and training itself:
    # 2 of 5 records covered is refused by both, with the same words
    occ = occurrences_from_arrays([1.5, 2.5, 50.0, 60.0, 70.0], [1.5, 2.5, 40.0, 45.0, 45.0], list("abcde"))
    lonlat = np.stack([occ.lon, occ.lat], 1)
    with pytest.raises(CovariateError) as before:
        check_covariates_cover([cov], lonlat)
    with pytest.raises(CovariateError) as during:
        keep_covered(occ, stack)
    assert str(before.value) == str(during.value)
    assert "only 2 of 5 points (40%)" in str(during.value)


def test_points_in_bounds_on_the_whole_globe_are_the_sphere_points():
    a = random_points_in_bounds(1000, np.random.default_rng(3), (-180.0, -90.0, 180.0, 90.0))
    b = random_sphere_points(1000, np.random.default_rng(3))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)  # arcsin(2v - 1) = 90 - arccos(2v - 1) degrees


def test_random_absences_only_where_every_covariate_has_a_value(tmp_path):
    # the western half (lon 0..10) has no rain: absences must all fall in lon 10..20, lat 0..10
    temp = np.ones((10, 20), np.float32)
    rain = np.ones((10, 20), np.float32)
    rain[:, :10] = NODATA
    stack = CovariateStack.open([_raster(tmp_path / "half.tif", np.stack([temp, rain]), 0.0, 10.0)])
    area = CoveredArea.of(stack)
    assert area.bounds == (0.0, 0.0, 20.0, 10.0)
    n = 20_000
    pool = pseudo_negative_pool(n, np.random.default_rng(0), "sphere", area)
    assert pool.lonlat.shape == (n, 2) and pool.env.shape == (n, 2)
    assert np.isfinite(pool.env).all()
    assert pool.lonlat[:, 0].min() >= 10.0 and pool.lonlat[:, 0].max() <= 20.0
    assert pool.lonlat[:, 1].min() >= 0.0 and pool.lonlat[:, 1].max() <= 10.0
    # half the box is covered: about 2 candidates per absence (binomial, 5 sigma)
    assert abs(pool.n_drawn - 2 * n) < 5 * math.sqrt(2 * n)
    assert pool.provenance() == {"n_random_absences": n, "n_random_redrawn_no_covariates": pool.n_drawn - n}
    # area-uniform: the share south of 5 N is that of its area on the sphere (sin 5 / sin 10)
    share = float((pool.lonlat[:, 1] < 5.0).mean())
    expected = math.sin(math.radians(5)) / math.sin(math.radians(10))
    assert abs(share - expected) < 5 * math.sqrt(expected * (1 - expected) / n)


def test_land_absences_count_only_the_points_without_covariates_as_redrawn(tmp_path):
    # a global raster with a value everywhere: sea points are rejected by the land mask, not the covariates
    values = np.ones((1, 18, 36), np.float32)
    stack = CovariateStack.open([_raster(tmp_path / "globe.tif", values, -180.0, 90.0, res=10.0, names=("x",))])
    pool = pseudo_negative_pool(5000, np.random.default_rng(1), "land", CoveredArea.of(stack))
    assert pool.lonlat.shape == (5000, 2)
    assert pool.n_drawn > 2 * 5000  # land is about 29 % of the sphere
    assert pool.provenance() == {"n_random_absences": 5000, "n_random_redrawn_no_covariates": 0}


def test_tiny_coverage_is_refused_with_a_clear_message(tmp_path):
    values = np.full((1, 100, 100), NODATA, np.float32)
    values[0, 50, 50] = 1.0  # one valid cell in 10,000
    stack = CovariateStack.open([_raster(tmp_path / "sparse.tif", values, 0.0, 10.0, res=0.1, names=("x",))])
    with pytest.raises(CovariateError, match=r"Random absences are drawn where every covariate has a value, but "
                                             r"only \d+ of 100,000 random points in the rasters' extent \(lon 0.00 "
                                             r"to 10.00, lat 0.00 to 10.00\) had one .*check each raster's extent "
                                             r"and nodata value\."):
        pseudo_negative_pool(1000, np.random.default_rng(0), "sphere", CoveredArea.of(stack))


def test_models_without_covariates_draw_absences_as_before():
    pool = pseudo_negative_pool(500, np.random.default_rng(7), "sphere")
    np.testing.assert_array_equal(pool.lonlat, random_sphere_points(500, np.random.default_rng(7)))
    assert pool.env is None and pool.provenance() == {}


def test_cli_env_model_counts_what_it_left_out(tmp_path, capsys):
    cov = _two_bands(tmp_path)
    rng = np.random.default_rng(0)
    rows = ["species,longitude,latitude"]
    # 40 records of a and b on the raster (none in the nodata cell), 10 of c beyond it (lat 20..30)
    for sp in ("a", "b"):
        for x, y in zip(rng.uniform(6.0, 19.0, 20), rng.uniform(0.5, 9.5, 20)):
            rows.append(f"{sp},{x:.5f},{y:.5f}")
    for x, y in zip(rng.uniform(0.0, 20.0, 10), rng.uniform(20.0, 30.0, 10)):
        rows.append(f"c,{x:.5f},{y:.5f}")
    data = tmp_path / "obs.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "env.sinr"
    code = main(["train", "--data", str(data), "--out", str(out), "--encoding", "env", "--covariates", str(cov),
                 "--epochs", "1", "--width", "8", "--depth", "1", "--threads", "1", "--no-progress", "--jsonl"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 0, err
    # the same lines reach the plugin's log as "note" events
    notes = [e["message"] for e in map(json.loads, captured.out.splitlines()) if e["event"] == "note"]
    mine = [n.split(":")[0] for n in notes if n.startswith(("covariates (", "memory:", "random absences:"))]
    assert mine == ["covariates (cov.tif)", "memory", "random absences"]  # (other notes: the class hints)
    assert all(n in err.splitlines() for n in notes)
    assert ("covariates (cov.tif): 40 of 50 records have a value in every covariate; 10 outside the rasters or on a "
            "nodata cell are left out, and with them 1 species that have no other record: c.") in err.splitlines()
    assert any(line.startswith("random absences: 200,000 drawn where every covariate has a value (")
               for line in err.splitlines())
    assert any(line.startswith("memory: about ") for line in err.splitlines())
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("model.json"))
    d = meta["data"]
    assert (d["n_read"], d["n_used"], d["n_removed_no_covariates"], d["n_species_no_covariates"]) == (50, 40, 10, 1)
    assert d["species_no_covariates"] == ["c"] and d["n_random_absences"] == 200_000
    # one nodata cell in 200 of the box: about 1 in 200 candidates is drawn again
    assert 0 < d["n_random_redrawn_no_covariates"] < 3 * 200_000 / 200
    b = ModelBundle.load(out)
    assert b.n_species == 2  # c, only beyond the rasters, is not in the model
    card = b.card().splitlines()  # the model's details in the dock
    assert card[card.index("Trained on: obs.csv (40 records)") + 1] == (
        "Left out: 10 records without a value in every covariate (1 species lost all their records)")
