"""The plugin's private packages in the user's QGIS profile (the QGIS side of ``dependencies``).

``<QGIS profile>/python/dependencies/sinr_qgis/<py311-linux-x86_64>/<set>/``; at plugin start
:func:`activate_private_packages` puts installed folders on ``sys.path`` before anything imports
onnxruntime. Light on purpose: it runs when QGIS loads the plugin.
"""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication

from .dependencies import ONNXRUNTIME, InstallState, activate, install_folder, install_state, proxy_url
from .settings import qgis_values

PACKAGE_SETS = (ONNXRUNTIME,)
_PROXY_KEYS = ("proxy/proxyEnabled", "proxy/proxyType", "proxy/proxyHost", "proxy/proxyPort",
               "proxy/proxyUser", "proxy/proxyPassword")


def private_packages_root() -> Path:
    """``<QGIS profile>/python/dependencies/sinr_qgis``: the plugin's private packages."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "python" / "dependencies" / "sinr_qgis"


def training_python_folder() -> Path:
    """Where "Set up PyTorch for me" makes the training environment by default (never on
    ``sys.path``: PyTorch only runs in the training process)."""
    return private_packages_root() / "training-python"


def onnxruntime_folder() -> Path:
    """Where onnxruntime is (or would be) installed for this Python."""
    return install_folder(private_packages_root(), ONNXRUNTIME)


def activate_private_packages() -> list[Path]:
    """Append every installed package set of this Python to ``sys.path``; the folders added."""
    folders = [install_folder(private_packages_root(), s) for s in PACKAGE_SETS]
    return [f for f in folders if activate(f)]


def onnxruntime_install_state() -> InstallState:
    """Whether the install button is needed: MISSING, OUTDATED or CURRENT."""
    from ..core.runtime import onnxruntime_available  # imports numpy: not at plugin load

    return install_state(onnxruntime_folder(), ONNXRUNTIME, onnxruntime_available)


def qgis_proxy() -> str | None:
    """pip's proxy URL from QGIS's network settings (None: direct, or the system's proxy)."""
    return proxy_url(qgis_values(_PROXY_KEYS))
