"""Reading presence-only observations (lon, lat, species) from the files people actually have.

Formats (``fmt="auto"`` tells them apart by content, not by extension):

- generic CSV, plain or gzip-compressed; the delimiter (comma, semicolon or tab) is sniffed
  from the header line;
- GBIF SIMPLE_CSV download: tab-separated, unquoted, plain or as the downloaded ``.zip``
  holding one ``.csv``;
- iNaturalist observation export (``latitude``, ``longitude``, ``scientific_name``, ``taxon_id``);
- Darwin Core Archive ``.zip``: ``meta.xml`` names the core file, its delimiter, quoting, header
  lines and which column holds which Darwin Core term; columns are mapped by term, never by
  the core file's own header.

Rows with an empty or unparseable coordinate or species, coordinates out of range, or exactly
(0, 0) are dropped and counted per reason; the caller gets the counts in ``Occurrences.dropped``.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import posixpath
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import OccurrenceError

FORMATS = ("auto", "csv", "gbif", "inaturalist", "dwca")
DROP_REASONS = ("missing", "out_of_range", "null_island")

# Column names recognised without being told (compared case-insensitively), best first.
LAT_NAMES = ("latitude", "decimallatitude", "lat")
LON_NAMES = ("longitude", "decimallongitude", "lon", "lng", "long")
# speciesKey before taxonKey: in GBIF data taxonKey may be a subspecies or genus, speciesKey is
# the species the record belongs to (and pairs with GBIF's `species` name column).
ID_NAMES = ("code", "taxon_id", "specieskey", "taxonkey", "taxonid")
# GBIF's `species` (bare binomial) before `scientificName` (name with authorship).
NAME_NAMES = ("species", "scientificname", "scientific_name")
SOURCE_NAMES = ("source", "datasetkey", "datasetid", "dataset_key", "dataset_id")

_TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
_DAMAGED = (OSError, EOFError, zlib.error, zipfile.BadZipFile)


@dataclass
class Occurrences:
    """Presence records after dropping unusable rows, with the counts of what was dropped."""

    lon: np.ndarray  # float64 [N], degrees WGS84
    lat: np.ndarray  # float64 [N]
    species: np.ndarray  # object array of str [N]: species id (code / taxon id, else the name)
    names: dict[str, str]  # species id -> scientific name (the id itself when none is known)
    source: np.ndarray | None  # object array of str [N] (dataset / survey id), or None
    n_read: int  # data rows read
    dropped: dict[str, int]  # reason -> rows dropped (see DROP_REASONS)
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
        """One line for logs, e.g. ``na_trees.csv.gz: 168,651 records of 169 species (...)``."""
        text = f"{self.origin}: {len(self):,} records of {self.n_species:,} species ({self.n_read:,} rows read"
        drops = [f"{n:,} {reason.replace('_', ' ')}" for reason, n in self.dropped.items() if n]
        if drops:
            text += "; dropped " + ", ".join(drops)
        return text + ")"


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
    """Read an observation file into :class:`Occurrences`.

    ``fmt`` is one of ``auto``, ``csv``, ``gbif``, ``inaturalist``, ``dwca``; ``auto`` looks at the
    content (zip, gzip or text; a zip with ``meta.xml`` is a Darwin Core Archive). Explicit column
    arguments override detection (for a Darwin Core Archive they name a term, e.g.
    ``scientificName``). Raises :class:`OccurrenceError` for anything a user can get wrong.
    """
    path = Path(path)
    label = path.name or str(path)
    if fmt not in FORMATS:
        raise OccurrenceError(f"{label}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if not path.exists():
        raise OccurrenceError(f"{label}: file not found ({path}); check the path.")
    if not path.is_file():
        raise OccurrenceError(f"{label}: {path} is not a file; choose the observation file itself.")
    if path.stat().st_size == 0:
        raise OccurrenceError(f"{label}: the file is empty; choose a file with a header row and observations.")
    explicit = {
        "latitude": lat_column,
        "longitude": lon_column,
        "species": species_column,
        "name": name_column,
        "source": source_column,
    }
    with path.open("rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK") or path.suffix.lower() == ".zip" or fmt == "dwca":
        return _read_zip(path, label, explicit, fmt)
    try:
        if magic.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as raw:
                return _read_delimited(raw, label, explicit)
        with path.open("rb") as raw:
            return _read_delimited(raw, label, explicit)
    except OccurrenceError:
        raise
    except _DAMAGED as exc:
        raise OccurrenceError(
            f"{label}: the file is damaged or truncated ({exc}); download or export it again."
        ) from exc


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
    ids = [_id_text(v) for v in species]
    src = None if source is None else [_id_text(v) for v in source]
    return _assemble(_parse_floats(lon), _parse_floats(lat), ids, None, src, n, label, known_names=names)


# --------------------------------------------------------------------------------------------
# containers: zip (GBIF download or Darwin Core Archive)


def _read_zip(path: Path, label: str, explicit: dict[str, str | None], fmt: str) -> Occurrences:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OccurrenceError(
            f"{label}: not a readable zip archive ({exc}); the download may be incomplete, download it again."
        ) from exc
    try:
        with zf:
            members = [m for m in zf.namelist() if not m.endswith("/")]
            metas = sorted((m for m in members if posixpath.basename(m).lower() == "meta.xml"), key=len)
            if metas:
                return _read_dwca(zf, metas[0], label, explicit)
            if fmt == "dwca":
                raise OccurrenceError(
                    f"{label}: the archive has no meta.xml, so it is not a readable Darwin Core Archive; "
                    "export the archive again with its meta.xml, or read the core file as a CSV."
                )
            tables = [m for m in members if m.lower().endswith(_TABLE_SUFFIXES)]
            if len(tables) != 1:
                found = ", ".join(members) if members else "nothing"
                raise OccurrenceError(
                    f"{label}: the zip has no meta.xml (so it is not a Darwin Core Archive) and holds "
                    f"{len(tables)} table files instead of exactly one (it contains: {found}); "
                    "extract the table to read, or use a complete Darwin Core Archive."
                )
            with zf.open(tables[0]) as raw:
                return _read_delimited(raw, label, explicit)
    except OccurrenceError:
        raise
    except _DAMAGED as exc:
        raise OccurrenceError(
            f"{label}: the zip archive is damaged ({exc}); the download may be incomplete, download it again."
        ) from exc


def _local(tag: str) -> str:
    """Element or term name without its XML namespace or URI."""
    return tag.rsplit("}", 1)[-1].rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _unescape(value: str) -> str:
    """meta.xml writes tab and newline as backslash escapes (``fieldsTerminatedBy="\\t"``)."""
    return value.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")


def _read_dwca(zf: zipfile.ZipFile, meta: str, label: str, explicit: dict[str, str | None]) -> Occurrences:
    try:
        root = ET.fromstring(zf.read(meta))
    except ET.ParseError as exc:
        raise OccurrenceError(f"{label}: meta.xml is not valid XML ({exc}); export the archive again.") from exc
    core = next((el for el in root.iter() if _local(el.tag) == "core"), None)
    if core is None:
        raise OccurrenceError(f"{label}: meta.xml has no <core> element; export the Darwin Core Archive again.")
    location = next((el.text.strip() for el in core.iter() if _local(el.tag) == "location" and el.text), None)
    if not location:
        raise OccurrenceError(f"{label}: meta.xml names no core file (<files><location>); export the archive again.")
    member = posixpath.normpath(posixpath.join(posixpath.dirname(meta), location))
    if member not in zf.namelist():
        raise OccurrenceError(
            f"{label}: meta.xml names the core file '{location}', which is not in the archive; "
            "the archive is incomplete, export or download it again."
        )
    delimiter = _unescape(core.get("fieldsTerminatedBy", ","))
    enclosed = _unescape(core.get("fieldsEnclosedBy", '"'))
    if len(delimiter) != 1 or len(enclosed) > 1:
        raise OccurrenceError(
            f"{label}: meta.xml uses fieldsTerminatedBy={delimiter!r} / fieldsEnclosedBy={enclosed!r}; "
            "only single-character delimiters and quotes are supported. Re-export with tab or comma."
        )
    try:
        skip = int(core.get("ignoreHeaderLines", "0"))
    except ValueError as exc:
        raise OccurrenceError(f"{label}: meta.xml has a non-integer ignoreHeaderLines; fix meta.xml.") from exc
    encoding = core.get("encoding", "UTF-8")
    if encoding.replace("-", "").lower() == "utf8":
        encoding = "utf-8-sig"

    # The header the rest of the reader sees: the term names (e.g. decimalLatitude) by index.
    # Fields with a default and no index are constants; they get virtual positions after the file's.
    indexed: dict[int, str] = {}
    constants: list[tuple[str, str]] = []
    for el in core:
        if _local(el.tag) != "field" or not el.get("term"):
            continue
        term = _local(el.get("term", ""))
        if el.get("index") not in (None, ""):
            try:
                indexed[int(el.get("index", ""))] = term
            except ValueError as exc:
                raise OccurrenceError(f"{label}: meta.xml has a field with a non-integer index; fix meta.xml.") from exc
        elif el.get("default") is not None:
            constants.append((term, el.get("default", "")))
    width = max(indexed) + 1 if indexed else 0
    header = [indexed.get(i, "") for i in range(width)] + [term for term, _ in constants]
    defaults = {width + k: value for k, (_, value) in enumerate(constants)}
    with zf.open(member) as raw:
        return _read_delimited(
            raw,
            label,
            explicit,
            header=header,
            delimiter=delimiter,
            quotechar=enclosed or None,
            skip_lines=skip,
            encoding=encoding,
            defaults=defaults,
        )


# --------------------------------------------------------------------------------------------
# delimited text


def _sniff_delimiter(line: str) -> str:
    """The most frequent of tab, semicolon and comma in the header line (comma on a tie)."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts.values())
    return next(d for d in (",", ";", "\t") if counts[d] == best) if best else ","


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _read_delimited(
    raw: IO[bytes],
    label: str,
    explicit: dict[str, str | None],
    *,
    header: list[str] | None = None,
    delimiter: str | None = None,
    quotechar: str | None = '"',
    skip_lines: int = 0,
    encoding: str = "utf-8-sig",
    defaults: dict[int, str] | None = None,
) -> Occurrences:
    try:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    except LookupError as exc:
        raise OccurrenceError(f"{label}: unknown text encoding {encoding!r}; re-export the file as UTF-8.") from exc
    line_no = 0
    try:
        if header is None:
            first = ""
            while not first.strip():
                first = text.readline()
                line_no += 1
                if not first:
                    raise OccurrenceError(
                        f"{label}: the file is empty; choose a file with a header row and observations."
                    )
            delimiter = _sniff_delimiter(first)
            # GBIF SIMPLE_CSV is tab-separated and unquoted: a lone '"' in a field is data.
            if delimiter == "\t" and '"' not in first:
                quotechar = None
            dialect = _dialect(delimiter, quotechar)
            header = next(csv.reader([first], **dialect))
            header = [h.strip() for h in header]
            if all(not h or _looks_numeric(h) for h in header):
                raise OccurrenceError(
                    f"{label}: the file has no header row (the first line '{first.strip()[:80]}' looks like data); "
                    "add a header row naming the columns, e.g. species,latitude,longitude."
                )
        else:
            for _ in range(skip_lines):
                text.readline()
                line_no += 1
            dialect = _dialect(delimiter or ",", quotechar)
        roles = _resolve_columns(header, explicit, label)
        positions = sorted({i for i in roles.values() if i is not None})
        reader = csv.reader(text, **dialect)
        columns, n_read = _extract(reader, positions, defaults or {})
    except UnicodeDecodeError as exc:
        raise OccurrenceError(
            f"{label}: the file is not {encoding.replace('-sig', '').upper()} text "
            f"({exc.reason} near byte {exc.start}); "
            "save it as UTF-8 and try again."
        ) from exc
    except csv.Error as exc:
        where = line_no + (reader.line_num if "reader" in locals() else 0)
        raise OccurrenceError(f"{label}: cannot parse line {where} ({exc}); check the quoting of that line.") from exc
    finally:
        text.detach()  # the caller closes the underlying binary stream

    def column(role: str) -> list[str] | None:
        i = roles[role]
        return None if i is None else columns[positions.index(i)]

    ids = [s.strip() for s in column("species")]
    name_col = column("name")
    names = None if name_col is None or roles["name"] == roles["species"] else [s.strip() for s in name_col]
    source_col = column("source")
    source = None if source_col is None else [s.strip() for s in source_col]
    return _assemble(
        _parse_floats(column("longitude")), _parse_floats(column("latitude")), ids, names, source, n_read, label
    )


def _dialect(delimiter: str, quotechar: str | None) -> dict[str, Any]:
    if quotechar is None:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE}
    return {"delimiter": delimiter, "quotechar": quotechar}


def _resolve_columns(header: list[str], explicit: dict[str, str | None], label: str) -> dict[str, int | None]:
    """Map roles (latitude, longitude, species, name, source) to column positions."""
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
        roles["species"] = detect(ID_NAMES)
        if roles["species"] is None:
            roles["species"] = roles["name"]
    missing = [role for role in ("latitude", "longitude", "species") if roles[role] is None]
    if missing:
        hints = {
            "latitude": "latitude/decimalLatitude/lat",
            "longitude": "longitude/decimalLongitude/lon/lng",
            "species": "species/scientificName/scientific_name or code/taxon_id/taxonKey",
        }
        raise OccurrenceError(
            f"{label}: cannot find the {' and '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(looked for {'; '.join(hints[m] for m in missing)}); columns found: {shown}. "
            "Rename the columns or choose them explicitly."
        )
    return roles


def _extract(
    reader: Iterator[list[str]], positions: list[int], defaults: dict[int, str]
) -> tuple[list[list[str]], int]:
    """The wanted columns of every non-blank row; short rows are padded with empty strings."""
    getter = itemgetter(*positions)
    rows: list[tuple[str, ...]] = []
    append = rows.append
    for row in reader:
        if not row:
            continue  # blank line
        try:
            append(getter(row))
        except IndexError:
            append(tuple(row[i] if i < len(row) else "" for i in positions))
    n = len(rows)
    if len(positions) == 1:
        columns = [[r for r in rows]]  # itemgetter with one key returns the bare value
    else:
        columns = [list(c) for c in zip(*rows)] if rows else [[] for _ in positions]
    for k, i in enumerate(positions):
        if i in defaults:
            # A Darwin Core default: the value where the file has none (constants have no column at all).
            value = defaults[i]
            columns[k] = [v or value for v in columns[k]]
    return columns, n


# --------------------------------------------------------------------------------------------
# values


def _parse_floats(values: Sequence[Any] | np.ndarray) -> np.ndarray:
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


def _id_text(value: Any) -> str:
    """A species or source id as text: '' for missing, integral floats without '.0'."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    return str(value).strip()


def _assemble(
    lon: np.ndarray,
    lat: np.ndarray,
    ids: list[str],
    names: list[str] | None,
    source: list[str] | None,
    n_read: int,
    label: str,
    known_names: dict[str, str] | None = None,
) -> Occurrences:
    """Drop unusable rows (counting why), build the names table, and refuse an empty result."""
    if n_read == 0:
        raise OccurrenceError(f"{label}: the file has a header but no data rows; add observations.")
    species = np.empty(len(ids), dtype=object)
    species[:] = ids
    with np.errstate(invalid="ignore"):
        missing = ~np.isfinite(lon) | ~np.isfinite(lat) | (species == "")
        out_of_range = ~missing & ((np.abs(lat) > 90.0) | (np.abs(lon) > 180.0))
        null_island = ~missing & ~out_of_range & (lat == 0.0) & (lon == 0.0)
    keep = ~(missing | out_of_range | null_island)
    dropped = {
        "missing": int(missing.sum()),
        "out_of_range": int(out_of_range.sum()),
        "null_island": int(null_island.sum()),
    }
    if not keep.any():
        raise OccurrenceError(
            f"{label}: no usable rows: all {n_read:,} rows were dropped ({dropped['missing']:,} with a missing or "
            f"unparseable coordinate or species, {dropped['out_of_range']:,} out of range, "
            f"{dropped['null_island']:,} at (0, 0)); check that the right columns hold latitude, longitude and species."
        )
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
