"""Completion of species names in a comma-separated species field (the dock's "Species")."""
from __future__ import annotations

from collections.abc import Sequence

from qgis.PyQt.QtCore import QModelIndex, Qt
from qgis.PyQt.QtGui import QStandardItem, QStandardItemModel
from qgis.PyQt.QtWidgets import QCompleter, QWidget

from ..core.species_names import format_species_list, name_key, split_last_item

KEY_ROLE = Qt.UserRole + 1


class SpeciesCompleter(QCompleter):
    """Offers the model's "Name (code)" labels that contain the species being typed.

    Only the item after the last comma is completed, and choosing a label replaces only that item
    (quoted when it holds a comma). Text is compared by ``core.species_names.name_key``, the
    lookup's own rule, so any case, Unicode form, spacing or hybrid sign ('x' for '×') finds
    the species that a prediction would use.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels = QStandardItemModel(self)
        self.setModel(self.labels)
        self.setCompletionRole(KEY_ROLE)
        self.setCaseSensitivity(Qt.CaseSensitive)  # keys are already case-folded
        self.setFilterMode(Qt.MatchContains)

    def set_labels(self, labels: Sequence[str]) -> None:
        """Replace the offered labels (shown as they are, matched by their key)."""
        self.labels.clear()
        for label in labels:
            item = QStandardItem(label)
            item.setData(name_key(label), KEY_ROLE)
            item.setEditable(False)
            self.labels.appendRow(item)

    def label_list(self) -> list[str]:
        """The offered labels, in model order."""
        return [self.labels.item(i).text() for i in range(self.labels.rowCount())]

    def splitPath(self, path: str) -> list[str]:  # Qt override
        return [name_key(split_last_item(path)[1])]

    def pathFromIndex(self, index: QModelIndex) -> str:  # Qt override
        widget = self.widget()
        before = split_last_item(widget.text())[0] if widget is not None and hasattr(widget, "text") else ""
        return before + format_species_list([index.data(Qt.DisplayRole) or ""])
