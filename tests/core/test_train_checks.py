"""Up-front checks of training input: each bad input gets its own clear message."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.errors import CovariateError, MemoryBudgetError, OccurrenceError
from sinr_qgis.core.occurrences import Occurrences, occurrences_from_arrays
from sinr_qgis.core.train_checks import (
    GIB,
    MIN_TRAINING_RECORDS,
    available_memory,
    check_covariates_cover,
    check_memory_budget,
    check_occurrences,
    check_training_input,
    training_memory,
)


def _occ(n_per_species=(20, 15), spread=5.0, seed=0):
    rng = np.random.default_rng(seed)
    lon, lat, sp = [], [], []
    for i, n in enumerate(n_per_species):
        lon += list(-100 + 20 * i + spread * rng.random(n))
        lat += list(40 + spread * rng.random(n))
        sp += [f"sp{i}"] * n
    return occurrences_from_arrays(lon, lat, sp, origin="obs")


def _raster(path: Path, extent=(-110.0, 30.0, -60.0, 60.0), res=1.0, bands=2) -> Path:
    x0, y0, x1, y1 = extent
    w, h = int((x1 - x0) / res), int((y1 - y0) / res)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((x0, res, 0, y1, 0, -res))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(np.full((h, w), float(b + 1), np.float32))
        band.SetDescription(f"bio{b + 1}")
    ds = None
    return path


def test_good_input_summarised():
    s = check_occurrences(_occ((20, 15, 3)), min_records=5)
    assert (s.n_records, s.n_species, s.n_species_below_min, s.n_records_below_min) == (35, 2, 1, 3)
    assert "35 records of 2 species" in s.text() and "3 of 1 species below the minimum" in s.text()


def test_no_records_at_all():
    occ = Occurrences(lon=np.zeros(0), lat=np.zeros(0), species=np.zeros(0, object), names={}, source=None,
                      n_read=2, dropped={"missing": 1, "null_island": 1}, origin="obs")
    want = rf"no usable records \(2 rows read; dropped 1 missing, 1 null island\).*at least {MIN_TRAINING_RECORDS}"
    with pytest.raises(OccurrenceError, match=want):
        check_occurrences(occ)


def test_too_few_records_says_how_many_are_needed():
    with pytest.raises(OccurrenceError, match=rf"Too few records: 6 usable records.*at least {MIN_TRAINING_RECORDS}"):
        check_occurrences(_occ((3, 3)))
    with pytest.raises(OccurrenceError, match=r"no species .* minimum of 50 records per species \(the most is 20"):
        check_occurrences(_occ((20, 15)), min_records=50)


def test_species_field_with_one_value():
    occ = occurrences_from_arrays(list(range(30)), [10.0] * 30, ["Plantae"] * 30, origin="obs")
    with pytest.raises(OccurrenceError, match=r"taxon field of obs has one value only \('Plantae'\)"):
        check_occurrences(occ, species_label="taxon")


def test_all_points_in_one_place():
    occ = occurrences_from_arrays([5.0] * 30, [45.0] * 30, ["a", "b", "c"] * 10, origin="obs")
    with pytest.raises(OccurrenceError, match=r"All 30 records of obs are at the same place \(5.00000, 45.0+, within"):
        check_occurrences(occ)


def test_covariates_that_miss_the_points(tmp_path):
    occ = _occ((20, 15))
    lonlat = np.stack([occ.lon, occ.lat], 1)
    inside = _raster(tmp_path / "na.tif")
    assert check_covariates_cover([inside], lonlat).all()
    europe = _raster(tmp_path / "eu.tif", extent=(-10.0, 35.0, 30.0, 70.0))
    with pytest.raises(CovariateError, match=r"do not cover the observations: only 0 of 35 points.*lon -10.00 to 30"):
        check_covariates_cover([europe], lonlat)


def test_check_training_input_reads_the_file(tmp_path):
    occ = _occ((20, 15))
    csv = tmp_path / "obs.csv"
    rows = ["longitude,latitude,species"] + [f"{x},{y},{s}" for x, y, s in zip(occ.lon, occ.lat, occ.species)]
    csv.write_text("\n".join(rows) + "\n")
    s = check_training_input(csv, covariates=[_raster(tmp_path / "na.tif")])
    assert (s.n_records, s.n_species, s.covered_fraction) == (35, 2, 1.0)


def test_records_outside_the_covariates_are_counted_before_training(tmp_path):
    # 35 records at 40-45 N; a raster ending at 44 N leaves out those further north
    occ = _occ((20, 15))
    csv = tmp_path / "obs.csv"
    rows = ["longitude,latitude,species"] + [f"{x},{y},{s}" for x, y, s in zip(occ.lon, occ.lat, occ.species)]
    csv.write_text("\n".join(rows) + "\n")
    south = _raster(tmp_path / "south.tif", extent=(-110.0, 30.0, -60.0, 44.0))
    n_north = int((occ.lat >= 44.0).sum())
    assert 0 < n_north < 35 / 2  # under half: a warning in the summary, not a refusal
    covered = check_covariates_cover([south], np.stack([occ.lon, occ.lat], 1))
    np.testing.assert_array_equal(covered, occ.lat < 44.0)
    s = check_training_input(csv, covariates=[south])
    assert s.n_without_covariates == n_north
    assert (f"{n_north} records without a value in every covariate (outside the rasters or on a nodata cell) "
            "will be left out") in s.text()


def test_memory_estimate_adds_up_what_training_holds():
    parts = training_memory(n_records=1000, n_features=6, n_covariates=2, n_species=10, batch_size=100, width=8,
                            depth=1, pool=500, random_negatives=True)
    assert parts["records"] == 1000 * (4 * (2 + 2 + 6) + 8)
    assert parts["random absences"] == 500 * (4 * 6 + 8 * 4)
    params = 6 * 8 + 8 + 2 * (64 + 8) + 8 * 10
    assert parts["network"] == 16 * params
    assert parts["batches"] == 4 * 200 * (3 * 10 + 8 * (2 + 5))
    assert parts["covariate reads"] == 2 * (1 << 24) + 3 * 4 * (1 << 22)
    # the paper's scale: 47,375 species at batch 2048 need gigabytes for the batches alone
    paper = training_memory(n_records=35_500_000, n_features=4, n_covariates=0, n_species=47_375, batch_size=2048,
                            width=256, depth=4, pool=0, random_negatives=True)
    assert paper["covariate reads"] == 0 and 2.0 < paper["batches"] / GIB < 2.5


def test_memory_budget_one_line_or_a_refusal():
    parts = {"records": int(1.5 * GIB), "batches": int(0.5 * GIB)}
    line = check_memory_budget(parts, available=(8 * GIB, "available memory"))
    assert line == ("memory: about 2.00 GiB needed (records 1.50, batches 0.50); 8.00 GiB available "
                    "(available memory).")
    assert check_memory_budget(parts, available=(None, "")).endswith("the memory available is unknown here.")
    with pytest.raises(MemoryBudgetError) as err:
        check_memory_budget(parts, available=(1 * GIB, "the address-space limit (ulimit -v)"), advice="Lower it.")
    assert str(err.value) == ("Not enough memory: about 2.00 GiB needed (records 1.50, batches 0.50); 1.00 GiB "
                              "available (the address-space limit (ulimit -v)). Lower it.")


def test_available_memory_sees_the_address_space_limit():
    # a child under ulimit -v 2 GiB (the shell's limit, as a laptop-sized budget): its own reading
    import subprocess
    import sys

    code = ("from sinr_qgis.core.train_checks import available_memory as a; f, why = a(); "
            "print(int(f), why, sep='|')")
    out = subprocess.run(["bash", "-c", f"ulimit -v 2097152; exec {sys.executable} -c \"{code}\""],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    free, why = out.stdout.strip().split("|")
    assert why == "the address-space limit (ulimit -v)"
    assert 0 < int(free) < 2 * GIB
    here, _ = available_memory()
    assert here is None or here > 0
