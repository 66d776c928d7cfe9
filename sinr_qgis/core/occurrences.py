"""Reading presence-only observations (lon, lat, species) from the files people actually have.

:func:`read_occurrences` is the one entry point. Formats (``fmt="auto"`` tells them apart by
content, not by extension):

- generic CSV or TSV; the delimiter (comma, semicolon or tab) is sniffed from the header line;
- GBIF SIMPLE_CSV download: tab-separated, unquoted;
- iNaturalist observation export (``latitude``, ``longitude``, ``scientific_name``, ``taxon_id``);
- Darwin Core Archive: ``meta.xml`` names the data files, their delimiter, quoting, header lines
  and which column holds which Darwin Core term; columns are mapped by term, never by the data
  file's own header (see :mod:`.dwca`: defaults, sampling-event archives, checklists).

Containers (see :mod:`.containers`): plain, gzip, bzip2 or xz files; zip and tar archives (.tar.gz,
.tgz) holding a Darwin Core Archive or one table (the one with latitude, longitude and species
columns when a readme or licence lies beside it); an unzipped Darwin Core Archive given as its
folder, its meta.xml or its core data file. Archiver clutter (``__MACOSX/``, ``.DS_Store``) is
ignored; spreadsheets, 7-Zip, RAR, Parquet and GIS files are refused with what to do instead.

Every row must have as many fields as the header (see :mod:`.delimited`); a row that does not is
an error with its line number, never read with its values under the wrong columns. Rows that are
not a presence in the wild (absences, fossils, captive or cultivated organisms, records above
species rank, GBIF geospatial issues: the table in :mod:`.occurrence_terms`), and rows with an
empty or unparseable coordinate or species, coordinates out of range, or exactly (0, 0) are
dropped and counted per reason in ``Occurrences.dropped``; ``Occurrences.summary()`` shows them.
Longitudes written 0..360 are read as -180..180 (190 = 170 W). Species ids are compared in one
spelling: Unicode NFC with single spaces, so "Abies  alba" and a decomposed "Abiés" typed on
macOS do not become second species.
"""
from __future__ import annotations

import contextlib
import posixpath
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import numpy as np

from .containers import (
    DAMAGED,
    Container,
    FolderContainer,
    TarContainer,
    ZipContainer,
    decompressed,
    is_tar,
    refuse_other_formats,
    refuse_packaged_formats,
)
from .delimited import Rows, declared_rows, header_rows, lifted_field_limit, open_text
from .dwca import Archive, CoreJoin, DataFile, core_records, occurrence_files, parse_meta
from .errors import OccurrenceError
from .occurrence_terms import DROP_REASONS, TERM_COLUMNS, dropped_text, term_drops

__all__ = ["DROP_REASONS", "FORMATS", "Occurrences", "occurrences_from_arrays", "read_occurrences"]
# Also used by training/columnar.py (pyarrow, in batches), so that both readers apply one set of
# rules: choose_table, resolve_columns, parse_floats, id_text, one_spelling, usable_rows, refuse_unusable,
# damaged_file.

FORMATS = ("auto", "csv", "gbif", "inaturalist", "dwca")

# Column names recognised without being told (compared case-insensitively), best first.
LAT_NAMES = ("latitude", "decimallatitude", "lat")
LON_NAMES = ("longitude", "decimallongitude", "lon", "lng", "long")
# speciesKey before taxonKey: in GBIF data taxonKey may be a subspecies or genus, speciesKey is
# the species the record belongs to (and pairs with GBIF's `species` name column).
ID_NAMES = ("code", "taxon_id", "specieskey", "taxonkey", "taxonid")
# GBIF's `species` (bare binomial) before `scientificName` (name with authorship).
NAME_NAMES = ("species", "scientificname", "scientific_name")
SOURCE_NAMES = ("source", "datasetkey", "datasetid", "dataset_key", "dataset_id")

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")


@dataclass
class Occurrences:
    """Presence records after dropping unusable rows, with the counts of what was dropped."""

    lon: np.ndarray  # float64 [N], degrees WGS84
    lat: np.ndarray  # float64 [N]
    species: np.ndarray  # object array of str [N]: species id (code / taxon id, else the name)
    names: dict[str, str]  # species id -> scientific name (the id itself when none is known)
    source: np.ndarray | None  # object array of str [N] (dataset / survey id), or None
    n_read: int  # data rows read
    dropped: dict[str, int]  # reason -> rows dropped, every reason of DROP_REASONS in its order
    origin: str  # file or layer name

    def __len__(self) -> int:
        return int(self.lon.shape[0])

    @property
    def n_species(self) -> int:
        """Number of distinct species ids among the kept records."""
        return len(set(self.species.tolist()))

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def summary(self) -> str:
        """One line for logs, e.g. ``obs.csv: 4 records of 2 species (11 rows read; dropped 3 absent, 4 missing)``."""
        text = f"{self.origin}: {len(self):,} records of {self.n_species:,} species ({self.n_read:,} rows read"
        drops = dropped_text(self.dropped)
        return text + (f"; dropped {drops}" if drops else "") + ")"


# --------------------------------------------------------------------------------------------
# public entry points


def read_occurrences(
    path: str | Path,
    *,
    species_column: str | None = None,
    name_column: str | None = None,
    lat_column: str | None = None,
    lon_column: str | None = None,
    source_column: str | None = None,
    fmt: str = "auto",
) -> Occurrences:
    """Read an observation file, archive or unzipped Darwin Core Archive folder into :class:`Occurrences`.

    ``path`` is a table (CSV, TSV, GBIF or iNaturalist export; plain, .gz, .bz2 or .xz), a zip or
    tar archive, or a Darwin Core Archive's folder, meta.xml or core data file. ``fmt`` is one of
    ``auto``, ``csv``, ``gbif``, ``inaturalist``, ``dwca``; ``auto`` looks at the content, ``dwca``
    insists on a meta.xml. Explicit column arguments override detection (for a Darwin Core Archive
    they name a term, e.g. ``scientificName``). Raises :class:`OccurrenceError` for anything a
    user can get wrong, with what to do.
    """
    path = Path(path)
    label = (path.parent.name if path.name.lower() == "meta.xml" else path.name) or str(path)
    if fmt not in FORMATS:
        raise OccurrenceError(f"{label}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if not path.exists():
        raise OccurrenceError(f"{label}: file not found ({path}); check the path.")
    explicit = {
        "latitude": lat_column,
        "longitude": lon_column,
        "species": species_column,
        "name": name_column,
        "source": source_column,
    }
    with lifted_field_limit():
        try:
            return _read_path(path, label, explicit, fmt)
        except OccurrenceError:
            raise
        except DAMAGED as exc:
            raise damaged_file(label, exc) from exc


def damaged_file(label: str, exc: BaseException) -> OccurrenceError:
    """The error for a file that stops or breaks while it is read (``exc``: one of ``DAMAGED``)."""
    return OccurrenceError(f"{label}: the file is damaged or truncated ({exc}); download or export it again.")


def _read_path(path: Path, label: str, explicit: dict[str, str | None], fmt: str) -> Occurrences:
    if path.is_dir():
        with FolderContainer(path) as folder:
            return _read_container(folder, label, explicit, fmt)
    if not path.is_file():
        raise OccurrenceError(f"{label}: {path} is not a file; choose the observation file itself.")
    if path.stat().st_size == 0:
        raise OccurrenceError(f"{label}: the file is empty; choose a file with a header row and observations.")
    if path.name.lower() == "meta.xml":
        with FolderContainer(path.parent) as folder:
            return _read_archive(folder, parse_meta(path.read_bytes(), path.name, label), label, explicit)
    beside = _archive_beside(path, label)
    if beside is not None:
        with FolderContainer(path.parent) as folder:
            return _read_archive(folder, beside, label, explicit)
    with path.open("rb") as f:
        head = f.read(512)
    refuse_other_formats(head, label)
    if head.startswith(b"PK") or path.suffix.lower() == ".zip":
        try:
            archive: Container = ZipContainer(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise OccurrenceError(
                f"{label}: not a readable zip archive ({exc}); the download may be incomplete, download it again."
            ) from exc
        with archive:
            return _read_container(archive, label, explicit, fmt)
    if is_tar(path, head):
        with TarContainer(path) as tar:
            return _read_container(tar, label, explicit, fmt)
    if fmt == "dwca":
        raise OccurrenceError(
            f"{label} is not a Darwin Core Archive (no meta.xml inside it or beside it naming it); choose the "
            "archive (.zip), its folder or its meta.xml."
        )
    with decompressed(path, head) as raw:
        return _read_table(raw, label, "", explicit)


def _archive_beside(path: Path, label: str) -> Archive | None:
    """The unzipped Darwin Core Archive whose meta.xml, beside ``path``, names it as a data file."""
    meta = path.with_name("meta.xml")
    if not meta.is_file():
        return None
    archive = parse_meta(meta.read_bytes(), meta.name, label)
    named = {archive.core.location, *(ext.location for ext in archive.extensions)}
    return archive if path.name in named else None


def occurrences_from_arrays(
    lon: Sequence[Any] | np.ndarray,
    lat: Sequence[Any] | np.ndarray,
    species: Sequence[Any] | np.ndarray,
    names: dict[str, str] | None = None,
    source: Sequence[Any] | np.ndarray | None = None,
    origin: str = "",
) -> Occurrences:
    """Build :class:`Occurrences` from values already in memory (e.g. a QGIS point layer).

    Values may be numbers, numeric strings or ``None``; the same dropping rules as for files apply.
    Integer-valued species ids (``12345`` or ``12345.0``) become ``"12345"``.
    """
    label = origin or "observations"
    n = len(lon)
    if len(lat) != n or len(species) != n or (source is not None and len(source) != n):
        raise OccurrenceError(
            f"{label}: longitude, latitude, species (and source) must have one value per record; "
            f"got {n}, {len(lat)}, {len(species)}" + ("" if source is None else f", {len(source)}") + "."
        )
    ids = [id_text(v) for v in species]
    src = None if source is None else [id_text(v) for v in source]
    return _assemble(parse_floats(lon), parse_floats(lat), ids, None, src, n, label, known_names=names)


# --------------------------------------------------------------------------------------------
# archives and folders: a Darwin Core Archive, or one table


def _read_container(container: Container, label: str, explicit: dict[str, str | None], fmt: str) -> Occurrences:
    refuse_packaged_formats(container, label)
    files = container.files()
    metas = sorted((f for f in files if posixpath.basename(f).lower() == "meta.xml"), key=len)
    if metas:
        return _read_archive(container, parse_meta(container.read(metas[0]), metas[0], label), label, explicit)
    if fmt == "dwca":
        raise OccurrenceError(
            f"{label}: the {container.kind} has no meta.xml, so it is not a readable Darwin Core Archive; "
            "export the archive again with its meta.xml, or read the core file as a CSV."
        )
    table = choose_table(container, label, explicit)
    with container.open(table) as raw:
        return _read_table(raw, label, table, explicit)


def choose_table(container: Container, label: str, explicit: dict[str, str | None]) -> str:
    """The one table of an archive without meta.xml that holds observations (readmes and licences beside it)."""
    files = container.files()
    tables = [f for f in files if f.lower().endswith(_TABLE_SUFFIXES)]
    if len(tables) == 1:
        return tables[0]
    if not tables:
        raise OccurrenceError(
            f"{label}: the {container.kind} holds no table (.csv, .tsv, .txt) and no meta.xml (it contains: "
            f"{', '.join(files) or 'nothing'}); put the observations in it as CSV, or choose the table itself."
        )
    usable = [t for t in tables if _has_observation_columns(container, t, label, explicit)]
    if len(usable) == 1:
        return usable[0]
    found = ", ".join(usable or tables)
    what = "observation tables" if usable else "tables, none with latitude, longitude and species columns"
    raise OccurrenceError(
        f"{label}: the {container.kind} has no meta.xml (so it is not a Darwin Core Archive) and holds "
        f"{len(usable or tables)} {what} ({found}); extract the table to read and choose it, "
        "or use a complete Darwin Core Archive."
    )


def _has_observation_columns(container: Container, table: str, label: str, explicit: dict[str, str | None]) -> bool:
    # the text wrapper is closed too (closing it closes ``raw``): one left to the garbage
    # collector is an "unclosed file" ResourceWarning
    with container.open(table) as raw, open_text(raw, "utf-8-sig", label) as text:
        try:
            rows = header_rows(text, label, table)
            resolve_columns(rows.header, explicit, label)
        except OccurrenceError:  # not a table of observations (a readme, a licence), or not text
            return False
    return True


def _read_archive(container: Container, archive: Archive, label: str, explicit: dict[str, str | None]) -> Occurrences:
    """The occurrences of a Darwin Core Archive: its Occurrence core, or an Occurrence extension joined to its core."""
    occurrences, core = occurrence_files(archive, label)
    if core is None:
        with _open_data(container, occurrences, label) as rows:
            width = len(rows.header)
            header = rows.header + list(occurrences.constants)
            constants = {width + k: value for k, value in enumerate(occurrences.constants.values())}
            roles, columns, n_read = _columns(rows, header, label, explicit, constants, occurrences.defaults)
        return _from_columns(roles, columns, n_read, label)
    with _open_data(container, core, label) as rows:
        terms, records = core_records(rows, core)
    join = CoreJoin(occurrences, terms, records)
    with _open_data(container, occurrences, label, "extension") as rows:
        roles, columns, n_read = _columns(join.rows(rows), join.header, label, explicit)
    if n_read and join.unlinked == n_read:
        raise OccurrenceError(
            f"{label}: none of the {n_read:,} rows of {occurrences.location} links to a row of {core.location} "
            f"(the {core.row_type} core): their <coreid> values match no <id>; fix the identifiers or meta.xml."
        )
    return _from_columns(roles, columns, n_read, label)


@contextlib.contextmanager
def _open_data(container: Container, data: DataFile, label: str, role: str = "core") -> Iterator[Rows]:
    """The rows of one Darwin Core data file (the ``role`` file of meta.xml), checked against its columns."""
    member = container.find(data.location)
    if member is None:
        raise OccurrenceError(
            f"{label}: meta.xml names the {role} file '{posixpath.basename(data.location)}', which is not in the "
            "archive; the archive is incomplete, export or download it again."
        )
    with container.open(member) as raw, open_text(raw, data.encoding, label) as text:
        yield declared_rows(
            text, label, member, encoding=data.encoding, terms=data.terms,
            delimiter=data.delimiter, quotechar=data.quotechar, skip_lines=data.skip_lines,
        )


# --------------------------------------------------------------------------------------------
# one table: columns by role, rows to values


def _read_table(raw: IO[bytes], label: str, name: str, explicit: dict[str, str | None]) -> Occurrences:
    """A CSV/TSV (GBIF, iNaturalist or generic) whose first line names the columns."""
    with open_text(raw, "utf-8-sig", label) as text:  # closed here, not left to the garbage collector
        rows = header_rows(text, label, name)
        roles, columns, n_read = _columns(rows, rows.header, label, explicit)
    return _from_columns(roles, columns, n_read, label)


def _columns(
    rows: Iterable[list[str]],
    header: list[str],
    label: str,
    explicit: dict[str, str | None],
    constants: dict[int, str] | None = None,
    defaults: dict[int, str] | None = None,
) -> tuple[dict[str, int | None], dict[int, list[str]], int]:
    """Roles -> positions, position -> values of the columns used, and the number of data rows."""
    roles = resolve_columns(header, explicit, label)
    positions = sorted({i for i in roles.values() if i is not None})
    columns, n_read = _extract(rows, positions, constants or {}, defaults or {})
    return roles, columns, n_read


def _from_columns(
    roles: dict[str, int | None], columns: dict[int, list[str]], n_read: int, label: str
) -> Occurrences:
    def column(role: str) -> list[str] | None:
        i = roles.get(role)
        return None if i is None else columns[i]

    ids = [s.strip() for s in column("species") or []]
    name_col = column("name")
    names = None if name_col is None or roles["name"] == roles["species"] else [s.strip() for s in name_col]
    source_col = column("source")
    source = None if source_col is None else [s.strip() for s in source_col]
    terms = {role: values for role in TERM_COLUMNS if (values := column(role)) is not None}
    return _assemble(
        parse_floats(column("longitude") or []),
        parse_floats(column("latitude") or []),
        ids,
        names,
        source,
        n_read,
        label,
        term_masks=term_drops(terms),
    )


def resolve_columns(header: list[str], explicit: dict[str, str | None], label: str) -> dict[str, int | None]:
    """Map roles (latitude, longitude, species, name, source, and the term roles of
    :data:`TERM_COLUMNS`) to column positions; None where a role has no column."""
    exact: dict[str, int] = {}
    folded: dict[str, int] = {}
    for i, h in enumerate(header):
        if h:
            exact.setdefault(h, i)
            folded.setdefault(h.lower(), i)
    shown = ", ".join(h for h in header if h) or "(none)"

    def chosen(role: str) -> int | None:
        name = explicit[role]
        if name is None:
            return None
        if name in exact:
            return exact[name]
        if name.strip().lower() in folded:
            return folded[name.strip().lower()]
        raise OccurrenceError(
            f"{label}: there is no column '{name}' (asked for as the {role} column); the columns are: {shown}."
        )

    def detect(candidates: Iterable[str]) -> int | None:
        return next((folded[c] for c in candidates if c in folded), None)

    roles: dict[str, int | None] = {role: chosen(role) for role in explicit}
    for role, candidates in (
        ("latitude", LAT_NAMES),
        ("longitude", LON_NAMES),
        ("name", NAME_NAMES),
        ("source", SOURCE_NAMES),
    ):
        if roles[role] is None:
            roles[role] = detect(candidates)
    if roles["species"] is None:
        # No explicit species column: an id column if there is one, else the name column is the id.
        id_column = detect(ID_NAMES)
        roles["species"] = roles["name"] if id_column is None else id_column
    _require_located_species(roles, label, shown)
    for role, candidates in TERM_COLUMNS.items():
        roles[role] = detect(candidates)
    return roles


# The names each required role is looked for under, as the "cannot find" message lists them
REQUIRED_HINTS = {
    "latitude": "latitude/decimalLatitude/lat",
    "longitude": "longitude/decimalLongitude/lon/lng",
    "species": "species/scientificName/scientific_name or code/taxon_id/taxonKey",
}


def _require_located_species(roles: dict[str, int | None], label: str, shown: str) -> None:
    """Raise ``OccurrenceError`` naming every one of latitude, longitude and species without a
    column in ``roles``; ``shown`` lists the file's columns for the message."""
    missing = [role for role in REQUIRED_HINTS if roles[role] is None]
    if missing:
        raise OccurrenceError(
            f"{label}: cannot find the {' and '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(looked for {'; '.join(REQUIRED_HINTS[m] for m in missing)}); columns found: {shown}. "
            "Rename the columns or choose them explicitly."
        )


def _extract(
    rows: Iterable[list[str]], positions: list[int], constants: dict[int, str], defaults: dict[int, str]
) -> tuple[dict[int, list[str]], int]:
    """Values of the columns at ``positions`` for every row, and the number of rows.

    ``constants`` are columns the rows do not have (a Darwin Core field without index: one value
    for all); ``defaults`` fill the empty cells of a column (a field with index and default).
    """
    read = [p for p in positions if p not in constants]
    if len(read) == 1:
        only = read[0]
        values = [(row[only],) for row in rows]
    else:
        values = list(map(itemgetter(*read), rows)) if read else [() for _ in rows]
    n = len(values)
    columns = {p: list(c) for p, c in zip(read, zip(*values))} if n else {p: [] for p in read}
    for p, value in defaults.items():
        if p in columns:
            columns[p] = [v or value for v in columns[p]]
    for p in positions:
        if p in constants:
            columns[p] = [constants[p]] * n
    return columns, n


# --------------------------------------------------------------------------------------------
# values


def parse_floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """float64 array; empty or unparseable values become NaN. Vectorised unless something fails."""
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        pass
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            out[i] = float(v)
        except (ValueError, TypeError):
            with contextlib.suppress(ValueError):  # decimal comma, common in semicolon-separated exports
                out[i] = float(str(v).strip().replace(",", "."))
    return out


def id_text(value: Any) -> str:
    """A species or source id as text: '' for missing, integral floats without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    return str(value).strip()


def one_spelling(species_id: str) -> str:
    """A species id in one spelling: Unicode NFC (a name typed on macOS arrives decomposed) and
    single spaces (tabs, non-breaking or doubled spaces, none at the ends), so that spellings do not
    split one species into two."""
    return unicodedata.normalize("NFC", " ".join(species_id.split()))


def _same_spelling(ids: list[str]) -> list[str]:
    """Species ids in :func:`one_spelling`, worked out once per distinct id."""
    spelling = {i: one_spelling(i) for i in set(ids)}
    if all(k == v for k, v in spelling.items()):
        return ids
    return [spelling[i] for i in ids]


def usable_rows(
    lon: np.ndarray, lat: np.ndarray, no_species: np.ndarray, term_masks: dict[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Which rows are usable presences, and why the others are not.

    ``lon``, ``lat``: float64 [N] degrees (NaN where unreadable); ``no_species``: bool [N], the
    species id is empty; ``term_masks``: reason -> bool [N] rows that the term rules drop
    (:func:`.occurrence_terms.term_drops`). Returns the longitudes with 0..360 read as -180..180,
    the kept rows (bool [N]) and, for every reason of :data:`DROP_REASONS` in its order, the rows
    dropped under it (each row counted once, under its first reason).
    """
    with np.errstate(invalid="ignore"):
        # 0..360 longitudes (some atlases and marine data): east of 180 is the western hemisphere
        lon = np.where((lon > 180.0) & (lon <= 360.0), lon - 360.0, lon)
        masks = dict(term_masks or {})
        masks["missing"] = ~np.isfinite(lon) | ~np.isfinite(lat) | no_species
        masks["out_of_range"] = (np.abs(lat) > 90.0) | (np.abs(lon) > 180.0)
        masks["null_island"] = (lat == 0.0) & (lon == 0.0)
    dropped_rows = np.zeros(len(lon), dtype=bool)
    dropped: dict[str, int] = {}
    for reason in DROP_REASONS:
        mask = masks[reason] & ~dropped_rows if reason in masks else None
        dropped[reason] = 0 if mask is None else int(mask.sum())
        if mask is not None:
            dropped_rows |= mask
    return lon, ~dropped_rows, dropped


def refuse_unusable(n_read: int, n_kept: int, dropped: dict[str, int], label: str) -> None:
    """Raise :class:`OccurrenceError` for a file without data rows, or whose rows were all dropped."""
    if n_read == 0:
        raise OccurrenceError(f"{label}: the file has a header but no data rows; add observations.")
    if n_kept == 0:
        raise OccurrenceError(
            f"{label}: no usable rows: all {n_read:,} rows were dropped ({dropped_text(dropped)}); check that the "
            "right columns hold latitude, longitude and species, and that the file holds presence records."
        )


def _assemble(
    lon: np.ndarray,
    lat: np.ndarray,
    ids: list[str],
    names: list[str] | None,
    source: list[str] | None,
    n_read: int,
    label: str,
    known_names: dict[str, str] | None = None,
    term_masks: dict[str, np.ndarray] | None = None,
) -> Occurrences:
    """Drop unusable rows (each counted once, under its first reason), build the names table, and
    refuse an empty result. ``term_masks``: reason -> rows that the term rules drop."""
    species = np.empty(len(ids), dtype=object)
    species[:] = _same_spelling(ids)
    lon, keep, dropped = usable_rows(lon, lat, species == "", term_masks)
    refuse_unusable(n_read, int(keep.sum()), dropped, label)
    kept_ids = species[keep]
    table: dict[str, str] = {}
    if names is not None:
        for sid, name in zip(kept_ids.tolist(), np.asarray(names, dtype=object)[keep].tolist()):
            if name and sid not in table:
                table[sid] = name
    elif known_names:
        table = {str(k): str(v) for k, v in known_names.items() if v}
    unique = sorted(set(kept_ids.tolist()))
    src = None
    if source is not None:
        src = np.empty(len(source), dtype=object)
        src[:] = source
        src = src[keep]
    return Occurrences(
        lon=np.ascontiguousarray(lon[keep], dtype=np.float64),
        lat=np.ascontiguousarray(lat[keep], dtype=np.float64),
        species=kept_ids,
        names={sid: table.get(sid, sid) for sid in unique},
        source=src,
        n_read=int(n_read),
        dropped=dropped,
        origin=label,
    )
