"""Darwin Core Archives read as the text guide and GBIF read them: meta.xml defaults, sampling-event
archives (Event core + Occurrence extension, parentEventID), archive types without occurrences,
data rows that do not match meta.xml, and the unzipped archive (folder, meta.xml or core file)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import read_occurrences
from tests.helpers.occurrence_files import nonzero, write_zip

DWC = "http://rs.tdwg.org/dwc/terms/"
TAB = 'fieldsTerminatedBy="\\t" fieldsEnclosedBy="" encoding="UTF-8"'


def meta(core: str, *extensions: str) -> str:
    return f'<archive xmlns="http://rs.tdwg.org/dwc/text/">{core}{"".join(extensions)}</archive>'


def data_file(tag: str, row_type: str, location: str, fields: str, header_lines: int = 1) -> str:
    return (f'<{tag} {TAB} ignoreHeaderLines="{header_lines}" rowType="{DWC}{row_type}">'
            f"<files><location>{location}</location></files>{fields}</{tag}>")


def tsv(*rows: str) -> str:
    return "".join(row.replace("|", "\t") + "\n" for row in rows)


# --------------------------------------------------------------------------------------------
# meta.xml defaults

DEFAULTS_META = meta(data_file("core", "Occurrence", "occurrence.txt", (
    '<id index="0"/>'
    f'<field index="0" term="{DWC}occurrenceID"/>'
    f'<field index="1" term="{DWC}scientificName" default="Acer rubrum"/>'
    f'<field index="2" term="{DWC}decimalLatitude"/>'
    f'<field index="3" term="{DWC}decimalLongitude"/>'
    f'<field index="4" term="{DWC}datasetID" default="survey-A"/>'
    f'<field term="{DWC}basisOfRecord" default="HumanObservation"/>')))
DEFAULTS_CORE = tsv(
    "occurrenceID|scientificName|decimalLatitude|decimalLongitude|datasetID",
    "o0||41.0|-78.0|",  # empty name and dataset: the defaults
    "o1|Acer rubrum|41.2|-77.8|survey-B",
    "o2||41.4|-77.6|survey-B",
    "o3|Quercus alba|41.6|-77.4|",
    "o4||41.8|-77.2|survey-C",
)


def test_default_fills_the_empty_cells_of_an_indexed_field(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "dwca.zip", {"meta.xml": DEFAULTS_META, "occurrence.txt": DEFAULTS_CORE})
    occ = read_occurrences(path)
    assert occ.summary() == "dwca.zip: 5 records of 2 species (5 rows read)"
    assert occ.species.tolist() == ["Acer rubrum", "Acer rubrum", "Acer rubrum", "Quercus alba", "Acer rubrum"]
    assert occ.source.tolist() == ["survey-A", "survey-B", "survey-B", "survey-A", "survey-C"]


def test_data_file_in_the_encoding_meta_xml_declares(tmp_path: Path) -> None:
    latin = DEFAULTS_META.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    core = DEFAULTS_CORE.replace("Quercus alba", "Picéa glauca").encode("latin-1")
    occ = read_occurrences(write_zip(tmp_path / "latin.zip", {"meta.xml": latin, "occurrence.txt": core}))
    assert occ.species.tolist()[3] == "Picéa glauca"


# --------------------------------------------------------------------------------------------
# sampling-event archives

EVENT_META = meta(
    data_file("core", "Event", "event.txt", (
        '<id index="0"/>'
        f'<field index="0" term="{DWC}eventID"/>'
        f'<field index="1" term="{DWC}parentEventID"/>'
        f'<field index="2" term="{DWC}decimalLatitude"/>'
        f'<field index="3" term="{DWC}decimalLongitude"/>'
        f'<field term="{DWC}datasetID" default="survey-2021"/>')),
    data_file("extension", "Occurrence", "occurrence.txt", (
        '<coreid index="0"/>'
        f'<field index="1" term="{DWC}occurrenceID"/>'
        f'<field index="2" term="{DWC}scientificName"/>'
        f'<field index="3" term="{DWC}occurrenceStatus" default="present"/>'
        f'<field index="4" term="{DWC}decimalLatitude"/>'
        f'<field index="5" term="{DWC}decimalLongitude"/>')),
    data_file("extension", "MeasurementOrFact", "measurementorfact.txt", '<coreid index="0"/>'),
)
EVENTS = tsv(
    "eventID|parentEventID|decimalLatitude|decimalLongitude",
    "site-A||45.0|-73.0",
    "A-visit1|site-A||",  # no coordinates: the parent's
    "A-visit2|site-A|45.5|",  # half a coordinate: the parent's pair, never 45.5 with -73
    "site-B||40.0|-80.0",
    "B-visit1|site-B|40.1|-80.1",
    "loop1|loop2||",  # a parent loop ends the walk: no coordinates
    "loop2|loop1||",
)
EVENT_OCCURRENCES = tsv(
    "eventID|occurrenceID|scientificName|occurrenceStatus|decimalLatitude|decimalLongitude",
    "A-visit1|o1|Acer rubrum|present||",
    "A-visit2|o2|Acer rubrum|present||",
    "A-visit2|o3|Quercus alba|absent||",
    "B-visit1|o4|Quercus alba|present||",
    "B-visit1|o5|Quercus alba|present|40.2|-80.2",  # its own coordinates win
    "site-B|o6|Betula lenta|||",  # status empty: the default, present
    "nowhere|o7|Acer rubrum|present||",  # links to no event: no coordinates
    "loop1|o8|Acer rubrum|present||",
)


def test_event_core_occurrences_take_their_event_and_its_parents_coordinates(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "events.zip", {
        "meta.xml": EVENT_META, "event.txt": EVENTS, "occurrence.txt": EVENT_OCCURRENCES,
        "measurementorfact.txt": "eventID\tx\n"})
    occ = read_occurrences(path)
    assert occ.n_read == 8
    assert nonzero(occ.dropped) == {"absent": 1, "missing": 2}
    assert occ.summary() == "events.zip: 5 records of 3 species (8 rows read; dropped 1 absent, 2 missing)"
    assert occ.species.tolist() == ["Acer rubrum", "Acer rubrum", "Quercus alba", "Quercus alba", "Betula lenta"]
    np.testing.assert_array_equal(occ.lat, [45.0, 45.0, 40.1, 40.2, 40.0])
    np.testing.assert_array_equal(occ.lon, [-73.0, -73.0, -80.1, -80.2, -80.0])
    assert occ.source.tolist() == ["survey-2021"] * 5  # an event-level constant


def test_checklist_core_with_an_occurrence_extension_gives_occurrences_their_taxon(tmp_path: Path) -> None:
    archive = meta(
        data_file("core", "Taxon", "taxon.txt", (
            '<id index="0"/>'
            f'<field index="0" term="{DWC}taxonID"/><field index="1" term="{DWC}scientificName"/>')),
        data_file("extension", "Occurrence", "occurrence.txt", (
            '<coreid index="0"/>'
            f'<field index="1" term="{DWC}decimalLatitude"/><field index="2" term="{DWC}decimalLongitude"/>')))
    path = write_zip(tmp_path / "checklist.zip", {
        "meta.xml": archive, "taxon.txt": tsv("taxonID|scientificName", "t1|Pinus taeda", "t2|Pinus elliottii"),
        "occurrence.txt": tsv("taxonID|lat|lon", "t1|33.5|-84.0", "t2|30.0|-82.0", "t2|30.5|-82.5")})
    occ = read_occurrences(path)
    assert occ.species.tolist() == ["t1", "t2", "t2"]  # taxonID is the species id, scientificName its name
    assert occ.names == {"t1": "Pinus taeda", "t2": "Pinus elliottii"}
    np.testing.assert_array_equal(occ.lat, [33.5, 30.0, 30.5])


@pytest.mark.parametrize(("core_type", "extension_type", "message"), [
    ("Taxon", "Distribution", r"is a checklist \(its core rowType is Taxon\)"),
    ("Event", "MeasurementOrFact", r"is a sampling-event archive \(its core rowType is Event\) without an "
                                   r"Occurrence extension"),
    ("MaterialSample", "Identification", r"is an archive whose core rowType is MaterialSample, with no Occurrence"),
])
def test_archives_without_occurrences_are_refused_naming_their_type(
    tmp_path: Path, core_type: str, extension_type: str, message: str
) -> None:
    archive = meta(
        data_file("core", core_type, "core.txt", f'<id index="0"/><field index="1" term="{DWC}scientificName"/>'),
        data_file("extension", extension_type, "ext.txt", '<coreid index="0"/>'))
    path = write_zip(tmp_path / "other.zip", {"meta.xml": archive, "core.txt": tsv("id|name", "1|Pinus taeda"),
                                              "ext.txt": tsv("id|x", "1|2")})
    with pytest.raises(OccurrenceError, match=rf"^other\.zip: this Darwin Core Archive {message}") as err:
        read_occurrences(path)
    assert "rowType Occurrence" in str(err.value) and "rename" not in str(err.value).lower()


def test_occurrences_that_link_to_no_core_record_are_an_error(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "events.zip", {
        "meta.xml": EVENT_META, "event.txt": EVENTS, "measurementorfact.txt": "",
        "occurrence.txt": tsv("eventID|occurrenceID|scientificName|occurrenceStatus|lat|lon",
                              "E9|o1|Acer rubrum|present||", "E8|o2|Acer rubrum|present||")})
    with pytest.raises(OccurrenceError, match=r"events\.zip: none of the 2 rows of occurrence\.txt links to a row of "
                                              r"event\.txt \(the Event core\)"):
        read_occurrences(path)


# --------------------------------------------------------------------------------------------
# data rows that do not match meta.xml

SHIFT_META = meta(data_file("core", "Occurrence", "occurrence.txt", (
    '<id index="0"/>'
    f'<field index="0" term="{DWC}occurrenceID"/><field index="1" term="{DWC}scientificName"/>'
    f'<field index="2" term="{DWC}countryCode"/><field index="3" term="{DWC}decimalLatitude"/>'
    f'<field index="4" term="{DWC}decimalLongitude"/>'), header_lines=0))


@pytest.mark.parametrize(("rows", "header_lines", "message"), [
    # countryCode left out of every row: 4 fields where meta.xml declares 5
    (("o1|Acer rubrum|34.5|-79.2",), 0,
     r"line 1 of occurrence\.txt has 4 fields but meta\.xml declares 5 columns; a field is missing"),
    # the header line has it, one data row lost it
    (("occurrenceID|scientificName|countryCode|decimalLatitude|decimalLongitude", "o1|Acer rubrum|US|34.5|-79.2",
      "o2|Acer rubrum|35.0|-80.0"), 1,
     r"line 3 of occurrence\.txt has 4 fields but its header line has 5 columns; a field is missing"),
    # an unquoted tab inside a value
    (("occurrenceID|scientificName|countryCode|decimalLatitude|decimalLongitude",
      "o1|Acer|rubrum|US|34.5|-79.2"), 1,
     r"line 2 of occurrence\.txt has 6 fields but its header line has 5 columns; a value holds an unquoted"),
    # the header line itself is narrower than meta.xml
    (("occurrenceID|scientificName|decimalLatitude|decimalLongitude", "o1|Acer rubrum|34.5|-79.2"), 1,
     r"the header line of occurrence\.txt has 4 columns but meta\.xml declares 5 \(index 0 to 4\)"),
])
def test_rows_that_do_not_match_meta_xml_are_an_error(
    tmp_path: Path, rows: tuple[str, ...], header_lines: int, message: str
) -> None:
    path = write_zip(tmp_path / "shifted.zip", {
        "meta.xml": SHIFT_META.replace('ignoreHeaderLines="0"', f'ignoreHeaderLines="{header_lines}"'),
        "occurrence.txt": tsv(*rows)})
    with pytest.raises(OccurrenceError, match=rf"^shifted\.zip: {message}") as err:
        read_occurrences(path)
    assert "meta.xml" in str(err.value) and "export the archive again" in str(err.value)


def test_rows_wider_than_meta_xml_without_header_keep_their_unmapped_columns(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "wide.zip", {
        "meta.xml": SHIFT_META, "occurrence.txt": tsv("o1|Acer rubrum|US|34.5|-79.2|note", "o2|Acer rubrum|US|35|-80")})
    occ = read_occurrences(path)
    np.testing.assert_array_equal(occ.lat, [34.5, 35.0])


# --------------------------------------------------------------------------------------------
# an unzipped archive, and archives in tar files

HEADERLESS_META = meta(data_file("core", "Occurrence", "occurrence.txt", (
    '<id index="0"/>'
    f'<field index="1" term="{DWC}decimalLongitude"/><field index="2" term="{DWC}scientificName"/>'
    f'<field index="3" term="{DWC}decimalLatitude"/>'), header_lines=0))
HEADERLESS_CORE = tsv("o1|-70.5|Betula papyrifera|45.0", "o2|-71.0|Betula lenta|46.0")


def test_unzipped_archive_reads_from_its_folder_meta_xml_or_core_file(tmp_path: Path) -> None:
    folder = tmp_path / "0012345-240101"
    folder.mkdir()
    (folder / "meta.xml").write_text(HEADERLESS_META)
    (folder / "occurrence.txt").write_text(HEADERLESS_CORE)  # no header line: only meta.xml says what is where
    (folder / "notes.txt").write_text("species,latitude,longitude\nAcer rubrum,40,-75\n")
    for chosen, label in ((folder, "0012345-240101"), (folder / "meta.xml", "0012345-240101"),
                          (folder / "occurrence.txt", "occurrence.txt")):
        occ = read_occurrences(chosen)
        assert occ.summary() == f"{label}: 2 records of 2 species (2 rows read)"
        np.testing.assert_array_equal(occ.lat, [45.0, 46.0])
        np.testing.assert_array_equal(occ.lon, [-70.5, -71.0])
    # a table that meta.xml does not name is read on its own
    assert read_occurrences(folder / "notes.txt").species.tolist() == ["Acer rubrum"]


@pytest.mark.parametrize("name", ["dwca.tar.gz", "dwca.tgz", "dwca.tar", "dwca.tar.xz"])
def test_archive_in_a_tar_file(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "meta.xml").write_text(HEADERLESS_META)
    (folder / "occurrence.txt").write_text(HEADERLESS_CORE)
    (folder / "._meta.xml").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    mode = {"dwca.tar": "w", "dwca.tar.xz": "w:xz"}.get(name, "w:gz")
    with tarfile.open(tmp_path / name, mode) as tar:
        tar.add(folder, arcname="dwca")  # a folder entry, then its files
    occ = read_occurrences(tmp_path / name)
    assert occ.summary() == f"{name}: 2 records of 2 species (2 rows read)"
