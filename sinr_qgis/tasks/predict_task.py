"""Predict a range raster in the background; the caller applies the result in ``finished()``."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qgis.PyQt.QtCore import pyqtSignal

from ..core import products
from ..core.bundle import Species
from ..core.errors import CancelledError, SinrError
from ..core.grid import Grid
from .base import SinrTask

LOG = logging.getLogger("sinr_qgis")


@dataclass
class Preview:
    """A coarse first look at the map, predicted before it (``products.preview_grid``).

    It has its own predictor so that the full grid's cached embedding (a further species on the
    same view costs only its head product) is not replaced by the preview's."""

    predictor: object  # a runtime.Predictor used by no other thread
    grid: Grid
    path: Path  # as the task's path: one file, or one per species (``files``, species order)
    files: list[Path] = field(default_factory=list)


class PredictTask(SinrTask):
    """Runs ``products.predict_to_geotiff`` (the same call as ``sinr:predict_range``).

    Inputs are plain values copied on the main thread (a core ``Grid``, ``Species`` records, a
    path). Errors are stored in ``self.error`` (:class:`~.base.SinrTask`) and ``on_done(task, ok)``
    is called from ``finished()`` on the main thread, where layers may be added.

    With ``one_file_per_species`` each species gets its own file (``self.files`` in the order of
    ``self.species``), so each can be its own layer. ``notes`` (e.g. the part of the grid off the
    globe) start ``self.warnings``; the run adds the prediction's own warnings.

    With a ``preview``, its coarse map is written first and ``previewReady`` is emitted (connect a
    main-thread widget's bound method: Qt then queues it to the main thread) before the full map
    is computed; the final files are exactly those of a run without a preview. A preview that
    finds nothing to show (a coarse grid that misses every valid pixel) is skipped: the full grid
    decides. ``final_cached`` tells, after a run, whether the predictor keeps this grid's embedding.

    ``covariates`` (environmental models): {covariate name: (raster path, band)}, the explicit
    mapping (``core.covariate_match``), read by the preview and the full map alike.
    ``mask_footprint`` (default): the preview and the map leave the pixels outside the model's data
    footprint empty; ``footprint_note`` then says how many.
    """

    previewReady = pyqtSignal()  # self.preview.files are written
    kind = "Prediction"

    def __init__(self, predictor, grid: Grid, species: Sequence[Species], path: str | Path, *,
                 mask_ocean: bool = True, one_file_per_species: bool = False, notes: Sequence[str] = (),
                 on_done: Callable[[PredictTask, bool], None] | None = None, description: str = "",
                 preview: Preview | None = None, covariates: Mapping[str, tuple[str, int]] | None = None,
                 mask_footprint: bool = True) -> None:
        names = ", ".join(s.name or s.code for s in species)
        super().__init__(description or f"SINR: predicting {names}", on_done)
        self.predictor = predictor
        self.grid = grid
        self.species = list(species)
        self.path = Path(path)
        self.mask_ocean = bool(mask_ocean)
        self.one_file_per_species = bool(one_file_per_species)
        self.files: list[Path] = []
        self.warnings: list[str] = list(notes)
        self.preview = preview
        self.final_cached = False
        self.covariates = dict(covariates) if covariates else None
        self.mask_footprint = bool(mask_footprint)  # False: show the pixels outside the model's data footprint
        self.footprint_note = ""  # what the map did with the footprint (PredictionResult.footprint)

    def work(self) -> bool:
        """Worker thread: the preview (if any), then the full map."""
        # progress shared by pixel count: the preview's part is about 1/64
        share = 0.0 if self.preview is None else \
            100.0 * self.preview.grid.n_pixels / (self.preview.grid.n_pixels + self.grid.n_pixels)
        if self.preview is not None:
            self._predict_preview(share)
        result = products.predict_to_geotiff(
            self.predictor, self.grid, self.species, self.path, mask_ocean=self.mask_ocean,
            covariates=self.covariates, one_file_per_species=self.one_file_per_species,
            progress=lambda p: self.setProgress(min(100.0, share + p * (100.0 - share) / 100.0)),
            is_cancelled=self.isCanceled, mask_footprint=self.mask_footprint)
        self.final_cached = self.predictor.cached_bytes > 0
        self.footprint_note = result.footprint
        self.files = list(result.paths)
        self.warnings += result.warnings
        return True  # finished: even a late cancel keeps the complete result

    def _predict_preview(self, share: float) -> None:
        """Write the preview's files and emit ``previewReady``; a cancel propagates."""
        p = self.preview
        try:
            result = products.predict_to_geotiff(
                p.predictor, p.grid, self.species, p.path, mask_ocean=self.mask_ocean, covariates=self.covariates,
                one_file_per_species=self.one_file_per_species, progress=lambda v: self.setProgress(v * share / 100.0),
                is_cancelled=self.isCanceled, mask_footprint=self.mask_footprint)
        except CancelledError:
            raise
        except SinrError as exc:  # e.g. its pixels all miss a small island: the full map says what is wrong
            LOG.info("No preview: %s", exc)
            return
        p.files = list(result.paths)
        self.previewReady.emit()
