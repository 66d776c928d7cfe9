"""Compare species with their expert ranges in the background (the dock's "Compare")."""
from __future__ import annotations

import logging
from collections.abc import Callable

from qgis.core import QgsGeometry, QgsTask

from ..core.errors import SinrError
from ..core.grid import Grid
from ..qgis_bridge import evaluation as bridge

LOG = logging.getLogger("sinr_qgis")


class CompareTask(QgsTask):
    """Runs ``qgis_bridge.evaluation.compare_species`` on ranges copied on the main thread.

    ``predictor`` is used by this task only (predictors are not thread-safe). ``run()`` never
    raises: an error is stored in ``self.error``; ``on_done(task, ok)`` is called from
    ``finished()`` on the main thread, where the results may be shown and layers added.
    """

    def __init__(self, predictor, ranges: bridge.RangeCopy, grid: Grid, *, view: QgsGeometry | None = None,
                 covariates: dict[str, tuple[str, int]] | None = None,
                 on_done: Callable[[CompareTask, bool], None] | None = None) -> None:
        names = ", ".join(s.name or s.code for s in ranges.species[:3]) + ("…" if len(ranges.species) > 3 else "")
        super().__init__(f"SINR: comparing {names} with expert ranges", QgsTask.Flag.CanCancel)
        self.predictor = predictor
        self.ranges = ranges
        self.grid = grid
        self.view = QgsGeometry(view) if view is not None else None
        self.covariates = dict(covariates) if covariates else None  # {covariate: (path, band)}, env models
        self.on_done = on_done
        self.results: list[bridge.SpeciesComparison] = []
        self.error: Exception | None = None

    def run(self) -> bool:
        try:
            self.results = bridge.compare_species(self.predictor, self.ranges, self.grid, view=self.view,
                                                  covariates=self.covariates, progress=self.setProgress,
                                                  is_cancelled=self.isCanceled)
        except SinrError as exc:  # user errors and cancellation: reported in finished()
            self.error = exc
            return False
        except Exception as exc:  # a bug must not crash QGIS from a worker thread; report it instead
            LOG.exception("Compare task failed")
            self.error = exc
            return False
        return not self.isCanceled()

    def finished(self, result: bool) -> None:
        if self.on_done is not None:
            self.on_done(self, bool(result))
