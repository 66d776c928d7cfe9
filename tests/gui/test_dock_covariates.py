"""The dock's "Covariates" section for environmental models: one row per covariate filled by name
from the project's raster layers, the user's choice respected and remembered, and that mapping used
by the canvas prediction (preview included), "What lives here?" and the expert-range comparison;
a covariate without a layer, or a layer that is not a file, named instead of predicting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsCoordinateReferenceSystem, QgsMapSettings, QgsPointXY, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtCore import QSize, Qt

from sinr_qgis.core import products, runtime
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import HELP_PAGE
from sinr_qgis.gui import covariate_rows
from sinr_qgis.gui.dock import SinrDock
from sinr_qgis.qgis_bridge import evaluation as bridge
from sinr_qgis.qgis_bridge import prediction_layers
from sinr_qgis.toolbelt import prediction_folder
from tests.factories import make_bundle
from tests.helpers.evaluate_helpers import ranges_layer
from tests.helpers.prediction_helpers import model_file, read_raster  # noqa: F401
from tests.helpers.settings_helpers import restore_settings  # noqa: F401
from tests.helpers.train_helpers import isolated_model_list  # noqa: F401

RNG = np.random.default_rng(16)
BIO1 = RNG.uniform(0, 30, (10, 10)).astype(np.float32)
BIO12 = RNG.uniform(100, 3000, (10, 10)).astype(np.float32)
CANVAS = (40, 40)  # the map view's pixels over lon -80..-70, lat 35..45 (the rasters' extent)


def _tif(path: Path, bands: list[np.ndarray], names: list[str] | None = None) -> Path:
    """A lon/lat GeoTIFF of 1-degree cells over lon -80..-70, lat 35..45 (band descriptions ``names``)."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 10, 10, len(bands), gdal.GDT_Float32)
    ds.SetGeoTransform((-80.0, 1.0, 0.0, 45.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i, arr in enumerate(bands):
        ds.GetRasterBand(i + 1).WriteArray(arr)
        if names:
            ds.GetRasterBand(i + 1).SetDescription(names[i])
    ds = None
    return path


class _MapView:
    """What the dock reads of the canvas: its map settings (an offscreen canvas keeps a stale size)."""

    def __init__(self) -> None:
        self.settings = QgsMapSettings()
        self.settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
        self.settings.setOutputSize(QSize(*CANVAS))
        self.settings.setExtent(QgsRectangle(-80, 35, -70, 45))

    def mapSettings(self) -> QgsMapSettings:
        return self.settings


@pytest.fixture(scope="module")
def env_model(tmp_path_factory) -> Path:
    """A 3-species model of bio1 and bio12 (random weights)."""
    path = tmp_path_factory.mktemp("env") / "env_dock.sinr"
    make_bundle(path, n_species=3, encoding="env", covariate_names=("bio1", "bio12"), env_mean=[15.0, 1500.0],
                env_std=[8.0, 800.0], seed=16)
    return path


@pytest.fixture
def project_layers():
    """Add raster layers to the project for one test; removed afterwards."""
    added: list[QgsRasterLayer] = []

    def add(path: Path, name: str) -> QgsRasterLayer:
        layer = QgsRasterLayer(str(path), name) if Path(str(path)).exists() else \
            QgsRasterLayer(str(path), name, "wms")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
        added.append(layer)
        return layer

    yield add
    QgsProject.instance().removeMapLayers([lyr.id() for lyr in added])
    project = QgsProject.instance()
    for key in project.entryList(covariate_rows.PROJECT_SCOPE, "covariates"):
        project.removeEntry(covariate_rows.PROJECT_SCOPE, f"covariates/{key}")


@pytest.fixture
def make_dock(qgis_iface, qgis_canvas, restore_settings, isolated_model_list, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(prediction_folder, "predictions_root", lambda: tmp_path / "managed")
    monkeypatch.setattr(products, "PREVIEW_MIN_PIXELS", 1)  # a preview too: it must read the same covariates
    qgis_iface.messageBar().clear_messages()
    docks = []

    def make(model: Path) -> SinrDock:
        d = SinrDock(qgis_iface)
        assert d.choose_model(str(model))
        d.mask_check.setChecked(False)
        d.canvas = _MapView()
        docks.append(d)
        return d

    yield make
    project = QgsProject.instance()
    project.removeMapLayers([lyr.id() for lyr in prediction_layers.dock_prediction_layers()])
    for d in docks:
        d.canvas = qgis_canvas
        d.shutdown()
        d.deleteLater()


def _rows(dock) -> dict[str, tuple[str, int] | None]:
    """Per covariate row: (layer name, band), or None when no layer is chosen."""
    return {r.name: None if r.layer_combo.currentLayer() is None else
            (r.layer_combo.currentLayer().name(), r.band_combo.currentBand()) for r in dock.covariate_rows.rows}


def _predict(dock, qtbot, species: str = "sp001"):
    dock.species_edit.setText(species)
    task = dock.predict_canvas_extent()
    assert task is not None
    qtbot.waitUntil(lambda: dock.task is None, timeout=120_000)
    assert task.error is None
    return task


# ---- filling the rows ----------------------------------------------------------------------------
def test_rows_are_matched_by_band_description(make_dock, env_model, project_layers, tmp_path):
    project_layers(_tif(tmp_path / "climate.tif", [BIO12, BIO1], ["bio12", "bio1"]), "climate")  # the other order
    dock = make_dock(env_model)
    assert dock.covariate_rows.isVisibleTo(dock) and not dock.covariate_rows.isCollapsed()
    assert _rows(dock) == {"bio1": ("climate", 2), "bio12": ("climate", 1)}
    assert dock.covariate_rows.mapping() == {"bio1": (str(tmp_path / "climate.tif"), 2),
                                             "bio12": (str(tmp_path / "climate.tif"), 1)}
    assert [r.note.text() for r in dock.covariate_rows.rows] == ["", ""]


def test_rows_are_matched_by_layer_name_and_layers_added_later_fill_empty_rows(make_dock, env_model,
                                                                                project_layers, tmp_path, qtbot):
    project_layers(_tif(tmp_path / "a.tif", [BIO1]), "BIO1")  # file and band say nothing; the layer's name does
    dock = make_dock(env_model)
    assert _rows(dock) == {"bio1": ("BIO1", 1), "bio12": None}
    project_layers(_tif(tmp_path / "b.tif", [BIO12]), "bio12")
    qtbot.waitUntil(lambda: _rows(dock)["bio12"] is not None, timeout=5000)
    assert _rows(dock) == {"bio1": ("BIO1", 1), "bio12": ("bio12", 1)}


def test_two_layers_of_one_name_are_not_guessed(make_dock, env_model, project_layers, tmp_path):
    project_layers(_tif(tmp_path / "bio1.tif", [BIO1]), "bio1 (10 min)")  # named by its file
    project_layers(_tif(tmp_path / "other.tif", [BIO1 + 1], ["bio1"]), "other")  # named by its band
    project_layers(_tif(tmp_path / "bio12.tif", [BIO12]), "rain")
    dock = make_dock(env_model)
    assert _rows(dock) == {"bio1": None, "bio12": ("rain", 1)}
    assert dock.covariate_rows.rows[0].note.text() == \
        "<i>2 layers are named bio1 (bio1 (10 min), other): choose one.</i>"


def test_a_coordinate_model_has_no_covariate_section(make_dock, env_model, model_file, project_layers,  # noqa: F811
                                                     tmp_path, qtbot):
    project_layers(_tif(tmp_path / "climate.tif", [BIO1, BIO12], ["bio1", "bio12"]), "climate")
    dock = make_dock(env_model)
    assert len(dock.covariate_rows.rows) == 2
    assert dock.choose_model(str(model_file))
    assert dock.covariate_rows.rows == [] and not dock.covariate_rows.isVisibleTo(dock)
    assert dock.covariate_rows.mapping() == {}
    assert _predict(dock, qtbot).covariates is None  # predicts as before


# ---- refusing ------------------------------------------------------------------------------------
def test_an_unmatched_covariate_is_named_and_nothing_is_predicted(make_dock, env_model, project_layers, tmp_path):
    project_layers(_tif(tmp_path / "bio1.tif", [BIO1]), "bio1")
    dock = make_dock(env_model)
    assert dock.covariate_rows.rows[1].note.text() == (
        "<i>No raster layer of the project is named bio12: choose the layer and band that hold it.</i>")
    dock.species_edit.setText("sp001")
    assert dock.predict_canvas_extent() is None and dock.task is None
    message = ("The model needs covariate(s) bio12, and no raster layer is chosen for them. Add the rasters to the "
               "project and choose a layer and band for each under “Covariates” in the SINR dock.")
    assert dock.status_label.text() == message
    assert prediction_layers.dock_prediction_layers() == []
    # "What lives here?" names it too, and lists nothing
    dock.map_tool.canvasClicked.emit(QgsPointXY(-75.5, 40.5), Qt.LeftButton)
    assert dock.species_list.count() == 0
    assert dock.here_label.text() == f"At lat 40.5000, lon -75.5000: {message}"


def test_a_layer_that_is_not_a_file_is_refused(make_dock, env_model, project_layers, tmp_path):
    project_layers(_tif(tmp_path / "bio1.tif", [BIO1]), "bio1")
    tiles = project_layers("type=xyz&url=http://localhost/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0", "bio12")
    dock = make_dock(env_model)
    assert _rows(dock) == {"bio1": ("bio1", 1), "bio12": None}  # never matched automatically
    dock.covariate_rows.rows[1].set(tiles)  # nor when chosen by hand
    dock.species_edit.setText("sp001")
    assert dock.predict_canvas_extent() is None and dock.task is None
    assert dock.status_label.text() == ("bio12: Covariate layer 'bio12' comes from the 'wms' provider; save it as a "
                                        "GeoTIFF first (only file rasters can be read).")


# ---- the user's choice -----------------------------------------------------------------------------
def test_a_manual_change_is_respected_and_remembered(make_dock, env_model, model_file, project_layers,  # noqa: F811
                                                     tmp_path):
    stack = _tif(tmp_path / "stack.tif", [BIO1, BIO12], ["bio1", "bio12"])
    project_layers(stack, "stack")
    other = project_layers(_tif(tmp_path / "rain.tif", [BIO12 * 2]), "rain")
    dock = make_dock(env_model)
    assert _rows(dock) == {"bio1": ("stack", 1), "bio12": ("stack", 2)}
    dock.covariate_rows.rows[1].layer_combo.setLayer(other)  # what a user's pick emits
    assert _rows(dock) == {"bio1": ("stack", 1), "bio12": ("rain", 1)}
    assert dock.covariate_rows.mapping()["bio12"] == (str(tmp_path / "rain.tif"), 1)
    # another model and back (this session): the choice, not the names, decides
    assert dock.choose_model(str(model_file)) and dock.choose_model(str(env_model))
    assert _rows(dock) == {"bio1": ("stack", 1), "bio12": ("rain", 1)}
    # a new dock (as after restarting the plugin) reads it from the project
    key = f"covariates/m{ModelBundle.load(env_model).sha256}"
    assert QgsProject.instance().readEntry(covariate_rows.PROJECT_SCOPE, key, "")[1]
    assert _rows(make_dock(env_model)) == {"bio1": ("stack", 1), "bio12": ("rain", 1)}
    # a multi-band layer picked: the band named as the covariate comes with it
    dock.covariate_rows.rows[1].layer_combo.setLayer(QgsProject.instance().mapLayersByName("stack")[0])
    assert _rows(dock)["bio12"] == ("stack", 2)


# ---- using the mapping -----------------------------------------------------------------------------
def test_the_canvas_prediction_reads_the_mapping(make_dock, env_model, project_layers, qtbot, tmp_path):
    stack = _tif(tmp_path / "stack.tif", [BIO12, BIO1])  # band names say nothing...
    layer = project_layers(stack, "stack")
    dock = make_dock(env_model)
    assert _rows(dock) == {"bio1": None, "bio12": None}
    rows = dock.covariate_rows.rows
    rows[0].set(layer, 2)  # ...so the user maps them
    rows[1].set(layer, 1)
    mapping = {"bio1": (str(stack), 2), "bio12": (str(stack), 1)}
    assert dock.covariate_rows.mapping() == mapping
    task = _predict(dock, qtbot)
    assert task.covariates == mapping and task.preview is not None and task.preview.files
    made, _ = read_raster(task.files[0])
    assert made.shape == (1, 40, 40) and np.isfinite(made).all()
    # exactly the core's prediction of the same grid with the same mapping (same code path, same floats)
    bundle = ModelBundle.load(env_model)
    ref = products.predict_to_geotiff(runtime.Predictor(bundle), task.grid, [bundle.species[1]], tmp_path / "ref.tif",
                                      mask_ocean=False, covariates=mapping).paths[0]
    np.testing.assert_array_equal(made, read_raster(ref)[0])
    # the bands swapped give another map: the mapping, not the band order, decided
    swapped = runtime.predict_grid(runtime.Predictor(bundle), task.grid, [1], mask_ocean=False,
                                   covariates={"bio1": (str(stack), 1), "bio12": (str(stack), 2)})
    assert np.abs(swapped - made).max() > 0.01


def test_what_lives_here_reads_the_mapping(make_dock, env_model, project_layers, tmp_path):
    stack = _tif(tmp_path / "stack.tif", [BIO12, BIO1])
    layer = project_layers(stack, "stack")
    dock = make_dock(env_model)
    dock.covariate_rows.rows[0].set(layer, 2)
    dock.covariate_rows.rows[1].set(layer, 1)
    dock.top_k.setValue(3)
    dock.map_tool.canvasClicked.emit(QgsPointXY(-75.5, 40.5), Qt.LeftButton)  # the centre of cell (row 4, col 4)
    listed = [dock.species_list.item(i).text() for i in range(dock.species_list.count())]
    bundle = ModelBundle.load(env_model)
    env = np.array([[BIO1[4, 4], BIO12[4, 4]]], dtype=np.float64)  # a cell centre: the cell's own values
    probs = runtime.Predictor(bundle).predict_points(np.array([[-75.5, 40.5]]), None, env=env)[0]
    order = [j for j in np.argsort(-probs, kind="stable") if probs[j] >= 0.01]
    assert len(listed) == len(order) > 0
    assert [line.rsplit("  ", 1)[0] for line in listed] == [f"{r + 1}. {bundle.species[j].label}"
                                                            for r, j in enumerate(order)]
    # the scores shown (3 decimals): half the last decimal, plus float32 rounding of another batch shape
    assert [float(line.rsplit("  ", 1)[1]) for line in listed] == pytest.approx([probs[j] for j in order],
                                                                                abs=5e-4 + 1e-6)
    # on land outside the rasters: no covariate value, no list, and the label says why
    dock.map_tool.canvasClicked.emit(QgsPointXY(-85.5, 40.5), Qt.LeftButton)
    assert dock.species_list.count() == 0
    assert dock.here_label.text() == ("At lat 40.5000, lon -85.5000: the model gives no score here (a covariate "
                                      "raster has no value at this point).")


def test_the_range_comparison_reads_the_mapping(make_dock, env_model, project_layers, tmp_path, qtbot):
    stack = _tif(tmp_path / "stack.tif", [BIO12, BIO1])
    layer = project_layers(stack, "stack")
    ranges = ranges_layer(features=[("sp001", [(-78.0, 37.0, -74.0, 42.0)])])
    QgsProject.instance().addMapLayer(ranges)
    try:
        dock = make_dock(env_model)
        panel = dock.compare_panel
        panel.layer_combo.setLayer(ranges)
        panel.field_combo.setField("taxon")
        dock.species_edit.setText("sp001")
        assert panel.compare() is None  # no covariate chosen yet: named, nothing computed
        assert panel.result_label.text().startswith("The model needs covariate(s) bio1, bio12, and no raster")
        dock.covariate_rows.rows[0].set(layer, 2)
        dock.covariate_rows.rows[1].set(layer, 1)
        task = panel.compare()
        qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)
        assert task.error is None and task.covariates == dock.covariate_rows.mapping()
        got = panel.comparison.evaluation
        # the same comparison computed directly with the same mapping: the same code and floats
        copy = bridge.copy_ranges(ranges, "taxon", task.ranges.species)
        ref = bridge.compare_species(runtime.Predictor(ModelBundle.load(env_model)), copy, task.grid,
                                     covariates=task.covariates)[0].evaluation
        assert 0 < got.ap < 1 and (got.ap, got.n_presence) == (ref.ap, ref.n_presence)
    finally:
        panel.remove_outline()
        QgsProject.instance().removeMapLayer(ranges.id())


def test_the_help_says_how_the_dock_maps_covariates():
    page = HELP_PAGE.read_text(encoding="utf-8")
    section = " ".join(page[page.index('id="covariates"'):page.index('id="official"')].split())
    assert "<b>In the dock.</b>" in section and "<i>Covariates</i> section with one row per covariate" in section
    assert "save a web layer (WMS, XYZ) as a GeoTIFF first" in section
