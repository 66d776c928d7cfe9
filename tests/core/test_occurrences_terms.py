"""The Darwin Core, GBIF and iNaturalist terms that change what a row means for a presence-only
model (see the table in sinr_qgis/core/occurrence_terms.py): each dropped row counted once, under
a reason that summaries print in words."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.errors import OccurrenceError
from sinr_qgis.core.occurrences import read_occurrences
from sinr_qgis.core.train_checks import check_training_input
from sinr_qgis.core.training.summary import training_summary
from tests.helpers.occurrence_files import nonzero, write_text

GBIF_COLUMNS = ("gbifID", "datasetKey", "species", "taxonRank", "scientificName", "occurrenceStatus",
                "individualCount", "decimalLatitude", "decimalLongitude", "speciesKey", "basisOfRecord",
                "establishmentMeans", "issue")
GBIF_ROWS = (
    # id, species, rank, status, count, lat, lon, key, basis, means, issue
    ("1", "Malus fusca", "SPECIES", "PRESENT", "3", "47.1", "-122.5", "3001", "HUMAN_OBSERVATION", "",
     "COORDINATE_ROUNDED;GEODETIC_DATUM_ASSUMED_WGS84"),  # kept: these flags do not move the point
    ("2", "Malus fusca", "SPECIES", "ABSENT", "", "47.2", "-122.6", "3001", "HUMAN_OBSERVATION", "", ""),
    ("3", "Malus fusca", "SPECIES", "", "0", "47.3", "-122.7", "3001", "HUMAN_OBSERVATION", "", ""),  # count 0
    ("4", "Malus fusca", "SPECIES", "PRESENT", "0", "47.4", "-122.8", "3001", "HUMAN_OBSERVATION", "", ""),  # kept
    ("5", "Malus fusca", "SPECIES", "", "0", "47.5", "-122.9", "3001", "PRESERVED_SPECIMEN", "", ""),  # kept
    ("6", "Malus ioensis", "SPECIES", "PRESENT", "", "41.0", "-93.0", "3002", "FOSSIL_SPECIMEN", "", ""),
    ("7", "Malus ioensis", "SPECIES", "PRESENT", "", "41.1", "-93.1", "3002", "LIVING_SPECIMEN", "", ""),
    ("8", "Malus ioensis", "SPECIES", "PRESENT", "", "41.2", "-93.2", "3002", "HUMAN_OBSERVATION", "MANAGED", ""),
    ("9", "", "GENUS", "PRESENT", "", "41.3", "-93.3", "", "HUMAN_OBSERVATION", "", ""),  # genus only
    ("10", "Malus ioensis", "SPECIES", "PRESENT", "", "0", "0", "3002", "HUMAN_OBSERVATION", "", "ZERO_COORDINATE"),
    ("11", "Malus ioensis", "SPECIES", "PRESENT", "", "41.5", "-93.5", "3002", "HUMAN_OBSERVATION", "",
     "COORDINATE_ROUNDED;COUNTRY_COORDINATE_MISMATCH"),
    ("12", "Malus ioensis", "SPECIES", "ABSENT", "", "", "", "3002", "HUMAN_OBSERVATION", "", ""),  # once: absent
    ("13", "Malus ioensis", "SPECIES", "PRESENT", "", "41.7", "-93.7", "3002", "HUMAN_OBSERVATION", "INTRODUCED",
     ""),  # kept: wild, even if introduced
    ("14", "Malus ioensis", "SUBSPECIES", "PRESENT", "", "41.8", "-93.8", "3002", "HUMAN_OBSERVATION", "", ""),
    ("15", "Malus ioensis", "SPECIES", "PRESENT", "", "41.9", "-93.9", "3002", "HUMAN_OBSERVATION", "",
     "PRESUMED_SWAPPED_COORDINATE"),  # kept: GBIF swapped them back
)


def gbif_table() -> str:
    lines = ["\t".join(GBIF_COLUMNS)]
    for gid, species, rank, status, count, lat, lon, key, basis, means, issue in GBIF_ROWS:
        lines.append("\t".join((gid, "ds-a", species, rank, species, status, count, lat, lon, key, basis, means,
                                issue)))
    return "\n".join(lines) + "\n"


def test_gbif_simple_csv_terms_drop_and_count_what_is_not_a_wild_presence(tmp_path: Path) -> None:
    occ = read_occurrences(write_text(tmp_path / "0001.csv", gbif_table()))
    assert occ.n_read == 15
    assert nonzero(occ.dropped) == {"absent": 2, "zero_count": 1, "fossil": 1, "captive_cultivated": 2,
                                    "above_species": 1, "geospatial_issue": 2}
    assert occ.summary() == (
        "0001.csv: 6 records of 2 species (15 rows read; dropped 2 absent, 1 with a count of 0, 1 fossil, "
        "2 captive or cultivated, 1 identified above species rank, 2 with a GBIF geospatial issue)"
    )
    np.testing.assert_array_equal(occ.lat, [47.1, 47.4, 47.5, 41.7, 41.8, 41.9])
    assert occ.species.tolist() == ["3001", "3001", "3001", "3002", "3002", "3002"]


DWC_TERMS_CSV = (
    "scientificName,decimalLatitude,decimalLongitude,occurrenceStatus,organismQuantity,degreeOfEstablishment,"
    "hasGeospatialIssues,taxonRank\n"
    "Acer rubrum,45.0,-73.0,present,,native,false,species\n"  # kept
    "Acer rubrum,45.1,-73.1,not detected,,,false,species\n"  # absent
    "Acer rubrum,45.2,-73.2,,0,,false,species\n"  # count of 0
    'Acer rubrum,45.3,-73.3,,5,"cultivated (category B2)",false,species\n'  # captive or cultivated
    "Acer rubrum,45.4,-73.4,,,http://rs.tdwg.org/dwcdoe/values/d002,false,species\n"  # captive (the IRI)
    "Acer rubrum,45.5,-73.5,,,released,false,species\n"  # kept: released into the wild
    "Acer rubrum,45.6,-73.6,,,,true,species\n"  # GBIF geospatial issue
    "Acer,45.7,-73.7,,,,false,genus\n"  # above species rank
    "Acer rubrum,45.8,-73.8,,,,false,unranked\n"  # kept: nothing says it is above species
    "Quercus alba,40.0,-80.0,Present,,established,FALSE,Species\n"  # kept
)


def test_darwin_core_terms_in_a_plain_csv(tmp_path: Path) -> None:
    occ = read_occurrences(write_text(tmp_path / "obs.csv", DWC_TERMS_CSV))
    assert occ.n_read == 10
    assert nonzero(occ.dropped) == {"absent": 1, "zero_count": 1, "captive_cultivated": 2, "above_species": 1,
                                    "geospatial_issue": 1}
    np.testing.assert_array_equal(occ.lat, [45.0, 45.5, 45.8, 40.0])
    assert occ.names == {"Acer rubrum": "Acer rubrum", "Quercus alba": "Quercus alba"}


def test_inaturalist_captive_cultivated_is_dropped_accuracy_and_obscured_are_kept(tmp_path: Path) -> None:
    text = (
        "id,latitude,longitude,positional_accuracy,scientific_name,taxon_id,captive_cultivated,quality_grade,"
        "coordinates_obscured\n"
        "1,37.77,-122.41,10,Quercus agrifolia,53367,false,research,false\n"
        "2,34.05,-118.24,5,Quercus agrifolia,53367,true,casual,false\n"  # a garden tree
        "3,36.00,-121.00,25000,Quercus lobata,53370,false,needs_id,true\n"  # kept: 25 km, obscured
    )
    occ = read_occurrences(write_text(tmp_path / "observations-1.csv", text))
    assert occ.summary() == "observations-1.csv: 2 records of 2 species (3 rows read; dropped 1 captive or cultivated)"
    assert occ.species.tolist() == ["53367", "53370"]


def test_a_file_of_absences_only_says_so(tmp_path: Path) -> None:
    path = write_text(tmp_path / "plots.csv", "species,lat,lon,occurrenceStatus\nAcer,45,-73,absent\nAcer,46,-74,0\n")
    with pytest.raises(OccurrenceError, match=r"plots\.csv: no usable rows: all 2 rows were dropped \(2 absent\); "
                                              r".*holds presence records"):
        read_occurrences(path)


def test_training_checks_and_summary_print_the_reasons_in_words(tmp_path: Path) -> None:
    rows = "".join(f"Acer rubrum,{40 + i},-75\nQuercus alba,{40 + i},-80\n" for i in range(6))
    path = write_text(tmp_path / "obs.csv", "species,lat,lon,basisOfRecord\n" + rows.replace("\n", ",\n")
                      + "Acer rubrum,45,-75,LIVING_SPECIMEN\nAcer rubrum,45,-75,FossilSpecimen\n")
    summary = check_training_input(path)
    assert summary.text() == ("obs.csv: 12 records of 2 species will be used (14 rows read; dropped 1 fossil, "
                              "1 captive or cultivated).")
    provenance = {"n_used": 12, "n_read": 14, "dropped": summary.dropped}
    assert training_summary({"n_species": 2}, "m.sinr", 2, provenance) == (
        "Trained m.sinr: 2 species, 12 records used of 14 read, time 2s; dropped 2 unusable rows "
        "(1 fossil, 1 captive or cultivated).")
