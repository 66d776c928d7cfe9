"""Darwin Core Archive structure: what meta.xml says about each data file, which file holds the
occurrences, and how an Occurrence extension is joined to its core.

Read as the Darwin Core text guide says: columns are mapped by ``<field index term>``, never by the
data file's own header; a ``default`` fills the empty cells of an indexed field and is the value of
a field without an index. An archive whose core is an Occurrence is read from the core (extensions
add nothing a range map uses). A sampling-event archive (Event core, Occurrence extension) is read
as GBIF reads it: each occurrence row (``<coreid>``) takes its event's (``<id>``) terms where it has
none of its own, and an event without coordinates takes them from its nearest ancestor through
``parentEventID``. An archive without occurrences (a Taxon core checklist, an Event core alone) is
refused with a message naming its type.
"""
from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import OccurrenceError

OCCURRENCE = "Occurrence"
_ARCHIVE_TYPES = {
    "Taxon": "a checklist (its core rowType is Taxon): it lists taxa, not places where they were observed",
    "Event": "a sampling-event archive (its core rowType is Event) without an Occurrence extension: it lists "
    "sampling events, not the species found",
}
_LAT, _LON = "decimalLatitude", "decimalLongitude"
_IDS = {"id", "eventID", "parentEventID", "coreid"}  # identify a record: never filled from another


def local_name(tag: str) -> str:
    """Element or term name without its XML namespace or URI (``decimalLatitude``)."""
    return tag.rsplit("}", 1)[-1].rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _unescape(value: str) -> str:
    """meta.xml writes tab and newline as backslash escapes (``fieldsTerminatedBy="\\t"``)."""
    return value.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")


@dataclass(frozen=True)
class DataFile:
    """One ``<core>`` or ``<extension>`` of meta.xml."""

    row_type: str  # local name of rowType: Occurrence, Event, Taxon, ...
    location: str  # path inside the archive (relative to its root)
    delimiter: str
    quotechar: str | None
    skip_lines: int
    encoding: str
    terms: list[str]  # term of each column index ('' where none is declared)
    defaults: dict[int, str] = field(default_factory=dict)  # index -> value for its empty cells
    constants: dict[str, str] = field(default_factory=dict)  # term -> value (a field without index)
    key: int | None = None  # column of <id> (core) or <coreid> (extension)


@dataclass(frozen=True)
class Archive:
    """meta.xml read: the core file and the extensions."""

    meta: str  # path of meta.xml inside the archive
    core: DataFile
    extensions: tuple[DataFile, ...]


def parse_meta(data: bytes, meta: str, label: str) -> Archive:
    """Read meta.xml (``data``, found at ``meta`` in the archive). Raises :class:`OccurrenceError`."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OccurrenceError(f"{label}: meta.xml is not valid XML ({exc}); export the archive again.") from exc
    core = next((el for el in root.iter() if local_name(el.tag) == "core"), None)
    if core is None:
        raise OccurrenceError(f"{label}: meta.xml has no <core> element; export the Darwin Core Archive again.")
    base = posixpath.dirname(meta)
    extensions = tuple(_data_file(el, base, label) for el in root.iter() if local_name(el.tag) == "extension")
    return Archive(meta=meta, core=_data_file(core, base, label), extensions=extensions)


def _data_file(el: ET.Element, base: str, label: str) -> DataFile:
    location = next((f.text.strip() for f in el.iter() if local_name(f.tag) == "location" and f.text), None)
    if not location:
        raise OccurrenceError(f"{label}: meta.xml names no data file (<files><location>); export the archive again.")
    delimiter = _unescape(el.get("fieldsTerminatedBy", ","))
    enclosed = _unescape(el.get("fieldsEnclosedBy", '"'))
    if len(delimiter) != 1 or len(enclosed) > 1:
        raise OccurrenceError(
            f"{label}: meta.xml uses fieldsTerminatedBy={delimiter!r} / fieldsEnclosedBy={enclosed!r}; "
            "only single-character delimiters and quotes are supported. Re-export with tab or comma."
        )
    try:
        skip = int(el.get("ignoreHeaderLines", "0"))
        key_el = next((k for k in el if local_name(k.tag) in ("id", "coreid")), None)
        key = None if key_el is None or key_el.get("index") in (None, "") else int(key_el.get("index", ""))
        indexed: dict[int, tuple[str, str | None]] = {}
        constants: dict[str, str] = {}
        for f in el:
            if local_name(f.tag) != "field" or not f.get("term"):
                continue
            term = local_name(f.get("term", ""))
            if f.get("index") not in (None, ""):
                indexed.setdefault(int(f.get("index", "")), (term, f.get("default")))
            elif f.get("default") is not None:
                constants.setdefault(term, f.get("default", ""))
    except ValueError as exc:
        raise OccurrenceError(f"{label}: meta.xml has a non-integer index or ignoreHeaderLines; fix meta.xml.") from exc
    width = max([*indexed, -1 if key is None else key]) + 1
    encoding = el.get("encoding", "UTF-8")
    if encoding.replace("-", "").lower() == "utf8":
        encoding = "utf-8-sig"
    return DataFile(
        row_type=local_name(el.get("rowType", OCCURRENCE)),
        location=posixpath.normpath(posixpath.join(base, location)),
        delimiter=delimiter,
        quotechar=enclosed or None,
        skip_lines=skip,
        encoding=encoding,
        terms=[indexed[i][0] if i in indexed else "" for i in range(width)],
        defaults={i: d for i, (_, d) in indexed.items() if d is not None},
        constants=constants,
        key=key,
    )


def occurrence_files(archive: Archive, label: str) -> tuple[DataFile, DataFile | None]:
    """The file holding the occurrences and, for an Occurrence extension, the core it joins.

    Raises :class:`OccurrenceError` naming the archive type when it holds no occurrences.
    """
    if archive.core.row_type == OCCURRENCE:
        return archive.core, None
    for ext in archive.extensions:
        if ext.row_type == OCCURRENCE:
            if ext.key is None or archive.core.key is None:
                raise OccurrenceError(
                    f"{label}: meta.xml links the Occurrence extension to its {archive.core.row_type} core without "
                    "an <id index> in the core and a <coreid index> in the extension; fix meta.xml."
                )
            return ext, archive.core
    kind = _ARCHIVE_TYPES.get(
        archive.core.row_type, f"an archive whose core rowType is {archive.core.row_type}, with no Occurrence extension"
    )
    raise OccurrenceError(
        f"{label}: this Darwin Core Archive is {kind}. Training needs occurrences (rowType Occurrence, in the core "
        "or as an extension): download an occurrence dataset or a GBIF occurrence download instead."
    )


def core_records(rows: Iterable[list[str]], core: DataFile) -> tuple[list[str], dict[str, list[str]]]:
    """The core's terms and, by record id, each record's values for them.

    Defaults and constants are applied; an event without coordinates (or another term) takes
    them from its nearest ancestor through ``parentEventID`` (coordinates as a pair).
    """
    columns = [(i, t) for i, t in enumerate(core.terms) if t]
    terms = [t for _, t in columns] + list(core.constants)
    constants = list(core.constants.values())
    key, defaults = core.key, core.defaults
    records: dict[str, list[str]] = {}
    for row in rows:
        values = [row[i] or defaults.get(i, "") for i, _ in columns] + constants
        records.setdefault(row[key].strip(), values)
    if "parentEventID" in terms:
        _inherit(records, terms)
    return terms, records


def _inherit(records: dict[str, list[str]], terms: list[str]) -> None:
    parent_at = terms.index("parentEventID")
    pair = [terms.index(t) for t in (_LAT, _LON) if t in terms]
    single = [k for k, t in enumerate(terms) if t not in _IDS and k not in pair]
    for eid, values in records.items():
        seen, parent = {eid}, values[parent_at].strip()
        while parent in records and parent not in seen:  # nearest ancestor first; a loop ends the walk
            above = records[parent]
            for k in single:
                values[k] = values[k] or above[k]
            if pair and not all(values[k] for k in pair) and all(above[k] for k in pair):
                for k in pair:
                    values[k] = above[k]
            seen.add(parent)
            parent = above[parent_at].strip()


@dataclass
class CoreJoin:
    """Occurrence-extension rows completed with their core record's values (GBIF's reading).

    ``header`` names the joined columns: the extension's terms, then the core's other terms. An
    occurrence's own value wins; its coordinates are taken from the core as a pair.
    """

    extension: DataFile
    core_terms: list[str]
    records: dict[str, list[str]]
    unlinked: int = 0  # occurrence rows whose coreid matches no core record

    @property
    def header(self) -> list[str]:
        own = self._own_terms()
        return own + [t for t in self.core_terms if t not in own]

    def _own_terms(self) -> list[str]:
        seen: list[str] = []
        for t in [*self.extension.terms, *self.extension.constants]:
            if t and t not in seen:
                seen.append(t)
        return seen

    def rows(self, rows: Iterable[list[str]]) -> Iterator[list[str]]:
        """The joined rows of the extension's data ``rows`` (width-checked)."""
        ext = self.extension
        own = self._own_terms()
        first = {t: i for i, t in reversed(list(enumerate(ext.terms))) if t}
        cells = [(first[t], ext.defaults.get(first[t], "")) if t in first else (None, ext.constants[t]) for t in own]
        from_core = [self.core_terms.index(t) if t in self.core_terms else None for t in own]
        rest = [k for k, t in enumerate(self.core_terms) if t not in own]
        pair = [own.index(t) for t in (_LAT, _LON) if t in own and t in self.core_terms]
        nothing = [""] * len(self.core_terms)
        key = ext.key
        for row in rows:
            record = self.records.get(row[key].strip())
            if record is None:
                self.unlinked += 1
                record = nothing
            values = [(row[i] or default) if i is not None else default for i, default in cells]
            if pair and not all(values[k] for k in pair):
                for k in pair:
                    values[k] = record[from_core[k]]
            for k, c in enumerate(from_core):
                if c is not None and not values[k]:
                    values[k] = record[c]
            yield values + [record[c] for c in rest]
