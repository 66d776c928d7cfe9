"""A categorical covariate (land-cover classes beside a temperature band) end to end: the training
inputs are the one-hot of each record's own cell's class, the bundle keeps the class list, and
prediction (numpy, onnxruntime) feeds the same one-hot to the same network as torch."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal, osr

from sinr_qgis.core import encoding as enc
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.categories import covariate_class_lists
from sinr_qgis.core.covariate_match import covariate_samplers
from sinr_qgis.core.covariates import CovariateStack
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.products import predict_to_geotiff
from sinr_qgis.core.runtime import Predictor
from tests.helpers.raster_files import read_geotiff
from tests.tolerances import f32_atol, logit_atol, prob_atol
from training.cli import main
from training.data import TrainingData
from training.export import export_bundle
from training.negatives import CoveredArea
from training.trainer import TrainConfig, Trainer

FAST = ["--epochs", "1", "--batch-size", "64", "--width", "16", "--depth", "1", "--threads", "2", "--no-progress"]
W, H = 20, 10  # 1-degree cells over lon 0..20, lat 40..50
NAMES = ["", "forest", "", "grass", "", "crops", "", "wetland", "", "urban"]  # GDAL category names by code


def landcover() -> np.ndarray:
    """Vertical stripes of 4 columns: classes 1, 3, 5, 7, 9 from west to east; one nodata cell."""
    lc = np.repeat((1 + 2 * (np.arange(W) // 4))[None, :], H, axis=0).astype(np.float32)
    lc[0, 0] = -9999  # nodata
    return lc


def temperature() -> np.ndarray:
    rows, cols = np.mgrid[0:H, 0:W]
    return (25.0 - 1.5 * rows + 0.1 * cols).astype(np.float32)


def write_stack(path: Path, lc: np.ndarray | None = None, names: list[str] | None = None) -> Path:
    """band 1 ``temp`` (continuous), band 2 ``landcover`` (classes, with GDAL category names)."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), W, H, 2, gdal.GDT_Float32)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 50.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, (name, values) in enumerate((("temp", temperature()), ("landcover", landcover() if lc is None else lc))):
        band = ds.GetRasterBand(i + 1)
        band.SetDescription(name)
        band.SetNoDataValue(-9999)  # one nodata per GeoTIFF
        band.WriteArray(values)
    if names is not False:
        ds.GetRasterBand(2).SetCategoryNames(NAMES if names is None else names)
    ds = None
    return path


def records(n_per: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(lonlat [N, 2], species [N]) of 3 species west of lon 16: classes 1, 3, 5 and 7 only (9 unseen)."""
    rng = np.random.default_rng(4)
    centres = [(3.0, 47.0), (8.0, 44.0), (13.0, 46.0)]
    ll = np.concatenate([np.c_[rng.uniform(c[0] - 3, c[0] + 3, n_per), rng.uniform(c[1] - 3, c[1] + 3, n_per)]
                         for c in centres])
    ll[:, 0] = np.clip(ll[:, 0], 0.01, 15.99)
    ll[:, 1] = np.clip(ll[:, 1], 40.01, 49.99)
    ll[0] = (0.5, 49.5)  # the nodata cell
    ll[1] = (3.9999, 45.5)  # on the border of classes 1 and 3: its own cell is class 1
    return ll, np.repeat(np.arange(3), n_per)


def write_csv(path: Path, ll: np.ndarray, species: np.ndarray) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "latitude", "longitude"])
        w.writerows([f"Sp {s}", f"{y:.6f}", f"{x:.6f}"] for (x, y), s in zip(ll, species))
    return path


def cell_class(ll: np.ndarray, lc: np.ndarray | None = None) -> np.ndarray:
    """The class of each point's own cell, read straight from the array (NaN for nodata): an
    independent sampling of the raster."""
    lc = landcover() if lc is None else lc
    col = np.floor(ll[:, 0]).astype(int)
    row = np.floor(50.0 - ll[:, 1]).astype(int)
    v = lc[row, col].astype(np.float64)
    return np.where(v == -9999, np.nan, v)


def one_hot(codes: np.ndarray, classes) -> np.ndarray:
    return (codes[:, None] == np.asarray(classes)[None, :]).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A Trainer on the records (their env read by the training sampler) and its exported bundle."""
    tmp = tmp_path_factory.mktemp("cat")
    tif = write_stack(tmp / "stack.tif")
    stack = CovariateStack.open([tif])
    ll, sp = records()
    env = stack.sample(ll).astype(np.float32)
    keep = np.isfinite(env).all(axis=1)
    classes, _notes = covariate_class_lists(stack.names, stack.categorical, env[keep])
    data = TrainingData(lonlat=ll[keep].astype(np.float32), species=sp[keep], codes=["s0", "s1", "s2"],
                        names=["Sp 0", "Sp 1", "Sp 2"], env=env[keep])
    mean, std = stack.stats()
    cfg = TrainConfig(epochs=1, batch_size=64, width=16, depth=1, encoding="sin_cos_env",
                      covariate_classes=[c and list(c) for c in classes], env_pool=2000)
    torch.manual_seed(0)
    trainer = Trainer(data, cfg, env_mean=mean, env_std=std, rand_env=CoveredArea.of(stack))
    trainer.fit(progress=False)
    species = [Species(i, c, n, int(k)) for i, (c, n, k) in enumerate(zip(data.codes, data.names, data.n_train()))]
    bundle = export_bundle(trainer.model, species, tmp / "m.sinr", name="m", covariate_names=stack.names,
                           class_names={n: d.names for n, d in zip(stack.names, stack.categorical) if d})
    return {"tif": tif, "trainer": trainer, "data": data, "bundle": ModelBundle.load(bundle.path), "tmp": tmp}


def test_training_inputs_are_the_one_hot_of_each_records_cell(trained):
    data, trainer = trained["data"], trained["trainer"]
    codes = cell_class(data.lonlat.astype(np.float64))
    assert np.isfinite(codes).all()  # the record in the nodata cell was left out (no covariate there)
    assert data.n_records == 119 and codes[0] == 1.0  # the border record: its own cell's class, not 2
    np.testing.assert_array_equal(np.unique(codes), [1.0, 3.0, 5.0, 7.0])
    feats = trainer.features.cpu().numpy()
    assert feats.shape == (119, 4 + 1 + 4)
    np.testing.assert_array_equal(feats[:, 5:], one_hot(codes, [1, 3, 5, 7]))
    # the continuous band: its z-score with the raster's statistics, as before
    t = temperature()
    z = (data.env[:, 0] - t.mean()) / t.std()
    np.testing.assert_allclose(feats[:, 4], z, atol=f32_atol(z), rtol=0)
    # random background points: one class or, in class 9 (no record) or off the raster, none
    pool = trainer.rand_pool.cpu().numpy()[:, 5:]
    assert set(pool.sum(axis=1).tolist()) <= {0.0, 1.0} and set(np.unique(pool).tolist()) == {0.0, 1.0}


def test_the_bundle_stores_the_classes_and_their_names(trained):
    b = trained["bundle"]
    meta = json.loads(__import__("zipfile").ZipFile(b.path).read("model.json"))
    assert meta["format_version"] == 3
    cov = meta["encoding"]["covariates"]
    assert [c["name"] for c in cov] == ["temp", "landcover"] and "classes" not in cov[0]
    assert cov[1] == {"name": "landcover", "mean": 0.0, "std": 1.0, "classes": [1, 3, 5, 7],
                      "class_names": ["forest", "grass", "crops", "wetland"]}
    assert b.covariate_classes == [None, (1.0, 3.0, 5.0, 7.0)]
    assert meta["architecture"]["input_dim"] == 9


def test_prediction_feeds_the_same_one_hot_on_every_backend(trained):
    b, model = trained["bundle"], trained["trainer"].model.eval()
    rng = np.random.default_rng(9)
    ll = np.c_[rng.uniform(0.01, 15.99, 300), rng.uniform(40.01, 49.99, 300)]
    ll[0] = (4.0001, 45.5)  # just inside class 3
    samplers = covariate_samplers(b.meta["encoding"], [(str(trained["tif"]), 1), (str(trained["tif"]), 2)])
    env = np.stack([s.sample(ll) for s in samplers], axis=1)
    codes = cell_class(ll)
    np.testing.assert_array_equal(env[:, 1], codes)  # the prediction sampler reads the cell, never between
    assert codes[0] == 3.0
    ok = np.isfinite(env).all(axis=1)
    ll32, env32 = ll[ok].astype(np.float32), env[ok].astype(np.float32)
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(ll32), torch.from_numpy(env32)).numpy()
        # the torch model's inputs are the one-hot of the cell's class too
        feats = model.features(torch.from_numpy(ll32), torch.from_numpy(env32)).numpy()
    np.testing.assert_array_equal(feats[:, 5:], one_hot(codes[ok], [1, 3, 5, 7]))
    for backend in ("numpy", "onnxruntime"):
        p = Predictor(b, backend)
        got = p.embed(ll32, env32)
        np.testing.assert_allclose(got, ref, atol=f32_atol(ref), rtol=0)  # float32 rounding of one network
        probs = p.probabilities(got)
        ref_p = torch.sigmoid(torch.from_numpy(ref) @ model.head.weight.detach().T).numpy()
        np.testing.assert_allclose(probs, ref_p, atol=prob_atol(logit_atol(ref, b.head)), rtol=0)
        assert p.take_class_warnings() == []  # every location in a class the records had


def test_a_map_warns_about_cells_in_a_class_no_record_had(trained, tmp_path):
    b, model = trained["bundle"], trained["trainer"].model.eval()
    grid = Grid.from_pixel_size((0.0, 40.0, 20.0, 50.0), "EPSG:4326", 1.0)
    covs = [(str(trained["tif"]), 1), (str(trained["tif"]), 2)]
    res = predict_to_geotiff(Predictor(b, "numpy"), grid, ["s1"], tmp_path / "map.tif", mask_ocean=False,
                             covariates=covs)
    assert res.warnings == [
        "40 location(s) lie in class(es) 9 of categorical covariate 'landcover', which no training record had (the "
        "model knows 1, 3, 5, 7): they are encoded as no class, so their predictions there rest on the other "
        "covariates."]
    got, _info = read_geotiff(res.paths[0])
    centres = np.stack(np.meshgrid(np.arange(W) + 0.5, 50.0 - np.arange(H) - 0.5), axis=-1).reshape(-1, 2)
    codes = cell_class(centres)
    env = np.c_[temperature().ravel(), codes].astype(np.float32)
    ok = np.isfinite(codes)
    assert np.isnan(got[0].ravel()[~ok]).all()  # the nodata class cell is nodata, never a guess
    with torch.no_grad():
        emb = model.embed(torch.from_numpy(centres[ok].astype(np.float32)), torch.from_numpy(env[ok]))
        feats = model.features(torch.from_numpy(centres[ok].astype(np.float32)), torch.from_numpy(env[ok]))
        ref = torch.sigmoid(emb @ model.head.weight[1].detach()).numpy()
    assert (feats[codes[ok] == 9, 5:] == 0).all()  # the unseen class: no class at all
    np.testing.assert_allclose(got[0].ravel()[ok], ref, atol=prob_atol(logit_atol(emb.numpy(), b.head)), rtol=0)


def test_cli_trains_a_declared_and_a_chosen_categorical_band(tmp_path, capsys):
    ll, sp = records()
    data = write_csv(tmp_path / "obs.csv", ll, sp)
    tif = write_stack(tmp_path / "stack.tif")
    out = tmp_path / "m.sinr"
    code = main(["train", "--data", str(data), "--out", str(out), "--encoding", "sin_cos_env", "--covariates",
                 str(tif), "--jsonl", *FAST])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    note = ("Covariate 'landcover' is categorical (category names): read at the nearest cell, never interpolated, "
            "and one-hot encoded over the 4 class(es) of the training records (1, 3, 5, 7).")
    assert note in err
    assert {"event": "note", "message": note} in [json.loads(line) for line in stdout.splitlines()]
    b = ModelBundle.load(out)
    assert b.covariate_classes == [None, (1.0, 3.0, 5.0, 7.0)]
    assert b.meta["training"]["covariate_classes"] == [None, [1.0, 3.0, 5.0, 7.0]]

    # the same band without category names: a hint only, until the user names it
    plain = write_stack(tmp_path / "plain.tif", names=False)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "p.sinr"), "--encoding", "sin_cos_env",
                 "--covariates", str(plain), *FAST])
    err = capsys.readouterr()[1]
    assert code == 0 and "Covariate 'landcover' holds only 4 distinct whole numbers at the records (1, 3, 5, 7)" in err
    assert ModelBundle.load(tmp_path / "p.sinr").covariate_classes is None
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "c.sinr"), "--encoding", "sin_cos_env",
                 "--covariates", str(plain), "--categorical", "landcover", *FAST])
    err = capsys.readouterr()[1]
    assert code == 0 and "Covariate 'landcover' is categorical (your choice)" in err
    chosen = ModelBundle.load(tmp_path / "c.sinr")
    assert chosen.covariate_classes == [None, (1.0, 3.0, 5.0, 7.0)]
    assert "class_names" not in chosen.covariates[1]  # the raster names no class


def test_cli_refuses_an_unknown_categorical_name(tmp_path, capsys):
    ll, sp = records(5)
    data = write_csv(tmp_path / "obs.csv", ll, sp)
    tif = write_stack(tmp_path / "stack.tif")
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), "--encoding", "sin_cos_env",
                 "--covariates", str(tif), "--categorical", "biome", *FAST])
    err = capsys.readouterr()[1]
    assert code == 2
    assert "No covariate band is named 'biome'; the covariates are temp, landcover." in err
    assert not (tmp_path / "m.sinr").exists()
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), "--categorical", "biome", *FAST])
    assert code == 2 and "--categorical names covariate bands: give their rasters with --covariates." in \
        capsys.readouterr()[1]


def test_models_without_categorical_covariates_are_unchanged(tmp_path):
    """A continuous-only model: format version 1, no classes key, the ONNX inputs of every earlier bundle."""
    from training.model import SinrModel

    model = SinrModel(2, "sin_cos_env", 2, width=8, depth=1)
    b = export_bundle(model, [Species(0, "a", "A", 1), Species(1, "b", "B", 1)], tmp_path / "c.sinr", name="c",
                      covariate_names=["t", "p"])
    meta = json.loads(__import__("zipfile").ZipFile(b.path).read("model.json"))
    assert meta["format_version"] == 1
    assert meta["encoding"]["covariates"] == [{"name": "t", "mean": 0.0, "std": 1.0},
                                              {"name": "p", "mean": 0.0, "std": 1.0}]
    assert model.classes is None and enc.input_dim("sin_cos_env", 2) == model.encoder.input.in_features
