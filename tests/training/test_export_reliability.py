"""Where each species' training records are goes into the bundle: at training, and by ``annotate``
for a bundle of an older version."""
from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest

from sinr_qgis.core.bundle import SUMS_KEY, ModelBundle, Species
from sinr_qgis.core.errors import SinrError
from sinr_qgis.core.occurrences import read_occurrences
from sinr_qgis.core.reliability import record_footprints, species_reliability
from tests.helpers.cli_helpers import FAST, run_main, write_csv
from training.data import prepare_training_data
from training.export import annotate_bundle, with_record_footprints


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    data = write_csv(folder / "obs.csv.gz")
    out = folder / "m.sinr"
    from training.cli import main

    assert main(["train", "--data", str(data), "--out", str(out), "--cap", "100", "--pos-weight", "3", *FAST]) == 0
    return data, out


def test_training_stores_each_species_record_footprint(trained):
    data, out = trained
    b = ModelBundle.load(out)
    sel = prepare_training_data(read_occurrences(data), cap=100, seed=0)
    expected = record_footprints(sel.lonlat, sel.species, 3)
    assert [s.n_cells for s in b.species] == [f.n_cells for f in expected]
    for s, f in zip(b.species, expected):
        assert s.record_extent == pytest.approx(f.extent, abs=5e-5)  # species.csv keeps 4 decimals
    # 100 records scattered by 2 degrees around each centre: many cells, a box around the centre
    assert all(10 < s.n_cells < 100 for s in b.species)
    x0, y0, x1, y1 = b.species[1].record_extent  # bbb around (-110, 45)
    assert x0 < -110 < x1 and y0 < 45 < y1 and x1 - x0 < 12
    r = species_reliability(b, "bbb")
    cells = b.species[1].n_cells
    assert r.level == "caution"
    assert r.summary.startswith(f"Beta b (bbb): 100 training records in {cells} one-degree cells, mostly within ")


def strip_footprints(src, dst):
    """``src`` as an older version wrote it: species.csv without the record-extent columns."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    rows = members["species.csv"].decode().splitlines()
    members["species.csv"] = ("\n".join(",".join(r.split(",")[:5]) for r in rows) + "\n").encode()
    meta = json.loads(members["model.json"])
    meta[SUMS_KEY]["species.csv"] = hashlib.sha256(members["species.csv"]).hexdigest()
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


def test_annotate_gives_an_old_bundle_its_footprints_and_keeps_the_weights(trained, tmp_path, capsys):
    data, out = trained
    old = strip_footprints(out, tmp_path / "old.sinr")
    assert ModelBundle.load(old).species[0].n_cells is None
    code, _, err = run_main(capsys, "annotate", old, "--data", data, "--out", tmp_path / "new.sinr")
    assert code == 0, err
    assert "record extents of 3 species" in err
    new, ref = ModelBundle.load(tmp_path / "new.sinr"), ModelBundle.load(out)
    assert new.species == ref.species and new.warnings == []
    np.testing.assert_array_equal(new.head, ref.head)
    assert new.onnx_bytes == ref.onnx_bytes


def test_annotate_with_other_records_is_one_clear_error_and_writes_nothing(trained, tmp_path, capsys):
    _, out = trained
    other = write_csv(tmp_path / "other.csv", n_per=80)  # same species, other counts
    code, _, err = run_main(capsys, "annotate", out, "--data", other, "--out", tmp_path / "new.sinr")
    assert code == 2
    assert err.splitlines() == ["error: The records are not those the model was trained on (3 species with another "
                                "count, e.g. Alpha a (aaa): 100 in the model, 80 given; Beta b (bbb): 100 in the "
                                "model, 80 given; Gamma c (ccc): 100 in the model, 80 given). Give the file and the "
                                "selection the model was trained with."]
    assert not (tmp_path / "new.sinr").exists()


def test_annotate_refuses_records_of_other_species(trained):
    bundle = ModelBundle.load(trained[1])
    with pytest.raises(SinrError, match=r"The records name other species than the model 'm' \(none of ccc\)\. Give "
                                        r"the file the model was trained on\."):
        annotate_bundle(bundle, ["aaa", "bbb", "zzz"], np.zeros((3, 2)), np.array([0, 1, 2]))


def test_footprints_refuse_records_of_other_species():
    species = [Species(0, "a", "A", 2), Species(1, "b", "B", 1)]
    with pytest.raises(SinrError, match="The records belong to 3 species, the model has 2"):
        with_record_footprints(species, np.zeros((3, 2)), np.array([0, 1, 2]))
    out = with_record_footprints(species, np.array([[1.5, 2.5], [1.7, 2.9], [-3.2, 4.0]]), np.array([0, 0, 1]))
    assert [(s.record_extent, s.n_cells) for s in out] == [((1.5, 2.5, 1.7, 2.9), 1), ((-3.2, 4.0, -3.2, 4.0), 1)]
