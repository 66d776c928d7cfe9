"""``sinr:train_model``: observations (a point layer in any CRS, or a file) -> a ``.sinr`` model bundle.

Training runs in a child process (the project's training CLI, with an interpreter that has
torch), supervised by :func:`sinr_qgis.core.training.run.run_training`, the same call the dock's
training task makes. The parameters become a ``TrainingRequest`` and then the runner's options
through ``qgis_bridge.training_inputs``, the Train dialog's path too.
"""
from __future__ import annotations

import html
import logging
import shutil
import tempfile
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from ..core.errors import SinrError
from ..core.training.defaults import DEFAULTS, LOSS_HELP, LOSS_LABELS, LOSSES
from ..core.training.events import describe_event
from ..core.training.interpreter import check_training_available
from ..core.training.options import sinr_path
from ..core.training.run import run_training
from ..qgis_bridge.model_files import MODEL_FILTER, in_folder, lasting_model_path
from ..qgis_bridge.observations import OBSERVATION_FILE_FILTER
from ..qgis_bridge.training_inputs import (
    ENCODING_CHOICES,
    TrainingRequest,
    guess_species_field,
    no_species_field_message,
    reads_covariates,
    training_inputs,
)
from ..toolbelt import model_registry
from ..toolbelt.interpreter import INTERPRETER_FILE_FILTER, training_interpreter
from .base import SinrAlgorithm, user_errors
from .help_text import ABOUT_SINR, MORE_HELP

LOG = logging.getLogger("sinr_qgis")


class TrainModelAlgorithm(SinrAlgorithm):
    """Train a SINR model on presence-only observations."""

    INPUT = "INPUT"
    SPECIES_FIELD = "SPECIES_FIELD"
    SOURCE_FIELD = "SOURCE_FIELD"
    INPUT_FILE = "INPUT_FILE"
    FILE_SPECIES_COLUMN = "FILE_SPECIES_COLUMN"
    FILE_SOURCE_COLUMN = "FILE_SOURCE_COLUMN"
    FILE_LAT_COLUMN = "FILE_LAT_COLUMN"
    FILE_LON_COLUMN = "FILE_LON_COLUMN"
    COVARIATES = "COVARIATES"
    CATEGORICAL = "CATEGORICAL"
    ENCODING = "ENCODING"
    ADD_LOCAL_EVIDENCE = "ADD_LOCAL_EVIDENCE"
    LOSS = "LOSS"
    CAP = "CAP"
    EPOCHS = "EPOCHS"
    WIDTH = "WIDTH"
    DEPTH = "DEPTH"
    SEED = "SEED"
    MIN_RECORDS = "MIN_RECORDS"
    BATCH_SIZE = "BATCH_SIZE"
    MODEL_NAME = "MODEL_NAME"
    RESUME = "RESUME"
    PYTHON = "PYTHON"
    THREADS = "THREADS"
    POS_WEIGHT = "POS_WEIGHT"
    LAND_ABSENCES = "LAND_ABSENCES"
    OUTPUT = "OUTPUT"
    N_SPECIES = "N_SPECIES"
    N_RECORDS = "N_RECORDS"
    FINAL_LOSS = "FINAL_LOSS"

    def __init__(self) -> None:
        super().__init__()
        self._trained: str | None = None

    def name(self) -> str:
        return "train_model"

    def displayName(self) -> str:
        return self.tr("Train SINR model")

    def group(self) -> str:
        return self.tr("Models")

    def groupId(self) -> str:
        return "models"

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Trains a SINR species range model (Cole et al., ICML 2023) on presence-only observations "
            "and writes a <tt>.sinr</tt> model bundle, ready for the prediction tools and the dock.</p>"
            "<p><b>Observations.</b> Either a <i>point layer</i> in any CRS (reprojected to longitude/"
            "latitude) with a <i>species field</i> (name or code per point; left empty, the field named as "
            "the file reader knows it: species, scientificName, taxonKey...) and an optional <i>source "
            "field</i> (dataset, survey or checklist id, e.g. GBIF's datasetKey: with it, a record only "
            "counts as evidence of absence for species its own source records, and pseudo-absences are "
            "drawn on land, which beat the paper's negatives on mixed-source data), or an <i>observation "
            "file</i>: CSV / CSV.gz, a GBIF download, an iNaturalist export or a Darwin Core Archive "
            "(zip, tar.gz, or unzipped: choose its meta.xml; sampling-event archives too; columns are "
            "detected, name them under Advanced if not). Each part of a multipoint is an observation. "
            "Points without a species or a usable location, and records that are no presence in the "
            "wild (occurrenceStatus absent, fossils, captive or cultivated organisms, records above "
            "species rank, GBIF geospatial issues), are dropped and counted, from a file or a layer "
            "alike.</p>"
            "<p><b>Covariates</b> (optional): rasters in any CRS (e.g. bioclim), each band one covariate; "
            "their means and standard deviations are computed from the rasters. With rasters the model "
            "uses coordinates + covariates unless you choose otherwise. A band of classes (land cover, "
            "biome) is read at its nearest cell, never interpolated, and each class becomes its own input "
            "(one-hot) when GDAL says it holds classes (category names, a thematic attribute table, a "
            "colour table, band metadata CATEGORICAL=YES) or when you name it under <i>Categorical covariates</i>; "
            "a band of few whole "
            "numbers that is neither gets a warning.</p>"
            "<p><b>Training.</b> The defaults are the bundled model's recipe: AN-full, every record "
            "(no cap), 20 epochs, a network of width 256 and depth 4 on spherical harmonics of the "
            "location (<i>Model inputs</i> automatic, without rasters), the presence weighted by the "
            "number of species, random absences on land, with a source field absences only for the "
            "species a record's own source records, and local evidence. <i>Add local evidence</i> "
            "(<tt>ADD_LOCAL_EVIDENCE</tt>) stores with the model each species' record density and local "
            "detection rate near its training records, added to the network's score where the model is "
            "used (switchable there); it is for models that read coordinates only: left out, it is added "
            "to those and not to covariate models, and asked for with covariates it is refused. "
            "<i>Loss</i>, one of SINR's six presence-only "
            "losses, each taking absences differently:</p><ul>{losses}</ul><p><i>Maximum records per "
            "species</i>: 0 keeps all. <i>Epochs</i>, <i>width</i> and <i>depth</i> of the network, "
            "<i>seed</i> for a reproducible run. Advanced: <i>presence weight</i> (lambda of the full "
            "losses; 0 = the number of species, the paper used 2048 for 47,000 species) and <i>random "
            "absences on land only</i> (off: anywhere on the globe, as the paper). "
            "<i>Minimum records</i>: species with fewer records are left out. <i>Resume</i> continues "
            "an interrupted training to the same output from its last completed epoch (same data and "
            "options).</p>"
            "<p><b>Requirements.</b> Training runs in a separate Python that has PyTorch (Advanced: "
            "<i>Python with PyTorch</i>; default: the plugin setting), with the training code the plugin "
            "carries. No such Python yet? Run <i>Set up PyTorch for training</i> "
            "(<tt>sinr:setup_training</tt>) once: it makes one and sets it as the default, no terminal "
            "needed. Both are checked before anything is read or exported; the error says what to do "
            "(also in the Help, <i>Training your own model</i>). The Train dialog in the dock takes the "
            "same inputs the same way.</p>"
            "<p><b>Output.</b> The model bundle; a summary (records used and dropped, species, final loss, "
            "time) is written to the log, and the model is added to the dock's model list.</p>"
            "<p><b>Caveats.</b> Presence-only models rank places by relative likelihood of presence. "
            "Few records, or records from one region, give a model that knows little elsewhere.</p>").replace(
                "{losses}", "".join(f"<li>{html.escape(LOSS_HELP[k])}</li>" for k in LOSSES)) + ABOUT_SINR + MORE_HELP

    def initAlgorithm(self, config=None) -> None:
        self._add_observation_parameters()
        self._add_recipe_parameters()
        self._add_advanced_parameters()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Model bundle"), fileFilter=MODEL_FILTER))
        self.addOutput(QgsProcessingOutputNumber(self.N_SPECIES, self.tr("Species in the model")))
        self.addOutput(QgsProcessingOutputNumber(self.N_RECORDS, self.tr("Records used")))
        self.addOutput(QgsProcessingOutputNumber(self.FINAL_LOSS, self.tr("Final training loss")))

    def _add_observation_parameters(self) -> None:
        """What is trained on: a point layer and its fields, or an observation file."""
        # INPUT (with SPECIES_FIELD) or INPUT_FILE: Processing has no "one of two", so both are
        # optional and checkParameterValues() says which is missing before the run starts
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, self.tr("Observations (point layer)"), [QgsProcessing.SourceType.TypeVectorPoint],
            optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.SPECIES_FIELD, self.tr("Species field"), parentLayerParameterName=self.INPUT,
            optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.SOURCE_FIELD, self.tr("Source field (dataset or survey)"), parentLayerParameterName=self.INPUT,
            optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT_FILE, self.tr("…or an observation file"),
            behavior=QgsProcessingParameterFile.Behavior.File, optional=True,
            fileFilter=OBSERVATION_FILE_FILTER))

    def _add_recipe_parameters(self) -> None:
        """The model's inputs (covariates, encoding) and the training recipe the dialog shows."""
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.COVARIATES, self.tr("Covariate rasters"), QgsProcessing.SourceType.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.CATEGORICAL, self.tr("Categorical covariates (band names, comma-separated)"), optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.ENCODING, self.tr("Model inputs"), options=[self.tr(label) for label, _value in ENCODING_CHOICES],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ADD_LOCAL_EVIDENCE, self.tr("Add local evidence (records near each location)"),
            defaultValue=DEFAULTS["local_evidence"]))
        self.addParameter(QgsProcessingParameterEnum(
            self.LOSS, self.tr("Loss"), options=[LOSS_LABELS[k] for k in LOSSES],
            defaultValue=LOSSES.index(DEFAULTS["loss"])))
        for key, label, default, low in (
                (self.CAP, "Maximum records per species (0: all)", DEFAULTS["cap"], 0),
                (self.EPOCHS, "Epochs", DEFAULTS["epochs"], 1),
                (self.WIDTH, "Network width", DEFAULTS["width"], 1),
                (self.DEPTH, "Network depth", DEFAULTS["depth"], 0),
                (self.SEED, "Random seed", DEFAULTS["seed"], 0),
                (self.MIN_RECORDS, "Minimum records per species", DEFAULTS["min_records"], 1)):
            self.addParameter(QgsProcessingParameterNumber(
                key, self.tr(label), QgsProcessingParameterNumber.Type.Integer, defaultValue=default, minValue=low))
        self.addParameter(QgsProcessingParameterBoolean(
            self.RESUME, self.tr("Resume from the last checkpoint of this output"), defaultValue=False))

    def _add_advanced_parameters(self) -> None:
        """Settings most runs leave alone (behind the dialog's "Advanced" fold)."""
        advanced = [
            QgsProcessingParameterNumber(self.POS_WEIGHT, self.tr("Presence weight (0: the number of species)"),
                                         QgsProcessingParameterNumber.Type.Double, defaultValue=0.0, minValue=0.0),
            QgsProcessingParameterBoolean(self.LAND_ABSENCES, self.tr("Random absences on land only"),
                                          defaultValue=DEFAULTS["pseudo_negatives"] == "land"),
            QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"),
                                         QgsProcessingParameterNumber.Type.Integer,
                                         defaultValue=DEFAULTS["batch_size"], minValue=1),
            QgsProcessingParameterString(self.MODEL_NAME, self.tr("Model name (default: the file name)"),
                                         optional=True),
            QgsProcessingParameterString(self.FILE_SPECIES_COLUMN, self.tr("File: species column"), optional=True),
            QgsProcessingParameterString(self.FILE_SOURCE_COLUMN, self.tr("File: source column"), optional=True),
            QgsProcessingParameterString(self.FILE_LAT_COLUMN, self.tr("File: latitude column"), optional=True),
            QgsProcessingParameterString(self.FILE_LON_COLUMN, self.tr("File: longitude column"), optional=True),
            QgsProcessingParameterFile(self.PYTHON, self.tr("Python interpreter with PyTorch (empty: plugin "
                                                            "setting)"),
                                       behavior=QgsProcessingParameterFile.Behavior.File,
                                       fileFilter=INTERPRETER_FILE_FILTER, optional=True),
            QgsProcessingParameterNumber(self.THREADS, self.tr("CPU threads for training (0: automatic)"),
                                         QgsProcessingParameterNumber.Type.Integer, defaultValue=0, minValue=0),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(p)

    def _observations_name(self, parameters: dict, context: QgsProcessingContext) -> str:
        data_file = self.parameterAsFile(parameters, self.INPUT_FILE, context)
        if data_file:
            return Path(data_file).name.split(".")[0]
        layer = self.parameterAsVectorLayer(parameters, self.INPUT, context)
        return layer.name() if layer is not None else "model"

    def checkParameterValues(self, parameters: dict, context: QgsProcessingContext) -> tuple[bool, str]:
        """The observations are a point layer with its species field (given, or named as the file
        reader knows it), or a file: say which is missing before the run starts (the dialog shows
        it; qgis_process prints it)."""
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        layer = parameters.get(self.INPUT) not in (None, "")
        data_file = parameters.get(self.INPUT_FILE) not in (None, "")
        if layer and data_file:
            return False, self.tr("Give the observations either as a point layer or as a file, not both.")
        if not layer and not data_file:
            return False, self.tr("No observations: choose a point layer (and its species field) or an "
                                  "observation file.")
        if layer and parameters.get(self.SPECIES_FIELD) in (None, ""):
            # unreadable here (processing.run checks with the instance it was given, before
            # initAlgorithm): the run refuses it with the same message
            found = self.parameterAsSource(parameters, self.INPUT, context)
            if found is not None and guess_species_field(found.fields().names()) is None:
                return False, no_species_field_message(found.sourceName())
        return True, ""

    # ---- run ----------------------------------------------------------------------------------
    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        out = sinr_path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))
        if in_folder(out, QgsProcessingUtils.tempFolder()):
            # the dialog's default: QGIS deletes that folder on exit, and the model list would keep
            # pointing at a deleted model; a model is meant to last
            lasting = lasting_model_path(self._observations_name(parameters, context))
            feedback.pushWarning(self.tr("A temporary output would be deleted when QGIS closes: the model is "
                                         "saved to {} instead (choose a file to save it elsewhere).").format(lasting))
            out = str(lasting)
        python = self.parameterAsFile(parameters, self.PYTHON, context) or training_interpreter()
        feedback.pushInfo(self.tr("Python for training: {}").format(python))
        with user_errors():  # before anything is exported: a zip install says at once what is missing
            info = check_training_available(python)
        feedback.pushInfo(self.tr("Python {}, PyTorch {}").format(info.get("python", "?"), info.get("torch", "?")))
        workdir = Path(tempfile.mkdtemp(prefix="sinr_train_"))
        try:
            with user_errors():
                opts, label, species_label = training_inputs(
                    self.training_request(parameters, context, out), workdir,
                    transform_context=context.transformContext(), on_info=feedback.pushInfo,
                    on_warning=feedback.pushWarning, is_cancelled=feedback.isCanceled)
                result = run_training(
                    opts, python, check_input=True, input_label=label, species_label=species_label,
                    on_progress=feedback.setProgress, is_cancelled=feedback.isCanceled,
                    on_event=lambda e: self._report(e, feedback), on_log=feedback.pushInfo)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        summary = result.summary()
        feedback.pushInfo(summary)
        LOG.info(summary)
        self._trained = str(result.path)
        return {self.OUTPUT: str(result.path), self.N_SPECIES: result.done.get("n_species"),
                self.N_RECORDS: result.done.get("n_records"), self.FINAL_LOSS: result.done.get("final_loss")}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:
        if self._trained:  # main thread: remember the model for the dock
            try:
                entry = model_registry.add_model(self._trained)
                feedback.pushInfo(self.tr("Added to the model list: {}").format(entry.label))
            except SinrError as exc:
                feedback.reportError(str(exc))
        return {}

    def training_request(self, parameters: dict, context: QgsProcessingContext, out: str) -> TrainingRequest:
        """The parameters as the plain request the Train dialog also makes (one path to the options)."""
        rasters = self.parameterAsLayerList(parameters, self.COVARIATES, context)
        encoding = ENCODING_CHOICES[self.parameterAsEnum(parameters, self.ENCODING, context)][1]
        if parameters.get(self.ADD_LOCAL_EVIDENCE) is None:
            # left out: the bundled recipe where it applies (a covariate model cannot have it)
            local_evidence = DEFAULTS["local_evidence"] and not reads_covariates(encoding, bool(rasters))
        else:  # asked for with covariates: refused by training_inputs
            local_evidence = self.parameterAsBoolean(parameters, self.ADD_LOCAL_EVIDENCE, context)
        return TrainingRequest(
            output=out, layer=self.parameterAsSource(parameters, self.INPUT, context),
            species_field=self.parameterAsString(parameters, self.SPECIES_FIELD, context),
            source_field=self.parameterAsString(parameters, self.SOURCE_FIELD, context),
            data_file=self.parameterAsFile(parameters, self.INPUT_FILE, context),
            species_column=self.parameterAsString(parameters, self.FILE_SPECIES_COLUMN, context),
            source_column=self.parameterAsString(parameters, self.FILE_SOURCE_COLUMN, context),
            lat_column=self.parameterAsString(parameters, self.FILE_LAT_COLUMN, context),
            lon_column=self.parameterAsString(parameters, self.FILE_LON_COLUMN, context),
            rasters=rasters, categorical=self.parameterAsString(parameters, self.CATEGORICAL, context).split(","),
            encoding=encoding, local_evidence=local_evidence,
            loss=LOSSES[self.parameterAsEnum(parameters, self.LOSS, context)],
            cap=self.parameterAsInt(parameters, self.CAP, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            width=self.parameterAsInt(parameters, self.WIDTH, context),
            depth=self.parameterAsInt(parameters, self.DEPTH, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            min_records=self.parameterAsInt(parameters, self.MIN_RECORDS, context),
            pos_weight=self.parameterAsDouble(parameters, self.POS_WEIGHT, context),
            land_absences=self.parameterAsBoolean(parameters, self.LAND_ABSENCES, context),
            name=self.parameterAsString(parameters, self.MODEL_NAME, context),
            resume=self.parameterAsBoolean(parameters, self.RESUME, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context))

    @staticmethod
    def _report(event: dict, feedback: QgsProcessingFeedback) -> None:
        text = describe_event(event)
        if text is not None:
            feedback.pushInfo(text)

