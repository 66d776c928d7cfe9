"""Compare species with their expert ranges in the background (the dock's "Compare")."""
from __future__ import annotations

from collections.abc import Callable

from qgis.core import QgsGeometry

from ..core.grid import Grid
from ..qgis_bridge import evaluation as bridge
from .base import SinrTask


class CompareTask(SinrTask):
    """Runs ``qgis_bridge.evaluation.compare_species`` on ranges copied on the main thread.

    ``predictor`` is used by this task only (predictors are not thread-safe). Errors are stored
    in ``self.error`` (:class:`~.base.SinrTask`); ``on_done(task, ok)`` is called on the main
    thread, where the results may be shown and layers added.
    """

    kind = "Compare"

    def __init__(self, predictor, ranges: bridge.RangeCopy, grid: Grid, *, view: QgsGeometry | None = None,
                 covariates: dict[str, tuple[str, int]] | None = None,
                 on_done: Callable[[CompareTask, bool], None] | None = None) -> None:
        names = ", ".join(s.name or s.code for s in ranges.species[:3]) + ("…" if len(ranges.species) > 3 else "")
        super().__init__(f"SINR: comparing {names} with expert ranges", on_done)
        self.predictor = predictor
        self.ranges = ranges
        self.grid = grid
        self.view = QgsGeometry(view) if view is not None else None
        self.covariates = dict(covariates) if covariates else None  # {covariate: (path, band)}, env models
        self.results: list[bridge.SpeciesComparison] = []

    def work(self) -> bool:
        """Worker thread: compare; a cancel raises ``CancelledError`` or, once done, still fails."""
        self.results = bridge.compare_species(self.predictor, self.ranges, self.grid, view=self.view,
                                              covariates=self.covariates, progress=self.setProgress,
                                              is_cancelled=self.isCanceled)
        return not self.isCanceled()
