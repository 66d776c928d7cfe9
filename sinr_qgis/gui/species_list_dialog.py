"""The model's species at a glance: code, name, common name, training records and how reliable each map is.

Opened from the dock's "List…" button. A filter box narrows the table (any column); a double click
or "Add to species" puts the selected species into the dock's species field.

The table reads the bundle's species through :class:`SpeciesTableModel`, which filters and sorts
row numbers itself and makes a cell's text only when the view shows it: a 47,375-species model
opens at once (one item per cell took over a second), and a filter keystroke costs milliseconds.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.PyQt.QtCore import QAbstractTableModel, QModelIndex, Qt
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
from ..core.reliability import assess, ranges_ap, ranges_reference, species_levels

COLUMNS = ("Code", "Scientific name", "Common name", "Records", "Reliability")
SORT_ROLE = Qt.ItemDataRole.UserRole  # a cell's sort key: numbers as numbers, text case-folded
SPECIES_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's head index


class SpeciesTableModel(QAbstractTableModel):
    """``bundle``'s species as a table (:data:`COLUMNS`), filtered by :meth:`set_filter` and sorted
    by :meth:`sort`; row ``r`` shows species ``shown[r]`` (a head index). Selections and the
    current row follow their species through a filter or a sort."""

    def __init__(self, bundle: ModelBundle, parent: Any = None) -> None:
        super().__init__(parent)
        self.species = bundle.species
        self.levels = species_levels(bundle)
        self._aps, self._reference = ranges_ap(bundle.meta), ranges_reference(bundle.meta)
        self.shown: list[int] = list(range(len(self.species)))
        self._needle = ""
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self._haystack: list[str] | None = None  # per species: its cells' texts, case-folded, one a line
        self._keys: dict[int, list[int | str]] = {}  # column -> every species' sort key, made on first sort

    def rowCount(self, parent: QModelIndex | None = None) -> int:  # Qt override (a table: no children)
        return 0 if parent is not None and parent.isValid() else len(self.shown)

    def columnCount(self, parent: QModelIndex | None = None) -> int:  # Qt override
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.shown):
            return None
        pos = self.shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(pos, index.column())
        if role == SORT_ROLE:
            return self._key(pos, index.column())
        if role == SPECIES_ROLE:
            return self.species[pos].index
        if role == Qt.ItemDataRole.ToolTipRole:
            r = assess(self.species[pos], self._aps.get(self.species[pos].code), self._reference)
            return r.summary + (f"\n{r.warning}" if r.warning else "")
        return None

    def _text(self, pos: int, column: int) -> str:
        s = self.species[pos]
        return (s.code, s.name, getattr(s, "common_name", "") or "", f"{s.n_train:,}", self.levels[pos])[column]

    def _key(self, pos: int, column: int) -> int | str:
        return self._column_keys(column)[pos]

    def _column_keys(self, column: int) -> list[int | str]:
        """Every species' sort key in ``column``: numbers as numbers, text case-folded."""
        if column not in self._keys:
            sp = self.species
            self._keys[column] = ([s.code.casefold() for s in sp], [s.name.casefold() for s in sp],
                                  [(getattr(s, "common_name", "") or "").casefold() for s in sp],
                                  [s.n_train for s in sp], self.levels)[column]
        return self._keys[column]

    def set_filter(self, text: str) -> None:
        """Show the species one of whose cells contains ``text`` (any case); all for ""."""
        self._needle = text.casefold()
        self._apply()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:  # Qt override
        self._sort = (column, order)
        self._apply()

    def _apply(self) -> None:
        rows = range(len(self.species))
        if self._needle:
            if self._haystack is None:
                self._haystack = ["\n".join(self._text(p, c) for c in range(len(COLUMNS))).casefold() for p in rows]
            hay, needle = self._haystack, self._needle
            rows = [p for p in rows if needle in hay[p]]
        if self._sort is not None:
            column, order = self._sort
            # stable from head order, so equal keys keep the model's order either way
            rows = sorted(rows, key=self._column_keys(column).__getitem__,
                          reverse=order == Qt.SortOrder.DescendingOrder)
        self._show(list(rows))

    def _show(self, shown: list[int]) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        species_of = [self.shown[i.row()] for i in old]
        self.shown = shown
        row_of = {p: r for r, p in enumerate(shown)} if old else {}
        self.changePersistentIndexList(old, [self.index(row_of[p], i.column()) if p in row_of else QModelIndex()
                                             for p, i in zip(species_of, old)])
        self.layoutChanged.emit()


class SpeciesListDialog(QDialog):
    """A filterable table of ``bundle``'s species; ``on_choose(species_list)`` adds the chosen ones."""

    def __init__(self, bundle: ModelBundle, parent: QWidget | None = None, *,
                 on_choose: Callable[[list[Species]], None] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrSpeciesListDialog")
        self.setWindowTitle(f"Species of {bundle.name}")
        self.bundle = bundle
        self.on_choose = on_choose
        # the table's model, filtered and sorted (named as the proxy it replaced, which tests read)
        self.proxy = self.model = SpeciesTableModel(bundle, self)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setObjectName("SinrSpeciesListFilter")
        self.filter_edit.setPlaceholderText("Filter: part of a code or name")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.model.set_filter)
        self.table = QTableView(self)
        self.table.setObjectName("SinrSpeciesListTable")
        self.table.setModel(self.model)
        # by name from the start: sorting is enabled on the header's indicator, so set it first (one sort)
        self.table.horizontalHeader().setSortIndicator(1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # sized once from the first rows: sizing to contents at every filter keystroke reads every row
        self.table.horizontalHeader().setResizeContentsPrecision(200)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _index: self.choose_selected())
        note = QLabel(f"{bundle.n_species:,} species. Double-click a species (or select several and press "
                      "“Add to species”) to put it in the dock's species field. Hover a row for its reliability.",
                      self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.add_button = buttons.addButton("Add to species", QDialogButtonBox.ButtonRole.ActionRole)
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

