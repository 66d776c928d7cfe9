"""Categorical covariates: which bands hold classes (GDAL's declarations, the user's choice, a hint),
their class lists, the one-hot encoding (numpy here; torch and ONNX alike: tests/training/test_encoding.py)
and the bundle's record of them."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from osgeo import gdal, osr

from sinr_qgis.core import categories
from sinr_qgis.core import encoding as enc
from sinr_qgis.core.bundle import ModelBundle, format_version_needed
from sinr_qgis.core.covariates import CovariateStack
from sinr_qgis.core.errors import BundleError, CovariateError
from tests.factories import fixture_bundle

LANDCOVER = np.array([[1, 1, 3, 3, 5],
                      [1, 2, 3, 5, 5],
                      [2, 2, 3, 5, 0]], dtype=np.uint8)  # 0 = nodata


def write_band(path, values, *, dtype=gdal.GDT_Byte, nodata=0, name="landcover"):
    """A one-band lon/lat GeoTIFF: cell (row r, column c) spans lon 10+c..11+c, lat 50-r..49-r."""
    h, w = values.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, 1, dtype)
    ds.SetGeoTransform((10.0, 1.0, 0.0, 50.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.WriteArray(values)
    band.SetDescription(name)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    return ds, band


def close(ds, path):
    ds.FlushCache()
    return path


# ---- which bands hold classes -----------------------------------------------------------------------
def test_category_names_declare_classes_by_code(tmp_path):
    _ds, band = write_band(tmp_path / "lc.tif", LANDCOVER)  # the dataset kept open: the band needs it
    band.SetCategoryNames(["", "forest", "grass", "crops", "", "water"])  # index = class code; 4 unnamed
    got = categories.declared_classes(band)
    assert got.source == "category names"
    assert dict(got.names) == {1.0: "forest", 2.0: "grass", 3.0: "crops", 5.0: "water"}


def test_a_thematic_attribute_table_declares_classes(tmp_path):
    ds, band = write_band(tmp_path / "lc.tif", LANDCOVER)
    rat = gdal.RasterAttributeTable()
    rat.CreateColumn("Value", gdal.GFT_Integer, gdal.GFU_MinMax)
    rat.CreateColumn("Count", gdal.GFT_Integer, gdal.GFU_PixelCount)
    rat.CreateColumn("Class", gdal.GFT_String, gdal.GFU_Name)
    rat.SetRowCount(3)
    for row, (code, name) in enumerate([(1, "forest"), (3, "crops"), (5, "water")]):
        rat.SetValueAsInt(row, 0, code)
        rat.SetValueAsInt(row, 1, 4)
        rat.SetValueAsString(row, 2, name)
    rat.SetTableType(gdal.GRTT_THEMATIC)
    band.SetDefaultRAT(rat)
    close(ds, None)
    ds = gdal.Open(str(tmp_path / "lc.tif"))  # read back: GDAL keeps it in lc.tif.aux.xml
    got = categories.declared_classes(ds.GetRasterBand(1))
    assert got.source == "raster attribute table"
    assert dict(got.names) == {1.0: "forest", 3.0: "crops", 5.0: "water"}


def test_an_attribute_table_of_value_ranges_is_a_legend_not_classes(tmp_path):
    _ds, band = write_band(tmp_path / "t.tif", LANDCOVER)  # the dataset kept open: the band needs it
    rat = gdal.RasterAttributeTable()
    rat.CreateColumn("Low", gdal.GFT_Real, gdal.GFU_Min)
    rat.CreateColumn("High", gdal.GFT_Real, gdal.GFU_Max)
    rat.SetRowCount(2)
    for row, (lo, hi) in enumerate([(0, 2.5), (2.5, 6)]):
        rat.SetValueAsDouble(row, 0, lo)
        rat.SetValueAsDouble(row, 1, hi)
    band.SetDefaultRAT(rat)
    assert categories.declared_classes(band) is None
    athematic = gdal.RasterAttributeTable()
    athematic.CreateColumn("Value", gdal.GFT_Integer, gdal.GFU_MinMax)
    athematic.SetRowCount(1)
    athematic.SetTableType(gdal.GRTT_ATHEMATIC)
    band.SetDefaultRAT(athematic)
    assert categories.declared_classes(band) is None


def test_a_palette_band_holds_classes_and_a_plain_band_does_not(tmp_path):
    _ds, band = write_band(tmp_path / "p.tif", LANDCOVER)  # the dataset kept open: the band needs it
    assert categories.declared_classes(band) is None
    table = gdal.ColorTable()
    for code in range(6):
        table.SetColorEntry(code, (40 * code, 0, 0, 255))
    band.SetColorTable(table)
    band.SetColorInterpretation(gdal.GCI_PaletteIndex)
    got = categories.declared_classes(band)
    assert got.source == "colour table" and dict(got.names) == {}


def test_band_metadata_categorical_yes_declares_classes(tmp_path):
    # the project's bioclim test raster marks its biome band this way (CATEGORICAL=YES, CLASS_<code>)
    _ds, band = write_band(tmp_path / "b.tif", LANDCOVER.astype(np.float32), dtype=gdal.GDT_Float32)
    band.SetMetadata({"CATEGORICAL": "no", "CLASS_1": "forest"})
    assert categories.declared_classes(band) is None
    band.SetMetadata({"categorical": "Yes", "CLASS_1": "forest", "CLASS_10": "tundra", "CLASS_NOTE": "x",
                      "CLASS_3": " "})
    got = categories.declared_classes(band)
    assert got.source == "band metadata" and dict(got.names) == {1.0: "forest", 10.0: "tundra"}


def test_the_shared_bioclim_biome_band_is_declared_categorical(shared_data):
    raster = CovariateStack.open([shared_data / "covariates" / "sa_bioclim_0p5deg.tif"]).rasters[0]
    declared = {b.name: b.classes for b in raster.bands if b.classes is not None}
    assert list(declared) == ["biome"]
    assert declared["biome"].source == "band metadata"
    assert len(declared["biome"].names) == 14 and declared["biome"].names[11.0] == "Tundra"


def test_whole_numbers_with_few_values_are_only_a_hint():
    codes = np.repeat([1.0, 2.0, 3.0, 7.0], 5)
    hint = categories.class_hint(codes, "soil")
    assert "'soil' holds only 4 distinct whole numbers at the records (1, 2, 3, 7)" in hint
    assert "--categorical soil" in hint and "Categorical covariates" in hint
    assert categories.class_hint(codes + 0.5, "t") is None  # not whole numbers
    assert categories.class_hint(np.arange(40.0).repeat(3), "elev") is None  # 40 values: a quantity
    assert categories.class_hint(np.array([1.0, 2.0, 3.0]), "few") is None  # too few records to tell
    assert categories.class_hint(np.full(5, np.nan), "empty") is None


def test_the_user_marks_a_band_categorical_by_name(tmp_path):
    soil = np.array([[1, 2, 2], [3, 3, 1]], np.int16)
    ds, _band = write_band(tmp_path / "soil.tif", soil, dtype=gdal.GDT_Int16, nodata=-1, name="soil")
    close(ds, None)
    stack = CovariateStack.open([tmp_path / "soil.tif"])
    assert stack.categorical == [None]
    stack = CovariateStack.open([tmp_path / "soil.tif"], categorical=["soil"])
    assert stack.categorical[0].source == "your choice"
    with pytest.raises(CovariateError, match=r"No covariate band is named 'soils'; the covariates are soil\. "
                                             r"Mark categorical covariates by these names\."):
        CovariateStack.open([tmp_path / "soil.tif"], categorical=["soils"])


def test_a_categorical_band_is_read_at_its_cell_never_between_classes(tmp_path):
    ds, band = write_band(tmp_path / "lc.tif", LANDCOVER)
    band.SetCategoryNames(["", "forest", "grass", "crops", "", "water"])
    close(ds, None)
    ds = None  # closed: GDAL writes the category names
    stack = CovariateStack.open([tmp_path / "lc.tif"])
    # on the border of class 3 (column 2) and 5 (column 3) of row 1, just inside each; a cell centre;
    # a nodata cell (row 2, column 4); outside the raster
    pts = np.array([[12.999, 48.5], [13.001, 48.5], [12.5, 49.5], [14.5, 47.5], [9.5, 49.5]])
    got = stack.sample(pts)[:, 0]
    np.testing.assert_array_equal(got[:3], [3.0, 5.0, 3.0])  # bilinear would give 4.0 at the border
    assert np.isnan(got[3]) and np.isnan(got[4])
    mean, std = stack.stats()
    assert (mean[0], std[0]) == (0.0, 1.0)  # one-hot encoded, never standardised


# ---- class lists -----------------------------------------------------------------------------------
def test_training_classes_are_the_codes_at_the_records():
    assert categories.training_classes(np.array([5, 1, np.nan, 3, 1], np.float32), "lc") == (1.0, 3.0, 5.0)
    with pytest.raises(CovariateError, match=r"Categorical covariate 'lc' has no value at any training record"):
        categories.training_classes(np.full(4, np.nan), "lc")
    with pytest.raises(CovariateError, match=r"'t' is marked categorical but holds 2000 distinct values at the "
                                             r"records \(more than 1024 classes\): it looks like a continuous"):
        categories.training_classes(np.linspace(0, 30, 2000), "t")


def test_class_lists_and_notes_for_a_stack():
    declared = [None, categories.BandClasses("category names", {1.0: "a"}), None]
    env = np.c_[np.linspace(5, 25, 30), np.tile([1.0, 4.0, 2.0], 10), np.tile([1.0, 2.0], 15)]
    classes, notes = categories.covariate_class_lists(["bio1", "biome", "soil"], declared, env)
    assert classes == [None, (1.0, 2.0, 4.0), None]
    assert notes[0] == ("Covariate 'biome' is categorical (category names): read at the nearest cell, never "
                        "interpolated, and one-hot encoded over the 3 class(es) of the training records (1, 2, 4).")
    assert notes[1].startswith("Covariate 'soil' holds only 2 distinct whole numbers")
    assert categories.covariate_class_lists(["bio1"], [None], env[:, :1]) == (None, [])


# ---- the encoding ------------------------------------------------------------------------------------
MEAN = np.array([10.0, 0.0, 500.0], np.float32)
STD = np.array([4.0, 1.0, 250.0], np.float32)
CLASSES = [None, (1.0, 3.0, 5.0), None]


def test_one_hot_of_the_class_and_zeros_for_unseen_or_missing():
    env = np.array([[14.0, 3.0, 750.0], [6.0, 5.0, 250.0], [10.0, 4.0, 500.0], [10.0, np.nan, 500.0]], np.float32)
    feats = enc.encode_covariates(env, MEAN, STD, CLASSES)
    np.testing.assert_array_equal(feats, [[1, 0, 1, 0, 1], [-1, 0, 0, 1, -1],
                                          [0, 0, 0, 0, 0],  # class 4 unseen in training: no class
                                          [0, 0, 0, 0, 0]])  # a missing class: no class either
    assert enc.covariate_features(3, CLASSES) == 5 and enc.covariate_features(3) == 3
    assert enc.input_dim("sin_cos_env", enc.covariate_features(3, CLASSES)) == 9
    # no categorical covariate: the formula of every earlier bundle
    np.testing.assert_array_equal(enc.encode_covariates(env[:2], MEAN, STD, [None] * 3),
                                  enc.standardise_env(env[:2], MEAN, STD))


def test_the_encoding_of_a_stack_places_the_one_hot_block_at_its_covariate():
    rng = np.random.default_rng(3)
    n = 500
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    env = np.c_[rng.normal(10, 4, n), rng.choice([1.0, 2.0, 3.0, 5.0, np.nan], n),
                rng.normal(500, 250, n)].astype(np.float32)
    ref = enc.encode("sin_cos_env", lonlat, env, MEAN, STD, classes=CLASSES)
    assert ref.shape == (n, 4 + 1 + 3 + 1)
    onehot = slice(5, 8)
    expected = (env[:, 1:2] == np.array([1, 3, 5], np.float32)).astype(np.float32)
    np.testing.assert_array_equal(ref[:, onehot], expected)


# ---- the bundle's record -------------------------------------------------------------------------
@pytest.mark.parametrize("covariate, problem", [
    ({"name": "lc", "mean": 0, "std": 1, "classes": [1, 3, 5], "class_names": ["a", "b", ""]}, None),
    ({"name": "lc", "mean": 0, "std": 1, "classes": []}, "non-empty list of distinct numbers"),
    ({"name": "lc", "mean": 0, "std": 1, "classes": [1, 1]}, "non-empty list of distinct numbers"),
    ({"name": "lc", "mean": 0, "std": 1, "classes": ["forest"]}, "classes must be numbers"),
    ({"name": "lc", "mean": 0, "std": 1, "classes": [1, 2], "class_names": ["a"]}, "one name per class (2)"),
])
def test_the_bundles_classes_are_checked(covariate, problem):
    got = categories.classes_problem({"name": "env", "covariates": [covariate]})
    assert got is None if problem is None else problem in got


def test_a_categorical_bundle_is_format_3_and_others_keep_their_version(tmp_path):
    b = fixture_bundle(tmp_path / "env.sinr", "env", n_species=3, covariate_names=("t", "lc"))
    assert format_version_needed(b.meta) == 1 and b.covariate_classes is None
    assert json.loads(zipfile.ZipFile(b.path).read("model.json"))["format_version"] == 1
    b.meta["encoding"]["covariates"][1]["classes"] = [1, 3, 5]
    # the input layer takes 2 features; the classes make 1 + 3
    with pytest.raises(BundleError, match=r"input layer takes 2 features but encoding 'env' with 2 covariates "
                                          r"\(1 of them categorical\) gives 4\."):
        b.validate()
    b.meta["encoding"]["covariates"][1]["classes"] = [7]  # one class: 2 features again
    b.write(tmp_path / "v3.sinr")
    meta = json.loads(zipfile.ZipFile(tmp_path / "v3.sinr").read("model.json"))
    assert meta["format_version"] == 3  # an older plugin refuses it instead of interpolating class codes
    loaded = ModelBundle.load(tmp_path / "v3.sinr")
    assert loaded.covariate_classes == [None, (7.0,)]
    assert "Encoding: env (t, lc: categorical, 1 classes)" in loaded.card()
    b.meta["encoding"]["covariates"][1]["classes"] = [1, 1]
    with pytest.raises(BundleError, match=r"model.json encoding: covariate 'lc': classes must be a non-empty list"):
        b.validate()


def test_unseen_classes_are_counted_and_explained():
    env = np.array([[10.0, 4.0], [11.0, 4.0], [12.0, 1.0], [9.0, 6.0], [9.0, np.nan]], np.float32)
    counts = categories.count_unseen(env, [None, (1.0, 3.0)])
    assert counts == {(1, 4.0): 2, (1, 6.0): 1}
    assert categories.unseen_class_warnings(counts, [None, (1.0, 3.0)], ["t", "lc"]) == [
        "3 location(s) lie in class(es) 4, 6 of categorical covariate 'lc', which no training record had (the "
        "model knows 1, 3): they are encoded as no class, so their predictions there rest on the other covariates."]
