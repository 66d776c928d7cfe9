"""The dock's "Covariates" section: which raster layer and band feeds each covariate of an
environmental model.

One row per covariate of the model (its name, a raster layer, a band). Rows are filled by name
from the project's raster layers (``qgis_bridge.covariates.layer_band_candidates``: the rules of
``core.covariate_match``); the user can change any row. The choice is remembered per model for the
session and, once the user changes a row, in the project. Hidden for a coordinate-only model.
"""
from __future__ import annotations

import json

from qgis.core import QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsCollapsibleGroupBox, QgsMapLayerComboBox, QgsRasterBandComboBox
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QWidget

from ..core.bundle import ModelBundle
from ..core.covariates import CovariateRaster
from ..core.encoding import uses_covariates
from ..core.errors import CovariateError
from ..qgis_bridge.covariates import layer_band_candidates, raster_layer_source
from ..qgis_bridge.prediction_layers import KEY_PROPERTY

PROJECT_SCOPE = "sinr_qgis"  # QgsProject entries: covariates/m<model sha256> = {covariate: [layer id, band]}
Choice = dict[str, tuple[str, int]]  # covariate name -> (layer id, band)


class _Row:
    """One covariate: its layer and band combos, and a note saying what keeps it from a prediction."""

    def __init__(self, name: str, parent: QWidget) -> None:
        self.name = name
        self.layer_combo = QgsMapLayerComboBox(parent)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        self.layer_combo.setLayer(None)
        self.layer_combo.setToolTip(f"The raster layer holding covariate {name}")
        self.band_combo = QgsRasterBandComboBox(parent)
        self.band_combo.setToolTip(f"The band of that layer holding covariate {name}")
        self.layer_combo.layerChanged.connect(self._layer_changed)
        self.fields = QWidget(parent)
        line = QHBoxLayout(self.fields)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.layer_combo, 1)
        line.addWidget(self.band_combo)
        self.note = QLabel(parent)
        self.note.setWordWrap(True)
        self.ambiguous: list[str] = []  # the layers that all name this covariate, when no single one does

    def _layer_changed(self, layer: QgsRasterLayer | None) -> None:
        """A layer picked: its band named as the covariate, else the band kept when it has one, else band 1."""
        self.band_combo.setLayer(layer)
        if not isinstance(layer, QgsRasterLayer):
            return
        named = layer_band_candidates([self.name], [layer])[0]
        if len(named) == 1:
            self.band_combo.setBand(named[0][1])
        elif self.band_combo.currentBand() < 1:
            self.band_combo.setBand(1)

    def set(self, layer: QgsRasterLayer | None, band: int = 1) -> None:
        """Show ``layer`` (None: no layer) and its ``band`` (1-based)."""
        self.layer_combo.setLayer(layer)
        self.band_combo.setLayer(layer)
        if layer is not None:
            self.band_combo.setBand(band)

    @property
    def choice(self) -> tuple[str, int] | None:
        layer = self.layer_combo.currentLayer()
        return None if layer is None else (layer.id(), self.band_combo.currentBand())

    def problem(self) -> str:
        """What keeps this row from feeding a prediction ("" when nothing)."""
        layer = self.layer_combo.currentLayer()
        if layer is None:
            if self.ambiguous:
                return f"{len(self.ambiguous)} layers are named {self.name} ({', '.join(self.ambiguous)}): choose one."
            return f"No raster layer of the project is named {self.name}: choose the layer and band that hold it."
        try:
            path, band = raster_layer_source(layer, self.band_combo.currentBand())
            CovariateRaster(path).info(band)  # a readable file, a band with values
        except CovariateError as exc:
            return str(exc)
        return ""


class CovariateRows(QgsCollapsibleGroupBox):
    """The covariate rows of the loaded model (``set_model``) and the mapping they give (``mapping``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Covariates", parent)
        self.setObjectName("SinrCovariates")
        self.setToolTip("The model reads these environmental covariates: choose the raster layer and band of each")
        self._form = QFormLayout(self)
        self._form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.rows: list[_Row] = []
        self._model_key = ""
        self._filling = False  # rows set by the plugin, not by the user
        self._session: dict[str, Choice] = {}  # model key -> the rows' choice, for this session
        self.setVisible(False)
        project = QgsProject.instance()
        project.layersAdded.connect(self._layers_added)
        project.readProject.connect(self._project_read)

    # ---- building ------------------------------------------------------------------------------
    def set_model(self, bundle: ModelBundle) -> None:
        """One row per covariate of ``bundle``: its remembered choice where that layer still exists,
        else the project's layer named as it. No rows (hidden) for a coordinate-only model."""
        for row in self.rows:
            for widget in (row.fields, row.note):
                self._form.removeRow(widget)
        self.rows = []
        names = bundle.covariate_names if uses_covariates(bundle.encoding) else []
        self._model_key = f"covariates/m{bundle.sha256}" if names else ""
        for name in names:
            row = _Row(name, self)
            self._form.addRow(name, row.fields)
            self._form.addRow(row.note)
            row.layer_combo.layerChanged.connect(self._user_changed)
            row.band_combo.bandChanged.connect(self._user_changed)
            self.rows.append(row)
        self.setVisible(bool(names))
        self.setCollapsed(False)
        self._restore()

    def _restore(self) -> None:
        """The remembered choice (this session, else the project's), then matching by name."""
        remembered = self._session.get(self._model_key) or self._project_choice()
        project = QgsProject.instance()
        self._filling = True
        try:
            for row in self.rows:
                layer_id, band = remembered.get(row.name, ("", 1))
                layer = project.mapLayer(layer_id) if layer_id else None
                row.set(layer if isinstance(layer, QgsRasterLayer) else None, band)
        finally:
            self._filling = False
        self._fill_empty_rows()

    def _fill_empty_rows(self) -> None:
        """Rows without a layer get the project's one raster band named as their covariate."""
        empty = [row for row in self.rows if row.layer_combo.currentLayer() is None]
        if empty:
            layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
                      if isinstance(lyr, QgsRasterLayer) and not lyr.customProperty(KEY_PROPERTY)]
            found = layer_band_candidates([row.name for row in empty], layers)
            self._filling = True
            try:
                for row, candidates in zip(empty, found):
                    # two different bands named alike: the user chooses (never a silent guess)
                    row.ambiguous = [lyr.name() for lyr, _ in candidates] if len(candidates) > 1 else []
                    if len(candidates) == 1:
                        row.set(*candidates[0])
            finally:
                self._filling = False
        self._remember(to_project=False)
        self._show_notes()

    def _layers_added(self, *_layers) -> None:
        # after the event: the combos' layer models learn of the new layers from the same signal
        QTimer.singleShot(0, self._fill_empty_rows)

    def _project_read(self, *_args) -> None:
        """Another project: its layers (and remembered choice) replace the previous one's."""
        self._session.clear()
        if self.rows:
            self._restore()

    # ---- remembering ---------------------------------------------------------------------------
    def _user_changed(self, *_args) -> None:
        if self._filling:
            return
        for row in self.rows:
            row.ambiguous = []
        self._remember(to_project=True)
        self._show_notes()

    def _remember(self, to_project: bool) -> None:
        if not self._model_key:
            return
        choice = {row.name: row.choice for row in self.rows if row.choice is not None}
        self._session[self._model_key] = choice
        if to_project:  # only the user's own choice: matching by name alone never marks the project changed
            QgsProject.instance().writeEntry(PROJECT_SCOPE, self._model_key, json.dumps(choice))

    def _project_choice(self) -> Choice:
        text, ok = QgsProject.instance().readEntry(PROJECT_SCOPE, self._model_key, "")
        try:
            stored = json.loads(text) if ok and text else {}
            return {str(k): (str(v[0]), int(v[1])) for k, v in stored.items()}
        except (ValueError, TypeError, IndexError, AttributeError):
            return {}  # an entry this version did not write: match by name instead

    # ---- results -------------------------------------------------------------------------------
    def _show_notes(self) -> None:
        for row in self.rows:
            text = row.problem()
            row.note.setText(f"<i>{text}</i>" if text else "")
            row.note.setVisible(bool(text))

    def mapping(self) -> dict[str, tuple[str, int]]:
        """{covariate name: (raster file path, 1-based band)} of every row, the model's explicit
        mapping (``core.covariate_match.match_covariates``); {} for a coordinate-only model.

        Raises ``CovariateError`` naming the covariates without a layer, or what is wrong with a
        chosen layer (not a file raster, such as a WMS layer; an unreadable file; a missing band)."""
        missing = [row.name for row in self.rows if row.layer_combo.currentLayer() is None]
        if missing:
            raise CovariateError(f"The model needs covariate(s) {', '.join(missing)}, and no raster layer is chosen "
                                 "for them. Add the rasters to the project and choose a layer and band for each under "
                                 "“Covariates” in the SINR dock.")
        problems = [f"{row.name}: {text}" for row, text in ((row, row.problem()) for row in self.rows) if text]
        if problems:
            raise CovariateError(" ".join(problems))
        return {row.name: raster_layer_source(row.layer_combo.currentLayer(), row.band_combo.currentBand())
                for row in self.rows}
