"""``sinr:import_sinr_checkpoint``: an official SINR checkpoint (.pt) -> a ``.sinr`` model bundle.

The conversion runs in the training Python (a child process), through
:func:`sinr_qgis.core.official_import.import_official_checkpoint`, the same call the dock's
"Import SINR checkpoint…" task makes.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from ..core.errors import SinrError
from ..core.official_import import import_official_checkpoint
from ..core.training.options import sinr_path
from ..qgis_bridge.covariates import raster_layer_source
from ..qgis_bridge.model_files import CHECKPOINT_FILTER, MODEL_FILTER, TAXA_FILTER, in_folder, lasting_model_path
from ..toolbelt import model_registry
from ..toolbelt.interpreter import INTERPRETER_FILE_FILTER, training_interpreter
from .base import SinrAlgorithm, user_errors
from .help_text import ABOUT_SINR, MORE_HELP


class ImportCheckpointAlgorithm(SinrAlgorithm):
    """Import an official SINR checkpoint as a model bundle."""

    INPUT = "INPUT"
    TAXA = "TAXA"
    COVARIATES = "COVARIATES"
    PYTHON = "PYTHON"
    MODEL_NAME = "MODEL_NAME"
    OUTPUT = "OUTPUT"
    N_SPECIES = "N_SPECIES"

    def __init__(self) -> None:
        super().__init__()
        self._imported: str | None = None

    def name(self) -> str:
        return "import_sinr_checkpoint"

    def displayName(self) -> str:
        return self.tr("Import SINR checkpoint")

    def group(self) -> str:
        return self.tr("Models")

    def groupId(self) -> str:
        return "models"

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Converts a checkpoint of the official SINR code (Cole et al., ICML 2023; github.com/elijahcole/sinr), "
            "such as the paper's pretrained models of 47,375 species, into a <tt>.sinr</tt> model bundle for the "
            "prediction tools and the dock. Every kind the official code saves: ResidualFCNet and LinNet networks "
            "reading the location (<tt>sin_cos</tt>), WorldClim covariates (<tt>env</tt>) or both "
            "(<tt>sin_cos_env</tt>).</p>"
            "<p><b>Names</b> (optional): the SINR web app's names file (id, tab, name; no header), iNaturalist's "
            "<tt>taxa.csv</tt>, GBIF's <tt>Taxon.tsv</tt> or a CSV with taxon id and name columns; the layout is "
            "read from the content. Without a table the taxon ids are the species names. The log says how many "
            "classes the table named.</p>"
            "<p><b>Covariate rasters</b> (<tt>env</tt> and <tt>sin_cos_env</tt> checkpoints only): the global "
            "WorldClim 2.1 rasters at 5 arc-minutes, unchanged: elevation (<tt>wc2.1_5m_elev.zip</tt>) and bio1 "
            "... bio19 (<tt>wc2.1_5m_bio.zip</tt>) from worldclim.org, in any order (their WorldClim names put "
            "them in the official order: elevation, then bio1 ... bio19). The import computes from them what the "
            "official code computed: each raster's mean and standard deviation over its valid cells (values below "
            "-1e6 are missing, as in the official preparation; a declared nodata above that counts as a value, as "
            "it did there). The model then reads them exactly as the official code did: standardised values "
            "rounded to float16, missing cells (the sea) 0 after standardising, bilinear sampling with the grid's "
            "first and last cells centred on -180/180 and 90/-90. Predict with the same rasters, in the model's "
            "order (its details list them).</p>"
            "<p><b>Requirements.</b> The conversion runs in a separate Python with PyTorch (Advanced: <i>Python "
            "with PyTorch</i>; default: the plugin setting, e.g. the Python 'Set up PyTorch for me' made). The "
            "checkpoint is opened there with <tt>torch.load(weights_only=True)</tt>: no code stored in it can "
            "run.</p>"
            "<p><b>Output.</b> The model bundle, added to the dock's model list (a temporary output is saved to "
            "the plugin's models folder instead, so that it lasts).</p>") + ABOUT_SINR + MORE_HELP

    def initAlgorithm(self, config=None) -> None:
        file = QgsProcessingParameterFile.Behavior.File
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT, self.tr("Official SINR checkpoint (.pt)"), behavior=file, fileFilter=CHECKPOINT_FILTER))
        self.addParameter(QgsProcessingParameterFile(
            self.TAXA, self.tr("Species names table (optional)"), behavior=file, fileFilter=TAXA_FILTER,
            optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.COVARIATES, self.tr("Covariate rasters (env models: WorldClim 2.1)"),
            QgsProcessing.SourceType.TypeRaster, optional=True))
        advanced = [
            QgsProcessingParameterFile(self.PYTHON, self.tr("Python interpreter with PyTorch (empty: plugin "
                                                            "setting)"), behavior=file,
                                       fileFilter=INTERPRETER_FILE_FILTER, optional=True),
            QgsProcessingParameterString(self.MODEL_NAME, self.tr("Model name (default: the file name)"),
                                         optional=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Model bundle"), fileFilter=MODEL_FILTER))
        self.addOutput(QgsProcessingOutputNumber(self.N_SPECIES, self.tr("Species in the model")))

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        checkpoint = self.parameterAsFile(parameters, self.INPUT, context)
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        out = sinr_path(out)
        if in_folder(out, QgsProcessingUtils.tempFolder()):
            # QGIS deletes its temporary folder on exit, and the model list would point at nothing
            lasting = lasting_model_path(Path(checkpoint).stem or "sinr_checkpoint")
            feedback.pushWarning(self.tr("A temporary output would be deleted when QGIS closes: the model is "
                                         "saved to {} instead (choose a file to save it elsewhere).").format(lasting))
            out = str(lasting)
        python = self.parameterAsFile(parameters, self.PYTHON, context) or training_interpreter()
        feedback.pushInfo(self.tr("Python for the conversion: {}").format(python))
        with user_errors():
            rasters = [raster_layer_source(lyr, 1)[0]
                       for lyr in self.parameterAsLayerList(parameters, self.COVARIATES, context)]
            result = import_official_checkpoint(
                checkpoint, out, python, taxa=self.parameterAsFile(parameters, self.TAXA, context) or None,
                covariates=rasters, name=self.parameterAsString(parameters, self.MODEL_NAME, context) or None,
                on_progress=feedback.setProgress, on_log=feedback.pushWarning, is_cancelled=feedback.isCanceled)
        feedback.pushInfo(result.summary())
        self._imported = str(result.path)
        return {self.OUTPUT: str(result.path), self.N_SPECIES: result.n_species}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:
        if self._imported:  # main thread: the dock's model list shows it
            try:
                entry = model_registry.add_model(self._imported)
                feedback.pushInfo(self.tr("Added to the model list: {}").format(entry.label))
            except SinrError as exc:
                feedback.reportError(str(exc))
        return {}
