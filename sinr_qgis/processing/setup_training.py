"""``sinr:setup_training``: make a private Python with PyTorch for training ("Set up PyTorch for me")."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputFolder,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)

from ..core.resources import help_url
from ..core.train_setup import CPU_INDEX
from ..toolbelt.interpreter import INTERPRETER_FILE_FILTER, set_training_interpreter
from ..toolbelt.private_packages import qgis_proxy, training_python_folder
from ..toolbelt.training_python import SIZE_MB, setup_progress, setup_training
from .base import SinrAlgorithm, user_errors
from .help_text import ABOUT_SINR, MORE_HELP


class SetupTrainingAlgorithm(SinrAlgorithm):
    """Creates the training environment and makes it the plugin's training Python."""

    FOLDER = "FOLDER"
    PACKAGE_SOURCE = "PACKAGE_SOURCE"
    BASE_PYTHON = "BASE_PYTHON"
    PYTHON = "PYTHON"
    TORCH = "TORCH"

    def __init__(self) -> None:
        super().__init__()
        self._python = ""
        self._proxy: str | None = None

    def name(self) -> str:
        return "setup_training"

    def displayName(self) -> str:
        return self.tr("Set up PyTorch for training")

    def group(self) -> str:
        return self.tr("Models")

    def groupId(self) -> str:
        return "models"

    def helpUrl(self) -> str:
        return help_url("training")

    def shortHelpString(self) -> str:
        return self.tr(
            "<p>Makes training possible without a terminal: creates a private Python environment with "
            "CPU PyTorch and onnx, and makes it the Python the plugin trains with (the Train dialog's "
            "and <i>Train SINR model</i>'s default). PyTorch only runs in the training process, never "
            "inside QGIS.</p>"
            "<p><b>How.</b> The environment is built on QGIS's own Python (else on a Python 3.9+ with "
            "GDAL found on this computer; the log says which), sees QGIS's GDAL and numpy, and keeps "
            "that numpy. PyTorch comes from PyTorch's CPU index ({cpu_index}; PyPI on macOS), the "
            "rest from PyPI, through QGIS's proxy settings. It takes a few minutes: a download of about "
            "200 MB and {size_gb:.1f} GB on disk.</p>"
            "<p><b>Folder</b> (optional): where the environment goes; empty = the plugin's folder in your "
            "QGIS profile. It must be new, empty or an earlier environment of this tool, which is "
            "replaced only once the new one works. Advanced: <b>package source</b>, a folder of wheel "
            "files or an index URL used instead of the internet (offline sites); <b>base Python</b>, the "
            "interpreter to build on.</p>"
            "<p><b>Output.</b> The path of the new Python (also stored as the training Python), PyTorch's "
            "version, and in the log whether CUDA or Apple's MPS is available. A failure (no network, "
            "a proxy refusal, no usable Python, too little disk) says what to do and leaves the previous "
            "set-up as it was.</p>").format(cpu_index=CPU_INDEX, size_gb=SIZE_MB / 1000) + ABOUT_SINR + MORE_HELP

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(QgsProcessingParameterFile(
            self.FOLDER, self.tr("Folder for the environment (empty: your QGIS profile's)"),
            behavior=QgsProcessingParameterFile.Behavior.Folder, optional=True))
        advanced = [
            QgsProcessingParameterString(self.PACKAGE_SOURCE, self.tr(
                "Package source (empty: PyTorch's CPU index and PyPI)"),
                optional=True),
            QgsProcessingParameterFile(self.BASE_PYTHON, self.tr("Base Python interpreter (empty: QGIS's own)"),
                                       optional=True, fileFilter=INTERPRETER_FILE_FILTER),
        ]
        for param in advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
            self.addParameter(param)
        self.addOutput(QgsProcessingOutputString(self.PYTHON, self.tr("Python with PyTorch")))
        self.addOutput(QgsProcessingOutputString(self.TORCH, self.tr("PyTorch version")))
        self.addOutput(QgsProcessingOutputFolder(self.FOLDER, self.tr("Environment folder")))

    def prepareAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        self._proxy = qgis_proxy()  # QgsSettings: read on the main thread
        return True

    def processAlgorithm(self, parameters: dict, context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict:
        folder = self.parameterAsFile(parameters, self.FOLDER, context) or str(training_python_folder())
        progress = [0.0]

        def line(text: str) -> None:
            (feedback.pushConsoleInfo if text.startswith(("$", " ")) else feedback.pushInfo)(text)
            progress[0] = setup_progress(text, progress[0])
            feedback.setProgress(progress[0])

        with user_errors():
            result = setup_training(
                folder, source=self.parameterAsString(parameters, self.PACKAGE_SOURCE, context) or None,
                base_python=self.parameterAsFile(parameters, self.BASE_PYTHON, context) or None,
                proxy=self._proxy, on_line=line, is_cancelled=feedback.isCanceled)
        self._python = str(result.python)
        feedback.setProgress(100)
        return {self.PYTHON: self._python, self.TORCH: str(result.info.get("torch", "")),
                self.FOLDER: str(result.folder)}

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:
        if self._python:  # on the main thread, once the environment works
            set_training_interpreter(self._python)
            feedback.pushInfo(self.tr("Training uses {} from now on.").format(self._python))
        return {}
