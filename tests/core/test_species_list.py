"""A model's species as a table (sinr:model_species) and as the model card's species line."""
from __future__ import annotations

import dataclasses

from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.species_list import COLUMNS, species_list_line, species_rows


def _bundle(n: int) -> ModelBundle:
    species = [Species(i, f"c{i}", f"Genus species{i}", 10 * i) for i in range(n)]
    return ModelBundle(meta={"name": "m", "encoding": {"name": "sin_cos"}, "evaluation": {"ranges_ap": {"c1": 0.05}}},
                       species=species,
                       weights={}, onnx_bytes=b"")


def test_rows_hold_every_column_and_leave_unknowns_empty():
    b = _bundle(3)
    b.species[1] = dataclasses.replace(b.species[1], threshold=0.62, common_name="one tree", n_cells=4,
                                       record_extent=(-100.0, 30.0, -90.0, 40.0))
    rows = species_rows(b)
    assert [list(r) for r in rows] == [[name for name, _ in COLUMNS]] * 3
    assert [r["code"] for r in rows] == ["c0", "c1", "c2"]
    first, second = rows[0], rows[1]
    assert (first["n_train"], first["threshold"], first["ranges_ap"], first["lon_min"], first["common_name"]) == (
        0, None, None, None, "")
    assert first["reliability"] == "unknown"  # no records, no AP: said, not guessed
    assert (second["common_name"], second["threshold"], second["ranges_ap"], second["n_cells"]) == (
        "one tree", 0.62, 0.05, 4)
    assert (second["lon_min"], second["lat_min"], second["lon_max"], second["lat_max"]) == (-100.0, 30.0, -90.0, 40.0)
    assert second["reliability"] == "poor" and second["warning"]


def test_card_names_the_first_species_and_says_where_to_see_all():
    assert species_list_line(_bundle(2)) == "Species list: Genus species0 (c0); Genus species1 (c1)."
    line = species_list_line(_bundle(15))
    assert line.startswith("Species list: Genus species0 (c0); ") and "Genus species11 (c11) and 3 more." in line
    assert "sinr:model_species" in line and "Genus species12" not in line
    assert line in _bundle(15).card().splitlines()


def test_a_model_with_local_evidence_lists_both_thresholds(tmp_path):
    import math

    from tests.helpers.local_evidence_bundles import le_bundle

    b = le_bundle(tmp_path / "le.sinr", {0: (-10.0, 40.0, 5.0, 52.0)}, lpt_r=[0.2, math.nan, 0, 0, 0, 0])
    rows = species_rows(b)
    assert rows[0]["threshold_local_evidence"] == 0.20000000298023224  # float32 as stored
    assert rows[1]["threshold_local_evidence"] is None  # NaN stored: not known, not 0
    assert [r["threshold"] for r in rows] == [s.threshold for s in b.species]
    assert all(r["threshold_local_evidence"] is None for r in species_rows(_bundle(2)))
