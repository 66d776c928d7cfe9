"""Install a private package set (onnxruntime) for QGIS's Python in the background.

A ``QgsTask`` around :func:`sinr_qgis.toolbelt.dependencies.install`, with progress, pip's log and
Cancel; the folder is in the user's QGIS profile (:mod:`sinr_qgis.toolbelt.private_packages`) and
QGIS's proxy settings are passed to pip.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path

from ..core.errors import CancelledError, SinrError
from ..toolbelt.dependencies import InstallResult, PackageSet, activate, find_interpreter, install
from ..toolbelt.diagnostics import plugin_version
from ..toolbelt.private_packages import private_packages_root, qgis_proxy
from .base import SinrTask

LOG = logging.getLogger("sinr_qgis")


class InstallTask(SinrTask):
    """Installs one package set; ``on_done(task, ok)`` is called on the main thread.

    ``run()`` never raises: the error is kept in ``self.error`` (a ``DependencyInstallError``
    whose ``reason`` says why, or ``CancelledError``); pip's output is in ``self.log``. After a
    successful install the folder is put on ``sys.path`` in ``finished()``, so the package
    imports in this QGIS without a restart (``self.needs_restart`` says when it does not).
    ``index_args`` and ``root`` exist for tests (a local wheel folder, a temporary root).
    """

    kind = "Install"

    def __init__(self, package_set: PackageSet, *, on_done: Callable[[InstallTask, bool], None] | None = None,
                 root: str | Path | None = None, index_args: tuple[str, ...] = (),
                 interpreter: str | Path | None = None) -> None:
        super().__init__(f"SINR: installing {package_set.name} {package_set.version}", on_done)
        self.package_set = package_set
        self.root = Path(root) if root is not None else private_packages_root()
        self.index_args = tuple(index_args)
        self.interpreter = interpreter
        self.proxy = qgis_proxy()  # read here: QgsSettings belongs to the main thread
        self.log: list[str] = []
        self.result: InstallResult | None = None
        self.needs_restart = False
        self.summary = ""

    def _line(self, text: str) -> None:
        self.log.append(text)
        LOG.info("install %s: %s", self.package_set.name, text)  # live in the SINR tab of the log panel
        # pip prints a few lines per package; move the bar along them up to the verification
        self.setProgress(min(85.0, 5.0 + 4.0 * len(self.log)))

    def work(self) -> bool:
        """Worker thread: install (``DependencyInstallError`` says why it failed)."""
        self.setProgress(1)
        python = self.interpreter or find_interpreter().path
        self.result = install(self.package_set, self.root, python, proxy=self.proxy,
                              index_args=self.index_args, on_line=self._line, is_cancelled=self.isCanceled,
                              extra_marker={"plugin_version": _plugin_version()})
        self.setProgress(100)
        return True

    def unexpected(self, exc: Exception) -> Exception:
        """A bug, in words the install dialog shows."""
        return SinrError(f"The install failed unexpectedly ({type(exc).__name__}: {exc}). "
                         "Please report it with the Diagnostics report.")

    def finished(self, result: bool) -> None:
        if result and self.result is not None:
            activate(self.result.folder)
            self.needs_restart = self.result.pending_restart or \
                not _imports_from(self.package_set.import_name, self.result.folder)
            self.summary = (f"{self.package_set.name} {self.result.version} installed in {self.result.folder}. "
                            + ("Restart QGIS to use it." if self.needs_restart else "It is used from now on."))
        elif self.error is None:
            self.error = CancelledError("Install cancelled; nothing was installed.")
        super().finished(result)


def _imports_from(name: str, folder: Path) -> bool:
    """Whether ``name`` now imports from ``folder``. Not when an older copy was imported before the
    install (Python keeps that one until QGIS restarts) or when the import fails in this process."""
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
    except ImportError:
        return False
    return Path(folder).resolve() in Path(getattr(module, "__file__", "") or ".").resolve().parents


def _plugin_version() -> str:
    try:
        return plugin_version()
    except Exception:  # the marker is informative; a broken metadata.txt must not fail the install
        return "unknown"
