"""Inference runtime: backends agree, grids give the points' values, masks, cache, outputs, errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core import network, runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import (
    BundleError,
    CancelledError,
    CovariateError,
    GridError,
    OutputError,
    SpeciesNotFoundError,
)
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import predict_to_geotiff
from sinr_qgis.core.raster_io import NODATA
from sinr_qgis.core.runtime import Predictor, apply_on_grid, apply_on_grid_to_geotiff, predict_grid
from sinr_qgis.core.thresholds import resolve_thresholds
from tests.factories import fixture_bundle
from tests.helpers.raster_files import read_geotiff
from tests.tolerances import f32_atol, logit_atol, prob_atol

KANSAS = (-98.0, 38.5)
ATLANTIC = (-40.0, 30.0)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> ModelBundle:
    return fixture_bundle(tmp_path_factory.mktemp("m") / "coords.sinr", "sin_cos_w64")  # 6 species, width 64


@pytest.fixture(scope="module")
def env_bundle(tmp_path_factory) -> ModelBundle:
    # 4 species; covariates elev (mean 500, std 300) and temp (10, 5)
    return fixture_bundle(tmp_path_factory.mktemp("m") / "env.sinr", "sin_cos_env")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _reference_logits(bundle, lonlat, idx, env=None):
    """Independent of the runtime: numpy encoder + head."""
    emb = network.embed(bundle.weights, bundle.encoding, np.asarray(lonlat, np.float32), env)
    return emb @ bundle.head[idx].T


def _reference_probs(bundle, lonlat, idx, env=None):
    """Independent of the runtime: numpy encoder + head + float64 sigmoid."""
    return _sigmoid(_reference_logits(bundle, lonlat, idx, env))


def _ref_prob_atol(bundle, lonlat, idx, env=None):
    """The runtime (onnxruntime, its own batches) vs the numpy reference: float32 rounding only."""
    emb = network.embed(bundle.weights, bundle.encoding, np.asarray(lonlat, np.float32), env)
    return prob_atol(logit_atol(emb, bundle.head[idx]))


def _centres_lonlat(gt, wkt, rows, cols):
    """Pixel centres -> lon/lat with osr, point by point (not the Grid code path)."""
    src = osr.SpatialReference(wkt=wkt)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    out = []
    for r, c in zip(rows, cols):
        x = gt[0] + (c + 0.5) * gt[1]
        y = gt[3] + (r + 0.5) * gt[5]
        lon, lat, _ = ct.TransformPoint(x, y)
        out.append((lon, lat))
    return np.array(out)


# ---- backends and points ---------------------------------------------------------------------------
def test_backends_agree(bundle, env_bundle):
    rng = np.random.default_rng(0)
    ll = np.stack([rng.uniform(-180, 180, 3000), rng.uniform(-90, 90, 3000)], 1)
    ort, npy = Predictor(bundle, "onnxruntime"), Predictor(bundle, "numpy")
    assert (ort.backend_name, npy.backend_name) == ("onnxruntime", "numpy")
    assert Predictor(bundle).backend_name == "onnxruntime"  # auto prefers onnxruntime when installed
    ref = npy.embed(ll)
    np.testing.assert_allclose(ort.embed(ll), ref, atol=f32_atol(ref), rtol=0)
    tol = prob_atol(logit_atol(ref, bundle.head))
    np.testing.assert_allclose(ort.predict_points(ll), npy.predict_points(ll), atol=tol, rtol=0)
    env = np.stack([rng.uniform(0, 2000, 3000), rng.uniform(-10, 30, 3000)], 1)
    a = Predictor(env_bundle, "onnxruntime").embed(ll, env)
    b = Predictor(env_bundle, "numpy").embed(ll, env)
    np.testing.assert_allclose(a, b, atol=f32_atol(b), rtol=0)


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_embed_of_a_large_array_runs_bounded_batches_and_equals_pieces(bundle, env_bundle, backend):
    rng = np.random.default_rng(4)
    n = 10_000
    ll = np.stack([rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)], 1)
    env = np.stack([rng.uniform(0, 2000, n), rng.uniform(-10, 30, n)], 1)
    ll[::271, 1] = np.nan  # 37 rows without coordinates
    env[5::333, 0] = np.nan  # 31 more without a covariate (env model)
    for b, e, n_valid in ((bundle, None, n - 37), (env_bundle, env, n - 37 - 31)):
        p = Predictor(b, backend, batch_size=1024)
        sizes: list[int] = []
        run = p._backend.embed
        p._backend.embed = lambda x, v, run=run, sizes=sizes: sizes.append(len(x)) or run(x, v)
        whole = p.embed(ll, e)
        assert max(sizes) == 1024 and sum(sizes) == n_valid == p.locations_encoded
        assert len(sizes) == p.encoder_calls == -(-n_valid // 1024)
        q = Predictor(b, backend)
        pieces = np.vstack([q.embed(ll[i:i + 700], None if e is None else e[i:i + 700]) for i in range(0, n, 700)])
        valid = np.isfinite(pieces).all(1)
        assert valid.sum() == n_valid and np.isnan(whole[~valid]).all()
        # other batch shapes: float32 rounding only
        np.testing.assert_allclose(whole[valid], pieces[valid], atol=f32_atol(pieces[valid]), rtol=0)


def test_numpy_backend_when_onnxruntime_missing(bundle, monkeypatch):
    monkeypatch.setattr(runtime, "onnxruntime_available", lambda: False)
    assert Predictor(bundle).backend_name == "numpy"
    with pytest.raises(BundleError, match="onnxruntime is not installed"):
        Predictor(bundle, "onnxruntime")
    with pytest.raises(ValueError, match="backend"):
        Predictor(bundle, "tensorflow")


def test_predict_points_matches_the_reference(bundle):
    p = Predictor(bundle, batch_size=100)  # several encoder runs
    ll = np.array([KANSAS, ATLANTIC, (0.0, 0.0), (179.9, -89.9), (np.nan, 3.0)] * 50)
    got = p.predict_points(ll, [4, 1])
    assert got.shape == (250, 2) and got.dtype == np.float32
    ok = np.isfinite(ll).all(1)
    tol = _ref_prob_atol(bundle, ll[ok], [4, 1])
    np.testing.assert_allclose(got[ok], _reference_probs(bundle, ll[ok], [4, 1]), atol=tol)
    assert np.isnan(got[~ok]).all()
    assert p.locations_encoded == ok.sum() and p.encoder_calls == 2
    # species by code, name or Species; all species when None
    a = p.predict_points(ll[:3], ["sp004", "Species number1"])
    np.testing.assert_allclose(a, got[:3], atol=tol)  # another batch shape: equal up to float rounding
    assert p.predict_points(ll[:3]).shape == (3, 6)
    assert [x.code for x in p.resolve_species(["sp002", 2, "Species number2", 0])] == ["sp002", "sp000"]


def test_top_species_ranks_like_the_probabilities(bundle):
    p = Predictor(bundle)
    ll = np.array([KANSAS, ATLANTIC, (np.nan, 0.0)])
    idx, prob = p.top_species(ll, k=3)
    full = p.predict_points(ll[:2])
    np.testing.assert_array_equal(idx[:2], np.argsort(-full, axis=1)[:, :3])
    # the same backend on the same 2 rows: equal but for the float32 sigmoid's last bit
    np.testing.assert_allclose(prob[:2], np.sort(full, axis=1)[:, ::-1][:, :3], atol=1e-7)
    assert idx[2].tolist() == [-1, -1, -1] and np.isnan(prob[2]).all()


def test_unknown_species(bundle):
    p = Predictor(bundle)
    with pytest.raises(SpeciesNotFoundError, match="not in model"):
        p.predict_points(np.array([KANSAS]), "Quercus imaginaria")
    with pytest.raises(SpeciesNotFoundError, match="out of range"):
        p.predict_points(np.array([KANSAS]), 6)
    with pytest.raises(SpeciesNotFoundError, match="out of range"):
        p.probabilities(np.zeros((1, 64), np.float32), np.array([0, 6]))


def test_env_model_needs_covariates(env_bundle):
    p = Predictor(env_bundle)
    with pytest.raises(CovariateError, match="elev, temp"):
        p.embed(np.array([KANSAS]))
    with pytest.raises(CovariateError, match="shape"):
        p.embed(np.array([KANSAS]), np.zeros((1, 3)))
    e = p.embed(np.array([KANSAS, KANSAS]), np.array([[100.0, 5.0], [np.nan, 5.0]]))
    assert np.isfinite(e[0]).all() and np.isnan(e[1]).all()  # missing covariate: NaN, never zero


def test_corrupt_bundle_and_corrupt_onnx(tmp_path, bundle):
    bad = tmp_path / "bad.sinr"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(BundleError, match="not a SINR model bundle"):
        ModelBundle.load(bad)
    broken = dataclasses.replace(bundle, onnx_bytes=b"garbage")
    with pytest.raises(BundleError, match="cannot be loaded by onnxruntime"):
        Predictor(broken, "onnxruntime")
    p = Predictor(broken)  # auto: falls back to numpy, and says so
    assert p.backend_name == "numpy" and "numpy backend" in p.warnings[0]


# ---- grids --------------------------------------------------------------------------------------------
GRIDS = {
    "EPSG:4326": ((-104.0, 33.0, -92.0, 41.0), 0.25),
    "EPSG:3857": ((-1.16e7, 3.9e6, -1.02e7, 5.0e6), 20_000.0),
    "EPSG:5070": ((-6.0e5, 1.2e6, 4.0e5, 2.0e6), 20_000.0),
}


@pytest.mark.parametrize("crs", list(GRIDS))
def test_geotiff_georeferencing_and_values(bundle, tmp_path, crs):
    extent, px = GRIDS[crs]
    g = Grid.from_pixel_size(extent, crs, px)
    p = Predictor(bundle)
    res = predict_to_geotiff(p, g, ["sp002", "sp005"], tmp_path / "r.tif", mask_ocean=False)
    assert res.paths == [tmp_path / "r.tif"] and list(res) == res.paths
    arr, info = read_geotiff(tmp_path / "r.tif")
    w = round((extent[2] - extent[0]) / px)
    h = round((extent[3] - extent[1]) / px)
    assert info["size"] == (w, h) and arr.shape == (2, h, w)
    assert info["geotransform"] == pytest.approx((extent[0], px, 0.0, extent[3], 0.0, -px), abs=1e-9)
    expected = osr.SpatialReference()
    expected.SetFromUserInput(crs)
    assert osr.SpatialReference(wkt=info["wkt"]).IsSame(expected)
    assert not np.isnan(arr).any()  # inland, no ocean mask: every pixel has a value
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, h, 40), rng.integers(0, w, 40)
    ll = _centres_lonlat(info["geotransform"], info["wkt"], rows, cols)
    np.testing.assert_allclose(arr[:, rows, cols].T, _reference_probs(bundle, ll, [2, 5]),
                               atol=_ref_prob_atol(bundle, ll, [2, 5]))


def test_predict_grid_in_memory_equals_geotiff(bundle, tmp_path):
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 0.5)
    p = Predictor(bundle)
    mem = predict_grid(p, g, [3])
    predict_to_geotiff(p, g, 3, tmp_path / "a.tif")
    arr, _ = read_geotiff(tmp_path / "a.tif")
    np.testing.assert_array_equal(mem, arr)


def test_ocean_pixels_are_nodata(bundle, tmp_path):
    # a row of 1 degree pixels from Kansas to the Atlantic
    g = Grid.from_pixel_size((-98.5, 38.0, -39.5, 39.0), "EPSG:4326", 1.0)
    p = Predictor(bundle)
    res = predict_to_geotiff(p, g, 0, tmp_path / "o.tif", mask_ocean=True)
    ds = gdal.Open(str(res.paths[0]))
    raw = ds.GetRasterBand(1).ReadAsArray()
    kansas, atlantic = raw[0, 0], raw[0, 58]  # centres (-98, 38.5) and (-40, 38.5)
    assert atlantic == NODATA
    assert kansas != NODATA
    assert kansas == pytest.approx(_reference_probs(bundle, [(-98.0, 38.5)], [0])[0, 0],
                                   abs=_ref_prob_atol(bundle, [(-98.0, 38.5)], [0]))
    unmasked = predict_grid(p, g, 0, mask_ocean=False)
    assert np.isfinite(unmasked).all()
    assert p.locations_encoded == (raw != NODATA).sum() + 59  # only land pixels were encoded when masked


def test_out_of_domain_pixels_are_nodata(bundle):
    g = Grid((-7e6, -7e6, 7e6, 7e6), "+proj=ortho +lat_0=40 +lon_0=-100 +datum=WGS84", 16, 16)
    probs = predict_grid(Predictor(bundle), g, 0, mask_ocean=False)
    _, ok = g.lonlat()
    np.testing.assert_array_equal(np.isfinite(probs[0]).ravel(), ok)


def test_switching_species_reuses_the_cached_embedding(bundle, tmp_path):
    g = Grid.from_pixel_size((-110, 30, -90, 45), "EPSG:4326", 0.25)
    p = Predictor(bundle)
    predict_to_geotiff(p, g, "sp000", tmp_path / "a.tif")
    encoded, calls = p.locations_encoded, p.encoder_calls
    assert encoded > 0 and p.cached_bytes > 0
    a2 = predict_to_geotiff(p, g, ["sp001", "sp003"], tmp_path / "b.tif")
    b = predict_grid(p, g, 4)
    assert (p.locations_encoded, p.encoder_calls) == (encoded, calls)  # no encoder work at all
    ref = predict_grid(Predictor(bundle), g, 4)
    np.testing.assert_allclose(b, ref, atol=1e-6)  # the same backend, grid and blocks: rounding only
    assert len(a2.paths) == 1
    # a different grid, mask or model state is recomputed
    predict_grid(p, g, 0, mask_ocean=False)
    assert p.locations_encoded > encoded
    n = p.locations_encoded
    predict_grid(p, Grid.from_pixel_size((-110, 30, -90, 45), "EPSG:4326", 0.5), 0, mask_ocean=False)
    assert p.locations_encoded > n


def test_no_cache_when_it_would_be_too_big(bundle):
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 0.5)
    p = Predictor(bundle, cache_max_bytes=1000)
    predict_grid(p, g, 0)
    n = p.locations_encoded
    predict_grid(p, g, 1)
    assert p.locations_encoded == 2 * n and p.cached_bytes == 0


def test_tiles_progress_and_cancel_leave_no_file(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "TILE_PIXELS", 200)  # 20 columns -> 10-row blocks
    g = Grid.from_pixel_size((-100, 30, -95, 40), "EPSG:4326", 0.25)
    assert (g.width, g.height) == (20, 40)
    p = Predictor(bundle)
    seen = []
    res = predict_to_geotiff(p, g, 0, tmp_path / "ok.tif", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 100 and len(seen) >= 5
    assert p.encoder_calls == 4  # four blocks, one encoder run each
    arr, _ = read_geotiff(res.paths[0])
    np.testing.assert_allclose(arr, predict_grid(Predictor(bundle), g, 0), atol=1e-6)  # same blocks and backend

    calls = {"n": 0}

    def cancel_after_two_checks():
        calls["n"] += 1
        return calls["n"] > 2

    out = tmp_path / "cancel"
    out.mkdir()
    q = Predictor(bundle)
    with pytest.raises(CancelledError):
        predict_to_geotiff(q, g, [0, 1], out / "c.tif", one_file_per_species=True,
                           is_cancelled=cancel_after_two_checks)
    assert list(out.iterdir()) == []
    assert q.locations_encoded > 0 and q.cached_bytes == 0  # a cancelled pass is not cached


def test_bands_metadata_thresholds_and_sidecar(bundle, tmp_path):
    sp = bundle.species
    b2 = dataclasses.replace(bundle, species=[dataclasses.replace(s, threshold=0.3 if s.index == 1 else None)
                                              for s in sp])
    p = Predictor(b2)
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 0.5)
    res = predict_to_geotiff(p, g, ["sp001", "sp002"], tmp_path / "t.tif", threshold="lpt_r",
                             fallback_threshold=0.6)
    assert res.thresholds == {"sp001": 0.3, "sp002": 0.6}
    assert len(res.warnings) == 1 and "sp002" in res.warnings[0] and "0.6" in res.warnings[0]
    arr, info = read_geotiff(tmp_path / "t.tif")
    # a cut of a relative score, not a presence: the binary band says "above threshold"
    assert info["descriptions"] == ["Species number1", "Species number1 above threshold (p >= 0.3)",
                                    "Species number2", "Species number2 above threshold (p >= 0.6)"]
    md = info["metadata"]
    assert md["MODEL_NAME"] == "coords" and md["MODEL_SHA256"] == bundle.sha256 and len(bundle.sha256) == 64
    assert md["SPECIES_CODE"] == "sp001,sp002" and md["ENCODING"] == "sin_cos"
    assert md["BACKEND"] == "onnxruntime"
    bm = info["band_metadata"]
    assert [m["VALUE"] for m in bm] == ["probability", "binary"] * 2
    assert (bm[1]["THRESHOLD_SOURCE"], bm[3]["THRESHOLD_SOURCE"]) == ("lpt_r", "fallback")
    valid = np.isfinite(arr[0])
    np.testing.assert_array_equal(arr[1][valid], (arr[0][valid] >= 0.3).astype(np.float32))
    np.testing.assert_array_equal(arr[3][valid], (arr[2][valid] >= 0.6).astype(np.float32))
    assert np.isnan(arr[1][~valid]).all()
    assert (tmp_path / "t.qml").is_file()


def test_bands_carry_the_species_reliability_and_poor_maps_are_warned(bundle, tmp_path):
    sp = bundle.species
    aps = {"ranges_ap": {"sp001": 0.1088}, "ranges_reference": "Little's range maps"}
    b2 = dataclasses.replace(bundle, meta={**bundle.meta, "evaluation": aps}, species=[
        dataclasses.replace(sp[0], n_train=106, record_extent=(-111.0, 42.3, -105.7, 45.0), n_cells=22),
        dataclasses.replace(sp[1], n_train=106, record_extent=(-111.0, 42.3, -105.7, 45.0), n_cells=22),
        *sp[2:]])
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 1.0)
    res = predict_to_geotiff(Predictor(b2), g, ["sp000", "sp001"], tmp_path / "r.tif", threshold=0.5)
    _, info = read_geotiff(tmp_path / "r.tif")
    bm = info["band_metadata"]
    # sp000: 106 records in 22 cells, no AP -> caution; sp001: the same records and AP 10.9 % -> poor
    assert [m["RELIABILITY"] for m in bm] == ["caution", "caution", "poor", "poor"]
    assert bm[0]["N_TRAIN"] == "106" and bm[0]["N_CELLS"] == "22" and "RANGES_AP" not in bm[0]
    assert bm[0]["RECORD_EXTENT"] == "-111.0000,42.3000,-105.7000,45.0000"
    assert bm[2]["RANGES_AP"] == bm[3]["RANGES_AP"] == "0.1088"
    assert bm[2]["RELIABILITY_SUMMARY"] == (
        "Species number1 (sp001): 106 training records in 22 one-degree cells, mostly within "
        "111.0°W–105.7°W, 42.3°N–45.0°N; agreement with Little's range maps: AP 10.9%.")
    assert bm[2]["RELIABILITY_WARNING"].startswith("Poor map: it disagrees with Little's range maps (AP 10.9%)")
    assert bm[0]["RELIABILITY_WARNING"].startswith("Use with caution: only 106 records in 22 one-degree cells")
    # only the poor map is a warning of the result (and of predict_range's log)
    assert res.warnings == [f"Species number1 (sp001): {bm[2]['RELIABILITY_WARNING']}"]


def test_threshold_options():
    from sinr_qgis.core.bundle import Species

    sp = [Species(0, "a", "A", 1, threshold=0.2), Species(1, "b", "B", 1)]
    assert resolve_thresholds(sp, None) == ({}, [])
    assert resolve_thresholds(sp, 0.5)[0] == {"a": (0.5, "fixed"), "b": (0.5, "fixed")}
    with pytest.raises(OutputError, match="no LPT-R threshold"):
        resolve_thresholds(sp, "lpt_r", fallback_threshold=None)
    with pytest.raises(OutputError, match=r"\(0, 1\]"):
        resolve_thresholds(sp, 1.5)


def test_one_file_per_species(bundle, tmp_path):
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 0.5)
    p = Predictor(bundle)
    res = predict_to_geotiff(p, g, ["sp000", "sp004"], tmp_path / "range.tif", one_file_per_species=True,
                             threshold=0.5)
    assert [x.name for x in res.paths] == ["range_sp000.tif", "range_sp004.tif"]
    assert not (tmp_path / "range.tif").exists()
    for path, code in zip(res.paths, ["sp000", "sp004"]):
        arr, info = read_geotiff(path)
        assert arr.shape[0] == 2 and info["metadata"]["SPECIES_CODE"] == code
        assert path.with_suffix(".qml").is_file()
    both = predict_grid(p, g, ["sp000", "sp004"])
    np.testing.assert_allclose(read_geotiff(res.paths[1])[0][0], both[1], atol=1e-6)  # the cached embedding


def test_bad_inputs_leave_no_file(bundle, tmp_path):
    p = Predictor(bundle)
    g = Grid.from_pixel_size((-100, 35, -95, 40), "EPSG:4326", 0.5)
    with pytest.raises(SpeciesNotFoundError):
        predict_to_geotiff(p, g, "nope", tmp_path / "x.tif")
    with pytest.raises(OutputError, match="does not exist"):
        predict_to_geotiff(p, g, 0, tmp_path / "missing" / "x.tif")
    with pytest.raises(OutputError, match="folder"):
        predict_to_geotiff(p, g, 0, tmp_path)  # a folder, not a file
    assert p.locations_encoded == 0  # refused before any work
    with pytest.raises(GridError):
        predict_to_geotiff(p, Grid.from_pixel_size((-100, 35, -105, 40), "EPSG:4326", 0.5), 0, tmp_path / "x.tif")
    assert list(tmp_path.iterdir()) == []


def test_env_model_on_a_grid(env_bundle, tmp_path):
    # covariate rasters cover lon -100..-96 only; one cell of "temp" is nodata
    def raster(name, arr, nodata=None):
        path = tmp_path / name
        ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[1], arr.shape[0], 1, gdal.GDT_Float32)
        ds.SetGeoTransform((-100, 1, 0, 40, 0, -1))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        ds.SetProjection(srs.ExportToWkt())
        if nodata is not None:
            ds.GetRasterBand(1).SetNoDataValue(nodata)
        ds.GetRasterBand(1).WriteArray(arr)
        ds = None
        return str(path)

    elev = np.arange(20, dtype=np.float32).reshape(5, 4) * 100
    temp = np.arange(20, dtype=np.float32).reshape(5, 4)
    temp[2, 1] = -9999
    covs = {"elev": raster("elev.tif", elev), "temp": (raster("temp.tif", temp, -9999), 1)}
    g = Grid.from_pixel_size((-101, 35, -95, 40), "EPSG:4326", 1.0)  # 6 x 5, wider than the rasters
    p = Predictor(env_bundle)
    probs = predict_grid(p, g, [0, 2], covariates=covs, mask_ocean=False)
    assert np.isnan(probs[:, :, 0]).all() and np.isnan(probs[:, :, 5]).all()  # no coverage
    assert np.isnan(probs[:, 2, 2]).all()  # covariate nodata
    valid = np.isfinite(probs[0])
    assert valid.sum() == 5 * 4 - 1
    ll, _ = g.lonlat()
    r, c = np.nonzero(valid)
    env = np.stack([elev[r, c - 1], temp[r, c - 1]], 1)
    ref = _reference_probs(env_bundle, ll[r * g.width + c], [0, 2], env)
    np.testing.assert_allclose(probs[:, r, c].T, ref, atol=_ref_prob_atol(env_bundle, ll[r * g.width + c], [0, 2], env))
    # the same as a list in the model's order; a missing mapping is a clear error
    again = predict_grid(p, g, [0, 2], covariates=[covs["elev"], covs["temp"]], mask_ocean=False)
    np.testing.assert_array_equal(again, probs)
    with pytest.raises(CovariateError, match="temp"):
        predict_grid(p, g, 0, covariates={"elev": covs["elev"]})
    with pytest.raises(CovariateError, match="needs covariate rasters"):
        predict_grid(p, g, 0)


def test_apply_on_grid_writes_embeddings(bundle, tmp_path):
    g = Grid.from_pixel_size((-100, 35, -98, 37), "EPSG:4326", 0.5)
    p = Predictor(bundle)
    emb = apply_on_grid(p, g, lambda e, _ll: e, p.embedding_dim)
    assert emb.shape == (64, 4, 4)
    out = apply_on_grid_to_geotiff(p, g, tmp_path / "emb.tif", lambda e, _ll: e[:, :3],
                              ["e0", "e1", "e2"], metadata={"KIND": "embedding"})
    arr, info = read_geotiff(out)
    np.testing.assert_array_equal(arr, emb[:3])
    assert info["descriptions"] == ["e0", "e1", "e2"] and info["metadata"]["KIND"] == "embedding"
    assert info["metadata"]["MODEL_NAME"] == "coords"
