"""One training-input path: the Train dialog and sinr:train_model turn the same inputs into the
same runner options, labels and warnings (qgis_bridge.training_inputs), and log events alike."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import processing
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import Qt

from sinr_qgis.core.errors import CovariateError, SinrError, TrainingInputError
from sinr_qgis.core.occurrences import ID_NAMES, NAME_NAMES
from sinr_qgis.core.training.options import LOCAL_EVIDENCE_COVARIATES, TrainOptions, checkpoint_path, sinr_path
from sinr_qgis.gui.train_dialog import TrainDialog
from sinr_qgis.processing import train_model
from sinr_qgis.processing.train_model import TrainModelAlgorithm
from sinr_qgis.qgis_bridge.training_inputs import (
    ENCODING_CHOICES,
    RASTERS_IGNORED,
    TrainingRequest,
    guess_species_field,
    training_inputs,
)
from sinr_qgis.tasks.train_task import TrainTask
from tests.helpers.train_helpers import isolated_model_list, lonlat_points, point_layer  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated_model_list")

# the same small recipe in both: dialog widgets and algorithm parameters
RECIPE = {"EPOCHS": 3, "WIDTH": 32, "DEPTH": 1, "BATCH_SIZE": 64, "CAP": 7, "SEED": 5, "MIN_RECORDS": 2}


class _Captured(SinrError):
    """Raised by the stand-in runner once it has seen the options (nothing is trained)."""


class _Feedback(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def pushInfo(self, info: str) -> None:
        self.infos.append(info)

    def pushWarning(self, warning: str) -> None:
        self.warnings.append(warning)


def _raster(path: Path, bands: int = 1) -> Path:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 36, 18, bands, gdal.GDT_Float32)
    ds.SetGeoTransform((-180.0, 10.0, 0, 90.0, 0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(bands):
        ds.GetRasterBand(b + 1).WriteArray(np.arange(18 * 36, dtype=np.float32).reshape(18, 36) * (b + 1))
    ds = None
    return path


@pytest.fixture
def project(qgis_new_project, tmp_path):
    """A project with the observation layer and one covariate raster (both in the dialog's lists)."""
    layer = point_layer("EPSG:3857", n_per_species=10)
    raster = QgsRasterLayer(str(_raster(tmp_path / "bio.tif", 2)), "bio")
    assert raster.isValid()
    QgsProject.instance().addMapLayers([layer, raster])
    yield layer, raster
    QgsProject.instance().removeAllMapLayers()


def _run_algorithm(monkeypatch, params: dict, feedback: QgsProcessingFeedback, seen: dict) -> None:
    """Run sinr:train_model up to the runner, which records what it is handed into ``seen`` and
    stops the run (no torch needed: the interpreter check answers for a Python that has it)."""

    def runner(opts, python, **kw):
        text = Path(opts.data).read_text(encoding="utf-8") if "sinr_train_" in opts.data else ""
        seen.update(opts=dataclasses.asdict(opts), text=text, labels=(kw["input_label"], kw["species_label"]))
        raise _Captured("captured")

    monkeypatch.setattr(train_model, "check_training_available", lambda python: {"python": "3", "torch": "2"})
    monkeypatch.setattr(train_model, "run_training", runner)
    processing.run(TrainModelAlgorithm(), params, feedback=feedback)


def _algorithm_inputs(monkeypatch, params: dict) -> tuple[dict, str, list[str], list[str]]:
    """What sinr:train_model hands the runner: (options as a dict, exported CSV text or '', infos, warnings)."""
    feedback = _Feedback()
    seen: dict = {}
    with pytest.raises(QgsProcessingException, match=r"^captured$"):
        _run_algorithm(monkeypatch, params, feedback, seen)
    seen["opts"]["labels"] = seen["labels"]
    return seen["opts"], seen["text"], feedback.infos, feedback.warnings


def _dialog_inputs(dlg: TrainDialog, workdir: Path) -> tuple[dict, str, list[str]]:
    opts, label, species_label = dlg.build_options(workdir)
    text = Path(opts.data).read_text(encoding="utf-8") if Path(opts.data).parent == workdir else ""
    return dataclasses.asdict(opts) | {"labels": (label, species_label)}, text, list(dlg.warnings)


def _set_recipe(dlg: TrainDialog) -> None:
    for key, spin in (("EPOCHS", dlg.epochs), ("WIDTH", dlg.width_spin), ("DEPTH", dlg.depth),
                      ("BATCH_SIZE", dlg.batch_size), ("CAP", dlg.cap), ("SEED", dlg.seed),
                      ("MIN_RECORDS", dlg.min_records)):
        spin.setValue(RECIPE[key])


def _check_rasters(dlg: TrainDialog, *layers: QgsRasterLayer) -> None:
    for i in range(dlg.covariates.count()):
        if dlg.covariates.itemData(i) in {lyr.id() for lyr in layers}:
            dlg.covariates.setItemCheckState(i, Qt.CheckState.Checked)


@pytest.mark.parametrize("choice, encoding, with_rasters", [
    (0, "sin_cos_env", True), (1, "sin_cos", False), (2, "env", True), (3, "sin_cos_env", True),
    (4, "spherical_harmonics", False)])
def test_a_layer_with_covariates_gives_the_same_options_both_ways(qgis_processing, qtbot, project, tmp_path,
                                                                  monkeypatch, choice, encoding, with_rasters):
    layer, raster = project
    out = tmp_path / "same"  # no suffix: both add .sinr
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.layer_combo.setLayer(layer)
    dlg.species_field.setField("taxon")
    dlg.source_field.setField("dataset")
    _check_rasters(dlg, raster)
    dlg.encoding.setCurrentIndex(choice)
    _set_recipe(dlg)
    dlg.pos_weight.setValue(2048)
    dlg.land_absences.setChecked(False)
    dlg.threads.setValue(2)
    dlg.model_name.setText("Same model")
    dlg.output.setFilePath(str(out))
    (tmp_path / "dialog").mkdir()
    from_dialog, dialog_csv, dialog_warnings = _dialog_inputs(dlg, tmp_path / "dialog")
    from_algorithm, algorithm_csv, infos, algorithm_warnings = _algorithm_inputs(monkeypatch, {
        "INPUT": layer, "SPECIES_FIELD": "taxon", "SOURCE_FIELD": "dataset", "COVARIATES": [raster.id()],
        "ENCODING": choice, **RECIPE, "POS_WEIGHT": 2048, "LAND_ABSENCES": False, "THREADS": 2,
        "MODEL_NAME": "Same model", "OUTPUT": str(out)})
    # the exported observations are the same file (in each one's own temporary folder)
    assert dialog_csv == algorithm_csv and dialog_csv.count("\n") == 31  # header + 30 points
    assert from_dialog.pop("data") != from_algorithm.pop("data")
    assert from_dialog == from_algorithm
    assert from_dialog == {
        "out": str(tmp_path / "same.sinr"), "loss": "an_full", "cap": 7, "epochs": 3, "batch_size": 64, "width": 32,
        "depth": 1, "seed": 5, "min_records": 2, "encoding": encoding,
        "covariates": [str(tmp_path / "bio.tif")] if with_rasters else None, "categorical": None,
        "species_column": "species", "lat_column": None, "lon_column": None, "source_column": "source",
        "name": "Same model", "resume": False, "threads": 2, "pos_weight": 2048.0, "pseudo_negatives": "sphere",
        "negatives": "source_site",  # chosen by the options for a layer with a source field
        # the dialog's box and the algorithm's parameter left out: on for a coordinates model only
        "local_evidence": not with_rasters, "labels": ("observations", "'taxon'")}
    # a coordinates-only choice with rasters: the same warning from both, never a silent drop
    assert dialog_warnings == algorithm_warnings == ([] if with_rasters else [RASTERS_IGNORED])
    assert "observations: 30 of 30 points exported." in infos


def test_a_file_with_named_columns_gives_the_same_options_both_ways(qgis_processing, qtbot, project, tmp_path,
                                                                    monkeypatch):
    ll, sp, src = lonlat_points(10)
    data = tmp_path / "obs.csv"
    data.write_text("x;y;taxon;survey\n" + "".join(f"{a};{b};{s};{d}\n" for (a, b), s, d in zip(ll, sp, src)))
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.use_file.setChecked(True)
    assert all(w.isEnabled() for w in (dlg.lat_column, dlg.lon_column)) and not dlg.layer_combo.isEnabled()
    dlg.file_widget.setFilePath(str(data))
    for edit, text in ((dlg.species_column, "taxon"), (dlg.source_column, "survey"), (dlg.lat_column, "y"),
                       (dlg.lon_column, "x")):
        edit.setText(text)
    _set_recipe(dlg)
    dlg.threads.setValue(3)
    dlg.output.setFilePath(str(tmp_path / "file.sinr"))
    from_dialog, _, dialog_warnings = _dialog_inputs(dlg, tmp_path)
    from_algorithm, _, _, algorithm_warnings = _algorithm_inputs(monkeypatch, {
        "INPUT_FILE": str(data), "FILE_SPECIES_COLUMN": "taxon", "FILE_SOURCE_COLUMN": "survey",
        "FILE_LAT_COLUMN": "y", "FILE_LON_COLUMN": "x", **RECIPE, "THREADS": 3, "OUTPUT": str(tmp_path / "file.sinr")})
    assert from_dialog == from_algorithm and dialog_warnings == algorithm_warnings == []
    assert {k: from_dialog[k] for k in ("data", "species_column", "source_column", "lat_column", "lon_column",
                                        "threads", "pos_weight", "pseudo_negatives", "encoding", "local_evidence",
                                        "labels")} == {
        "data": str(data), "species_column": "taxon", "source_column": "survey", "lat_column": "y",
        "lon_column": "x", "threads": 3, "pos_weight": "species", "pseudo_negatives": "land",
        "encoding": "spherical_harmonics", "local_evidence": True, "labels": ("obs.csv", "species")}


def test_the_dialogs_choices_are_the_algorithms():
    alg = TrainModelAlgorithm()
    alg.initAlgorithm()
    assert alg.parameterDefinition("ENCODING").options() == [label for label, _value in ENCODING_CHOICES]
    # new choices last: a script's ENCODING=1..3 keeps its meaning; automatic (0) is the default
    assert [value for _label, value in ENCODING_CHOICES] == [None, "sin_cos", "env", "sin_cos_env",
                                                             "spherical_harmonics"]
    assert alg.parameterDefinition("ENCODING").defaultValue() == 0
    assert alg.parameterDefinition("ADD_LOCAL_EVIDENCE").defaultValue() is True


def test_local_evidence_asked_for_with_covariates_is_refused_both_ways(qgis_processing, qtbot, project, tmp_path,
                                                                      monkeypatch):
    layer, raster = project
    params = {"INPUT": layer, "SPECIES_FIELD": "taxon", "COVARIATES": [raster.id()], "OUTPUT": str(tmp_path / "m")}
    seen: dict = {}
    with pytest.raises(QgsProcessingException) as err:
        _run_algorithm(monkeypatch, params | {"ADD_LOCAL_EVIDENCE": True}, _Feedback(), seen)
    assert str(err.value) == LOCAL_EVIDENCE_COVARIATES and seen == {}  # before the runner
    assert [p.name for p in tmp_path.iterdir()] == ["bio.tif"]  # nothing exported or written
    # asked for, with rasters a coordinates-only choice drops: allowed; asked not to: off
    for extra, wanted in (({"ADD_LOCAL_EVIDENCE": True, "ENCODING": 1}, True),
                          ({"ADD_LOCAL_EVIDENCE": False, "COVARIATES": []}, False)):
        assert _algorithm_inputs(monkeypatch, params | extra)[0]["local_evidence"] is wanted, extra
    # the dialog never asks for it with covariates (the box is off); a request that does is refused alike
    with pytest.raises(TrainingInputError, match=f"^{re.escape(LOCAL_EVIDENCE_COVARIATES)}$"):
        training_inputs(TrainingRequest(output=str(tmp_path / "m"), layer=layer, species_field="taxon",
                                        rasters=[raster], local_evidence=True), tmp_path,
                        transform_context=QgsProject.instance().transformContext())


def test_categorical_bands_are_named_the_same_both_ways(qgis_processing, qtbot, project, tmp_path, monkeypatch):
    layer, raster = project
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.layer_combo.setLayer(layer)
    dlg.species_field.setField("taxon")
    _check_rasters(dlg, raster)
    dlg.categorical.setText(" bio_b2, ,bio_b2 ")  # spaces, an empty item and a repeat: one name
    dlg.output.setFilePath(str(tmp_path / "m.sinr"))
    from_dialog = _dialog_inputs(dlg, tmp_path)[0]
    params = {"INPUT": layer, "SPECIES_FIELD": "taxon", "COVARIATES": [raster.id()], "OUTPUT": str(tmp_path / "m")}
    from_algorithm = _algorithm_inputs(monkeypatch, params | {"CATEGORICAL": "bio_b2"})[0]
    assert from_dialog["categorical"] == from_algorithm["categorical"] == ["bio_b2"]
    assert _algorithm_inputs(monkeypatch, params)[0]["categorical"] is None  # none named: GDAL's declarations only
    # a name that is no band of the rasters: refused before anything runs, listing the bands
    dlg.categorical.setText("biome")
    text = "No covariate band is named 'biome'; the covariates are bio_b1, bio_b2. Mark categorical covariates"
    with pytest.raises(CovariateError, match=f"^{text}"):
        dlg.build_options(tmp_path)
    with pytest.raises(QgsProcessingException, match=f"^{text}"):
        _run_algorithm(monkeypatch, params | {"CATEGORICAL": "biome"}, _Feedback(), {})
    # names without any raster: refused, never ignored; with rasters a coordinates-only choice drops
    # (RASTERS_IGNORED), their names go with them
    dlg.categorical.setText("bio_b2")
    dlg.covariates.setItemCheckState(dlg.covariates.findData(raster.id()), Qt.CheckState.Unchecked)
    text = r"Categorical covariates \(bio_b2\) are bands of covariate rasters: add the rasters, or leave"
    with pytest.raises(TrainingInputError, match=f"^{text}"):
        dlg.build_options(tmp_path)
    with pytest.raises(QgsProcessingException, match=f"^{text}"):
        _run_algorithm(monkeypatch, {"INPUT": layer, "SPECIES_FIELD": "taxon", "CATEGORICAL": "bio_b2",
                                     "OUTPUT": str(tmp_path / "m")}, _Feedback(), {})
    dropped, _csv, _infos, warnings = _algorithm_inputs(monkeypatch, params | {"CATEGORICAL": "bio_b2", "ENCODING": 1})
    assert dropped["covariates"] is None and dropped["categorical"] is None and warnings == [RASTERS_IGNORED]


# ---- the species field: the reader's own column names -------------------------------------------
def test_species_field_is_guessed_with_the_readers_names():
    assert guess_species_field(["n", "taxonKey", "scientificName"]) == "scientificName"  # a name before an id
    assert guess_species_field(["SPECIES", "scientificName"]) == "SPECIES"
    assert guess_species_field(["id", "TAXON_ID"]) == "TAXON_ID"
    assert guess_species_field(["taxon", "name", "n"]) is None  # no column the file reader detects
    # every name the reader detects is guessed, names before ids
    for name in NAME_NAMES + ID_NAMES:
        assert guess_species_field(["x", name.upper()]) == name.upper()


def _named_layer(field: str) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"Point?crs=EPSG:4326&field=n:integer&field={field}:string", "gbif", "memory")
    src = point_layer("EPSG:4326", n_per_species=10)
    feats = []
    for f in src.getFeatures():
        f.setFields(layer.fields(), False)
        f.setAttributes([1, src.getFeature(f.id())["taxon"]])
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    return layer


def test_a_species_field_named_as_the_reader_knows_it_is_found_both_ways(qgis_processing, qtbot, tmp_path,
                                                                         monkeypatch, qgis_new_project):
    layer = _named_layer("scientificName")
    QgsProject.instance().addMapLayer(layer)
    try:
        dlg = TrainDialog()
        qtbot.addWidget(dlg)
        dlg.layer_combo.setLayer(layer)
        assert dlg.species_field.currentField() == "scientificName"  # not the first field, 'n'
        opts, _csv, infos, _warnings = _algorithm_inputs(monkeypatch, {"INPUT": layer, "OUTPUT": str(tmp_path / "m")})
        assert opts["labels"] == ("gbif", "'scientificName'") and opts["species_column"] == "species"
        assert any(i.startswith("Species field: 'scientificName' (found by its name") for i in infos), infos
        # a layer with no such field: refused before the run, naming the names looked for
        plain = point_layer(n_per_species=2)
        alg = TrainModelAlgorithm()
        alg.initAlgorithm()
        from qgis.core import QgsProcessingContext

        ok, text = alg.checkParameterValues({"INPUT": plain, "OUTPUT": str(tmp_path / "m.sinr")},
                                            QgsProcessingContext())
        assert not ok and text == (
            "Choose the species field of the observation layer 'observations': the field that holds each point's "
            "species name or code (none of its fields is named species, scientificname, scientific_name, code, "
            "taxon_id, specieskey, taxonkey, taxonid).")
    finally:
        QgsProject.instance().removeAllMapLayers()


# ---- what neither path may do silently ---------------------------------------------------------
def test_resume_without_a_checkpoint_is_refused_both_ways(qgis_processing, qtbot, project, tmp_path, monkeypatch):
    layer, _raster_layer = project
    request = TrainingRequest(output=str(tmp_path / "m"), layer=layer, species_field="taxon", resume=True)
    ctx = QgsProject.instance().transformContext()
    with pytest.raises(TrainingInputError, match=r"^There is no checkpoint to resume for m\.sinr\. Untick Resume"):
        training_inputs(request, tmp_path, transform_context=ctx)
    with pytest.raises(QgsProcessingException, match=r"^There is no checkpoint to resume for m\.sinr"):
        _run_algorithm(monkeypatch, {"INPUT": layer, "SPECIES_FIELD": "taxon", "RESUME": True,
                                     "OUTPUT": str(tmp_path / "m")}, _Feedback(), {})
    assert list(tmp_path.glob("*.csv")) == []  # refused before exporting
    checkpoint_path(tmp_path / "m.sinr").write_bytes(b"x")
    assert training_inputs(request, tmp_path, transform_context=ctx).options.resume is True


def test_a_checked_raster_that_left_the_project_is_refused_not_dropped(qgis_app, qtbot, project, tmp_path):
    layer, raster = project
    dlg = TrainDialog()
    qtbot.addWidget(dlg)
    dlg.layer_combo.setLayer(layer)
    dlg.species_field.setField("taxon")
    _check_rasters(dlg, raster)
    dlg.output.setFilePath(str(tmp_path / "m.sinr"))
    QgsProject.instance().removeMapLayer(raster.id())
    with pytest.raises(CovariateError, match=r"covariate raster layer is missing or invalid"):
        dlg.build_options(tmp_path)
    assert dlg.start() is None and "covariate raster layer is missing" in dlg.message.text()


def test_no_output_and_two_sources_are_refused_with_what_to_do(qgis_app, project, tmp_path):
    layer, _raster_layer = project
    ctx = QgsProject.instance().transformContext()
    with pytest.raises(SinrError, match=r"^Choose where to save the model \(a \.sinr file\)\.$"):
        training_inputs(TrainingRequest(output=" ", layer=layer, species_field="taxon"), tmp_path,
                        transform_context=ctx)
    with pytest.raises(SinrError, match=r"^Give the observations either as a point layer or as a file, not both"):
        training_inputs(TrainingRequest(output="m", layer=layer, data_file="obs.csv"), tmp_path,
                        transform_context=ctx)
    with pytest.raises(SinrError, match=r"^No observations: choose a point layer"):
        training_inputs(TrainingRequest(output="m"), tmp_path, transform_context=ctx)


def test_sinr_suffix():
    assert (sinr_path("a/m"), sinr_path("a/m.SINR"), sinr_path(" a/m.sinr "), sinr_path("")) == (
        "a/m.sinr", "a/m.SINR", "a/m.sinr", "")


# ---- one text per event --------------------------------------------------------------------------
def test_the_task_and_the_algorithm_log_events_in_the_same_words(qgis_app, tmp_path):
    events = [{"event": "start", "n_records": 300, "n_species": 3, "epochs": 2, "start_epoch": 2},
              {"event": "step", "step": 1, "progress": 0.5}, {"event": "epoch", "epoch": 2, "epochs": 2, "loss": 0.25},
              {"event": "done", "out": "m.sinr"}]
    expected = ["Training 300 records of 3 species for 2 epochs, resuming at epoch 2", "Epoch 2/2: loss 0.2500"]
    task = TrainTask(TrainOptions(data="obs.csv", out=str(tmp_path / "m.sinr")), "python3",
                     warnings=[RASTERS_IGNORED])
    feedback = _Feedback()
    for event in events:
        task._on_event(event)
        TrainModelAlgorithm._report(event, feedback)
    assert task.messages == [RASTERS_IGNORED, *expected] and feedback.infos == expected
    assert task.start_event == events[0] and task.warnings == [RASTERS_IGNORED]
