"""import-official for every model kind the official SINR code saves (ResidualFCNet and LinNet,
inputs sin_cos, env, sin_cos_env): the bundle's probabilities equal the official network's
eval-mode output on the official inputs, rebuilt from WorldClim-like rasters by the plugin."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from osgeo import gdal

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.covariate_match import covariate_samplers
from sinr_qgis.core.errors import CovariateError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.official_env import OfficialBandSampler, OfficialEnv, read_official_env
from sinr_qgis.core.runtime import Predictor, predict_grid
from tests.helpers.global_rasters import worldwide_points, write_global_raster
from tests.helpers.official_reference import OfficialLinNet, OfficialResidualFCNet, official_params
from tests.training.official_env_data import (
    WORLDCLIM_FILL,
    official_env,
    official_input,
    official_stack,
    worldclim_like,
)
from training.cli import main
from training.official import OfficialCheckpointError, convert_official

D_IN = {"sin_cos": 4, "env": 20, "sin_cos_env": 24}
KINDS = [(arch, enc) for arch in ("ResidualFCNet", "LinNet") for enc in ("sin_cos", "env", "sin_cos_env")]
# Probabilities of the bundle vs the official torch model: the same float32 network on bit-equal
# inputs, summed in other orders (numpy, onnxruntime, torch): logits of spread ~6 differ by a few
# float32 eps (1.2e-7) of their size, ~1e-6, which moves a probability by at most a quarter of that.
PROB_ATOL = 1e-5


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    """20 WorldClim-like 2-degree global rasters, in the official order (elevation, bio_1..bio_19)."""
    return worldclim_like(tmp_path_factory.mktemp("worldclim"))


@pytest.fixture(scope="module")
def stack(rasters):
    return official_stack(rasters)


def official_checkpoint(path, arch: str, encoding: str, stack, n_classes: int = 7, seed: int = 5):
    """An official-layout checkpoint of ``arch`` reading ``encoding``, with logits spread over the
    whole sigmoid on :func:`worldwide_points`; returns the file and the reloaded official network."""
    torch.manual_seed(seed)
    d_in = D_IN[encoding]
    net = (OfficialResidualFCNet(d_in, n_classes, 32, 2) if arch == "ResidualFCNet"
           else OfficialLinNet(d_in, n_classes)).eval()
    with torch.no_grad():
        feats = net.feats(official_input(encoding, worldwide_points(), stack))
        net.class_emb.weight.mul_(6.0 / float(net.class_emb(feats).std()))
    params = official_params(arch, n_classes, input_enc=encoding, input_dim=d_in, num_filts=32, depth=2)
    torch.save({"state_dict": net.state_dict(), "params": params}, path)
    fresh = type(net)(*((d_in, n_classes, 32, 2) if arch == "ResidualFCNet" else (d_in, n_classes)))
    fresh.load_state_dict(torch.load(path, weights_only=True)["state_dict"], strict=True)  # the official layout
    return path, fresh.eval()


def model_json(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("model.json"))


@pytest.mark.parametrize("arch, encoding", KINDS)
def test_every_official_kind_gives_the_official_probabilities(tmp_path, rasters, stack, arch, encoding):
    uses_env = encoding != "sin_cos"
    ck, net = official_checkpoint(tmp_path / "model.pt", arch, encoding, stack if uses_env else None)
    # the rasters as a user picks them: any order; WorldClim's names put them in the official order
    env = read_official_env(rasters[::-1]) if uses_env else None
    convert_official(ck, None, tmp_path / "m.sinr", env=env)
    b = ModelBundle.load(tmp_path / "m.sinr")
    lonlat = worldwide_points()
    with torch.no_grad():
        expected = net(official_input(encoding, lonlat, stack if uses_env else None)).numpy()
    assert expected.min() < 0.01 and expected.max() > 0.99
    got_env = None
    if uses_env:
        samplers = covariate_samplers(b.meta["encoding"], [(str(p), 1) for p in rasters])
        got_env = np.stack([s.sample(lonlat) for s in samplers], axis=1)
        # the official inputs bit for bit: the coasts mix in the sea's zeros, the edges clamp
        np.testing.assert_array_equal(got_env.astype(np.float32), official_env(lonlat, stack).numpy())
    for backend in ("numpy", "onnxruntime"):
        got = Predictor(b, backend).predict_points(lonlat, env=got_env)
        np.testing.assert_allclose(got, expected, rtol=0, atol=PROB_ATOL, err_msg=backend)
    assert b.encoding == encoding and b.meta["training"]["architecture"] == arch
    meta = model_json(tmp_path / "m.sinr")
    if uses_env:
        assert b.covariate_names == ["wc2.1_2d_elev", *[f"wc2.1_2d_bio_{k}" for k in range(1, 20)]]
        assert meta["format_version"] == 2  # an older plugin refuses it instead of reading raw values
        assert meta["encoding"]["covariate_sampling"]["grid"] == [90, 180]
        np.testing.assert_array_equal(b.weights["encoder.env_mean"], np.zeros(20, np.float32))
        np.testing.assert_array_equal(b.weights["encoder.env_std"], np.ones(20, np.float32))
    else:
        assert meta["format_version"] == 1 and b.covariates == []


def test_grid_prediction_reads_the_official_inputs_at_pixel_centres(tmp_path, rasters, stack):
    """sinr:predict_range's path: a grid over the globe (no ocean mask) with the 20 rasters."""
    ck, net = official_checkpoint(tmp_path / "model.pt", "ResidualFCNet", "sin_cos_env", stack)
    convert_official(ck, None, tmp_path / "m.sinr", env=read_official_env(rasters))
    b = ModelBundle.load(tmp_path / "m.sinr")
    grid = Grid.from_pixel_size((-180.0, -90.0, 180.0, 90.0), "EPSG:4326", 3.0)
    probs = predict_grid(Predictor(b), grid, [0, 3], mask_ocean=False, covariates=[str(p) for p in rasters])
    lonlat, ok = grid.lonlat()
    assert ok.all() and not np.isnan(probs).any()  # the sea reads 0 (its mean), as the official code
    with torch.no_grad():
        expected = net(official_input("sin_cos_env", lonlat.astype(np.float32), stack)).numpy()[:, [0, 3]]
    np.testing.assert_allclose(probs.reshape(2, -1).T, expected, rtol=0, atol=PROB_ATOL)


def test_statistics_are_the_official_ones(tmp_path, rasters):
    env = read_official_env(rasters)
    for p, mean, std in zip(rasters, env.means, env.stds):
        raw = np.asarray(official_stack([p])).ravel()  # float16 z-scores of the valid cells, NaN elsewhere
        ds = gdal.Open(str(p))
        v = ds.ReadAsArray().astype(np.float64).ravel()
        ok = ~(np.isnan(v) | (v < -1e6))
        assert mean == v[ok].mean() and std == (v[ok] - v[ok].mean()).std()
        np.testing.assert_array_equal(np.isnan(raw), ~ok)
    # the Int16 elevation's -32768 sea is a value to the official script (below -1e6 only is missing)
    assert any("wc2.1_2d_elev.tif declares nodata -32768" in w and "kept as values" in w for w in env.warnings)
    assert any("180 x 90 cells" in w and "4320 x 2160" in w for w in env.warnings)
    assert env.means[0] < 0  # the sea's -32768 pulls the elevation's mean below zero
    back = OfficialEnv.from_json(env.to_json(tmp_path / "stats.json"))
    assert back == env


def test_cli_imports_an_environmental_checkpoint(tmp_path, rasters, stack, capsys):
    ck, _net = official_checkpoint(tmp_path / "model.pt", "LinNet", "env", stack)
    (tmp_path / "names.txt").write_text("1001\tQuercus alba\n1003\tAcer rubrum\n")
    args = ["import-official", str(ck), "--taxa", str(tmp_path / "names.txt"), "--out", str(tmp_path / "a.sinr")]
    assert main([*args, "--covariates", *map(str, rasters), "--jsonl"]) == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["progress", "progress", "progress", "done"]
    assert events[-1]["encoding"] == "env" and events[-1]["n_species"] == 7
    assert "warning: wc2.1_2d_elev.tif declares nodata -32768" in err
    b = ModelBundle.load(tmp_path / "a.sinr")
    assert [s.name for s in b.species][:3] == ["Quercus alba", "1002", "Acer rubrum"]
    # the plugin's way: statistics computed beforehand (QGIS has GDAL), the same bundle inputs
    read_official_env(rasters).to_json(tmp_path / "stats.json")
    args[-1] = str(tmp_path / "b.sinr")
    assert main([*args, "--covariate-stats", str(tmp_path / "stats.json")]) == 0
    assert ModelBundle.load(tmp_path / "b.sinr").covariates == b.covariates


def test_an_unknown_env_norm_parameter_is_reported(tmp_path, rasters, stack, capsys):
    """Only the official web app mentions params['env_norm']; the public code has one preparation."""
    ck, _net = official_checkpoint(tmp_path / "model.pt", "ResidualFCNet", "env", stack)
    saved = torch.load(ck, weights_only=True)
    torch.save({**saved, "params": saved["params"] | {"env_norm": "min_max"}}, ck)
    stats = read_official_env(rasters).to_json(tmp_path / "stats.json")
    assert main(["import-official", str(ck), "--out", str(tmp_path / "m.sinr"), "--covariate-stats", str(stats)]) == 0
    note = ("model.pt names an environmental normalisation 'min_max' (params 'env_norm') that the public SINR code "
            "does not define; the import reproduces the public code's inputs")
    assert f"warning: {note}" in capsys.readouterr().err
    b = ModelBundle.load(tmp_path / "m.sinr")
    assert b.meta["training"]["warnings"][0].startswith(note) and b.meta["training"]["params"]["env_norm"] == "min_max"


def _env(names: list[str]) -> OfficialEnv:
    return OfficialEnv(names=names, means=[0.0] * len(names), stds=[1.0] * len(names), files=names,
                       grid=(90, 180))


@pytest.mark.parametrize("encoding, given, message", [
    ("env", None, r"is an environmental model \(input_enc 'env'\): it reads 20 covariates and not the location\. "
                  r"Give its covariate rasters: the WorldClim 2.1 rasters at 5 arc-minutes"),
    ("sin_cos_env", None, r"input_enc 'sin_cos_env'\): it reads 20 covariates besides the location"),
    ("sin_cos", ["elev"], r"reads the location only \(input_enc 'sin_cos'\), no covariate rasters: leave the "
                          r"covariates out"),
    ("env", ["wc_elev", *[f"wc_bio_{k}" for k in range(1, 20) if k != 7]],
     r"reads 20 covariates \(input_enc 'env'\), but 19 raster bands were given \(wc_elev, wc_bio_1, .*\)\. "
     r"Missing: bio7\. Give the WorldClim 2.1 rasters"),
    ("sin_cos_env", [f"layer{k}" for k in range(21)], r"reads 20 covariates .* but 21 raster bands were given"),
])
def test_covariates_that_do_not_fit_the_checkpoint_are_refused(tmp_path, stack, encoding, given, message):
    ck, _net = official_checkpoint(tmp_path / "model.pt", "ResidualFCNet", encoding, stack)
    with pytest.raises(OfficialCheckpointError, match=message):
        convert_official(ck, None, tmp_path / "out.sinr", env=_env(given) if given else None)
    assert not (tmp_path / "out.sinr").exists()


def test_rasters_that_are_not_the_official_global_grid_are_refused(tmp_path, rasters):
    values = np.ones((10, 20), np.float32)
    clipped = write_global_raster(tmp_path / "clipped.tif", values, None)
    ds = gdal.Open(str(clipped), gdal.GA_Update)
    ds.SetGeoTransform((-100.0, 1.0, 0.0, 50.0, 0.0, -1.0))  # a continent, not the globe
    ds = None
    shifted = write_global_raster(tmp_path / "shifted.tif", values, None)
    ds = gdal.Open(str(shifted), gdal.GA_Update)
    ds.SetGeoTransform((0.0, 18.0, 0.0, 90.0, 0.0, -18.0))  # 0..360 longitudes
    ds = None
    coarse = write_global_raster(tmp_path / "coarse.tif", values, None)
    flat = write_global_raster(tmp_path / "flat.tif", np.full((90, 180), 3.0, np.float32), None)
    for paths, message in (([clipped], r"covers longitude -100\.\.-80, latitude 40\.\.50; an official SINR "
                                       r"environmental model reads a north-up global grid"),
                           ([shifted], r"covers longitude 0\.\.360.*shifted \(0\.\.360\)"),
                           ([rasters[0], coarse], r"coarse.tif has 20 x 10 cells, wc2.1_2d_elev.tif 180 x 90"),
                           ([rasters[1], rasters[1]], r"wc2.1_2d_bio_1 is given more than once"),
                           ([flat], r"has one value everywhere \(3\)"),
                           ([tmp_path / "none.tif"], r"none.tif does not exist"),
                           ([], r"No covariate raster given")):
        with pytest.raises(CovariateError, match=message):
            read_official_env(paths)


def test_the_band_sampler_reads_the_official_values(tmp_path):
    """core.official_env's sampler equals the official bilinear sampling of the prepared stack, bit for
    bit (tests/core/test_official_env.py checks its windows and edges without torch)."""
    values = np.random.default_rng(0).normal(20, 5, (30, 60)).astype(np.float32)
    values[:6, :10] = WORLDCLIM_FILL
    p = write_global_raster(tmp_path / "bio_1.tif", values, WORLDCLIM_FILL)
    env = read_official_env([p])
    cov = {"name": env.names[0], "mean": env.means[0], "std": env.stds[0]}
    pts = worldwide_points(2000)
    whole = OfficialBandSampler(p, 1, cov, env.grid).sample(pts)
    np.testing.assert_array_equal(whole.astype(np.float32), official_env(pts, official_stack([p])).numpy()[:, 0])
