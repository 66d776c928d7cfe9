"""core.evaluation and core.eval_report: species matching, cell labels, weights, warping, report files."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from osgeo import gdal
from sklearn.metrics import average_precision_score

from sinr_qgis.core import eval_report, evaluation
from sinr_qgis.core.bundle import Species
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.raster_io import write_geotiff

SPECIES = [Species(0, "acerrubr", "Acer rubrum", 10), Species(1, "queralba", "Quercus alba", 5),
           Species(2, "pinutaed", "Pinus taeda", 7)]


def test_match_species_by_code_name_or_label_ignoring_case_and_spaces():
    m = evaluation.match_species(["ACERRUBR", " quercus  ALBA ", "Pinus taeda (pinutaed)", "Acer rubrum",
                                  "", None, "Abies imaginaria", "acerrubr"], SPECIES)
    assert {k: v.code for k, v in m.matched.items()} == {
        "ACERRUBR": "acerrubr", " quercus  ALBA ": "queralba", "Pinus taeda (pinutaed)": "pinutaed",
        "Acer rubrum": "acerrubr"}
    assert m.unmatched == ["Abies imaginaria"]  # "acerrubr" repeats "ACERRUBR": listed once
    assert "'Abies imaginaria'" in m.unmatched_text()


def test_match_species_by_code_only_for_the_benchmark_protocol():
    twins = [*SPECIES, Species(3, "ACERRUBR ", "Acer rubrum var. x", 1)]  # a code equal to another's key
    m = evaluation.match_species([" QUERALBA", "Acer rubrum", "pinutaed (pinutaed)", "pinutaeda", "acerrubr"],
                                 twins, by_code_only=True)
    assert {k: v.code for k, v in m.matched.items()} == {" QUERALBA": "queralba"}
    # names and labels do not match by code; a near code is not suggested; two fitting codes: none
    assert m.unmatched == ["Acer rubrum", "pinutaed (pinutaed)", "pinutaeda", "acerrubr"]
    assert m.close == {} and [s.index for s in m.ambiguous["acerrubr"]] == [0, 3]


def test_area_weights_are_cos_latitude_on_lon_lat_grids_only():
    grid = Grid.from_pixel_size((-10, 0, 10, 80), "EPSG:4326", 20.0)
    np.testing.assert_allclose(evaluation.area_weights(grid), np.cos(np.radians([70, 50, 30, 10])))
    assert evaluation.area_weights(Grid.from_pixel_size((0, 0, 1000, 1000), "EPSG:5070", 100)) is None


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_warp_averages_a_finer_raster_and_keeps_nodata(tmp_path):
    fine = Grid.from_pixel_size((0, 0, 4, 2), "EPSG:4326", 0.5)  # 8 x 4
    values = np.arange(32, dtype=np.float32).reshape(4, 8)
    values[0, 0:2] = values[1, 0:2] = np.nan  # the whole top-left coarse cell is nodata
    path = tmp_path / "fine.tif"
    write_geotiff(path, fine, values)
    coarse = Grid.from_pixel_size((0, 0, 4, 2), "EPSG:4326", 1.0)
    out = evaluation.warp_band_to_grid(str(path), 1, coarse)
    expected = np.nanmean(values.reshape(2, 2, 4, 2).swapaxes(1, 2).reshape(2, 4, 4), axis=2)
    assert math.isnan(out[0, 0])
    np.testing.assert_allclose(out[~np.isnan(out)], expected[~np.isnan(expected)], rtol=1e-6)
    same = evaluation.warp_band_to_grid(str(path), 1, fine)  # already on the grid: read as it is
    np.testing.assert_array_equal(np.isnan(same), np.isnan(values))


def test_prediction_bands_read_species_and_skip_binary_bands(tmp_path):
    grid = Grid.from_pixel_size((0, 0, 2, 2), "EPSG:4326", 1.0)
    path = tmp_path / "Quercus alba.tif"
    write_geotiff(path, grid, np.zeros((3, 2, 2)), band_names=["Acer rubrum", "x", "Acer rubrum present"],
                  band_metadata=[{"SPECIES_CODE": "acerrubr", "SPECIES_NAME": "Acer rubrum"}, {},
                                 {"SPECIES_CODE": "acerrubr", "VALUE": "binary"}])
    bands = evaluation.prediction_bands(str(path))
    assert [(b, s.code, s.name) for b, s in bands] == [(1, "acerrubr", "Acer rubrum"), (2, "x", "x")]
    one = tmp_path / "Quercus alba.tif"
    write_geotiff(one, grid, np.zeros((2, 2)), band_names=[""])
    assert evaluation.prediction_bands(str(one))[0][1].code == "Quercus alba"


def test_evaluate_species_matches_sklearn_with_weights_and_reports_probability_thresholds():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    s = np.round(rng.normal(size=500) + 1.5 * y, 1)  # ties
    w = rng.random(500) + 0.1
    r = evaluation.evaluate_species(SPECIES[0], "Acer rubrum", y, s, w, logits=True)
    assert r.ap == pytest.approx(average_precision_score(y, s, sample_weight=w), abs=1e-12)
    assert r.prevalence == pytest.approx(w[y].sum() / w.sum())
    assert (r.n_cells, r.n_presence) == (500, y.sum())
    assert 0 < r.threshold < 1 and r.iou <= r.f1
    assert r.curve_precision.size == r.curve_recall.size <= 402
    assert r.row()["ap"] == pytest.approx(round(100 * r.ap, 4))
    assert evaluation.map_percent([r, r]) == round(100 * r.ap, 2)


def test_png_and_svg_outputs(tmp_path):
    values = np.linspace(0, 1, 12).reshape(3, 4)
    values[0, 0] = np.nan
    png = eval_report.png_bytes(eval_report.colour_ramp(values))
    gdal.FileFromMemBuffer("/vsimem/t.png", png)
    ds = gdal.Open("/vsimem/t.png")
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (4, 3, 4)
    assert ds.GetRasterBand(4).ReadAsArray()[0, 0] == 0 and ds.GetRasterBand(1).ReadAsArray()[2, 3] == 253
    ds = None
    gdal.Unlink("/vsimem/t.png")
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True  # two presence cells in the middle row
    svg = eval_report.map_thumbnail_svg(values, mask, max_side=40)
    assert svg.startswith("<svg") and "data:image/png;base64," in svg
    segments = set(re.findall(r"M(-?[\d.]+),(-?[\d.]+)([VH])(-?[\d.]+)", svg))
    # 10 px per cell: the 2 x 1 block's outline, as 2 vertical and 4 horizontal cell edges
    assert segments == {("10.0", "10.0", "V", "20.0"), ("30.0", "10.0", "V", "20.0"),
                        ("10.0", "10.0", "H", "20.0"), ("20.0", "10.0", "H", "30.0"),
                        ("10.0", "20.0", "H", "20.0"), ("20.0", "20.0", "H", "30.0")}
    # a grid larger than the thumbnail is outlined at the thumbnail's resolution (bounded size)
    big = np.zeros((300, 600), bool)
    big[:, 300:] = True
    big_svg = eval_report.map_thumbnail_svg(np.zeros((300, 600)), big, max_side=100)
    assert 'width="100" height="50"' in big_svg
    # the range's west edge at x = 50 px, and its east edge where the grid ends (x = 100 px)
    assert set(re.findall(r"M(-?[\d.]+),(-?[\d.]+)V", big_svg)) == {
        (x, f"{r:.1f}") for x in ("50.0", "100.0") for r in range(50)}
    assert "<path" not in eval_report.map_thumbnail_svg(values, max_side=40)
    curve = eval_report.pr_curve_svg(np.array([0.5, 1.0, 1.0]), np.array([1.0, 0.5, 0.0]), title="AP 75 %")
    assert curve.count("<path") == 1 and "AP 75 %" in curve


def test_html_report_and_csv(tmp_path):
    y = np.array([1, 0, 1, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    results = [evaluation.evaluate_species(sp, sp.name, y, s) for sp in SPECIES[:2]]
    page = eval_report.write_html_report(tmp_path / "r.html", results, title="T <&>",
                                         summary=[("Model", "m")], thumbnails={"acerrubr": "<svg id='thumb'></svg>"})
    text = page.read_text()
    assert "T &lt;&amp;&gt;" in text and text.count('class="pr-curve"') == 2 and "id='thumb'" in text
    rows = eval_report.write_csv(tmp_path / "r.csv", results).read_text().splitlines()
    assert rows[0] == ",".join(evaluation.TABLE_COLUMNS) and rows[1].startswith("acerrubr,Acer rubrum,")
