"""Typed errors a user can cause. Each message says what was wrong and what to do about it.

Processing algorithms turn them into ``QgsProcessingException``; tasks store them and report
them in ``finished()``.
"""


class SinrError(Exception):
    """Base class for every error a user can cause with bad input."""


class BundleError(SinrError):
    """A model bundle (.sinr) is missing, unreadable or breaks the format contract."""


class OccurrenceError(SinrError):
    """An observation file or layer cannot be read into usable records."""


class SpeciesNotFoundError(SinrError):
    """A species code or name is not in the model."""


class GridError(SinrError):
    """A prediction or evaluation grid (extent, CRS, pixel size) is invalid."""


class CovariateError(SinrError):
    """Covariate rasters do not match the model or do not cover the locations."""


class OutputError(SinrError):
    """An output file cannot be written."""


class CancelledError(SinrError):
    """The user cancelled a long operation."""


class AmbiguousSpeciesError(SpeciesNotFoundError):
    """A species code, name or list fits more than one species of the model."""


class DependencyInstallError(SinrError):
    """An optional package (e.g. onnxruntime) could not be installed for QGIS's Python.

    ``reason`` names the cause for callers and tests: "network", "proxy", "ssl", "disk",
    "permission", "platform", "no_interpreter", "no_pip", "verify", "cancelled" or "pip"; the
    training set-up adds "source", "folder", "busy", "venv", "conflict" and "in_use".
    """

    def __init__(self, message: str, reason: str = "pip") -> None:
        super().__init__(message)
        self.reason = reason


class CheckpointImportError(SinrError):
    """An official SINR checkpoint cannot be imported: not a checkpoint, or the converter refused it."""


class MemoryBudgetError(SinrError):
    """A run would need more memory than this machine, or the limits it runs under, allow."""


class TrainingError(SinrError):
    """Training could not start or did not finish."""


class TrainingInputError(TrainingError):
    """The training CLI refused its input (exit status 2) or the options are invalid."""


class TrainingCrashError(TrainingError):
    """The training process died unexpectedly; the message carries its stderr tail."""


class TrainingEnvironmentError(TrainingError):
    """The Python interpreter for training is missing or lacks torch."""


class OutputBusyError(OutputError):
    """Another training is writing to the same output right now."""
