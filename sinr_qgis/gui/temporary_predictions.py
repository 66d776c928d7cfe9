"""After a project is saved: warn when it uses the dock's temporary predictions, offer to move them.

The dock writes its maps to the managed temp folder (``toolbelt/prediction_folder.py``), which is
emptied once QGIS closes. A project saved with such layers would open later with missing layers,
so, each time the project is saved, a message bar warning names them and offers "Move next to
the project": the files are copied into ``<project folder>/<project name>_sinr_predictions/``
(readable names from the layer names), the layers read the copies from then on (same layer,
style and place in the tree) and the project is saved again.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from qgis.core import Qgis, QgsDataProvider, QgsMapLayer, QgsProject
from qgis.PyQt.QtCore import QObject
from qgis.PyQt.QtWidgets import QPushButton

from ..core.atomic import atomic_path
from ..core.errors import OutputError
from ..core.file_names import safe_file_stem
from ..toolbelt.prediction_folder import is_managed


class TemporaryPredictionsCheck(QObject):
    """Connected to ``project.projectSaved``; ``check()`` and ``move_next_to_project()`` are public
    so that tests (and the desktop end-to-end walk) can drive them."""

    def __init__(self, iface, project: QgsProject | None = None, root: Path | None = None) -> None:
        super().__init__()
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.root = root  # the managed folder; None = the system temp one
        self.message_item = None
        self.move_button: QPushButton | None = None
        self._saving_again = False
        self.project.projectSaved.connect(self.check)

    def close(self) -> None:
        """Plugin unload: stop watching the project."""
        self.project.projectSaved.disconnect(self.check)

    def temporary_layers(self) -> list[QgsMapLayer]:
        """The project's layers that read a file in the managed temporary folder."""
        return [lyr for lyr in self.project.mapLayers().values()
                if is_managed(lyr.source().split("|")[0], self.root)]

    def target_folder(self) -> Path | None:
        """``<project folder>/<project name>_sinr_predictions``; None for a project not saved as a file."""
        if self.project.projectStorage() is not None or not self.project.fileName():
            return None
        return Path(self.project.absolutePath()) / f"{safe_file_stem(self.project.baseName())}_sinr_predictions"

    def check(self) -> int:
        """Warn (message bar, with a move button when possible) if the saved project uses temporary
        predictions; returns how many layers do."""
        layers = [] if self._saving_again else self.temporary_layers()
        if not layers:
            return 0
        names = ", ".join(lyr.name() for lyr in layers[:5]) + (", ..." if len(layers) > 5 else "")
        text = (f"This project uses {len(layers)} SINR prediction{'s' if len(layers) > 1 else ''} ({names}) "
                "kept in a temporary folder that is emptied when QGIS closes; opened later, the project "
                "would miss them.")
        folder = self.target_folder()
        if folder is None:
            text += " Save the project as a file to move them next to it, or export each layer (Export > Save As)."
        bar = self.iface.messageBar()
        self.message_item = bar.createMessage("SINR", text)
        self.message_item.setObjectName("SinrTemporaryPredictionsMessage")
        if folder is not None:
            self.move_button = QPushButton("Move next to the project", self.message_item)
            self.move_button.setObjectName("SinrMovePredictionsButton")
            self.move_button.setToolTip(f"Copy the maps to {folder} and save the project again")
            self.move_button.clicked.connect(self.move_next_to_project)
            self.message_item.layout().addWidget(self.move_button)
        bar.pushWidget(self.message_item, Qgis.MessageLevel.Warning, 0)
        return len(layers)

    def move_next_to_project(self) -> list[Path]:
        """Copy each temporary prediction next to the project, point its layer at the copy and save
        the project again. Returns the new files; reports (and returns what was moved) on failure."""
        folder = self.target_folder()
        layers = self.temporary_layers()
        if folder is None or not layers:
            return []
        self._dismiss()
        moved: list[Path] = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for layer in layers:
                src = Path(layer.source().split("|")[0])
                dst = _free_name(folder, safe_file_stem(layer.name(), max_bytes=100), src.suffix)
                with atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)
                layer.setDataSource(str(dst), layer.name(), layer.providerType(),
                                    QgsDataProvider.ProviderOptions(), False)
                moved.append(dst)
        except (OSError, OutputError) as exc:
            self.iface.messageBar().pushMessage(
                "SINR", f"Could not move the predictions to {folder}: {exc}. Export them with Export > Save As.",
                Qgis.MessageLevel.Critical, 0)
            return moved
        self._saving_again = True
        try:
            saved = self.project.write()
        finally:
            self._saving_again = False
        text = f"Moved {len(moved)} prediction{'s' if len(moved) > 1 else ''} to {folder}"
        if saved:
            self.iface.messageBar().pushMessage("SINR", text + " and saved the project.", Qgis.MessageLevel.Success, 8)
        else:
            self.iface.messageBar().pushMessage("SINR", text + f"; saving the project failed: "
                                                f"{self.project.error()}. Save it again.", Qgis.MessageLevel.Warning, 0)
        return moved

    def _dismiss(self) -> None:
        if self.message_item is not None:
            with contextlib.suppress(RuntimeError):  # the user closed it: Qt has deleted it already
                self.iface.messageBar().popWidget(self.message_item)
            self.message_item = self.move_button = None


def _free_name(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem+suffix``, or ``stem_2``, ``stem_3``... when taken (never overwrites a file)."""
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_{n}{suffix}"
    return path
