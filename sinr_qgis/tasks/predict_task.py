"""Predict a range raster in the background; the caller applies the result in ``finished()``."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from qgis.core import QgsTask

from ..core.bundle import Species
from ..core.errors import SinrError
from ..core.grid import Grid
from ..qgis_bridge import prediction

LOG = logging.getLogger("sinr_qgis")


class PredictTask(QgsTask):
    """Runs ``prediction.predict_range_raster`` (the same call as ``sinr:predict_range``).

    Inputs are plain values copied on the main thread (a core ``Grid``, ``Species`` records, a
    path). ``run()`` never raises: an error is stored in ``self.error`` and ``on_done(task, ok)``
    is called from ``finished()`` on the main thread, where layers may be added.

    With ``one_file_per_species`` each species gets its own file (``self.files`` in the order of
    ``self.species``), so each can be its own layer. ``notes`` (e.g. the part of the grid off the
    globe) start ``self.warnings``; the run adds the prediction's own warnings.
    """

    def __init__(self, predictor, grid: Grid, species: Sequence[Species], path: str | Path, *,
                 mask_ocean: bool = True, one_file_per_species: bool = False, notes: Sequence[str] = (),
                 on_done: Callable[[PredictTask, bool], None] | None = None, description: str = "") -> None:
        names = ", ".join(s.name or s.code for s in species)
        super().__init__(description or f"SINR: predicting {names}", QgsTask.Flag.CanCancel)
        self.predictor = predictor
        self.grid = grid
        self.species = list(species)
        self.path = Path(path)
        self.mask_ocean = bool(mask_ocean)
        self.one_file_per_species = bool(one_file_per_species)
        self.on_done = on_done
        self.files: list[Path] = []
        self.warnings: list[str] = list(notes)
        self.error: Exception | None = None

    def run(self) -> bool:
        try:
            result = prediction.predict_range_raster(
                self.predictor, self.grid, self.species, self.path, mask_ocean=self.mask_ocean,
                one_file_per_species=self.one_file_per_species, progress=self.setProgress,
                is_cancelled=self.isCanceled)
            self.files = list(result.paths)
            self.warnings += result.warnings
        except SinrError as exc:  # user errors and cancellation: reported in finished()
            self.error = exc
            return False
        except Exception as exc:  # a bug must not crash QGIS from a worker thread; report it instead
            LOG.exception("Prediction task failed")
            self.error = exc
            return False
        return True  # finished: even a late cancel keeps the complete result

    def finished(self, result: bool) -> None:
        if self.on_done is not None:
            self.on_done(self, bool(result))
