"""A finished training in words: the bundle, the CLI's events and the records the bundle tells of.

Pure Python (no qgis, no torch).
"""
from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..occurrence_terms import drop_reason_text


@dataclass
class TrainResult:
    """A finished training: the bundle path, the CLI's ``done`` event and the wall time."""

    path: Path
    done: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    pid: int | None = None
    start: dict[str, Any] = field(default_factory=dict)  # the CLI's ``start`` event
    provenance: dict[str, Any] = field(default_factory=dict)  # the bundle's ``data`` section

    def summary(self) -> str:
        """One paragraph for the log: records used/dropped, species, final loss, time."""
        return training_summary({**self.start, **self.done}, self.path, self.seconds, self.provenance)


def _fmt_duration(seconds: float) -> str:
    seconds = round(float(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


def training_summary(done: dict[str, Any], path: str | Path, seconds: float,
                     provenance: dict[str, Any] | None = None) -> str:
    """Human summary of the CLI's events and the bundle's data provenance (missing keys are left out)."""
    prov = provenance or {}
    used = prov.get("n_used", done.get("n_records"))
    species = done.get("n_species", prov.get("n_species"))
    loss = done.get("final_loss")
    epochs = done.get("epochs")
    secs = done.get("elapsed_s", seconds)
    parts = []
    if species is not None:
        parts.append(f"{species:,} species")
    if used is not None:
        parts.append(f"{used:,} records used" + (f" of {prov['n_read']:,} read" if "n_read" in prov else ""))
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if isinstance(loss, (int, float)) and math.isfinite(loss):
        parts.append(f"final loss {loss:.4f}")
    parts.append(f"time {_fmt_duration(secs or 0)}")
    text = f"Trained {Path(path).name}: " + ", ".join(parts)
    dropped = []
    unusable = {k: int(v) for k, v in (prov.get("dropped") or {}).items() if v}
    if unusable:
        dropped.append(f"{sum(unusable.values()):,} unusable rows ("
                       + ", ".join(f"{v:,} {drop_reason_text(k)}" for k, v in unusable.items()) + ")")
    for key, what in (("n_removed_by_thinning", "by thinning"),
                      ("n_removed_below_min_records", "of species below the minimum records"),
                      ("n_removed_no_covariates", "without covariate values"),
                      ("n_removed_by_cap", "over the per-species cap")):
        if prov.get(key):
            dropped.append(f"{int(prov[key]):,} {what}")
    if dropped:
        text += "; dropped " + ", ".join(dropped)
    elif prov:
        text += "; no records dropped"
    if prov.get("n_species_no_covariates"):
        text += f"; {int(prov['n_species_no_covariates']):,} species had no record with covariate values"
    if prov.get("n_random_absences"):  # a covariate model's absences lie where every covariate has a value
        text += (f"; {int(prov['n_random_absences']):,} random absences drawn where every covariate has a value "
                 f"({int(prov.get('n_random_redrawn_no_covariates', 0)):,} random points without one drawn again)")
    return text + "."


def bundle_provenance(path: str | Path) -> dict[str, Any]:
    """The ``data`` section of a bundle's model.json (records read, used, dropped); ``{}`` if unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("model.json").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    data = meta.get("data") if isinstance(meta, dict) else None
    return data if isinstance(data, dict) else {}
