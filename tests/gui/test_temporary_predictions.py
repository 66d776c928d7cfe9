"""Saving a project that holds the dock's temporary maps warns and offers to move them next to it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import Qgis, QgsProject, QgsRasterLayer

from sinr_qgis.gui.temporary_predictions import TemporaryPredictionsCheck
from sinr_qgis.toolbelt import prediction_folder
from sinr_qgis.toolbelt.prediction_folder import PredictionFolder


def _write_tif(path: Path, value: float) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 4, 3, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((-80.0, 1.0, 0.0, 45.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.full((3, 4), value, dtype=np.float32))
    ds = None
    return path


@pytest.fixture
def project_with_maps(tmp_path, monkeypatch, qgis_iface):
    """The current project with two dock maps in the managed folder and one raster of the user's."""
    root = tmp_path / "sinr_qgis_predictions"
    monkeypatch.setattr(prediction_folder, "predictions_root", lambda: root)
    session = PredictionFolder(root)
    project = QgsProject.instance()
    layers = [QgsRasterLayer(str(_write_tif(session.path / "1.tif", 0.25)), "Acer rubrum", "gdal"),
              QgsRasterLayer(str(_write_tif(session.path / "2_quealba.tif", 0.5)), "Quercus alba · My trees", "gdal"),
              QgsRasterLayer(str(_write_tif(tmp_path / "elevation.tif", 7.0)), "elevation", "gdal")]
    assert all(lyr.isValid() for lyr in layers)
    project.addMapLayers(layers)
    qgis_iface.messageBar().clear_messages()
    yield project, layers
    project.removeMapLayers([lyr.id() for lyr in layers])
    project.setFileName("")
    session.close([])


def test_saving_warns_and_moves_the_maps_next_to_the_project(project_with_maps, tmp_path, qgis_iface):
    project, (maple, oak, elevation) = project_with_maps
    check = TemporaryPredictionsCheck(qgis_iface)
    try:
        (tmp_path / "work").mkdir()
        qgz = tmp_path / "work" / "forest survey.qgz"
        ids = (maple.id(), oak.id())
        assert project.write(str(qgz))  # projectSaved -> check()
        assert check.message_item is not None and check.move_button is not None
        text = check.message_item.text()
        assert "uses 2 SINR predictions (Acer rubrum, Quercus alba · My trees)" in text
        assert "emptied when QGIS closes" in text and "elevation" not in text
        assert check.move_button.objectName() == "SinrMovePredictionsButton"

        check.move_button.click()

        folder = tmp_path / "work" / "forest_survey_sinr_predictions"
        assert sorted(p.name for p in folder.iterdir()) == ["Acer_rubrum.tif", "Quercus_alba_My_trees.tif"]
        assert Path(maple.source()) == folder / "Acer_rubrum.tif" and (maple.id(), oak.id()) == ids
        assert maple.isValid() and maple.dataProvider().sample(maple.extent().center(), 1)[0] == 0.25
        assert Path(elevation.source()) == tmp_path / "elevation.tif"  # the user's data is not touched
        assert check.temporary_layers() == [] and check.message_item is None
        assert any("Moved 2 predictions" in m and "saved the project" in m
                   for m in qgis_iface.messageBar().get_messages(Qgis.Success))
        # the saved project file reads the copies
        reread = QgsProject()
        assert reread.read(str(qgz))
        sources = {lyr.name(): Path(lyr.source()) for lyr in reread.mapLayers().values()}
        assert sources["Acer rubrum"] == folder / "Acer_rubrum.tif"
        assert sources["Quercus alba · My trees"] == folder / "Quercus_alba_My_trees.tif"
        reread.clear()
        assert check.check() == 0  # nothing temporary is left to warn about
    finally:
        check.close()


def test_a_project_not_saved_as_a_file_is_warned_without_a_move(project_with_maps, qgis_iface):
    check = TemporaryPredictionsCheck(qgis_iface)
    try:
        assert check.target_folder() is None
        assert check.check() == 2
        assert "Save the project as a file" in check.message_item.text() and check.move_button is None
        assert check.move_next_to_project() == []
    finally:
        check.close()


def test_the_plugin_watches_project_saves_until_unloaded(project_with_maps, tmp_path, qgis_iface,
                                                         qgis_processing):
    import sinr_qgis

    project, _layers = project_with_maps
    plugin = sinr_qgis.classFactory(qgis_iface)
    plugin.initGui()
    try:
        check = plugin.temporary_check
        assert isinstance(check, TemporaryPredictionsCheck)
        assert project.write(str(tmp_path / "a.qgz"))
        assert check.message_item is not None
    finally:
        plugin.unload()
    assert plugin.temporary_check is None
    check.message_item = None
    assert project.write(str(tmp_path / "b.qgz"))
    assert check.message_item is None  # disconnected at unload
