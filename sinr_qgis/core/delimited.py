"""Delimited text tables (CSV, TSV, GBIF tables, Darwin Core Archive data files) read row by row,
with the width rule that keeps every value under its own column.

Width rule: every data row has as many fields as the header line. A row with more fields has an
unquoted delimiter inside a value, a row with fewer has lost a field; either way the values after
that point would sit under the wrong columns (a latitude read as a longitude), so the file is
refused with the line number rather than read shifted. Tolerated, because exporters write it
(RFC 4180's drafts allowed it) and it moves no value: a trailing delimiter on every data line (one
extra, empty last field) under a header line without one, or the reverse. The first data line
settles which, for the whole file, so a row that only looks like it (an unquoted delimiter and a
lost last value) is still caught. A shorter row is refused even when the lost field could be the
last one: a file cannot tell a trailing empty field left out from a field left out in the middle.
A Darwin Core data file without a header line must have at least the columns meta.xml declares
(more are unmapped). Blank lines are not rows.

Python's csv module refuses fields over 128 KiB through a process-wide limit. Long values in
columns the reader does not use are real (GBIF ``occurrenceRemarks``, ``footprintWKT``), so the
limit is lifted while a file is read and put back afterwards (:func:`lifted_field_limit`). NUL
characters in a field are accepted by csv since Python 3.11.
"""
from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

from .errors import OccurrenceError

_FIELD_LIMIT = 2**31 - 1  # the largest value csv accepts on every platform (a C long on Windows)
_limit_lock = threading.Lock()
_limit_users = 0
_limit_saved = 0


@contextmanager
def lifted_field_limit() -> Iterator[None]:
    """Lift csv's process-wide field size limit while a file is read, then put the old one back.

    Reads in several threads share one lift (counted); the old value is put back only if no one
    else changed the limit meanwhile, so another plugin's own setting is never overwritten.
    """
    global _limit_users, _limit_saved
    with _limit_lock:
        if _limit_users == 0:
            _limit_saved = csv.field_size_limit(_FIELD_LIMIT)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0 and csv.field_size_limit() == _FIELD_LIMIT:
                csv.field_size_limit(_limit_saved)


def _dialect(delimiter: str, quotechar: str | None) -> dict[str, Any]:
    """csv.reader keyword arguments; ``quotechar=None`` reads quotes as data (unquoted formats)."""
    if quotechar is None:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE}
    return {"delimiter": delimiter, "quotechar": quotechar}


def _sniff_delimiter(line: str) -> str:
    """The most frequent of tab, semicolon and comma in the header line (comma on a tie)."""
    counts = {d: line.count(d) for d in (",", ";", "\t")}
    best = max(counts.values())
    return next(d for d in (",", ";", "\t") if counts[d] == best) if best else ","


def _looks_numeric(text: str) -> bool:
    """Whether ``text`` reads as a number (decimal comma allowed)."""
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def open_text(raw: IO[bytes], encoding: str, label: str) -> IO[str]:
    """``raw`` decoded as ``encoding`` (``utf-8-sig`` skips a byte-order mark), newlines kept for csv."""
    try:
        return io.TextIOWrapper(raw, encoding=encoding, newline="")
    except LookupError as exc:
        raise OccurrenceError(f"{label}: unknown text encoding {encoding!r}; re-export the file as UTF-8.") from exc


def _not_text(label: str, name: str, encoding: str, exc: UnicodeDecodeError) -> OccurrenceError:
    return OccurrenceError(
        f"{label}: {name or 'the file'} is not {encoding.replace('-sig', '').upper()} text "
        f"({exc.reason} near byte {exc.start}); save it as UTF-8 and try again."
    )


@dataclass
class Rows:
    """The data rows of one text table and the width each must have.

    ``header`` names the columns by position (for a Darwin Core file: the term of each index,
    '' where none is declared). Messages start with ``label`` (the file chosen) and name the
    table ``name`` inside it ('' when the table is that file).
    """

    label: str
    name: str
    encoding: str
    header: list[str]
    reader: Any  # a csv reader over the lines after the header
    width: int
    lines_before: int  # physical lines before the reader's first line
    exact: bool = True  # False: at least ``width`` fields (a Darwin Core file without header line)
    header_ends_open: bool = False  # the header line ends with a delimiter (an empty last name)
    declared_by: str = "the header line"  # what sets the width, for messages
    fix_hint: str = "Fix that line (quote values that contain the delimiter) and try again."

    def line(self) -> str:
        """``line 12`` (or ``line 12 of occurrence.txt``): where the row read last starts."""
        return f"line {self.lines_before + self.reader.line_num}" + (f" of {self.name}" if self.name else "")

    def __iter__(self) -> Iterator[list[str]]:
        """The data rows, each checked against the width rule (blank lines left out).

        Raises :class:`OccurrenceError` for a row of another width, text that does not decode
        and a line csv cannot parse.
        """
        try:
            yield from self._checked()
        except UnicodeDecodeError as exc:
            raise _not_text(self.label, self.name, self.encoding, exc) from exc
        except csv.Error as exc:
            raise OccurrenceError(
                f"{self.label}: cannot parse {self.line()} ({exc}); check the quoting of that line."
            ) from exc

    def _checked(self) -> Iterator[list[str]]:
        # The first data row settles whether this file's data lines carry one trailing delimiter
        # more (or, under a header line that ends with one, one fewer) than the header line.
        rows = iter(self.reader)
        for first in rows:
            if not _blank(first):
                break
        else:
            return
        width, trailing = self.width, False
        if self.exact and len(first) == width + 1 and first[-1] == "":
            width, trailing = width + 1, True
        elif self.exact and len(first) == width - 1 and self.header_ends_open:
            width -= 1
        exact = self.exact
        for row in chain((first,), rows):
            if (len(row) != width and (exact or len(row) < width)) or (trailing and row[-1]):
                if _blank(row):
                    continue
                self._refuse(row, width, trailing)
            yield row

    def _refuse(self, row: list[str], width: int, trailing: bool) -> None:
        n = len(row)
        extra = n > width or (trailing and n == width)
        verb = "declares" if "meta.xml" in self.declared_by else "has"
        text = f"{self.label}: {self.line()} has {n} fields but {self.declared_by} {verb} {self.width} columns"
        if width != self.width:
            text += f" (and this file's data lines {width}: " + (
                "one more, ending with a delimiter)" if trailing else "one fewer, as the header line ends with one)"
            )
        cause = "a value holds an unquoted delimiter" if extra else "a field is missing"
        raise OccurrenceError(f"{text}; {cause}, so its values would sit under the wrong columns. {self.fix_hint}")


def _blank(row: list[str]) -> bool:
    """A blank line, or one of delimiters only: no value in it can be misplaced."""
    return not any(v.strip() for v in row)


def header_rows(text: IO[str], label: str, name: str = "", encoding: str = "utf-8-sig") -> Rows:
    """Rows of a CSV/TSV whose first non-blank line is the header; the delimiter is sniffed from it.

    GBIF tables (tab-separated, unquoted) are read without quoting: a lone '"' there is data.
    Raises :class:`OccurrenceError` for an empty file or a first line that looks like data.
    """
    first, line_no = "", 0
    try:
        while not first.strip():
            first = text.readline()
            line_no += 1
            if not first:
                raise OccurrenceError(
                    f"{label}: {name or 'the file'} is empty; choose a file with a header row and observations."
                )
    except UnicodeDecodeError as exc:
        raise _not_text(label, name, encoding, exc) from exc
    delimiter = _sniff_delimiter(first)
    quotechar: str | None = None if delimiter == "\t" and '"' not in first else '"'
    options = _dialect(delimiter, quotechar)
    header = [h.strip() for h in next(csv.reader([first], **options))]
    if all(not h or _looks_numeric(h) for h in header):
        raise OccurrenceError(
            f"{label}: {name or 'the file'} has no header row (the first line '{first.strip()[:80]}' looks like "
            "data); add a header row naming the columns, e.g. species,latitude,longitude."
        )
    return Rows(label=label, name=name, encoding=encoding, header=header, reader=csv.reader(text, **options),
                width=len(header), lines_before=line_no, header_ends_open=not header[-1])


def declared_rows(
    text: IO[str],
    label: str,
    name: str,
    *,
    encoding: str,
    terms: list[str],
    delimiter: str,
    quotechar: str | None,
    skip_lines: int,
) -> Rows:
    """Rows of a Darwin Core data file whose columns meta.xml declares (``terms`` by index).

    With header lines (``skip_lines`` > 0) every row must be as wide as the last header line,
    which must hold at least the declared columns; without, rows need the declared columns.
    Raises :class:`OccurrenceError` for a header line narrower than meta.xml declares.
    """
    options = _dialect(delimiter, quotechar)
    hint = "Fix the data file or meta.xml (they must describe the same columns) and export the archive again."
    header_line = ""
    try:
        for _ in range(skip_lines):
            header_line = text.readline() or header_line
    except UnicodeDecodeError as exc:
        raise _not_text(label, name, encoding, exc) from exc
    declared = len(terms)
    common = {"label": label, "name": name, "encoding": encoding, "reader": csv.reader(text, **options),
              "lines_before": skip_lines, "fix_hint": hint}
    if skip_lines and header_line.strip():
        names = next(csv.reader([header_line.rstrip("\r\n")], **options))
        if len(names) < declared:
            raise OccurrenceError(
                f"{label}: the header line of {name} has {len(names)} columns but meta.xml declares {declared} "
                f"(index 0 to {declared - 1}); the values would sit under the wrong terms. {hint}"
            )
        return Rows(header=terms + [""] * (len(names) - declared), width=len(names),
                    header_ends_open=not names[-1].strip(), declared_by="its header line", **common)
    return Rows(header=list(terms), width=declared, exact=False, declared_by="meta.xml", **common)
