"""A model's data footprint (core.footprint): the distance field sampled bilinearly, the covariate
novelty, the bundle member and its checksum, and every map leaving the pixels outside empty by
default (generated footprints on the committed fixture bundles; no torch)."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core.bundle import SUMS_KEY, ModelBundle
from sinr_qgis.core.errors import BundleError, GridError
from sinr_qgis.core.evaluation import prediction_bands
from sinr_qgis.core.footprint import (
    DISTANCE_BAND,
    NO_FOOTPRINT,
    NOVELTY_BAND,
    CovariateRanges,
    DistanceField,
    Footprint,
    footprint_status,
    grid_shape,
)
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import footprint_notes, predict_to_geotiff, species_richness_raster
from sinr_qgis.core.runtime import Predictor, model_metadata, predict_grid
from sinr_qgis.core.scoring import grid_logits
from tests.factories import fixture_bundle
from tests.helpers.bundle_files import rewrite
from tests.helpers.footprints import brute_distance_field, bundle_with_footprint, corner_km, kth_nearest_km
from tests.helpers.raster_files import read_geotiff
from tests.tolerances import bundle_prob_atol

RNG = np.random.default_rng(13)
LOCATIONS = np.stack([RNG.uniform(-80, -70, 40), RNG.uniform(35, 45, 40)], axis=1)  # the "training records"
K, THRESHOLD, RES = 3, 300.0, 0.5
GRID = Grid.from_pixel_size((-100, 25, -60, 55), "EPSG:4326", 1.0)  # 40 x 30 pixels around them


@pytest.fixture(scope="module")
def field() -> DistanceField:
    return brute_distance_field(LOCATIONS, K, RES, THRESHOLD)


@pytest.fixture(scope="module")
def coords(tmp_path_factory, field):
    d = tmp_path_factory.mktemp("fp")
    return bundle_with_footprint(fixture_bundle(d / "src.sinr"), d / "coords.sinr", Footprint(field))


def _centres(grid: Grid) -> np.ndarray:
    lonlat, _ = grid.lonlat()
    return lonlat


# ---- the distance field ------------------------------------------------------------------------
def test_distance_field_is_bilinear_between_nodes_wraps_longitude_and_clips_latitude():
    n_lat, n_lon = grid_shape(30.0)
    assert (n_lat, n_lon) == (7, 13)
    rows, cols = np.mgrid[0:n_lat, 0:n_lon]
    f = DistanceField((1000 + 7 * rows + 3 * cols).astype(np.float32), 30.0, 10, 500.0)  # bilinear exactly
    pts = np.array([[-180, -90], [0, 0], [15, 15], [-165, 45], [180, 90], [195, 15], [-345, 15],
                    [15, 100], [np.nan, 0]])
    # node (lon -180 + 30 c, lat -90 + 30 r) holds 1000 + 7 r + 3 c; between nodes the plane is exact;
    # longitude 180 is -180 (column 0), 195 is -165 and -345 is 15; latitude 100 is read at 90
    want = [1000, 1000 + 21 + 18, 1000 + 7 * 3.5 + 3 * 6.5, 1000 + 7 * 4.5 + 3 * 0.5, 1000 + 42,
            1000 + 7 * 3.5 + 3 * 0.5, 1000 + 7 * 3.5 + 3 * 6.5, 1000 + 42 + 3 * 6.5, np.nan]
    np.testing.assert_allclose(f.sample(pts), want, rtol=0, atol=1e-3)  # float32 of numbers near 1000


def test_sampled_field_is_within_the_interpolation_bound_of_brute_force(field):
    pts = np.stack([RNG.uniform(-95, -60, 200), RNG.uniform(28, 52, 200)], axis=1)
    got = field.sample(pts)
    truth = kth_nearest_km(pts, LOCATIONS, K)
    # the k-th nearest distance is 1-Lipschitz along great circles, so a bilinear value is within the
    # farthest of the cell's four nodes; the nodes hold whole km (0.5) and float32 adds < 0.01 km
    bound = corner_km(pts, RES) + 0.51
    assert (np.abs(got - truth) <= bound).all()
    assert np.abs(got - truth).max() > 1.0  # a real interpolation, not a copy of the truth


def test_the_member_round_trips_as_whole_km_in_a_quarter_of_its_raw_size(field):
    b = field.to_npz()
    with np.load(io.BytesIO(b)) as z:
        delta = z["km_delta"]
    assert delta.dtype == np.int16 and delta.shape == (361, 721)
    np.testing.assert_array_equal(np.cumsum(delta.astype(np.int32), axis=1), np.rint(field.km))
    assert len(b) < 0.25 * field.km.size * 2  # smooth distances: deltas deflate well below uint16's 2 bytes


# ---- the covariate ranges ----------------------------------------------------------------------
def test_novelty_is_the_largest_distance_outside_a_range_in_units_of_that_range():
    r = CovariateRanges(("temp", "rain", "flat", "landcover"), np.array([0.0, 100.0, 5.0, np.nan]),
                        np.array([10.0, 300.0, 5.0, np.nan]), (None, None, None, (1.0, 2.0, 5.0)))
    env = np.array([[5, 200, 5, 1],        # inside every range and a known class: 0
                    [12, 200, 5, 2],       # temp 2 above a range of 10: 0.2
                    [-5, 0, 5, 5],         # temp 0.5 below, rain 100 below a range of 200 (0.5): 0.5
                    [5, 700, 5, 1],        # rain 400 above: 2.0
                    [5, 200, 7, 1],        # a covariate that never varied: 2 of its own units
                    [5, 200, 5, 3],        # a class no record had: 1
                    [5, np.nan, 5, 1]])    # a missing value: no score
    np.testing.assert_allclose(CovariateRanges.novelty(r, env), [0, 0.2, 0.5, 2.0, 2.0, 1.0, np.nan], atol=1e-6)
    assert r.meta() == [{"name": "temp", "min": 0.0, "max": 10.0}, {"name": "rain", "min": 100.0, "max": 300.0},
                        {"name": "flat", "min": 5.0, "max": 5.0}]


def test_a_model_with_both_rules_is_outside_where_either_says_so(field):
    ranges = CovariateRanges(("temp",), np.array([0.0]), np.array([10.0]), (None,))
    fp = Footprint(field, ranges)
    assert fp.band_names == [DISTANCE_BAND, NOVELTY_BAND]
    near, far = LOCATIONS[0], [-100.0, 25.0]
    outside, values = fp.measure(np.array([near, near, far, far]), np.array([[5.0], [15.0], [5.0], [15.0]]))
    assert outside.tolist() == [False, True, True, True]
    np.testing.assert_allclose(values[:, 1], [0, 0.5, 0, 0.5])
    assert values[2, 0] > THRESHOLD > values[0, 0]
    assert fp.rule() == ("Outside the data footprint where the 3rd nearest distinct training location is farther "
                         "than 300 km, or a covariate lies outside the range seen in training (or in a class no "
                         "training record had).")


# ---- the bundle --------------------------------------------------------------------------------
def test_the_bundle_stores_the_grid_in_footprint_npz_under_its_checksum(coords, field):
    with zipfile.ZipFile(coords.path) as z:
        meta = json.loads(z.read("model.json"))
        assert z.getinfo("footprint.npz").compress_type == zipfile.ZIP_STORED  # compressed by numpy already
        assert meta[SUMS_KEY]["footprint.npz"] and len(meta[SUMS_KEY]) == 4
    assert meta["footprint"]["distance"] == {
        "k": 3, "threshold_km": 300.0, "threshold_rule": "test rule", "resolution_deg": 0.5, "n_locations": 40,
        "member": "footprint.npz", "units": "km, great circle, to the k-th nearest distinct training location of any "
                                            "species"}
    np.testing.assert_array_equal(coords.footprint.distance.km, field.km)
    assert coords.warnings == []
    assert "Footprint: Outside the data footprint where the 3rd nearest distinct training location is farther than " \
           "300 km. Maps leave it empty unless extrapolation is shown." in coords.card()


def test_a_missing_or_altered_footprint_member_is_refused(coords, tmp_path):
    with pytest.raises(BundleError, match=r"footprint\.npz is missing although model\.json records its SHA-256"):
        ModelBundle.load(rewrite(coords.path, tmp_path / "dropped.sinr", drop="footprint.npz"))
    other = DistanceField(np.zeros((7, 13), np.float32), 30.0, 3, 300.0).to_npz()
    with pytest.raises(BundleError, match=r"footprint\.npz is damaged or was altered"):
        ModelBundle.load(rewrite(coords.path, tmp_path / "swapped.sinr", replace={"footprint.npz": other},
                                 resum=False))
    with pytest.raises(BundleError, match=r"footprint\.npz holds a \(7, 13\) grid; 0\.5 degree nodes need "
                                          r"\(361, 721\)"):
        ModelBundle.load(rewrite(coords.path, tmp_path / "wrong.sinr", replace={"footprint.npz": other}))


def test_an_old_bundle_has_no_footprint_and_maps_exactly_as_before(tmp_path):
    old = fixture_bundle(tmp_path / "old.sinr")
    assert old.footprint is None and "Footprint: no footprint stored" in old.card()
    p = Predictor(old, backend="numpy")
    np.testing.assert_array_equal(predict_grid(p, GRID, [0, 1], mask_ocean=False),
                                  predict_grid(p, GRID, [0, 1], mask_ocean=False, mask_footprint=False))
    result = predict_to_geotiff(p, GRID, 0, tmp_path / "old.tif", mask_ocean=False, footprint_band=True)
    data, info = read_geotiff(result.paths[0])
    assert data.shape[0] == 1 and np.isfinite(data).all()  # no band added, no pixel left out
    assert info["metadata"]["FOOTPRINT"] == NO_FOOTPRINT
    assert result.footprint == "Data footprint: no footprint stored; every pixel is shown."
    assert "Model 'old': no footprint stored, so the map has no footprint band." in result.warnings


# ---- maps --------------------------------------------------------------------------------------
def test_pixels_outside_are_nodata_by_default_and_the_option_shows_them(coords, field):
    p = Predictor(coords, backend="numpy")
    masked = predict_grid(p, GRID, [0, 1], mask_ocean=False)
    encoded = p.locations_encoded
    shown = predict_grid(p, GRID, [0, 1], mask_ocean=False, mask_footprint=False)
    outside = (field.sample(_centres(GRID)) > THRESHOLD).reshape(GRID.shape)
    assert 0 < outside.sum() < outside.size
    assert np.isnan(masked[:, outside]).all() and np.isfinite(shown).all()
    # the pixels inside keep the model's values (encoded in other batches: float32 path tolerance)
    np.testing.assert_allclose(masked[:, ~outside], shown[:, ~outside], rtol=0,
                               atol=bundle_prob_atol(coords, _centres(GRID), [0, 1]))
    assert encoded == (~outside).sum()  # pixels outside are not even encoded
    assert p.grid_coverage.outside_footprint == 0  # the last grid showed them
    predict_grid(p, GRID, 0, mask_ocean=False)
    assert (p.grid_coverage.outside_footprint, p.grid_coverage.valid) == (outside.sum(), (~outside).sum())
    # the truth at the pixel centres, by brute force, agrees wherever the interpolation cannot blur it
    truth = kth_nearest_km(_centres(GRID), LOCATIONS, K).reshape(GRID.shape)
    clear = np.abs(truth - THRESHOLD) > corner_km(_centres(GRID), RES).reshape(GRID.shape) + 0.51
    assert clear.mean() > 0.9 and ((truth > THRESHOLD) == outside)[clear].all()


def test_the_footprint_band_holds_the_distance_and_evaluation_skips_it(coords, field, tmp_path):
    p = Predictor(coords, backend="numpy")
    result = predict_to_geotiff(p, GRID, [0, 1], tmp_path / "m.tif", mask_ocean=False, footprint_band=True)
    data, info = read_geotiff(result.paths[0])
    assert info["descriptions"] == [coords.species[0].name, coords.species[1].name, DISTANCE_BAND]
    assert info["band_metadata"][2]["VALUE"] == "footprint" and info["band_metadata"][2]["UNITS"] == "km"
    km = field.sample(_centres(GRID)).reshape(GRID.shape)
    inside = km <= THRESHOLD
    np.testing.assert_array_equal(data[2][inside], km[inside])  # float32 written as computed
    assert np.isnan(data[:, ~inside]).all()
    assert info["metadata"]["FOOTPRINT"] == coords.footprint.rule() + " Left empty (nodata)."
    n_out = int((~inside).sum())
    assert result.footprint == (f"{n_out:,} of 1,200 pixels ({100 * n_out / 1200:.0f} %) lie outside the model's "
                                f"data footprint and were left empty. {coords.footprint.rule()} Show extrapolation "
                                "to see the model's guesses there.")
    assert [s.code for _, s in prediction_bands(str(result.paths[0]))] == ["sp000", "sp001"]
    shown = predict_to_geotiff(p, GRID, [0, 1], tmp_path / "s.tif", mask_ocean=False, footprint_band=True,
                               one_file_per_species=True, mask_footprint=False)
    for path in shown.paths:  # each species' file ends with the band; every pixel has a value
        d, i = read_geotiff(path)
        assert i["descriptions"][-1] == DISTANCE_BAND and np.isfinite(d).all()
        np.testing.assert_array_equal(d[-1], km)
        assert i["metadata"]["FOOTPRINT"].endswith("Shown anyway (extrapolation).")


def test_richness_leaves_the_outside_empty_and_can_add_the_band(coords, field, tmp_path):
    p = Predictor(coords, backend="numpy")
    out = species_richness_raster(p, GRID, coords.species[:2], np.array([0.0, 0.0]), tmp_path / "r.tif",
                                  mask_ocean=False, footprint_band=True)
    data, info = read_geotiff(out)
    km = field.sample(_centres(GRID)).reshape(GRID.shape)
    inside = km <= THRESHOLD
    assert info["descriptions"][1] == DISTANCE_BAND
    assert (data[0][inside] == 2).all() and np.isnan(data[:, ~inside]).all()  # threshold 0: both species count


def test_a_map_wholly_outside_is_a_clear_error_and_writes_nothing(coords, tmp_path):
    far = Grid.from_pixel_size((10, 0, 20, 10), "EPSG:4326", 1.0)
    with pytest.raises(GridError, match=r"^Every pixel of the extent lies outside the model's data footprint .+ "
                                        r"Show extrapolation \(Processing: OUTSIDE_FOOTPRINT\)"):
        predict_to_geotiff(Predictor(coords), far, 0, tmp_path / "far.tif", mask_ocean=False)
    assert list(tmp_path.iterdir()) == []


def test_evaluation_scores_the_models_own_values_everywhere(coords):
    logits = grid_logits(Predictor(coords), GRID, coords.species[:1], mask_ocean=False)
    assert np.isfinite(logits["sp000"]).all()


def test_what_lives_here_notes_a_point_outside(coords, tmp_path):
    p = Predictor(coords)
    notes = footprint_notes(p, [LOCATIONS[0], [-100.0, 25.0]])
    truth = kth_nearest_km([[-100.0, 25.0]], LOCATIONS, K)[0]
    assert notes[0] == ""
    km = float(coords.footprint.distance.sample([[-100.0, 25.0]])[0])
    assert abs(km - truth) <= corner_km([[-100.0, 25.0]], RES)[0] + 0.51
    assert notes[1] == (f"Outside the model's data footprint: the 3rd nearest training location is {km:.0f} km away "
                        "(the footprint reaches 300 km), so these scores are extrapolation.")
    assert footprint_notes(Predictor(fixture_bundle(tmp_path / "old.sinr")), [[-100.0, 25.0]]) == [""]


# ---- environmental models ----------------------------------------------------------------------
def _tif(path, arr: np.ndarray, name: str) -> str:
    """A one-band lon/lat GeoTIFF of 1-degree cells from (-125, 40 N)."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-125.0, 1.0, 0.0, 40.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(arr)
    ds.GetRasterBand(1).SetDescription(name)
    ds = None
    return str(path)


def test_an_environmental_model_leaves_novel_covariates_empty(tmp_path):
    """A 4 x 2 raster pair: bio1 0..30 by column, bio12 constant 1000 but 5000 in one cell; the
    training ranges bio1 [5, 25], bio12 [500, 2000]."""
    env = fixture_bundle(tmp_path / "src.sinr", "env")
    ranges = CovariateRanges(("bio1", "bio12"), np.array([5.0, 500.0]), np.array([25.0, 2000.0]), (None, None))
    model = bundle_with_footprint(env, tmp_path / "env.sinr", Footprint(None, ranges))
    assert model.footprint.distance is None and model.footprint.band_names == [NOVELTY_BAND]
    bio1 = np.array([[0, 10, 20, 30], [0, 10, 20, 30]], np.float32)
    bio12 = np.array([[1000, 1000, 1000, 1000], [1000, 5000, 1000, 1000]], np.float32)
    cov = {"bio1": (_tif(tmp_path / "bio1.tif", bio1, "bio1"), 1), "bio12": (_tif(tmp_path / "bio12.tif", bio12,
                                                                                 "bio12"), 1)}
    grid = Grid((-125, 38, -121, 40), "EPSG:4326", 4, 2)  # one pixel per raster cell, at its centre
    p = Predictor(model, backend="numpy")
    result = predict_to_geotiff(p, grid, 0, tmp_path / "m.tif", mask_ocean=False, covariates=cov,
                                footprint_band=True, mask_footprint=False)
    data, info = read_geotiff(result.paths[0])
    assert info["descriptions"][-1] == NOVELTY_BAND
    # bio1 0 is 5 below a range of 20 (0.25), 30 is 5 above (0.25); bio12 5000 is 3000 above 1500 (2.0)
    np.testing.assert_allclose(data[1], [[0.25, 0, 0, 0.25], [0.25, 2.0, 0, 0.25]], atol=1e-6)
    masked = predict_grid(p, grid, 0, mask_ocean=False, covariates=cov)[0]
    assert np.isnan(masked).tolist() == [[True, False, False, True], [True, True, False, True]]
    np.testing.assert_allclose(masked[0, 1:3], data[0, 0, 1:3], rtol=0, atol=1e-6)
    assert footprint_status(model.footprint, model.meta, shown=False).startswith(
        "Outside the data footprint where a covariate lies outside the range seen in training")
    assert model_metadata(p, False)["FOOTPRINT"].endswith("Left empty (nodata).")
