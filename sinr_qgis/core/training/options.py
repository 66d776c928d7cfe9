"""What one training run needs (:class:`TrainOptions`) and the file rules around its output.

The modelling policy for mixed-source data is a visible option here, not a rule of the argv
builder: with a source column, ``negatives`` defaults to ``source_site`` (for the losses with
negatives at observed places) and ``pseudo_negatives`` to ``land``. Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..atomic import check_writable
from ..bundle import EXTENSION
from ..encoding import COVARIATE_ENCODINGS, ENCODINGS
from ..errors import OutputError, TrainingInputError
from .defaults import DEFAULTS, LOSSES, NEGATIVES, PSEUDO_NEGATIVES, USES_NEG_MASK

# the CLI refuses --local-evidence for a covariate model too, but only once its process has started
LOCAL_EVIDENCE_COVARIATES = ("Local evidence is for models that read coordinates only, and this one reads covariate "
                             "rasters. Untick 'Add local evidence' (ADD_LOCAL_EVIDENCE false), or train on "
                             "coordinates only.")


@dataclass
class TrainOptions:
    """What one training run needs. ``None`` leaves an option to the CLI's default.

    ``negatives`` and ``pseudo_negatives`` left ``None`` are resolved when the options are made
    (:meth:`__post_init__`): with a ``source_column``, a record speaks only for the species its own
    source records, with land pseudo-negatives; without one, the CLI's paper defaults stay.
    """

    data: str
    out: str
    loss: str = DEFAULTS["loss"]
    cap: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    width: int | None = None
    depth: int | None = None
    seed: int | None = None
    min_records: int | None = None
    encoding: str | None = None
    covariates: list[str] | None = None  # raster files; each band is one covariate
    categorical: list[str] | None = None  # covariate band names that hold classes (nearest cell, one-hot)
    species_column: str | None = None
    lat_column: str | None = None
    lon_column: str | None = None
    source_column: str | None = None
    name: str | None = None
    resume: bool = False
    threads: int | None = None  # torch CPU threads in the child (None: torch's choice)
    pos_weight: float | str | None = None  # lambda of the full losses; "species" = the number of species
    pseudo_negatives: str | None = None  # where random absences are drawn: "land" or "sphere" (the paper)
    negatives: str | None = None  # which species a record speaks against at its place (defaults.NEGATIVES)
    local_evidence: bool = False  # add the local-evidence component at export (coordinates models only)

    def __post_init__(self) -> None:
        if self.source_column:
            # the study's winning combination on mixed-source data (training/benchmarks/README.md,
            # issue 4 section 5); only losses with negatives at observed places take source negatives
            if self.negatives is None and self.loss in USES_NEG_MASK:
                self.negatives = "source_site"
            if self.pseudo_negatives is None:
                self.pseudo_negatives = "land"

    def check(self) -> None:
        """Refuse invalid options up front with a message that says what to change
        (:class:`TrainingInputError`; ``OutputError`` for an output that cannot be written)."""
        if self.loss not in LOSSES:
            raise TrainingInputError(f"Unknown loss {self.loss!r}. Choose one of {', '.join(LOSSES)}.")
        self._check_numbers()
        if self.pseudo_negatives is not None and self.pseudo_negatives not in PSEUDO_NEGATIVES:
            raise TrainingInputError(f"Random absences are drawn on 'land' or on the whole 'sphere'; "
                                     f"got {self.pseudo_negatives!r}.")
        self._check_negatives()
        self._check_encoding()
        self._check_paths()

    def _check_numbers(self) -> None:
        """Whole-number settings at or above their minimum, and a usable positive weight."""
        for key, low in (("cap", 0), ("epochs", 1), ("batch_size", 1), ("width", 1), ("depth", 0),
                         ("seed", 0), ("min_records", 1), ("threads", 1)):
            v = getattr(self, key)
            if v is not None and (int(v) != v or v < low):
                raise TrainingInputError(f"{key.replace('_', ' ').capitalize()} must be a whole number "
                                         f">= {low}; got {v}.")
        if self.pos_weight is not None and self.pos_weight not in ("species", "row") and not (
                isinstance(self.pos_weight, (int, float)) and self.pos_weight > 0):
            raise TrainingInputError(f"The positive weight must be a positive number, 'species' or 'row'; "
                                     f"got {self.pos_weight!r}.")

    def _check_encoding(self) -> None:
        """A known encoding, with covariate rasters wherever the encoding or categories need them, and
        local evidence only without them."""
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise TrainingInputError(f"Unknown encoding {self.encoding!r}. Choose one of {', '.join(ENCODINGS)}.")
        if self.encoding in ("env", "sin_cos_env") and not self.covariates:
            raise TrainingInputError(f"Encoding {self.encoding!r} needs covariate rasters. Add them or "
                                     "choose the coordinates-only encoding 'sin_cos'.")
        if self.categorical and not self.covariates:
            raise TrainingInputError(f"Categorical covariates ({', '.join(self.categorical)}) are bands of covariate "
                                     "rasters: add the rasters, or leave the categorical covariates empty.")
        if self.local_evidence and (self.covariates or self.encoding in COVARIATE_ENCODINGS):
            raise TrainingInputError(LOCAL_EVIDENCE_COVARIATES)

    def _check_paths(self) -> None:
        """The observation file and rasters exist, and the output can be written."""
        if not Path(self.data).is_file():
            raise TrainingInputError(f"Observation file {self.data} does not exist.")
        for raster in self.covariates or []:
            if not Path(raster).is_file():
                raise TrainingInputError(f"Covariate raster {raster} does not exist. Choose a raster file.")
        if not str(self.out).strip():
            raise OutputError("No output file given. Choose where to save the model (.sinr).")
        check_writable(self.out)

    def _check_negatives(self) -> None:
        """Refuse what the CLI would refuse about ``negatives``, before a process starts."""
        if self.negatives is None:
            return
        if self.negatives not in NEGATIVES:
            raise TrainingInputError(f"Unknown negatives {self.negatives!r}. Choose one of {', '.join(NEGATIVES)}.")
        if self.negatives != "all" and self.loss not in USES_NEG_MASK:
            raise TrainingInputError(
                f"Negatives {self.negatives!r} need a loss with negatives at observed places "
                f"({', '.join(n for n in LOSSES if n in USES_NEG_MASK)}); {self.loss} has none.")


def checkpoint_path(out: str | Path) -> Path:
    """Where the CLI keeps its per-epoch checkpoint for the bundle ``out``: ``OUT.ckpt.pt`` beside it."""
    p = Path(out)
    return p.with_name(p.name + ".ckpt.pt")


def sinr_path(path: str | Path) -> str:
    """``path`` with the model bundle's ``.sinr`` suffix added when it has none; ``""`` stays ``""``."""
    text = str(path or "").strip()
    return text if not text or text.lower().endswith(EXTENSION) else text + EXTENSION
