"""Bundles that store local evidence (core.local_evidence), made from the committed fixtures without
torch: random offsets on a window of grid nodes per species, written and loaded back."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sinr_qgis.core import local_evidence
from sinr_qgis.core.bundle import ModelBundle
from tests.factories import fixture_bundle

RECORD_WEIGHT, SURVEY_WEIGHT, RESOLUTION = 0.5, 0.3, 0.5
FLOOR = RECORD_WEIGHT * math.log(local_evidence.RECORD_FLOOR) + SURVEY_WEIGHT * math.log(local_evidence.SURVEY_FLOOR)


def le_bundle(path: Path, boxes: dict[int, tuple[float, float, float, float]], *, lpt_r=None,
              spread: float = 8.0, seed: int = 0, src: ModelBundle | None = None) -> ModelBundle:
    """``src`` (default: the 6-species ``sin_cos`` fixture) with local evidence, written to ``path``
    and loaded back. ``boxes``: species index -> (lon0, lat0, lon1, lat1) degrees, its window of
    nodes every ``RESOLUTION`` degrees, offsets drawn uniformly in [FLOOR, FLOOR + spread] logit
    units; other species have no records (the floor everywhere). ``lpt_r``: [S] thresholds or None."""
    bundle = src if src is not None else fixture_bundle(path.with_name(path.stem + "_src.sinr"))
    rng = np.random.default_rng(seed)
    windows = np.zeros((bundle.n_species, 4), dtype=np.int64)
    grids: list[np.ndarray | None] = [None] * bundle.n_species
    for s, (lon0, lat0, lon1, lat1) in boxes.items():
        i0, j0 = round((lon0 + 180) / RESOLUTION), round((lat0 + 90) / RESOLUTION)
        nx, ny = round((lon1 - lon0) / RESOLUTION) + 1, round((lat1 - lat0) / RESOLUTION) + 1
        windows[s] = (i0, j0, nx, ny)
        grids[s] = rng.uniform(FLOOR, FLOOR + spread, (ny, nx))
    bundle.local_evidence = local_evidence.quantise(
        grids, windows, FLOOR, bandwidth_deg=1.0, record_weight=RECORD_WEIGHT, survey_weight=SURVEY_WEIGHT,
        resolution_deg=RESOLUTION, selection="test")
    if lpt_r is not None:
        bundle.local_evidence.lpt_r = np.asarray(lpt_r, dtype=np.float32)
    bundle.meta["name"] = path.stem
    bundle.write(path)
    return ModelBundle.load(path)
