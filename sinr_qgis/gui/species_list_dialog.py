"""The model's species at a glance: code, name, common name, training records and how reliable each map is.

Opened from the dock's "List…" button. A filter box narrows the table (any column); a double click
or "Add to species" puts the selected species into the dock's species field.
"""
from __future__ import annotations

from collections.abc import Callable

from qgis.PyQt.QtCore import QSortFilterProxyModel, Qt
from qgis.PyQt.QtGui import QStandardItem, QStandardItemModel
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.bundle import ModelBundle, Species
from ..core.reliability import SpeciesReliability, every_species_reliability

COLUMNS = ("Code", "Scientific name", "Common name", "Records", "Reliability")
SPECIES_ROLE = Qt.UserRole + 1  # the row's head index


class SpeciesListDialog(QDialog):
    """A filterable table of ``bundle``'s species; ``on_choose(species_list)`` adds the chosen ones."""

    def __init__(self, bundle: ModelBundle, parent: QWidget | None = None, *,
                 on_choose: Callable[[list[Species]], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrSpeciesListDialog")
        self.setWindowTitle(f"Species of {bundle.name}")
        self.bundle = bundle
        self.on_choose = on_choose
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        for s, r in every_species_reliability(bundle):
            self.model.appendRow(_row(s, r))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)  # any column
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.proxy.setSortRole(Qt.UserRole)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("SinrSpeciesListFilter")
        self.filter_edit.setPlaceholderText("Filter: part of a code or name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView(self)
        self.table.setObjectName("SinrSpeciesListTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.doubleClicked.connect(lambda _index: self.choose_selected())
        note = QLabel(f"{bundle.n_species:,} species. Double-click a species (or select several and press "
                      "“Add to species”) to put it in the dock's species field. Hover a row for its reliability.",
                      self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.add_button = buttons.addButton("Add to species", QDialogButtonBox.ActionRole)
        self.add_button.clicked.connect(self.choose_selected)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(640, 520)

    def visible_codes(self) -> list[str]:
        """The codes of the rows shown (after the filter), in table order."""
        return [self.proxy.index(r, 0).data() for r in range(self.proxy.rowCount())]

    def selected_species(self) -> list[Species]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.bundle.species[self.proxy.index(r, 0).data(SPECIES_ROLE)] for r in rows]

    def choose_selected(self) -> list[Species]:
        """Hand the selected species to ``on_choose``; returns them."""
        chosen = self.selected_species()
        if chosen and self.on_choose is not None:
            self.on_choose(chosen)
        return chosen


def _row(s: Species, r: SpeciesReliability) -> list[QStandardItem]:
    values = (s.code, s.name, getattr(s, "common_name", ""), s.n_train, r.level)
    items = []
    for v in values:
        item = QStandardItem(f"{v:,}" if isinstance(v, int) else str(v))
        item.setData(v if isinstance(v, int) else str(v).casefold(), Qt.UserRole)  # numbers sort as numbers
        item.setData(r.summary + (f"\n{r.warning}" if r.warning else ""), Qt.ToolTipRole)
        items.append(item)
    items[0].setData(s.index, SPECIES_ROLE)
    return items
