"""Taxon-name tables as the official SINR code, iNaturalist and GBIF publish them.

The layout is sniffed from the content, never from the file name:

- ``id<TAB>name`` lines without a header (the SINR web app's ``taxa_*_names.txt``);
- delimited text (tab, semicolon or comma) with a header naming an id column and a name column:
  iNaturalist's open-data ``taxa.csv`` (tab-separated: taxon_id, ancestry, rank_level, rank,
  name, active), GBIF's ``Taxon.tsv`` (taxonID, scientificName, canonicalName, ...), plain CSVs;
- headerless ``id,name`` / ``id;name`` lines (a name may then hold the delimiter unquoted);
- JSON: a list of names in class order, a list of objects with an id and a name key (the official
  ``geo_prior_train_meta.json``: taxon_id, latin_name), an ``{id: name}`` object, or the
  iNaturalist API's ``{"results": [...]}``.

Files may be gzip-compressed (iNaturalist's ``taxa.csv.gz``) or a zip holding one table; text
may be UTF-8 (with or without a BOM) or UTF-16 with a BOM (Excel's "Unicode text"), with LF,
CRLF or CR line ends. Only the names of the model's own taxa are kept, so a full iNaturalist
taxonomy (about 1.5 million rows) is streamed, not held in memory.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sinr_qgis.core.errors import SinrError

# Header names (lower case, letters and digits only) in order of preference.
ID_COLUMNS = ("taxonid", "taxonkey", "id")
NAME_COLUMNS = ("name", "canonicalname", "scientificname", "latinname", "species", "taxonname")
LAYOUTS = ("'id<TAB>name' lines without a header (the SINR web app's names file); "
           "a tab-, semicolon- or comma-separated table whose header names an id column "
           "(taxon_id, taxonID, taxonKey or id) and a name column (name, canonicalName, scientificName, "
           "latin_name, species or taxon_name), such as iNaturalist's taxa.csv or GBIF's Taxon.tsv; "
           "headerless 'id,name' lines; JSON: a list of names in class order, a list of "
           "{\"taxon_id\"/\"id\", \"name\"/\"latin_name\"} objects or an {id: name} object. "
           "UTF-8 or UTF-16 text, optionally gzip-compressed")
_SAMPLE_CHARS = 1 << 16
_SAMPLE_LINES = 50
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")


class TaxaTableError(SinrError):
    """A taxon-name table is missing, unreadable, ambiguous or in a layout not understood."""


@dataclass
class TaxaNaming:
    """Names for a model's classes read from one table.

    ``names``: one per class, in class (head) order; a class the table does not name keeps its
    taxon id. ``n_named`` + ``n_unnamed`` = number of classes. ``n_ignored``: rows of the table
    whose id is not a class of the model. ``n_unreadable``: table rows without an id or a
    name (skipped), the first of them at ``first_unreadable`` ('line 7', 'item 3')."""

    names: list[str]
    layout: str
    n_named: int
    n_unnamed: int
    n_ignored: int
    n_unreadable: int = 0
    first_unreadable: str | None = None

    def summary(self, file_name: str) -> str:
        """One or two lines for a person: what was read and what was left out."""
        n = self.n_named + self.n_unnamed
        text = (f"names: {self.n_named} of {n} classes named from {file_name} ({self.layout}); "
                f"{_count(self.n_unnamed, 'keeps its', 'keep their')} taxon id as name; "
                f"{_count(self.n_ignored, 'row', 'rows')} of the table "
                f"{'names a taxon that is' if self.n_ignored == 1 else 'name taxa that are'} not in the model "
                f"and {'was' if self.n_ignored == 1 else 'were'} ignored")
        if self.n_unreadable:
            text += (f"; {_count(self.n_unreadable, 'row', 'rows')} without an id or a name "
                     f"{'was' if self.n_unreadable == 1 else 'were'} skipped (first at {self.first_unreadable})")
        return text + "."


def taxon_key(value: Any) -> str:
    """A taxon id as text: '101', 101, 101.0, ' 101 ' and '0101' all give '101'; other text is kept."""
    s = str(value).strip()
    return str(int(s.split(".")[0])) if _INTEGER.fullmatch(s) else s


def clean_name(value: Any) -> str:
    """A name as one NFC-normalised line: inner tabs, line breaks and space runs become one space."""
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def read_taxa_names(path: str | Path, taxa_ids: Sequence[Any]) -> TaxaNaming:
    """Name the classes ``taxa_ids`` (class order) from the table at ``path``.

    Raises ``TaxaTableError`` when the file is missing or unreadable, its layout is not one of
    ``LAYOUTS``, a JSON list of names does not have one name per class, or a taxon of the model
    gets two different names."""
    p = Path(path)
    if not p.is_file():
        raise TaxaTableError(f"Taxa table {p} does not exist.")
    keys = [taxon_key(t) for t in taxa_ids]
    try:
        with _open_text(p) as f:
            sample = f.read(_SAMPLE_CHARS)
        if sample.lstrip()[:1] in ("[", "{"):
            with _open_text(p) as f:
                return _from_json(p.name, json.load(f), keys)
        with _open_text(p) as f:
            return _from_delimited(p.name, sample, f, keys)
    except UnicodeError:
        raise TaxaTableError(f"Taxa table {p.name} is not UTF-8 (or UTF-16 with a BOM) text. "
                             "Save it as UTF-8 and try again.") from None
    except json.JSONDecodeError as exc:
        raise TaxaTableError(f"Taxa table {p.name} looks like JSON but cannot be parsed "
                             f"(line {exc.lineno}: {exc.msg}).") from None
    except (csv.Error, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TaxaTableError(f"Taxa table {p.name} cannot be read ({exc}).") from None


def _open_text(p: Path) -> IO[str]:
    """The table as text, gzip or single-member zip undone, the encoding chosen from the BOM."""
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        raw: IO[bytes] = gzip.open(p, "rb")  # noqa: SIM115 - closed by the caller's ``with``
    elif head[:4] == b"PK\x03\x04":
        zf = zipfile.ZipFile(p)
        members = [i for i in zf.infolist() if not i.is_dir()
                   and not i.filename.startswith("__MACOSX/") and not Path(i.filename).name.startswith("._")]
        if len(members) != 1:
            zf.close()
            raise TaxaTableError(f"Taxa table {p.name} is a zip archive with {len(members)} files; "
                                 "extract the taxa table from it and pass that file.")
        raw = zf.open(members[0])
        zf.close()  # the member stream keeps the file open until it is closed itself
    else:
        raw = open(p, "rb")  # noqa: SIM115 - closed by the caller's ``with``
    bom = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    encoding = "utf-16" if bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


# ---- delimited text ---------------------------------------------------------------------------

def _from_delimited(file_name: str, sample: str, f: IO[str], keys: list[str]) -> TaxaNaming:
    lines = sample.splitlines()
    if len(sample) == _SAMPLE_CHARS:
        lines = lines[:-1]  # the sample may end inside a line
    lines = [ln for ln in lines[:_SAMPLE_LINES] if ln.strip()]
    if not lines:
        raise TaxaTableError(f"Taxa table {file_name} is empty.")
    delim = _sniff_delimiter(lines)
    if delim is None:
        raise TaxaTableError(f"Taxa table {file_name}: cannot tell an id from a name on its first line "
                             f"{lines[0][:80]!r}. Accepted layouts: {LAYOUTS}.")
    reader = csv.reader(f, delimiter=delim)
    rows = (r for r in reader if any(c.strip() for c in r))  # blank lines are no rows
    first = next(rows)
    what = {"\t": "tab", ";": "semicolon", ",": "comma"}[delim]
    if _INTEGER.fullmatch(first[0].strip()):
        layout = f"{what}-separated id and name, no header"
        pairs = _headerless(first, rows, delim)
    else:
        id_col, name_col = _header_columns(file_name, first)
        layout = f"{what}-separated with header, columns {first[id_col].strip()!r} and {first[name_col].strip()!r}"
        pairs = ((r[id_col], r[name_col]) if len(r) > max(id_col, name_col) else None for r in rows)
    return _match(file_name, layout, pairs, keys, where=lambda i: f"line {reader.line_num}")


def _sniff_delimiter(lines: list[str]) -> str | None:
    """The first of tab, semicolon, comma that splits every sampled line into two or more fields
    (tab first: names never hold one; semicolon before comma: authorships hold commas)."""
    for delim in ("\t", ";", ","):
        if all(len(r) >= 2 for r in csv.reader(lines, delimiter=delim)):
            return delim
    return None


def _headerless(first: list[str], rows: Iterator[list[str]], delim: str) -> Iterator[tuple[str, str] | None]:
    """(id, name) per row; a comma or semicolon after the id is part of the name (authorships such as
    'L., 1753' often stand unquoted), a tab never is."""
    for r in itertools.chain([first], rows):
        yield None if len(r) < 2 else (r[0], r[1] if delim == "\t" else delim.join(r[1:]))


def _header_columns(file_name: str, header: list[str]) -> tuple[int, int]:
    norm = [re.sub(r"[^0-9a-z]", "", h.lower()) for h in header]
    id_col = next((norm.index(c) for c in ID_COLUMNS if c in norm), None)
    name_col = next((norm.index(c) for c in NAME_COLUMNS if c in norm), None)
    if id_col is None or name_col is None:
        raise TaxaTableError(
            f"Taxa table {file_name}: its header ({', '.join(h.strip() for h in header[:8])}) names no "
            f"{'id' if id_col is None else 'name'} column. Accepted layouts: {LAYOUTS}.")
    return id_col, name_col


# ---- JSON -------------------------------------------------------------------------------------

def _from_json(file_name: str, data: Any, keys: list[str]) -> TaxaNaming:
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        data = data["results"]  # the iNaturalist API's answer
    if isinstance(data, list) and data and all(isinstance(x, str) or x is None for x in data):
        if len(data) != len(keys):
            raise TaxaTableError(f"Taxa table {file_name} is a JSON list of {len(data)} names, read in class "
                                 f"order, but the model has {len(keys)} classes. Give one name per class, "
                                 "or a table that pairs each taxon id with its name.")
        named = [clean_name(x) if x else "" for x in data]
        return TaxaNaming([n or k for n, k in zip(named, keys)], "JSON list of names in class order",
                          n_named=sum(map(bool, named)), n_unnamed=sum(not n for n in named), n_ignored=0)
    if isinstance(data, list) and any(isinstance(x, dict) for x in data):
        return _match(file_name, "JSON list of objects", (_json_pair(x) for x in data), keys,
                      where=lambda i: f"item {i}")
    if isinstance(data, dict) and data and all(isinstance(v, str) for v in data.values()):
        return _match(file_name, "JSON object {id: name}", iter(data.items()), keys,
                      where=lambda i: f"item {i}")
    raise TaxaTableError(f"Taxa table {file_name}: JSON of this shape is not understood. "
                         f"Accepted layouts: {LAYOUTS}.")


def _json_pair(item: Any) -> tuple[Any, Any] | None:
    if not isinstance(item, dict):
        return None
    norm = {re.sub(r"[^0-9a-z]", "", str(k).lower()): v for k, v in item.items()}
    tid = next((norm[c] for c in ID_COLUMNS if norm.get(c) is not None), None)
    name = next((norm[c] for c in NAME_COLUMNS if isinstance(norm.get(c), str)), None)
    return None if tid is None or name is None else (tid, name)


# ---- matching ---------------------------------------------------------------------------------

def _match(file_name: str, layout: str, pairs: Iterator[tuple[Any, Any] | None], keys: list[str],
           where: Callable[[int], str]) -> TaxaNaming:
    """Keep the names of the model's taxa; count the rest. ``where(i)``: the place of the i-th
    pair (1-based) for messages, e.g. 'line 7'."""
    wanted = set(keys)
    found: dict[str, tuple[str, str]] = {}
    n_ignored = 0
    n_unreadable, first_unreadable = 0, None
    for i, pair in enumerate(pairs, start=1):
        key, name = (taxon_key(pair[0]), clean_name(pair[1])) if pair else ("", "")
        if not key or not name:
            n_unreadable += 1
            first_unreadable = first_unreadable or where(i)
        elif key not in wanted:
            n_ignored += 1
        elif key in found and found[key][0] != name:
            raise TaxaTableError(f"Taxa table {file_name} gives taxon {key} two names: {found[key][0]!r} "
                                 f"({found[key][1]}) and {name!r} ({where(i)}). Keep one row per taxon.")
        else:
            found.setdefault(key, (name, where(i)))
    names = [found[k][0] if k in found else k for k in keys]
    n_named = sum(k in found for k in keys)
    return TaxaNaming(names, layout, n_named=n_named, n_unnamed=len(keys) - n_named, n_ignored=n_ignored,
                      n_unreadable=n_unreadable, first_unreadable=first_unreadable)


def _count(n: int, one: str, many: str) -> str:
    """``n`` followed by the singular or plural words, e.g. "1 row", "3 rows"."""
    return f"{n} {one if n == 1 else many}"
