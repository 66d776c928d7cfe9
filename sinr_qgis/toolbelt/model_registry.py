"""The user's models (trained, or opened from a file), remembered across sessions (path, name,
species count, when trained).

Stored as JSON under the plugin's settings prefix (``sinr_qgis/models/registry``). Entries whose
file has gone are dropped with a message (logged, and returned to the caller), never an error.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.bundle import ModelBundle
from .settings import get_value, set_value

LOG = logging.getLogger("sinr_qgis")


@dataclass
class ModelEntry:
    """One remembered model."""

    path: str
    name: str
    n_species: int
    trained: str  # ISO time the model was created (from its model.json)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.n_species} species, {self.trained[:10] or '?'})"


def _read() -> list[ModelEntry]:
    raw = get_value("models/registry")
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        LOG.warning("The list of trained models in the settings was unreadable and has been reset.")
        items = []
    out = []
    for it in items if isinstance(items, list) else []:
        try:
            out.append(ModelEntry(path=str(it["path"]), name=str(it.get("name", "")),
                                  n_species=int(it.get("n_species", 0)), trained=str(it.get("trained", ""))))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _write(entries: list[ModelEntry]) -> None:
    set_value("models/registry", json.dumps([asdict(e) for e in entries]))


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def list_models(prune: bool = True) -> list[ModelEntry]:
    """The remembered models, last added (trained, opened or used) first; with ``prune``, entries
    whose file has gone are dropped."""
    entries = _read()
    if prune:
        entries, _ = _prune(entries)
    return entries


def prune_missing() -> list[str]:
    """Drop entries whose file has gone; return one message per dropped model."""
    _, messages = _prune(_read())
    return messages


def _prune(entries: list[ModelEntry]) -> tuple[list[ModelEntry], list[str]]:
    kept, messages = [], []
    for e in entries:
        if Path(e.path).is_file():
            kept.append(e)
        else:
            msg = (f"Model {e.name!r} is no longer at {e.path}; it was removed from the list of models. "
                   "Add it again if you moved it.")
            LOG.warning(msg)
            messages.append(msg)
    if messages:
        _write(kept)
    return kept, messages


def add_model(path: str | Path, bundle: ModelBundle | None = None) -> ModelEntry:
    """Remember the model at ``path`` (validated by loading it, unless its loaded ``bundle`` is
    given); a model already listed moves to the top. Raises ``BundleError`` for a bad file."""
    bundle = bundle if bundle is not None else ModelBundle.load(path)
    entry = ModelEntry(path=_key(path), name=bundle.name, n_species=bundle.n_species,
                       trained=str(bundle.meta.get("created", "")))
    entries = [e for e in _read() if _key(e.path) != entry.path]
    _write([entry, *entries])
    return entry
