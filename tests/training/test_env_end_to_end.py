"""An environmental model of the shared bioclim raster, trained by the CLI and predicted by the
plugin's runtime, checked against GDAL's own reading of the raster (``gdallocationinfo``, a
separate program) and a direct array read: the issue 16 "Done when" check.

The covariate reads are forced into windows (tiles of 64 cells) as a global raster would be read,
so the windowed path is the one compared."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from sinr_qgis.core import covariates as cov
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.runtime import Predictor, predict_grid
from sinr_qgis.core.thresholds import lpt_r
from tests.tolerances import F32_EPS, bundle_prob_atol
from training.cli import main

RASTER = "sa_bioclim_0p5deg.tif"  # 9 bands, 0.5 degree cells from -125 E, 40 N; nodata -9999; band 9 biome classes
EXTENT = (-125.0, -56.0, -32.0, 40.0)
NODATA = -9999.0
# species -> (west, south, east, north) boxes of cell centres: Amazon, Andes/Atacama, Mexico
BOXES = {"amazon": (-72.0, -12.0, -52.0, 2.0), "andes": (-72.0, -30.0, -66.0, -16.0),
         "mexico": (-110.0, 18.0, -96.0, 30.0)}


def _gdal_values(raster: Path, lonlat: np.ndarray) -> np.ndarray:
    """float64 [N, 9]: every band at each point, read by gdallocationinfo (NaN = nodata). The
    points must lie in the raster's extent (off it the program writes no value)."""
    text = "".join(f"{x:.6f} {y:.6f}\n" for x, y in lonlat)
    out = subprocess.run(["gdallocationinfo", "-valonly", "-geoloc", str(raster)], input=text, text=True,
                         capture_output=True, check=True).stdout.split()
    values = np.asarray(out, dtype=np.float64).reshape(len(lonlat), 9)
    return np.where(values == NODATA, np.nan, values)


def _records(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """30 records per species at random cell centres of its box, 4 on the South Atlantic (nodata
    cells) and 3 north of the raster (it ends at 40 N): species and (lon, lat) [N, 2]."""
    species, points = [], []
    for name, (w, s, e, n) in BOXES.items():
        cols = rng.integers(0, int((e - w) / 0.5), 30)
        rows = rng.integers(0, int((n - s) / 0.5), 30)
        points += [(w + 0.5 * c + 0.25, s + 0.5 * r + 0.25) for c, r in zip(cols, rows)]
        species += [name] * 30
    points += [(-35.25, -40.25), (-36.75, -45.75), (-34.25, -50.25), (-38.75, -42.25)]
    points += [(-100.25, 45.25), (-90.25, 41.25), (-80.75, 43.75)]
    species += ["amazon", "andes", "mexico", "amazon", "mexico", "mexico", "andes"]
    return species, np.asarray(points)


def test_env_model_trains_and_predicts_the_rasters_values(shared_data, tmp_path, monkeypatch, capsys):
    raster = shared_data / "covariates" / RASTER
    monkeypatch.setattr(cov, "KEEP_BAND_BYTES", 0)  # windowed reads only, as for a global 30" layer
    monkeypatch.setattr(cov, "TILE_CELLS", 64)
    species, lonlat = _records(np.random.default_rng(16))
    csv = tmp_path / "obs.csv"
    csv.write_text("species,longitude,latitude\n"
                   + "".join(f"{s},{x:.2f},{y:.2f}\n" for s, (x, y) in zip(species, lonlat)))

    # independent reading of the records' cells: GDAL's program, off-extent points by the extent alone
    inside = (lonlat[:, 0] > EXTENT[0]) & (lonlat[:, 0] < EXTENT[2]) & (lonlat[:, 1] > EXTENT[1]) & \
             (lonlat[:, 1] < EXTENT[3])
    rec_env = np.full((len(lonlat), 9), np.nan)
    rec_env[inside] = _gdal_values(raster, lonlat[inside])
    covered = np.isfinite(rec_env).all(axis=1)
    # the 4 South Atlantic records and 7 of the Mexican box's (Pacific, Gulf of California) read nodata;
    # the 3 northern ones lie off the raster
    assert (len(lonlat), int(covered.sum()), int((~inside).sum())) == (97, 83, 3)

    out = tmp_path / "env.sinr"
    code = main(["train", "--data", str(csv), "--out", str(out), "--encoding", "env", "--covariates", str(raster),
                 "--categorical", "biome", "--epochs", "2", "--width", "16", "--depth", "1", "--threads", "1",
                 "--precision", "fp32", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert (f"covariates ({RASTER}): 83 of 97 records have a value in every covariate; 14 outside the rasters or on a "
            "nodata cell are left out.") in err.splitlines()
    b = ModelBundle.load(out)
    assert b.covariate_names == ["bio1", "bio5", "bio6", "bio7", "bio8", "bio12", "bio16", "bio17", "biome"]
    assert (b.meta["data"]["n_used"], b.meta["data"]["n_removed_no_covariates"]) == (83, 14)

    # standardisation: each continuous band's mean and std over its valid cells, from a direct array read
    # (float64 here, stored as float32 in the bundle: relative rounding at most half an eps)
    ds = gdal.Open(str(raster))
    for j in range(8):
        cells = ds.GetRasterBand(j + 1).ReadAsArray().astype(np.float64)
        cells = cells[cells != NODATA]
        np.testing.assert_allclose(b.weights["encoder.env_mean"][j], cells.mean(), rtol=F32_EPS)
        np.testing.assert_allclose(b.weights["encoder.env_std"][j], cells.std(), rtol=F32_EPS)
    # the biome band holds classes (named CLASS_n metadata, not GDAL categories: marked): one-hot, not standardised
    assert (b.weights["encoder.env_mean"][8], b.weights["encoder.env_std"][8]) == (0.0, 1.0)

    # training read the records' covariates as GDAL does: the LPT-R thresholds it computed from its
    # own probabilities at the records are those of the exported model fed GDAL's values
    predictor = Predictor(b)
    sp = np.asarray(species)
    for s in b.species:
        at = covered & (sp == s.code)
        probs = predictor.predict_points(lonlat[at], [s.index], env=rec_env[at])[:, 0]
        tol = bundle_prob_atol(b, lonlat[at], [s.index], rec_env[at]) + 5e-6  # species.csv keeps 6 digits
        assert s.threshold == pytest.approx(lpt_r(probs), abs=tol), s.code

    # prediction on the raster's own cells: nodata exactly where GDAL reads nodata in a band, and
    # the model's probabilities of GDAL's values elsewhere
    grid = Grid.from_pixel_size(EXTENT, "EPSG:4326", 0.5)
    assert grid.shape == (192, 186)
    # (the data footprint shown: this is about reading the covariates; it is checked after)
    maps = predict_grid(predictor, grid, [0, 1, 2], mask_ocean=False, covariates=[str(raster)], mask_footprint=False)
    centres, _ = grid.lonlat()
    env = _gdal_values(raster, centres)
    valid = np.isfinite(env).all(axis=1)
    # the two independent readings agree: every cell with a value in all 9 bands of the array (the land)
    assert valid.sum() == int((ds.ReadAsArray() != NODATA).all(axis=0).sum()) == 9766
    flat = maps.reshape(3, -1).T
    np.testing.assert_array_equal(np.isfinite(flat).all(axis=1), valid)
    expected = predictor.predict_points(centres[valid], [0, 1, 2], env=env[valid])
    np.testing.assert_allclose(flat[valid], expected, rtol=0,
                               atol=bundle_prob_atol(b, centres[valid], [0, 1, 2], env[valid]))
    # by default the cells outside the model's data footprint are left empty too: its stored rule
    # applied to GDAL's values at the cell centres
    outside, _ = b.footprint.measure(centres[valid], env[valid])
    assert 0 < outside.sum() < valid.sum()
    inside = valid.copy()
    inside[valid] = ~outside
    masked = predict_grid(predictor, grid, [0], mask_ocean=False, covariates=[str(raster)])[0].ravel()
    np.testing.assert_array_equal(np.isfinite(masked), inside)
