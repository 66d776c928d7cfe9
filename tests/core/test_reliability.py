"""Per-species reliability: record footprints, levels from records and AP, texts, old bundles, card."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from sinr_qgis.core.bundle import ModelBundle, Species, species_csv
from sinr_qgis.core.errors import BundleError, SpeciesNotFoundError
from sinr_qgis.core.reliability import (
    RecordFootprint,
    SpeciesReliability,
    assess,
    format_extent,
    record_footprints,
    species_reliability,
)
from tests.factories import fixture_bundle
from tests.helpers.bundle_files import rewrite


def wyoming_and_a_few_planted(rng: np.random.Generator) -> np.ndarray:
    """98 records in a Wyoming box (lon -111..-105, lat 41..45) and 8 planted trees in the east,
    like the bundled model's Douglas-fir."""
    west = np.column_stack([rng.uniform(-111, -105, 98), rng.uniform(41, 45, 98)])
    east = np.array([[-86.5, 43.2], [-85.5, 43.1], [-86.2, 42.5], [-78.1, 42.2], [-76.4, 42.4],
                     [-75.1, 41.5], [-75.2, 40.5], [-74.5, 40.1]])
    return np.vstack([west, east])


def test_record_footprints_keep_the_bulk_and_count_one_degree_cells():
    rng = np.random.default_rng(0)
    doug = wyoming_and_a_few_planted(rng)
    lonlat = np.vstack([doug, [[10.2, 50.7], [10.8, 50.1], [11.5, 50.5]]])
    species = np.array([0] * len(doug) + [2] * 3)
    fp = record_footprints(lonlat, species, 3)
    # the 90 % of records nearest the median are all in Wyoming: the planted trees do not stretch the box
    west = doug[:98]
    x0, y0, x1, y1 = fp[0].extent
    assert x1 <= -105 and x0 >= west[:, 0].min() and y0 >= 41 and y1 <= 45
    assert x1 - x0 > 5 and y1 - y0 > 3.5  # still nearly the whole cluster
    cells = {(int(np.floor(x)), int(np.floor(y))) for x, y in doug}
    assert fp[0].n_cells == len(cells)
    assert fp[1] == RecordFootprint(None, 0)  # a species without records
    # three records in two cells (10.x and 11.x): the box keeps ceil(0.9 * 3) = 3 records
    assert fp[2] == RecordFootprint((10.2, 50.1, 11.5, 50.7), 2)


@pytest.mark.parametrize(("n_train", "n_cells", "ap", "level"), [
    (106, 22, 0.1088, "poor"),  # Douglas-fir: the AP overrules 106 records
    (9027, 260, 0.2499, "poor"),
    (9027, 260, 0.25, "caution"),
    (9027, 260, 0.4999, "caution"),
    (20, 4, 0.5, "good"),  # a measured good AP overrules "caution" records
    (3, 3, 0.8165, "caution"),  # good AP from records that alone are "poor" (fewer than 5)
    (100, 2, 0.9, "caution"),  # ... or in fewer than 3 cells
    (4, None, None, "poor"),
    (5, None, None, "caution"),
    (100, 2, None, "poor"),
    (100, 3, None, "caution"),
    (999, 79, None, "caution"),
    (1000, 10, None, "good"),
    (50, 80, None, "good"),
    (0, None, None, "unknown"),  # an imported official model: no counts, no AP
    (0, None, 0.6, "good"),
])
def test_levels_from_records_and_ap(n_train, n_cells, ap, level):
    sp = Species(0, "x", "X", n_train, n_cells=n_cells)
    assert assess(sp, ap).level == level


def test_douglas_fir_summary_and_warning():
    sp = Species(132, "pseumenz", "Pseudotsuga menziesii", 106, record_extent=(-111.0044, 42.3177, -105.6679, 44.9895),
                 n_cells=22)
    r = assess(sp, 0.1088, "Little's range maps over the conterminous US")
    assert r == SpeciesReliability(
        n_train=106, record_extent=(-111.0044, 42.3177, -105.6679, 44.9895), ap_ranges=0.1088, level="poor",
        summary="Pseudotsuga menziesii (pseumenz): 106 training records in 22 one-degree cells, mostly within "
                "111.0°W–105.7°W, 42.3°N–45.0°N; agreement with Little's range maps over the conterminous US: "
                "AP 10.9%.",
        warning="Poor map: it disagrees with Little's range maps over the conterminous US (AP 10.9%), likely "
                "because its training records cover only part of where the species grows, or lie elsewhere. It "
                "can miss much of the range and show the species where it does not grow. Do not use it without "
                "checking a range map or local knowledge.",
        n_cells=22)


def test_texts_for_one_record_few_records_and_unknown():
    one = assess(Species(0, "cladkent", "Cladrastis kentukea", 1, record_extent=(-82.156, 40.3627, -82.156, 40.3627),
                         n_cells=1), None)
    assert one.level == "poor"
    assert one.summary == ("Cladrastis kentukea (cladkent): 1 training record in 1 one-degree cell, at 82.2°W, "
                           "40.4°N; not compared with expert range maps.")
    assert one.warning == ("Poor map: only 1 record in 1 one-degree cell. The map mostly spreads the model's "
                           "general pattern around them; treat it as a rough guess.")
    lucky = assess(Species(0, "acerspic", "Acer spicatum", 3, n_cells=3), 0.8165)
    assert lucky.warning == ("Use with caution: only 3 records in 3 one-degree cells. The map agrees with expert "
                             "range maps (AP 81.7%), but so few records can agree by chance.")
    fair = assess(Species(0, "a", "A", 5000, n_cells=200), 0.4236)
    assert fair.warning == ("Use with caution: fair agreement with expert range maps (AP 42.4%). Check the map "
                            "against a range map before relying on it.")
    good = assess(Species(0, "a", "A", 14812, n_cells=250), 0.911)
    assert (good.level, good.warning) == ("good", "")
    unknown = assess(Species(0, "t123", "t123", 0), None)
    assert unknown == SpeciesReliability(0, None, None, "unknown",
                                         "t123: the model does not say how many records it was trained on.", "", None)


def test_format_extent_hemispheres():
    assert format_extent((-111.0, -42.25, 12.5, 45.0)) == "111.0°W–12.5°E, 42.2°S–45.0°N"


def old_bundle(tmp_path, n_species=4):
    """A bundle as an older version wrote it: species.csv index,code,name,n_train[,threshold] only,
    and no evaluation in model.json."""
    b = fixture_bundle(tmp_path / "m.sinr", n_species=n_species)
    text = "index,code,name,n_train,threshold\n" + "".join(
        f"{s.index},{s.code},{s.name},{n},\n" for s, n in zip(b.species, [0, 3, 200, 5000]))
    return rewrite(tmp_path / "m.sinr", tmp_path / "old.sinr", replace={"species.csv": text.encode()})


def test_bundle_of_an_older_version_loads_and_gives_levels_from_counts_alone(tmp_path):
    b = ModelBundle.load(old_bundle(tmp_path))
    assert [(s.record_extent, s.n_cells) for s in b.species] == [(None, None)] * 4
    levels = [species_reliability(b, s).level for s in b.species]
    assert levels == ["unknown", "poor", "caution", "good"]
    assert species_reliability(b, "sp002").summary == (
        "Species number2 (sp002): 200 training records; not compared with expert range maps.")
    with pytest.raises(SpeciesNotFoundError):
        species_reliability(b, "no such species")


def test_new_columns_round_trip_and_stay_readable_by_the_old_rule(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    b.species[1] = dataclasses.replace(b.species[1], record_extent=(-111.0044, 42.3177, -105.6679, 44.9895),
                                       n_cells=22)
    b.meta["evaluation"] = {"ranges_ap": {"sp001": 0.1088}, "ranges_reference": "Little's range maps"}
    b.write(tmp_path / "new.sinr")
    text = zipfile.ZipFile(tmp_path / "new.sinr").read("species.csv").decode()
    assert text.splitlines()[:3] == ["index,code,name,n_train,lon_min,lat_min,lon_max,lat_max,n_cells",
                                     "0,sp000,Species number0,10,,,,,",
                                     "1,sp001,Species number1,11,-111.0044,42.3177,-105.6679,44.9895,22"]
    c = ModelBundle.load(tmp_path / "new.sinr")
    assert c.species[1].record_extent == (-111.0044, 42.3177, -105.6679, 44.9895) and c.species[1].n_cells == 22
    assert (c.species[0].record_extent, c.species[0].n_cells) == (None, None)
    assert species_reliability(c, "sp001").level == "poor"
    assert species_csv(c.species) == text  # written again unchanged
    # older plugins require only the four SPECIES_COLUMNS and read rows by name: the new ones are extra
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["index"], r["code"], r["n_train"]) for r in rows] == [("0", "sp000", "10"), ("1", "sp001", "11"),
                                                                   ("2", "sp002", "12")]


def test_damaged_extent_column_is_a_clear_error(tmp_path):
    fixture_bundle(tmp_path / "m.sinr", n_species=2)
    text = "index,code,name,n_train,lon_min,lat_min,lon_max,lat_max,n_cells\n0,a,A,3,x,1,2,3,4\n1,b,B,3,,,,,\n"
    rewrite(tmp_path / "m.sinr", tmp_path / "bad.sinr", replace={"species.csv": text.encode()})
    with pytest.raises(BundleError, match=r"bad\.sinr is damaged and cannot be read"):
        ModelBundle.load(tmp_path / "bad.sinr")


def test_card_counts_levels_and_lists_each_poor_species(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=4)
    b.species = [dataclasses.replace(s, n_train=n, n_cells=c) for s, n, c in
                 zip(b.species, [106, 2, 5000, 300], [22, 1, 200, 40])]
    b.meta["evaluation"] = {"protocol": "na-trees-v1", "ranges_reference": "Little's range maps",
                            "ranges_map": 54.449671, "plots_map": 37.608238,
                            "ranges_ap": {"sp000": 0.1088, "sp002": 0.911}}
    lines = b.card().splitlines()
    assert ("Evaluation: protocol na-trees-v1, ranges MAP 54.45 %, plots MAP 37.61 %, AP per species against "
            "Little's range maps for 2") in lines
    tail = lines[lines.index(next(x for x in lines if x.startswith("Reliability"))):]
    assert tail == ["Reliability of the species' maps: 1 good, 1 caution, 2 poor (from the training records and, "
                    "where measured, the agreement with Little's range maps).",
                    "Poor maps (2; check them against a range map before use):",
                    "  Species number0 (sp000): AP 10.9%, 106 records in 22 one-degree cells",
                    "  Species number1 (sp001): 2 records in 1 one-degree cell"]


def test_card_of_a_bundle_with_an_old_free_form_evaluation(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=2)
    b.meta["evaluation"] = "ranges MAP 40"
    assert "Evaluation: ranges MAP 40" in b.card().splitlines()
    raw = json.loads(zipfile.ZipFile(io.BytesIO((tmp_path / "m.sinr").read_bytes())).read("model.json"))
    assert "evaluation" not in raw  # a freshly exported model has none until the benchmark stores it
