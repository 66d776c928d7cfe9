"""``sinr:model_species``: a model -> the table of its species (codes, names, records, reliability)."""
from __future__ import annotations

from collections import Counter

from qgis.core import (
    QgsFeature,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFeatureSink,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.resources import BUNDLED
from ..core.species_list import COLUMNS, species_rows
from ..qgis_bridge.features import write_features
from .base import SinrAlgorithm, user_errors
from .help_text import ABOUT_SINR, MORE_HELP

_FIELD_TYPES = {int: QVariant.Int, float: QVariant.Double, str: QVariant.String}


def species_fields() -> QgsFields:
    """The table's fields, :data:`~sinr_qgis.core.species_list.COLUMNS` in order."""
    fields = QgsFields()
    for name, kind in COLUMNS:
        fields.append(QgsField(name, _FIELD_TYPES[kind]))
    return fields


class ModelSpeciesAlgorithm(SinrAlgorithm):
    """Every species of a model, one row each, in the model's order."""

    OUTPUT = "OUTPUT"
    N_SPECIES = "N_SPECIES"

    def name(self) -> str:
        return "model_species"

    def displayName(self) -> str:
        return self.tr("List a model's species")

    def group(self) -> str:
        return self.tr("Models")

    def groupId(self) -> str:
        return "models"

    def shortHelpString(self) -> str:
        text = self.tr(
            "<p>Writes a table of the species a model knows, one row per species in the model's "
            "order: what to type in the <i>Species</i> fields of the other tools, and how far each "
            "species' map can be trusted.</p>"
            "<p><b>Input.</b> The model file; empty = the bundled {label} model.</p>"
            "<p><b>Output.</b> A table (no geometry; a CSV, a GeoPackage table or a temporary layer) "
            "with the fields <tt>index</tt> (position in the model), <tt>code</tt>, <tt>name</tt> "
            "(scientific name), <tt>common_name</tt> (empty where the model has none), "
            "<tt>n_train</tt> (training records), <tt>n_cells</tt> (distinct one-degree cells of "
            "those records), <tt>threshold</tt> (the LPT-R presence threshold stored in the model), "
            "<tt>reliability</tt> (good, caution, poor or unknown), <tt>ranges_ap</tt> (agreement "
            "with expert range maps, 0-1, where the model carries it), <tt>lon_min</tt>, "
            "<tt>lat_min</tt>, <tt>lon_max</tt>, <tt>lat_max</tt> (degrees: where most of the "
            "training records are), <tt>summary</tt> and <tt>warning</tt> (plain sentences). A value "
            "the model does not record is empty (NULL), never 0.</p>")
        return text.format(label=BUNDLED.label) + ABOUT_SINR + MORE_HELP

    def initAlgorithm(self, config=None) -> None:
        self.add_model_parameter()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, self.tr("Species of the model"), QgsProcessing.SourceType.TypeVector))
        self.addOutput(QgsProcessingOutputNumber(self.N_SPECIES, self.tr("Number of species")))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        bundle = self.model(parameters, context, feedback)
        fields = species_fields()
        sink, dest_id = self.parameterAsSink(parameters, self.OUTPUT, context, fields, QgsWkbTypes.Type.NoGeometry)
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        rows = species_rows(bundle)
        features = []
        for row in rows:
            feature = QgsFeature(fields)
            feature.setAttributes([row[name] for name, _ in COLUMNS])  # None -> NULL
            features.append(feature)
        with user_errors():
            written = write_features(sink, features, self.tr("The species table"))
        levels = Counter(row["reliability"] for row in rows)
        feedback.pushInfo(self.tr("{} species written; reliability: {}").format(
            written, ", ".join(f"{n} {level}" for level, n in levels.items())))
        return {self.OUTPUT: dest_id, self.N_SPECIES: written}
