"""Plugin settings: one module, one ``QgsSettings`` key prefix (``sinr_qgis/``).

The only module that touches ``QgsSettings``: the plugin's own keys go through :func:`get_value` and
:func:`set_value`, QGIS's keys (e.g. its network proxy) are read through :func:`qgis_values`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qgis.core import QgsSettings

PREFIX = "sinr_qgis/"

# Every key the plugin stores, with its default; nothing else is written.
DEFAULTS: dict[str, Any] = {
    "model_path": "",        # empty = the bundled model
    "species": "",           # last species typed in the dock
    "opacity": 80,           # prediction layer opacity, percent
    "top_k": 10,             # species listed by the "what lives here" map tool
    "mask_ocean": True,
    "training/python": "",   # the interpreter that trains (toolbelt/interpreter.py); empty = the default guess
    "models/registry": "",   # the user's models, a JSON list (toolbelt/model_registry.py)
}


def key(name: str) -> str:
    """The full ``QgsSettings`` key of setting ``name`` (``sinr_qgis/<name>``); ``KeyError`` for a name
    not in ``DEFAULTS``."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown setting {name!r}")
    return PREFIX + name


def get_value(name: str) -> Any:
    """The stored value of setting ``name``, converted to its default's type; ``KeyError`` for a name
    not in ``DEFAULTS``."""
    full = key(name)
    default = DEFAULTS[name]
    return QgsSettings().value(full, default, type(default))


def set_value(name: str, value: Any) -> None:
    """Store ``value`` under ``sinr_qgis/<name>``; ``KeyError`` for a name not in ``DEFAULTS``."""
    QgsSettings().setValue(key(name), value)


def qgis_values(keys: Iterable[str]) -> dict[str, Any]:
    """QGIS's own settings under ``keys`` (read only; an unset key reads as ""), e.g. its proxy."""
    store = QgsSettings()
    return {k: store.value(k, "") for k in keys}
