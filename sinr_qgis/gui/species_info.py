"""What the dock says under its species field: which species the text finds, how far their maps can be
trusted, and, for a name the model does not know, the near misses as links that correct it.

The text is read with the bundle's own list rule (``ModelBundle.find_species_list``), so what is
shown is what a prediction would use. Reliability comes from ``core.reliability``; suggestions
from ``SpeciesIndex.suggestions``.
"""
from __future__ import annotations

import csv
import html

from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import QLabel, QWidget

from ..core.bundle import ModelBundle, Species
from ..core.errors import AmbiguousSpeciesError, SpeciesNotFoundError
from ..core.reliability import species_reliability
from ..core.species_names import format_species_list, isolate_bidi

MAX_SHOWN = 3  # species described in full (or unknown names given suggestions); more are counted
N_SUGGESTIONS = 3
POOR_STYLE = "color:#b00020; font-weight:bold"


def species_title(species: Species) -> str:
    """'Acer rubrum (red maple)' where the model has a common name, else the name (or code)."""
    name = species.name or species.code
    common = getattr(species, "common_name", "")
    return f"{name} ({common})" if common and common != name else name


class SpeciesInfo(QLabel):
    """Rich-text label; emits ``textCorrected(new_text)`` when a suggestion link is clicked."""

    textCorrected = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SinrSpeciesInfo")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.linkActivated.connect(self._link)
        self.species: list[Species] = []  # what the text finds (empty while it finds nothing)
        self.suggestions: dict[str, list[Species]] = {}  # unknown item -> its near misses
        self._text = ""
        self._links: dict[str, str] = {}

    def update_for(self, bundle: ModelBundle | None, text: str) -> None:
        """Describe what ``text`` (the species field) finds in ``bundle``."""
        self._text, self._links, self.species, self.suggestions = text, {}, [], {}
        if bundle is None or not text.strip():
            self.clear()
            return
        try:
            self.species = bundle.find_species_list(text)
        except AmbiguousSpeciesError as exc:
            self.setText(html.escape(str(exc)))
            return
        except SpeciesNotFoundError as exc:
            self.setText(self._not_found_html(bundle, text, str(exc)))
            return
        parts = [self._species_html(bundle, s) for s in self.species[:MAX_SHOWN]]
        if len(self.species) > MAX_SHOWN:
            parts.append(f"… and {len(self.species) - MAX_SHOWN} more species.")
        self.setText("<br>".join(parts))

    def _species_html(self, bundle: ModelBundle, species: Species) -> str:
        r = species_reliability(bundle, species)
        summary = r.summary.removeprefix(f"{species.label}: ")  # the title below names the species
        out = f"<b>{html.escape(isolate_bidi(species_title(species)))}</b>: {html.escape(summary)}"
        if r.warning:
            style = POOR_STYLE if r.level == "poor" else "font-style:italic"
            out += f"<br><span style='{style}'>⚠ {html.escape(r.warning)}</span>"
        return out

    def _not_found_html(self, bundle: ModelBundle, text: str, message: str) -> str:
        index = bundle.species_index()
        lines = []
        unknown = [item for item in _items(text) if not index.candidates(item)]
        for item in unknown[:MAX_SHOWN]:  # suggestions cost ~10 ms each: a pasted list of 500 would freeze
            found = index.suggestions(item, n=N_SUGGESTIONS)
            self.suggestions[item] = found
            links = []
            for s in found:
                key = f"s{len(self._links)}"
                self._links[key] = self._corrected(index, item, s)
                links.append(f"<a href='{key}'>{html.escape(isolate_bidi(s.label))}</a>")
            what = f"“{html.escape(item)}” is not in this model."
            lines.append(what + (f" Did you mean: {', '.join(links)}?" if links else
                                 " Open the species list to see the model's species."))
        if len(unknown) > MAX_SHOWN:
            lines.append(f"… and {len(unknown) - MAX_SHOWN} more names not in this model.")
        return "<br>".join(lines) or html.escape(message)

    def _corrected(self, index, item: str, species: Species) -> str:
        """The field's text with ``item`` replaced by ``species`` (its name when that alone finds it)."""
        name = species.name if index.candidates(species.name) == [species] else species.label
        replacement = format_species_list([name])
        if item in self._text:
            return self._text.replace(item, replacement, 1)
        return format_species_list([name if i == item else i for i in _items(self._text)])

    def _link(self, key: str) -> None:
        if key in self._links:
            self.textCorrected.emit(self._links[key])


def _items(text: str) -> list[str]:
    """The comma- or line-separated items of a species list as typed ("quoted" items kept whole)."""
    out = []
    for line in text.splitlines():
        for row in csv.reader([line], skipinitialspace=True):
            out.extend(i.strip() for i in row if i.strip())
    return out
