"""Plugin settings: one module, one ``QgsSettings`` key prefix (``sinr_qgis/``)."""
from __future__ import annotations

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
}


def get_value(key: str) -> Any:
    """The stored value of ``key`` (one of ``DEFAULTS``), converted to the default's type."""
    default = DEFAULTS[key]
    return QgsSettings().value(PREFIX + key, default, type(default))


def set_value(key: str, value: Any) -> None:
    """Store ``value`` under ``sinr_qgis/<key>``."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown setting {key!r}")
    QgsSettings().setValue(PREFIX + key, value)
