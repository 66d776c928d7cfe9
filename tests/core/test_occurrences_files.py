"""Whole files are never refused for something the reader does not use: archiver clutter, readmes
beside the table, long or NUL-holding values in unused columns, tar and other compressions. Other
table formats get a message saying what to do. Rows of another width than the header are an error
with the line number (a trailing delimiter on every line is tolerated)."""
from __future__ import annotations

import bz2
import csv
import lzma
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.delimited import lifted_field_limit
from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import read_occurrences
from tests.helpers.occurrence_files import write_text, write_zip

OBS = "species,latitude,longitude\nAcer rubrum,45.5,-73.5\nQuercus alba,40.0,-80.0\n"
README = "This download was made on 2024-01-01.\nPlease cite the data as described in citation.txt.\n"


def check_obs(path: Path) -> None:
    occ = read_occurrences(path)
    assert occ.summary() == f"{path.name}: 2 records of 2 species (2 rows read)"
    np.testing.assert_array_equal(occ.lat, [45.5, 40.0])


def test_zip_clutter_of_macos_windows_and_folders_is_ignored(tmp_path: Path) -> None:
    check_obs(write_zip(tmp_path / "mac.zip", {
        "obs/": "", "obs/observations.csv": OBS,
        "__MACOSX/obs/._observations.csv": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X",
        "obs/.DS_Store": b"\x00\x00\x00\x01Bud1", "obs/Thumbs.db": b"\xd0\xcf\x11\xe0", "obs/desktop.ini": "[x]\n",
        "obs/._observations.csv": b"\x00\x05\x16\x07"}))


def test_zip_with_a_readme_licence_and_citation_reads_the_table(tmp_path: Path) -> None:
    check_obs(write_zip(tmp_path / "0001-download.zip", {
        "README.txt": README, "LICENSE.txt": "CC-BY 4.0\n", "citation.txt": "GBIF.org (2024) Occurrence Download\n",
        "occurrences.csv": OBS}))


def test_zip_with_several_tables_lists_them(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "two.zip", {"README.txt": README, "a.csv": OBS, "b.csv": OBS})
    with pytest.raises(OccurrenceError, match=r"two\.zip: the archive has no meta\.xml .* holds 2 observation tables "
                                              r"\(a\.csv, b\.csv\); extract the table to read and choose it"):
        read_occurrences(path)
    path = write_zip(tmp_path / "none.zip", {"README.txt": README, "notes.txt": "x,y\n1,2\n"})
    with pytest.raises(OccurrenceError, match=r"none\.zip: .* holds 2 tables, none with latitude, longitude and "
                                              r"species columns \(README\.txt, notes\.txt\)"):
        read_occurrences(path)
    path = write_zip(tmp_path / "empty.zip", {"__MACOSX/._a.csv": b"\x00", "pic.png": b"\x89PNG"})
    with pytest.raises(OccurrenceError, match=r"empty\.zip: the archive holds no table .* no meta\.xml \(it contains: "
                                              r"pic\.png\)"):
        read_occurrences(path)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar", ".tar.bz2"])
def test_tar_archives_read_like_zips(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "occurrences.csv").write_text(OBS)
    (tmp_path / "README.txt").write_text(README)
    (tmp_path / "._occurrences.csv").write_bytes(b"\x00\x05\x16\x07")
    path = tmp_path / f"download{suffix}"
    mode = {".tar": "w", ".tar.bz2": "w:bz2"}.get(suffix, "w:gz")
    with tarfile.open(path, mode) as tar:
        for name in ("occurrences.csv", "README.txt", "._occurrences.csv"):
            tar.add(tmp_path / name, arcname=f"./download/{name}")
    check_obs(path)


def test_bzip2_and_xz_compressed_tables(tmp_path: Path) -> None:
    (tmp_path / "obs.csv.bz2").write_bytes(bz2.compress(OBS.encode()))
    (tmp_path / "obs.csv.xz").write_bytes(lzma.compress(OBS.encode()))
    check_obs(tmp_path / "obs.csv.bz2")
    check_obs(tmp_path / "obs.csv.xz")


def test_long_values_and_nul_bytes_in_unused_columns_and_the_csv_limit_is_put_back(tmp_path: Path) -> None:
    before = csv.field_size_limit()
    remarks = "x" * 300_000  # over csv's 131,072-character default limit
    wkt = "POLYGON ((" + ", ".join(f"{i} {i}" for i in range(30_000)) + "))"
    text = (f'species\tdecimalLatitude\tdecimalLongitude\toccurrenceRemarks\tfootprintWKT\n'
            f"Acer rubrum\t45.5\t-73.5\t{remarks}\t{wkt}\n"
            f"Quercus alba\t40.0\t-80.0\tnote with a NUL \x00 byte\t\n")
    check_obs(write_text(tmp_path / "gbif.csv", text))
    check_obs(write_zip(tmp_path / "gbif.zip", {"0001.csv": text}))
    assert csv.field_size_limit() == before
    with pytest.raises(OccurrenceError):  # an error on the way out puts it back too
        read_occurrences(write_text(tmp_path / "bad.csv", text + "Acer\t1\n"))
    assert csv.field_size_limit() == before


def test_the_csv_limit_stays_lifted_while_another_thread_still_reads() -> None:
    before = csv.field_size_limit()
    inside, leave = threading.Event(), threading.Event()

    def other_read() -> None:
        with lifted_field_limit():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_read)
    thread.start()
    inside.wait(10)
    with lifted_field_limit():
        pass
    assert csv.field_size_limit() > before  # the other read is not cut short
    leave.set()
    thread.join()
    assert csv.field_size_limit() == before


@pytest.mark.parametrize(("content", "message"), [
    (b"7z\xbc\xaf\x27\x1c\x00\x04", r"a 7-Zip archive, not a text table; extract it"),
    (b"Rar!\x1a\x07\x01\x00", r"a RAR archive, not a text table; extract it"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, r"an Excel 97-2003 workbook \(\.xls\), not a text table; save "
                                                       r"the sheet as CSV"),
    (b"PAR1\x15\x04", r"a Parquet file, not a text table; convert it to CSV"),
    (b"SQLite format 3\x00" + b"\x00" * 8, r"a GeoPackage or SQLite database, not a text table; load it in QGIS"),
    (b"\x00\x00\x27\x0a" + b"\x00" * 96, r"a shapefile, not a text table; load it in QGIS"),
])
def test_other_table_formats_say_what_to_do(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "observations.dat"
    path.write_bytes(content)
    with pytest.raises(OccurrenceError, match=rf"^observations\.dat is {message}"):
        read_occurrences(path)


def test_spreadsheets_and_parquet_in_zips_say_what_to_do(tmp_path: Path) -> None:
    xlsx = write_zip(tmp_path / "obs.xlsx", {"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})
    with pytest.raises(OccurrenceError, match=r"^obs\.xlsx is an Excel workbook \(\.xlsx\), not a text table; save"):
        read_occurrences(xlsx)
    ods = write_zip(tmp_path / "obs.ods", {"mimetype": "application/vnd.oasis.opendocument.spreadsheet",
                                           "content.xml": "<x/>"})
    with pytest.raises(OccurrenceError, match=r"^obs\.ods is an OpenDocument spreadsheet \(\.ods\)"):
        read_occurrences(ods)
    parquet = write_zip(tmp_path / "0001.zip", {"occurrence.parquet/000000": b"PAR1"})
    with pytest.raises(OccurrenceError, match=r"^0001\.zip holds Parquet files, not text tables"):
        read_occurrences(parquet)


# --------------------------------------------------------------------------------------------
# row widths in plain tables


@pytest.mark.parametrize(("text", "message"), [
    ("species,latitude,longitude\nAcer rubrum,45.5,-73.5\nAcer rubrum,45.0\n",
     r"^obs\.csv: line 3 has 2 fields but the header line has 3 columns; a field is missing"),
    # an unquoted comma in a name: "rubrum" would be read as the latitude
    ("species,latitude,longitude\nAcer rubrum,45.5,-73.5\n\nAcer, rubrum,45.0,-73.0\n",
     r"^obs\.csv: line 4 has 4 fields but the header line has 3 columns; a value holds an unquoted delimiter"),
    # GBIF's tab-separated table with a stray tab
    ("species\tdecimalLatitude\tdecimalLongitude\nAcer rubrum\t45.5\t-73.5\nAcer\trubrum\t45\t-73\n",
     r"^obs\.csv: line 3 has 4 fields but the header line has 3 columns"),
    # rows that end with a delimiter set the file's width; a row whose extra field is not empty breaks it
    ("species,latitude,longitude\nAcer rubrum,45.5,-73.5,\nAcer, rubrum,45.0,-73.0\n",
     r"^obs\.csv: line 3 has 4 fields but the header line has 3 columns \(and this file's data lines 4: one more, "
     r"ending with a delimiter\); a value holds an unquoted delimiter"),
])
def test_rows_of_another_width_than_the_header_are_an_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OccurrenceError, match=message) as err:
        read_occurrences(write_text(tmp_path / "obs.csv", text))
    assert "wrong columns" in str(err.value)


@pytest.mark.parametrize("text", [
    "species,latitude,longitude\nAcer rubrum,45.5,-73.5,\nQuercus alba,40.0,-80.0,\n",  # data lines end with ','
    "species,latitude,longitude,\nAcer rubrum,45.5,-73.5\nQuercus alba,40.0,-80.0\n",  # the header line does
    "species,latitude,longitude\nAcer rubrum,45.5,-73.5\n\n \n,\nQuercus alba,40.0,-80.0\n\n",  # blank lines
])
def test_a_trailing_delimiter_and_blank_lines_are_tolerated(tmp_path: Path, text: str) -> None:
    check_obs(write_text(tmp_path / "obs.csv", text))


def test_a_row_of_empty_fields_is_a_row_with_missing_values(tmp_path: Path) -> None:
    occ = read_occurrences(write_text(tmp_path / "obs.csv", OBS + ",,\n"))  # as spreadsheets export empty rows
    assert occ.summary() == "obs.csv: 2 records of 2 species (3 rows read; dropped 1 missing)"


def test_a_folder_reads_like_an_archive(tmp_path: Path) -> None:
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "observations.csv").write_text(OBS)
    (folder / "README.txt").write_text(README)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert read_occurrences(folder).summary() == "download: 2 records of 2 species (2 rows read)"
    (folder / "more.csv").write_text(OBS)
    with pytest.raises(OccurrenceError, match=r"^download: the folder has no meta\.xml .* holds 2 observation tables "
                                              r"\(more\.csv, observations\.csv\)"):
        read_occurrences(folder)
