"""Completion of species names in a comma-separated species field (the dock's "Species")."""
from __future__ import annotations

from collections.abc import Sequence

from qgis.PyQt.QtCore import QModelIndex, Qt
from qgis.PyQt.QtGui import QStandardItem, QStandardItemModel
from qgis.PyQt.QtWidgets import QCompleter, QWidget

from ..core.species_names import format_species_list, name_key, split_last_item

KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class SpeciesCompleter(QCompleter):
    """Offers the model's "Name (code)" labels that contain the species being typed (or whose
    common name does).

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
        self.setCaseSensitivity(Qt.CaseSensitivity.CaseSensitive)  # keys are already case-folded
        self.setFilterMode(Qt.MatchFlag.MatchContains)

    def set_labels(self, labels: Sequence[str], also_found_by: Sequence[str] = ()) -> None:
        """Replace the offered labels (shown as they are, matched by their key); ``also_found_by[i]``
        (e.g. a common name) finds label ``i`` too and is shown as its tooltip.

        The items are added in one call: a row at a time signalled every row to the completer and
        its views, which doubled the time a 47,375-species model took to load."""
        self.labels.clear()
        items = []
        for i, label in enumerate(labels):
            extra = also_found_by[i] if i < len(also_found_by) else ""
            item = QStandardItem(label)
            # one line per spelling: a query is matched within a line, never across two
            item.setData(name_key(label) + (f"\n{name_key(extra)}" if extra else ""), KEY_ROLE)
            if extra:
                item.setToolTip(extra)
            item.setEditable(False)
            items.append(item)
        if items:
            self.labels.appendColumn(items)

    def label_list(self) -> list[str]:
        """The offered labels, in model order."""
        return [self.labels.item(i).text() for i in range(self.labels.rowCount())]

    def splitPath(self, path: str) -> list[str]:  # Qt override
        return [name_key(split_last_item(path)[1])]

    def pathFromIndex(self, index: QModelIndex) -> str:  # Qt override
        widget = self.widget()
        before = split_last_item(widget.text())[0] if widget is not None and hasattr(widget, "text") else ""
        return before + format_species_list([index.data(Qt.ItemDataRole.DisplayRole) or ""])
