"""A model's species as a table and as a line of the model card.

One row per species, in head order (what ``sinr:model_species`` writes): its code and names, its
training records, its LPT-R threshold (of the network, and of the score with local evidence where
the model stores it: :mod:`~sinr_qgis.core.local_evidence`) and how far its map can be trusted
(:mod:`~sinr_qgis.core.reliability`). A value the bundle does not have is ``None`` (NULL in a
layer, empty in a CSV), never a made-up 0.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .reliability import every_species_reliability

# (field, type) in output order; types are what a table field needs (int, float or str)
COLUMNS: tuple[tuple[str, type], ...] = (
    ("index", int), ("code", str), ("name", str), ("common_name", str), ("n_train", int), ("n_cells", int),
    ("threshold", float), ("threshold_local_evidence", float), ("reliability", str), ("ranges_ap", float),
    ("lon_min", float), ("lat_min", float), ("lon_max", float), ("lat_max", float), ("summary", str),
    ("warning", str))
CARD_NAMES = 12  # species named on the model card; the rest are counted


def species_rows(bundle: Any) -> list[dict[str, Any]]:
    """One dict per species of ``bundle`` (keys: :data:`COLUMNS`), in head order.

    ``n_cells``, ``threshold``, ``threshold_local_evidence``, ``ranges_ap`` and the record box
    (``lon_min`` ... ``lat_max``, degrees) are ``None`` where the bundle does not record them;
    ``common_name`` is ``""``.
    """
    rows = []
    le = getattr(bundle, "local_evidence", None)
    for s, r in every_species_reliability(bundle):
        stored = np.nan if le is None else le.lpt_r[s.index]
        le_thr = float(stored) if np.isfinite(stored) else None
        box = r.record_extent or (None, None, None, None)
        rows.append({"index": s.index, "code": s.code, "name": s.name,
                     "common_name": getattr(s, "common_name", "") or "", "n_train": r.n_train,
                     "n_cells": r.n_cells, "threshold": s.threshold, "threshold_local_evidence": le_thr,
                     "reliability": r.level, "ranges_ap": r.ap_ranges, "lon_min": box[0], "lat_min": box[1],
                     "lon_max": box[2], "lat_max": box[3], "summary": r.summary, "warning": r.warning})
    return rows


def species_list_line(bundle: Any, limit: int = CARD_NAMES) -> str:
    """The model card's species line: the first ``limit`` species by label, then how many more
    and where to see them all."""
    names = [s.label for s in bundle.species[:limit]]
    more = len(bundle.species) - len(names)
    tail = (f" and {more:,} more. All of them, with their records and reliability: the panel's species "
            "list, or Processing 'List a model's species' (sinr:model_species).") if more > 0 else "."
    return "Species list: " + "; ".join(names) + tail
