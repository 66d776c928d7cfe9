"""Occurrence files of tens of millions of rows, read column-wise in bounded memory with pyarrow.

:func:`read_occurrences_columnar` returns the same :class:`Occurrences` as the plugin's reader
(:func:`sinr_qgis.core.occurrences.read_occurrences`): the same columns found, the same rows
dropped under the same reasons, the same species spelling, names, counts and messages. It takes
those rules from the plugin's modules (column detection, ``occurrence_terms.term_drops``,
``usable_rows``); only the reading is its own. pyarrow reads the needed columns in batches
(``batch_bytes`` of text, ``batch_rows`` Parquet rows), and each batch is reduced to what a record
keeps: float64 lon/lat and an int32 species code (plus a source code), so memory grows by 20 to
24 bytes per kept record and by one batch, not by the file (the plugin's reader holds every
value of every used column as Python text: about 60 times more).

Read column-wise: CSV/TSV (GBIF SIMPLE_CSV, iNaturalist exports), plain or gzip/bzip2/xz; a zip
holding one observation table (a GBIF SIMPLE_CSV download) or a Darwin Core Archive whose core is
the Occurrence file (a GBIF DWCA download), UTF-8, with a header line; Parquet files and folders of
Parquet parts (GBIF's and iNaturalist's open data), which the plugin's reader refuses. Anything
else (tar archives, sampling-event archives, other encodings, an unzipped archive) is read by the
plugin's reader, and :func:`read_training_occurrences` says which reader read the file.

Errors: a row that pyarrow cannot take (a row of another width, text that is not UTF-8, a
damaged stream) sends the file through the plugin's own checks row by row without keeping the
values, so the message is the plugin's, word for word, with its line number; should those checks
pass (a quirk pyarrow parses more strictly), the plugin's reader reads the file.
"""
from __future__ import annotations

import codecs
import contextlib
import csv
import io
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from sinr_qgis.core.containers import (
    DAMAGED,
    ZipContainer,
    decompressed,
    is_tar,
    refuse_other_formats,
    refuse_packaged_formats,
)
from sinr_qgis.core.delimited import Rows, declared_rows, header_rows, lifted_field_limit, open_text
from sinr_qgis.core.dwca import DataFile, occurrence_files, parse_meta
from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrence_terms import DROP_REASONS, TERM_COLUMNS, term_drops
from sinr_qgis.core.occurrences import (
    FORMATS,
    Occurrences,
    choose_table,
    damaged_file,
    id_text,
    one_spelling,
    parse_floats,
    read_occurrences,
    refuse_unusable,
    resolve_columns,
    usable_rows,
)

BATCH_BYTES = 16 << 20  # text per CSV batch: 16 MiB (about 200,000 GBIF SIMPLE_CSV rows)
BATCH_ROWS = 1 << 18  # Parquet rows per batch
_PARQUET_MAGIC = b"PAR1"


def pyarrow_version() -> str | None:
    """The installed pyarrow's version, or None when it is not installed."""
    try:
        import pyarrow
    except ImportError:
        return None
    return str(pyarrow.__version__)


def read_training_occurrences(path: str | Path, **options: Any) -> tuple[Occurrences, str]:
    """The training side's reader: :func:`read_occurrences_columnar` whenever pyarrow is installed
    (the same records as the plugin's reader, in bounded memory), else the plugin's reader.

    ``options``: the keyword arguments of ``read_occurrences`` (column names, ``fmt``). Returns
    the records and one line saying which reader read them. Raises :class:`OccurrenceError`.
    """
    version = pyarrow_version()
    if version is None:
        return read_occurrences(path, **options), (
            "read row by row by the plugin's reader (pyarrow is not installed: pip install pyarrow "
            "to read files of millions of rows in bounded memory, and Parquet)")
    occ, columnar = _read(Path(path), **options)
    if columnar:
        return occ, f"read column-wise in batches with pyarrow {version}"
    return occ, "read row by row by the plugin's reader (this kind of file is not read column-wise)"


def read_occurrences_columnar(path: str | Path, **options: Any) -> Occurrences:
    """Read an occurrence file as :func:`~sinr_qgis.core.occurrences.read_occurrences` does, with the
    same result, column-wise in batches where the file allows (see the module's docstring).

    ``options``: ``species_column``, ``name_column``, ``lat_column``, ``lon_column``,
    ``source_column``, ``fmt``; also ``batch_bytes`` (CSV text per batch) and ``batch_rows``
    (Parquet rows per batch). Raises :class:`OccurrenceError`; needs pyarrow.
    """
    return _read(Path(path), **options)[0]


def _read(path: Path, *, species_column: str | None = None, name_column: str | None = None,
          lat_column: str | None = None, lon_column: str | None = None, source_column: str | None = None,
          fmt: str = "auto", batch_bytes: int = BATCH_BYTES, batch_rows: int = BATCH_ROWS) -> tuple[Occurrences, bool]:
    """(records, whether they were read column-wise)."""
    explicit = {"latitude": lat_column, "longitude": lon_column, "species": species_column,
                "name": name_column, "source": source_column}

    def plugin_reader() -> tuple[Occurrences, bool]:
        return read_occurrences(path, species_column=species_column, name_column=name_column, lat_column=lat_column,
                                lon_column=lon_column, source_column=source_column, fmt=fmt), False

    label = path.name or str(path)
    with lifted_field_limit():
        try:
            source = _source(path, label, explicit, fmt, batch_bytes, batch_rows)
            if source is None:
                return plugin_reader()
            occ = source.read(explicit)
        except OccurrenceError:
            raise
        except DAMAGED as exc:
            raise damaged_file(label, exc) from exc
    return (occ, True) if occ is not None else plugin_reader()


# --------------------------------------------------------------------------------------------
# where the table is


def _source(path: Path, label: str, explicit: dict[str, str | None], fmt: str, batch_bytes: int,
            batch_rows: int) -> _Source | None:
    """What to read column-wise, or None to leave the file to the plugin's reader."""
    if fmt not in FORMATS or not path.exists() or path.name.lower() == "meta.xml":
        return None
    if path.is_dir():
        parts = sorted(p for p in path.iterdir() if p.is_file() and _is_parquet(p))
        return _ParquetSource(label, parts, batch_rows) if parts and fmt == "auto" else None
    if path.stat().st_size == 0 or path.with_name("meta.xml").is_file():
        return None  # the plugin's messages; a data file of an unzipped archive is read by its meta.xml
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(_PARQUET_MAGIC):
        return _ParquetSource(label, [path], batch_rows) if fmt == "auto" else None
    refuse_other_formats(head, label)
    if head.startswith(b"PK") or path.suffix.lower() == ".zip":
        return _zip_source(path, label, explicit, fmt, batch_bytes)
    if is_tar(path, head) or fmt == "dwca":
        return None
    return _TextSource(label, "", lambda: decompressed(path, head), header_rows, batch_bytes)


def _zip_source(path: Path, label: str, explicit: dict[str, str | None], fmt: str,
                batch_bytes: int) -> _Source | None:
    try:
        with ZipContainer(path) as archive:
            refuse_packaged_formats(archive, label)
            metas = sorted((f for f in archive.files() if posixpath.basename(f).lower() == "meta.xml"), key=len)
            if metas:
                occurrences, core = occurrence_files(parse_meta(archive.read(metas[0]), metas[0], label), label)
                member = archive.find(occurrences.location)
                if core is not None or member is None or not occurrences.skip_lines or \
                        occurrences.encoding.lower() not in ("utf-8-sig", "utf-8"):
                    return None  # a joined extension, a missing file, no header line, another encoding
                return _TextSource(label, member, _zip_opener(path, member), _dwca_rows(occurrences), batch_bytes,
                                   defaults=occurrences.defaults, constants=dict(occurrences.constants))
            if fmt == "dwca":
                return None
            table = choose_table(archive, label, explicit)
    except (zipfile.BadZipFile, OSError, EOFError):
        return None  # the plugin's reader words it
    return _TextSource(label, table, _zip_opener(path, table), header_rows, batch_bytes)


def _zip_opener(path: Path, member: str) -> Callable[[], IO[bytes]]:
    @contextlib.contextmanager
    def opened() -> Iterator[IO[bytes]]:
        with zipfile.ZipFile(path) as z, z.open(member) as raw:
            yield raw
    return opened


def _dwca_rows(data: DataFile) -> Callable[..., Rows]:
    def rows(text: IO[str], label: str, name: str) -> Rows:
        return declared_rows(text, label, name, encoding=data.encoding, terms=data.terms,
                             delimiter=data.delimiter, quotechar=data.quotechar, skip_lines=data.skip_lines)
    return rows


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == _PARQUET_MAGIC


# --------------------------------------------------------------------------------------------
# reading: one kind per source, the records gathered by _Records


class _Source:
    label: str

    def read(self, explicit: dict[str, str | None]) -> Occurrences | None:
        """The records, or None when the plugin's reader must read the file."""
        raise NotImplementedError


@dataclass
class _ParquetSource(_Source):
    label: str
    parts: list[Path]
    batch_rows: int

    def read(self, explicit: dict[str, str | None]) -> Occurrences | None:
        import pyarrow.parquet as pq

        try:
            files = [pq.ParquetFile(p) for p in self.parts]
        except Exception as exc:  # pyarrow reports a damaged file with several exception types
            raise OccurrenceError(f"{self.label}: cannot be read as Parquet ({exc}); download it again.") from exc
        header = list(files[0].schema_arrow.names)
        roles = resolve_columns(header, explicit, self.label)
        records = _Records(self.label, roles)
        wanted = sorted({i for i in roles.values() if i is not None})
        for part, f in zip(self.parts, files):
            names = list(f.schema_arrow.names)
            missing = [header[i] for i in wanted if header[i] not in names]
            if missing:
                raise OccurrenceError(f"{self.label}: {part.name} has no column {', '.join(missing)}, which "
                                      f"{self.parts[0].name} has; the parts must share their columns.")
            for batch in f.iter_batches(batch_size=self.batch_rows, columns=[header[i] for i in wanted]):
                records.add({i: batch.column(header[i]) for i in wanted}, batch.num_rows)
        return records.occurrences()


@dataclass
class _TextSource(_Source):
    label: str
    name: str  # the table inside an archive ('' for the file itself), as messages name it
    opener: Callable[[], Any]  # a fresh binary stream of the table (a context manager)
    make_rows: Callable[..., Rows]  # the plugin's header / meta.xml reading: header_rows or declared_rows
    batch_bytes: int
    defaults: dict[int, str] = field(default_factory=dict)  # Darwin Core: value of an empty cell
    constants: dict[str, str] = field(default_factory=dict)  # Darwin Core: term -> value, fields without a column

    def read(self, explicit: dict[str, str | None]) -> Occurrences | None:
        layout = self._layout(explicit)
        if layout is None:
            return None
        records = _Records(self.label, layout.roles)
        if layout.n_columns == 0:  # a header and no data row
            return records.occurrences()
        try:
            for columns, n in self._batches(layout):
                records.add(columns, n)
        except (_Refused, _NotUtf8, *DAMAGED) as exc:
            self._check_rows(exc)
            return None
        except Exception as exc:  # pyarrow's parse errors (ArrowInvalid) and anything it raised reading
            if type(exc).__module__.split(".")[0] != "pyarrow":
                raise
            self._check_rows(exc)
            return None
        return records.occurrences()

    def _layout(self, explicit: dict[str, str | None]) -> _Layout | None:
        """Where the data rows start and how wide they are. The header and the first data row go
        through the plugin's own checks (their errors are its own); None for what pyarrow does
        not parse as the plugin does (a data file narrower than meta.xml, another quote)."""
        with self.opener() as raw, open_text(raw, "utf-8-sig", self.label) as text:
            rows = self.make_rows(text, self.label, self.name)
            rows.reader = tracked = _Tracked(rows.reader)
            roles = resolve_columns(rows.header + list(self.constants), explicit, self.label)
            first = next(iter(rows), None)
        dialect = tracked.dialect
        if not rows.exact or (dialect.quoting != csv.QUOTE_NONE and dialect.quotechar != '"'):
            return None
        return _Layout(roles, len(rows.header), 0 if first is None else len(first),
                       rows.lines_before + tracked.start, dialect)

    def _batches(self, layout: _Layout) -> Iterator[tuple[dict[int, Any], int]]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        width, n_columns, dialect = layout.width, layout.n_columns, layout.dialect
        wanted = sorted({i for i in layout.roles.values() if i is not None and i < min(width, n_columns)})
        trailing = n_columns == width + 1  # every data line ends with one delimiter more
        names = [f"c{i}" for i in range(n_columns)]
        include = [names[i] for i in wanted] + ([names[-1]] if trailing else [])
        quoted = dialect.quoting != csv.QUOTE_NONE

        def invalid(row: Any) -> str:
            # the plugin's reader skips rows of another width that hold nothing (blank lines)
            fields = next(csv.reader([row.text], dialect), [])
            return "skip" if not any(v.strip() for v in fields) else "error"

        parse = pacsv.ParseOptions(delimiter=dialect.delimiter, quote_char='"' if quoted else False,
                                   double_quote=True, escape_char=False, newlines_in_values=quoted,
                                   ignore_empty_lines=True, invalid_row_handler=invalid)
        read = pacsv.ReadOptions(column_names=names, block_size=self.batch_bytes)
        convert = pacsv.ConvertOptions(include_columns=include, column_types={c: pa.string() for c in include},
                                       strings_can_be_null=False, quoted_strings_can_be_null=False)
        constants = {width + k: value for k, value in enumerate(self.constants.values())}
        with self.opener() as raw:
            for _ in range(layout.skip):
                line = raw.readline()
                if b"\r" in line.rstrip(b"\r\n"):  # csv ends a line there, readline does not
                    raise _Refused("a line ends with a lone carriage return")
            for batch in pacsv.open_csv(_Utf8Checked(raw), read_options=read, parse_options=parse,
                                        convert_options=convert):
                n = batch.num_rows
                if trailing and n and pa.compute.any(pa.compute.not_equal(batch.column(names[-1]), "")).as_py():
                    raise _Refused("a value after the last column")
                columns: dict[int, Any] = {i: batch.column(names[i]) for i in wanted}
                for i, value in self.defaults.items():
                    if i in columns:
                        columns[i] = pa.compute.if_else(pa.compute.equal(columns[i], ""), value, columns[i])
                for i, value in constants.items():
                    columns[i] = pa.array([value] * n, pa.string())
                yield columns, n

    def _check_rows(self, cause: BaseException) -> None:
        """Run the table through the plugin's row checks, keeping nothing: they raise its own error
        for the row pyarrow refused. Returns when they find none (the plugin's reader reads it)."""
        try:
            with self.opener() as raw, open_text(raw, "utf-8-sig", self.label) as text:
                for _ in self.make_rows(text, self.label, self.name):
                    pass
        except DAMAGED as exc:
            raise damaged_file(self.label, exc) from cause


@dataclass
class _Layout:
    roles: dict[str, int | None]  # role -> column position (constants after the data's columns)
    width: int  # columns of the header line (or of meta.xml)
    n_columns: int  # fields of a data row (width, or one more / one fewer, see delimited.py); 0: no data row
    skip: int  # physical lines before the first data row
    dialect: Any  # the csv dialect of the plugin's reader


class _Refused(Exception):
    """Something in the table that the plugin's row checks word (and may refuse)."""


class _NotUtf8(Exception):
    """A byte that is not UTF-8 (the plugin's reader decodes the whole file, used columns or not)."""


class _Utf8Checked(io.RawIOBase):
    """A binary stream that checks, as pyarrow reads it, that every byte decodes as UTF-8."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _NotUtf8(str(exc)) from exc
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Tracked:
    """A csv reader that remembers how many lines it had read before the row it returned last."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.start = 0

    @property
    def line_num(self) -> int:
        return self._reader.line_num

    @property
    def dialect(self) -> Any:
        return self._reader.dialect

    def __iter__(self) -> _Tracked:
        return self

    def __next__(self) -> list[str]:
        self.start = self._reader.line_num
        return next(self._reader)


# --------------------------------------------------------------------------------------------
# batches to records: the plugin's rules, per batch


class _Records:
    """The kept records of all batches as compact arrays, and the counts of what was dropped."""

    def __init__(self, label: str, roles: dict[str, int | None]) -> None:
        self.label = label
        self.roles = roles
        self.named = roles.get("name") is not None and roles["name"] != roles["species"]
        self.ids: dict[str, int] = {}  # species id (one spelling) -> code
        self.sources: dict[str, int] = {}
        self.first_names: dict[int, str] = {}  # code -> first non-empty name of a kept record
        self.parts: list[list[np.ndarray]] = [[], [], []] + ([[]] if roles.get("source") is not None else [])
        self.n_read = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def add(self, columns: dict[int, Any], n: int) -> None:
        """One batch: ``columns`` position -> pyarrow array of its ``n`` values."""
        def col(role: str) -> Any:
            return columns[self.roles[role]] if self.roles.get(role) is not None else None

        lon, lat = _floats(col("longitude")), _floats(col("latitude"))
        codes = _codes(col("species"), self.ids, one_spelling)
        empty = self.ids.get("")
        terms = {role: col(role) for role in TERM_COLUMNS if col(role) is not None}
        lon, keep, dropped = usable_rows(lon, lat, codes == (-1 if empty is None else empty), _term_masks(terms, n))
        self.n_read += n
        for reason, count in dropped.items():
            self.dropped[reason] += count
        part = [lon[keep], lat[keep], codes[keep]]
        if self.roles.get("source") is not None:
            part.append(_codes(col("source"), self.sources, str.strip)[keep])
        for column, values in zip(self.parts, part):
            column.append(values)
        if self.named:
            self._first_names(col("name"), codes, keep)

    def _first_names(self, names: Any, codes: np.ndarray, keep: np.ndarray) -> None:
        """Each species' name: the first non-empty one among its kept records, in file order."""
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(_texts(names))
        stripped = [v.strip() for v in encoded.dictionary.to_pylist()]
        has_name = np.array([bool(v) for v in stripped], dtype=bool)
        name_idx = encoded.indices.to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(keep & has_name[name_idx])
        new, first = np.unique(codes[rows], return_index=True)
        for code, row in zip(new.tolist(), rows[first].tolist()):
            if code not in self.first_names:
                self.first_names[code] = stripped[name_idx[row]]

    def occurrences(self) -> Occurrences:
        n_kept = sum(len(p) for p in self.parts[0])
        refuse_unusable(self.n_read, n_kept, self.dropped, self.label)
        # one column at a time, its batches freed once joined: the peak is the records plus one column
        columns = [_joined(self.parts[i]) for i in range(len(self.parts))]
        ids = np.empty(len(self.ids), dtype=object)
        ids[list(self.ids.values())] = list(self.ids)
        codes = columns[2]
        # one str object per species, shared by its records: 8 bytes per record
        species = ids[codes]
        present = np.unique(codes)
        names = {str(ids[c]): self.first_names.get(int(c), str(ids[c])) for c in present}
        source = None
        if len(columns) > 3:
            src = np.empty(len(self.sources), dtype=object)
            src[list(self.sources.values())] = list(self.sources)
            source = src[columns[3]]
        return Occurrences(lon=np.ascontiguousarray(columns[0], dtype=np.float64),
                           lat=np.ascontiguousarray(columns[1], dtype=np.float64),
                           species=species, names=dict(sorted(names.items())), source=source,
                           n_read=self.n_read, dropped=dict(self.dropped), origin=self.label)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The batches' arrays of one column joined; ``parts`` is emptied."""
    joined = np.concatenate(parts)
    parts.clear()
    return joined


def _texts(array: Any) -> Any:
    """A pyarrow string array of ``array``'s values as the plugin reads them from text: '' for
    missing, whole numbers without '.0', booleans as true/false, lists (GBIF ``issue``) joined by ';'."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = array.type
    if pa.types.is_dictionary(t):
        return _texts(array.cast(t.value_type))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return array.cast(pa.string()).fill_null("")
    if pa.types.is_boolean(t):
        return pc.if_else(array, "true", "false").fill_null("")
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pc.binary_join(array.cast(pa.list_(pa.string())), ";").fill_null("")
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        encoded = pc.dictionary_encode(array)
        values = pa.array([id_text(v) for v in encoded.dictionary.to_pylist()], pa.string())
        return values.take(encoded.indices).fill_null("")
    return array.cast(pa.string()).fill_null("")


def _floats(array: Any) -> np.ndarray:
    """float64 [n]; text parsed as the plugin parses it (NaN where empty or unreadable)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    text = _texts(array)
    try:
        # pyarrow's parser is correctly rounded like Python's float() and takes fewer spellings;
        # a batch with one it does not take is parsed by the plugin's parse_floats
        missing = pa.scalar(None, pa.string())
        return pc.if_else(pc.equal(text, ""), missing, text).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return parse_floats(text.to_pylist())


def _codes(array: Any, vocabulary: dict[str, int], spelling: Callable[[str], str]) -> np.ndarray:
    """int32 [n]: the code of each value's ``spelling`` in ``vocabulary`` (extended with new ones),
    worked out once per distinct value of the batch."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(_texts(array))
    values = encoded.dictionary.to_pylist()
    mapped = np.array([vocabulary.setdefault(spelling(v), len(vocabulary)) for v in values], dtype=np.int32)
    return mapped[encoded.indices.to_numpy(zero_copy_only=False)]


def _term_masks(columns: dict[str, Any], n: int) -> dict[str, np.ndarray]:
    """``term_drops`` of the batch, applied once per distinct combination of the term columns' values."""
    import pyarrow.compute as pc

    if not columns:
        return {}
    key = np.zeros(n, dtype=np.int64)
    dictionaries: dict[str, tuple[list[str], np.ndarray]] = {}
    for role, array in columns.items():
        encoded = pc.dictionary_encode(_texts(array))
        idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        dictionaries[role] = (encoded.dictionary.to_pylist(), idx)
        # key < n before, so key * size + idx < n * n: no overflow for any batch under 3e9 rows
        _, key = np.unique(key * len(dictionaries[role][0]) + idx, return_inverse=True)
        key = key.reshape(-1)
    _, first = np.unique(key, return_index=True)
    combos = {role: [values[i] for i in idx[first]] for role, (values, idx) in dictionaries.items()}
    return {reason: mask[key] for reason, mask in term_drops(combos).items()}
