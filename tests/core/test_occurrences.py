"""Observation readers on small generated files (every format, malformed rows, broken input) and
on the real shared file."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import Occurrences, occurrences_from_arrays, read_occurrences
from tests.helpers.occurrence_files import nonzero, write_text, write_zip

# --------------------------------------------------------------------------------------------
# 10 data lines + 1 blank line: 4 kept, 3 missing, 2 out of range, 1 null island.
GENERIC_CSV = (
    "species,code,latitude,longitude,source\n"
    "Acer rubrum,acerrubr,45.5,-73.25,FIA\n"  # kept
    '"Quercus alba, L.",queralba,40.0,-80.0,"BIEN, v2"\n'  # kept (quoted commas)
    "Acer rubrum,acerrubr,46.0,-72.0,GBIF\n"  # kept
    "\n"  # blank: not a data row
    "Acer rubrum,acerrubr,,-72.0,GBIF\n"  # missing latitude
    "Acer rubrum,acerrubr,abc,-72.0,GBIF\n"  # unparseable latitude
    ",,45.0,-72.0,GBIF\n"  # missing species
    "Acer rubrum,acerrubr,95.0,-72.0,GBIF\n"  # latitude out of range
    "Acer rubrum,acerrubr,45.0,-181.0,GBIF\n"  # longitude out of range
    "Acer rubrum,acerrubr,0,0,GBIF\n"  # null island
    "Acer rubrum,acerrubr,0,10,GBIF\n"  # on the equator: kept
)


def test_generic_csv_counts_names_and_sources(tmp_path: Path) -> None:
    occ = read_occurrences(write_text(tmp_path / "obs.csv", GENERIC_CSV))
    assert isinstance(occ, Occurrences)
    assert occ.n_read == 10
    assert nonzero(occ.dropped) == {"missing": 3, "out_of_range": 2, "null_island": 1}
    assert len(occ) == 4
    assert occ.species.tolist() == ["acerrubr", "queralba", "acerrubr", "acerrubr"]
    assert occ.names == {"acerrubr": "Acer rubrum", "queralba": "Quercus alba, L."}
    assert occ.n_species == 2
    np.testing.assert_array_equal(occ.lat, [45.5, 40.0, 46.0, 0.0])
    np.testing.assert_array_equal(occ.lon, [-73.25, -80.0, -72.0, 10.0])
    assert occ.lon.dtype == np.float64 and occ.species.dtype == object
    assert occ.source.tolist() == ["FIA", "BIEN, v2", "GBIF", "GBIF"]
    assert occ.origin == "obs.csv"
    assert occ.summary() == (
        "obs.csv: 4 records of 2 species (10 rows read; dropped 3 missing, 2 out of range, 1 null island)"
    )


def test_gzip_semicolon_bom_decimal_comma_and_name_only(tmp_path: Path) -> None:
    text = "Scientific_Name;LAT;Lng\nPinus taeda;33,5;-84,25\nPinus taeda;34;-85\nPinus elliottii;;-85\n"
    occ = read_occurrences(str(write_text(tmp_path / "obs.csv.gz", text, gz=True, bom=True)))
    assert occ.n_read == 3
    assert nonzero(occ.dropped) == {"missing": 1}
    # Only a name column: it is the id, and the name of itself.
    assert occ.species.tolist() == ["Pinus taeda", "Pinus taeda"]
    assert occ.names == {"Pinus taeda": "Pinus taeda"}
    np.testing.assert_array_equal(occ.lat, [33.5, 34.0])
    np.testing.assert_array_equal(occ.lon, [-84.25, -85.0])
    assert occ.source is None
    assert occ.origin == "obs.csv.gz"


GBIF_HEADER = (
    "gbifID\tdatasetKey\toccurrenceID\tkingdom\tspecies\tscientificName\tlocality\tdecimalLatitude\t"
    "decimalLongitude\ttaxonKey\tspeciesKey\n"
)
GBIF_ROWS = (
    "1\tds-a\to1\tPlantae\tMalus fusca\tMalus fusca (Raf.) C.K.Schneid.\t\"Old mill, 5 km N\t"
    "47.1\t-122.5\t3001\t3001\n"
    "2\tds-a\to2\tPlantae\tMalus fusca\tMalus fusca var. levipes\tnear road\t47.2\t-122.6\t9999\t3001\n"
    "3\tds-b\to3\tPlantae\tMalus ioensis\tMalus ioensis (Alph.Wood) Britton\t\t41.0\t-93.0\t3002\t3002\n"
    "4\tds-b\to4\tPlantae\t\tMalus Mill.\t\t41.0\t-93.0\t3000\t\n"  # genus only: no speciesKey
    "5\tds-b\to5\tPlantae\tMalus ioensis\tMalus ioensis\t\t0\t0\t3002\t3002\n"  # null island
)


def check_gbif(occ: Occurrences) -> None:
    assert occ.n_read == 5
    assert nonzero(occ.dropped) == {"missing": 1, "null_island": 1}
    # speciesKey is the id (row 2's taxonKey is a variety), GBIF's `species` is the name.
    assert occ.species.tolist() == ["3001", "3001", "3002"]
    assert occ.names == {"3001": "Malus fusca", "3002": "Malus ioensis"}
    assert occ.source.tolist() == ["ds-a", "ds-a", "ds-b"]
    np.testing.assert_array_equal(occ.lat, [47.1, 47.2, 41.0])


def test_gbif_simple_csv_tab_separated_unquoted(tmp_path: Path) -> None:
    # The unclosed quote in row 1's locality would swallow the following lines if read as quoted CSV.
    check_gbif(read_occurrences(write_text(tmp_path / "0001.csv", GBIF_HEADER + GBIF_ROWS), fmt="gbif"))


def test_gbif_download_zip(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "0001-2401.zip", {"0001-2401.csv": GBIF_HEADER + GBIF_ROWS})
    occ = read_occurrences(path)
    check_gbif(occ)
    assert occ.origin == "0001-2401.zip"


def test_inaturalist_export(tmp_path: Path) -> None:
    text = (
        "id,observed_on,latitude,longitude,positional_accuracy,common_name,scientific_name,taxon_id\n"
        "10,2023-05-01,37.77,-122.41,10,Coast Live Oak,Quercus agrifolia,53367\n"
        '11,2023-05-02,34.05,-118.24,,"Oak, valley",Quercus lobata,53370\n'
        "12,2023-05-03,,,,Coast Live Oak,Quercus agrifolia,53367\n"  # obscured: no coordinates
        "13,2023-05-04,36.0,-200.0,5,Coast Live Oak,Quercus agrifolia,53367\n"
    )
    occ = read_occurrences(write_text(tmp_path / "observations-123.csv", text), fmt="inaturalist")
    assert occ.n_read == 4
    assert nonzero(occ.dropped) == {"missing": 1, "out_of_range": 1}
    assert occ.species.tolist() == ["53367", "53370"]
    assert occ.names == {"53367": "Quercus agrifolia", "53370": "Quercus lobata"}
    assert occ.source is None


DWC = "http://rs.tdwg.org/dwc/terms/"
META_TAB = f"""<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy=""
        ignoreHeaderLines="1" rowType="{DWC}Occurrence">
    <files><location>occurrence.txt</location></files>
    <id index="0"/>
    <field index="0" term="{DWC}occurrenceID"/>
    <field index="1" term="{DWC}decimalLongitude"/>
    <field index="2" term="{DWC}scientificName"/>
    <field index="3" term="{DWC}decimalLatitude"/>
    <field index="4" term="{DWC}taxonID"/>
    <field term="{DWC}datasetID" default="my-survey"/>
  </core>
  <extension encoding="UTF-8" fieldsTerminatedBy="\\t" ignoreHeaderLines="1" rowType="{DWC}MeasurementOrFact">
    <files><location>measurementorfact.txt</location></files>
    <coreid index="0"/>
  </extension>
</archive>
"""
# The core file's own header is misleading on purpose: columns must be mapped by term.
DWC_CORE = (
    "id\tlatitude\tspecies\tlongitude\tcode\n"
    'o1\t-70.5\tBetula papyrifera "white"\t45.0\tbetupapy\n'
    "o2\t-71.0\tBetula papyrifera\t46.0\tbetupapy\n"
    "o3\t-71.0\tBetula lenta\tnot-a-number\tbetulent\n"
    "o5\t-71.5\tBetula lenta\t44.0\tbetulent\n"
)


def test_darwin_core_archive_maps_columns_by_term(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "dwca.zip",
        {"meta.xml": META_TAB, "occurrence.txt": DWC_CORE, "measurementorfact.txt": "id\tx\n", "eml.xml": "<eml/>"},
    )
    occ = read_occurrences(path)
    assert occ.n_read == 4
    assert nonzero(occ.dropped) == {"missing": 1}
    assert occ.species.tolist() == ["betupapy", "betupapy", "betulent"]
    assert occ.names == {"betupapy": 'Betula papyrifera "white"', "betulent": "Betula lenta"}
    np.testing.assert_array_equal(occ.lat, [45.0, 46.0, 44.0])
    np.testing.assert_array_equal(occ.lon, [-70.5, -71.0, -71.5])
    assert occ.source.tolist() == ["my-survey"] * 3
    # Explicit choice by term name: the scientific name becomes the id.
    by_name = read_occurrences(path, species_column="scientificName", fmt="dwca")
    assert by_name.species.tolist() == ['Betula papyrifera "white"', "Betula papyrifera", "Betula lenta"]
    assert by_name.names["Betula lenta"] == "Betula lenta"


def test_darwin_core_archive_quoted_comma_in_subfolder(tmp_path: Path) -> None:
    meta = f"""<archive xmlns="http://rs.tdwg.org/dwc/text/">
  <core fieldsTerminatedBy="," fieldsEnclosedBy='"' ignoreHeaderLines="0" rowType="{DWC}Occurrence">
    <files><location>data/occ.csv</location></files>
    <field index="0" term="{DWC}scientificName"/>
    <field index="1" term="{DWC}decimalLatitude"/>
    <field index="2" term="{DWC}decimalLongitude"/>
    <field index="3" term="http://rs.gbif.org/terms/1.0/datasetKey"/>
  </core>
</archive>"""
    core = '"Picea glauca (Moench) Voss, 1914",55.5,-110.0,k1\nPicea mariana,,-110,k2\n'
    path = write_zip(tmp_path / "export.zip", {"archive/meta.xml": meta, "archive/data/occ.csv": core})
    occ = read_occurrences(path)
    assert occ.n_read == 2
    assert nonzero(occ.dropped) == {"missing": 1}
    assert occ.species.tolist() == ["Picea glauca (Moench) Voss, 1914"]
    assert occ.source.tolist() == ["k1"]


def test_explicit_columns_override_detection(tmp_path: Path) -> None:
    text = (
        "species,code,lat,lon,lat_fixed,lon_fixed,survey\n"
        "Acer rubrum,acerrubr,0,0,45.0,-73.0,s1\n"
        "Acer rubrum,acerrubr,1,1,,,s2\n"
    )
    path = write_text(tmp_path / "obs.csv", text)
    auto = read_occurrences(path)  # detection picks lat/lon
    assert (auto.dropped["null_island"], auto.lat.tolist()) == (1, [1.0])
    occ = read_occurrences(path, lat_column="lat_fixed", lon_column="LON_FIXED", source_column="survey")
    assert (occ.lat.tolist(), occ.lon.tolist(), occ.source.tolist()) == ([45.0], [-73.0], ["s1"])
    assert occ.dropped["missing"] == 1
    assert occ.names == {"acerrubr": "Acer rubrum"}
    named = read_occurrences(path, lat_column="lat_fixed", lon_column="lon_fixed", species_column="species")
    assert named.names == {"Acer rubrum": "Acer rubrum"}
    with pytest.raises(OccurrenceError) as err:
        read_occurrences(path, species_column="taxon")
    msg = str(err.value)
    assert "obs.csv" in msg and "'taxon'" in msg and "species, code, lat, lon, lat_fixed, lon_fixed, survey" in msg


def test_unknown_columns_say_what_is_missing_and_what_was_found(tmp_path: Path) -> None:
    path = write_text(tmp_path / "plots.csv", "plot,y,x,taxon\n1,45,-73,acer\n")
    with pytest.raises(OccurrenceError) as err:
        read_occurrences(path)
    msg = str(err.value)
    assert msg.startswith("plots.csv: cannot find the latitude and longitude and species columns")
    assert "columns found: plot, y, x, taxon" in msg


def test_broken_archives(tmp_path: Path) -> None:
    junk = tmp_path / "download.zip"
    junk.write_bytes(b"this is not a zip file at all")
    with pytest.raises(OccurrenceError, match=r"download\.zip: not a readable zip archive"):
        read_occurrences(junk)
    good = write_zip(tmp_path / "full.zip", {"occ.csv": GENERIC_CSV * 200})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(OccurrenceError, match=r"truncated\.zip: .*(damaged|not a readable zip)"):
        read_occurrences(truncated)
    gz = tmp_path / "cut.csv.gz"
    gz.write_bytes(gzip.compress(GENERIC_CSV.encode() * 200)[:300])
    with pytest.raises(OccurrenceError, match=r"cut\.csv\.gz: the file is damaged or truncated"):
        read_occurrences(gz)


def test_darwin_core_archive_without_meta_or_core(tmp_path: Path) -> None:
    no_meta = write_zip(tmp_path / "dwca.zip", {"occurrence.txt": DWC_CORE, "verbatim.txt": DWC_CORE})
    with pytest.raises(OccurrenceError, match=r"dwca\.zip: the archive has no meta\.xml .* 2 observation tables "
                       r"\(occurrence\.txt, verbatim\.txt\); extract the table to read"):
        read_occurrences(no_meta)
    single = write_zip(tmp_path / "single.zip", {"occurrence.txt": DWC_CORE})
    with pytest.raises(OccurrenceError, match=r"single\.zip: the archive has no meta\.xml"):
        read_occurrences(single, fmt="dwca")
    no_core = write_zip(tmp_path / "nocore.zip", {"meta.xml": META_TAB})
    with pytest.raises(OccurrenceError, match=r"nocore\.zip: meta\.xml names the core file 'occurrence\.txt'"):
        read_occurrences(no_core)
    bad_xml = write_zip(tmp_path / "badxml.zip", {"meta.xml": "<archive><core>", "occurrence.txt": DWC_CORE})
    with pytest.raises(OccurrenceError, match=r"badxml\.zip: meta\.xml is not valid XML"):
        read_occurrences(bad_xml)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\n\n  \n", "the file is empty"),
        ("species,latitude,longitude\n", "header but no data rows"),
        ("45.0,-73.0,12\n46.0,-72.0,12\n", "has no header row"),
        ("species,latitude,longitude\nAcer,,\nAcer,100,0\n", "no usable rows: all 2 rows were dropped"),
    ],
)
def test_empty_headerless_and_unusable_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(OccurrenceError, match=message) as err:
        read_occurrences(write_text(tmp_path / "input.csv", text))
    assert str(err.value).startswith("input.csv: ")


def test_other_user_errors(tmp_path: Path) -> None:
    with pytest.raises(OccurrenceError, match="file not found"):
        read_occurrences(tmp_path / "nope.csv")
    with pytest.raises(OccurrenceError, match="unknown format 'xls'"):
        read_occurrences(write_text(tmp_path / "a.csv", GENERIC_CSV), fmt="xls")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("species,lat,lon\nPic\xe9a,45,-73\n".encode("latin-1"))
    with pytest.raises(OccurrenceError, match=r"latin\.csv: the file is not UTF-8 text"):
        read_occurrences(latin)


def test_occurrences_from_arrays_applies_the_same_rules() -> None:
    occ = occurrences_from_arrays(
        lon=[-73.0, None, 10.0, 0.0, -72.5, "-71.25"],
        lat=[45.0, 45.0, 95.0, 0.0, 46.0, "44"],
        species=[12345.0, 12345, 7, 7, None, "acer"],
        names={"12345": "Acer rubrum", "7": "Quercus alba", "99": "Not present"},
        source=["a", "b", "c", "d", "e", None],
        origin="points layer",
    )
    assert occ.n_read == 6
    assert nonzero(occ.dropped) == {"missing": 2, "out_of_range": 1, "null_island": 1}
    assert occ.species.tolist() == ["12345", "acer"]
    assert occ.names == {"12345": "Acer rubrum", "acer": "acer"}
    assert occ.source.tolist() == ["a", ""]
    np.testing.assert_array_equal(occ.lon, [-73.0, -71.25])
    assert occ.origin == "points layer"
    with pytest.raises(OccurrenceError, match="points layer: no usable rows"):
        occurrences_from_arrays([0.0], [0.0], ["x"], origin="points layer")
    with pytest.raises(OccurrenceError, match="one value per record"):
        occurrences_from_arrays([1.0, 2.0], [1.0], ["x", "y"])


def test_core_module_imports_no_qgis_or_torch() -> None:
    code = (
        "import sys, sinr_qgis.core.occurrences; "
        "bad = [m for m in ('qgis', 'PyQt5', 'torch') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_real_north_american_trees(shared_data: Path) -> None:
    occ = read_occurrences(shared_data / "occurrences" / "na_trees.csv.gz")
    assert occ.n_read == 168_651 and len(occ) == 168_651
    assert nonzero(occ.dropped) == {}
    assert occ.n_species == 169 and len(occ.names) == 169
    assert occ.names["acerrubr"] == "Acer rubrum"
    assert occ.species[0] == "abiebals"
    assert sorted(set(occ.source.tolist())) == [
        "BIEN_hypervolume",
        "FIA_Doser2025_SE",
        "FIA_FIESTA_WY",
        "FIA_PalEON_8km",
        "GBIF_Malus",
    ]
    assert float(occ.lat.min()) == pytest.approx(12.22, abs=0.01)
    assert float(occ.lon.max()) == pytest.approx(-60.91, abs=0.01)


def test_one_spelling_per_species_and_0_to_360_longitudes(tmp_path: Path) -> None:
    """A decomposed 'é' (macOS), a doubled or non-breaking space: still one species; lon 190 = 170 W."""
    f = tmp_path / "o.csv"
    f.write_text("species,latitude,longitude\n"
                 "Abies alba,45,10\n"
                 "Abies  alba,45,11\n"
                 "Abies\u00a0alba,45,12\n"
                 "Sorbus aria subsp. cretica Lindl.,40,20\n"
                 "Cre\u0301pis,40,190\n"  # C, r, e + combining acute: NFD
                 "Cr\u00e9pis,40,-170\n"
                 "Far,40,361\n", encoding="utf-8")
    occ = read_occurrences(f)
    assert sorted(set(occ.species.tolist())) == ["Abies alba", "Crépis", "Sorbus aria subsp. cretica Lindl."]
    assert occ.species.tolist().count("Abies alba") == 3 and occ.species.tolist().count("Crépis") == 2
    np.testing.assert_array_equal(occ.lon[occ.species == "Crépis"], [-170.0, -170.0])
    assert occ.dropped["out_of_range"] == 1  # 361 is no longitude in either convention
