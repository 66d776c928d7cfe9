"""The .sinr bundle: round trip, and clear BundleErrors for damaged or inconsistent files."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile

import numpy as np
import pytest

from sinr_qgis.core.bundle import MEMBERS, SUMS_KEY, ModelBundle, Species
from sinr_qgis.core.errors import BundleError
from tests.factories import fixture_bundle
from tests.helpers.bundle_files import rewrite


def test_round_trip_keeps_everything(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", "sin_cos_env", n_species=4, covariate_names=("a", "b"))
    b.species[2].threshold = 0.25
    b.meta["training"] = {"loss": "an_full", "epochs": 3}
    b.write(tmp_path / "copy.sinr")
    c = ModelBundle.load(tmp_path / "copy.sinr")
    assert c.meta["training"] == {"loss": "an_full", "epochs": 3}
    assert [s.code for s in c.species] == [s.code for s in b.species]
    assert c.species[2].threshold == pytest.approx(0.25) and c.species[0].threshold is None
    assert set(c.weights) == set(b.weights)
    for k in b.weights:
        np.testing.assert_array_equal(c.weights[k], b.weights[k])
    assert c.onnx_bytes == b.onnx_bytes
    assert c.covariate_names == ["a", "b"] and c.encoding == "sin_cos_env"
    assert len(c.sha256) == 64
    assert set(zipfile.ZipFile(tmp_path / "copy.sinr").namelist()) == set(MEMBERS)


def test_not_a_zip_and_truncated_zip_are_refused(tmp_path):
    fixture_bundle(tmp_path / "m.sinr", n_species=5)
    data = (tmp_path / "m.sinr").read_bytes()
    (tmp_path / "text.sinr").write_text("hello")
    with pytest.raises(BundleError, match="not a zip"):
        ModelBundle.load(tmp_path / "text.sinr")
    (tmp_path / "trunc.sinr").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"trunc\.sinr"):
        ModelBundle.load(tmp_path / "trunc.sinr")
    # a member damaged inside an intact zip directory
    (tmp_path / "bad.sinr").write_bytes(bytes(rewrite(tmp_path / "m.sinr", tmp_path / "tmp.sinr",
                                                      replace={"weights.npz": b"garbage"}).read_bytes()))
    with pytest.raises(BundleError, match="damaged"):
        ModelBundle.load(tmp_path / "bad.sinr")
    with pytest.raises(BundleError, match="does not exist"):
        ModelBundle.load(tmp_path / "nope.sinr")


@pytest.mark.parametrize("member", MEMBERS)
def test_missing_member_is_named(tmp_path, member):
    fixture_bundle(tmp_path / "m.sinr", n_species=5)
    rewrite(tmp_path / "m.sinr", tmp_path / "x.sinr", drop=member)
    with pytest.raises(BundleError, match=f"missing {member}"):
        ModelBundle.load(tmp_path / "x.sinr")


def test_species_count_mismatch_is_refused(tmp_path):
    fixture_bundle(tmp_path / "m.sinr", n_species=5)
    with zipfile.ZipFile(tmp_path / "m.sinr") as z:
        lines = z.read("species.csv").decode().splitlines()
        meta = json.loads(z.read("model.json"))
    short = ("\n".join(lines[:-1]) + "\n").encode()
    rewrite(tmp_path / "m.sinr", tmp_path / "rows.sinr", replace={"species.csv": short})
    with pytest.raises(BundleError, match="species count disagrees"):
        ModelBundle.load(tmp_path / "rows.sinr")
    meta["n_species"] = 6
    rewrite(tmp_path / "m.sinr", tmp_path / "meta.sinr", replace={"model.json": json.dumps(meta).encode()})
    with pytest.raises(BundleError, match=r"model\.json 6"):
        ModelBundle.load(tmp_path / "meta.sinr")


def test_weight_shape_mismatch_and_bad_schema_are_refused(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    buf = io.BytesIO()
    w = dict(b.weights)
    w["head"] = np.zeros((3, 7), np.float32)
    np.savez(buf, **w)
    rewrite(tmp_path / "m.sinr", tmp_path / "w.sinr", replace={"weights.npz": buf.getvalue()})
    with pytest.raises(BundleError, match="head width"):
        ModelBundle.load(tmp_path / "w.sinr")
    meta = dict(b.meta, format="something-else")
    rewrite(tmp_path / "m.sinr", tmp_path / "f.sinr", replace={"model.json": json.dumps(meta).encode()})
    with pytest.raises(BundleError, match="format"):
        ModelBundle.load(tmp_path / "f.sinr")


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=5)
    out = tmp_path / "out.sinr"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(OSError, match="disk full"):
        b.write(out)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.sinr"]  # no temporary left either
    # an existing file under the final name survives a failed overwrite unchanged
    monkeypatch.undo()
    before = (tmp_path / "m.sinr").read_bytes()
    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(OSError):
        b.write(tmp_path / "m.sinr")
    assert (tmp_path / "m.sinr").read_bytes() == before


def test_invalid_bundle_is_not_written(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    b.species.append(Species(3, "extra", "Extra", 1))
    with pytest.raises(BundleError, match="species count"):
        b.write(tmp_path / "bad.sinr")
    assert not (tmp_path / "bad.sinr").exists()


def test_write_records_each_members_sha256(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    with zipfile.ZipFile(tmp_path / "m.sinr") as z:
        meta = json.loads(z.read("model.json"))
        stored = {n: hashlib.sha256(z.read(n)).hexdigest() for n in ("species.csv", "encoder.onnx", "weights.npz")}
    assert meta[SUMS_KEY] == stored and b.meta[SUMS_KEY] == stored
    assert b.warnings == []


@pytest.mark.parametrize("member", ["encoder.onnx", "weights.npz", "species.csv"])
def test_altered_member_is_refused_by_name(tmp_path, member):
    fixture_bundle(tmp_path / "m.sinr", n_species=3)
    with zipfile.ZipFile(tmp_path / "m.sinr") as z:
        data = bytearray(z.read(member))
    data[len(data) // 2] ^= 0x01  # one bit: still a valid zip member (new CRC), a wrong model
    rewrite(tmp_path / "m.sinr", tmp_path / "bad.sinr", replace={member: bytes(data)}, resum=False)
    with pytest.raises(BundleError, match=rf"^bad\.sinr: {member} is damaged or was altered: its SHA-256 "):
        ModelBundle.load(tmp_path / "bad.sinr")


def test_malformed_sums_are_refused(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    for sums, message in ((["x"], "must map member names"), ({"species.csv": "0" * 64}, "species.csv is damaged")):
        meta = dict(b.meta, **{SUMS_KEY: sums})
        rewrite(tmp_path / "m.sinr", tmp_path / "s.sinr", replace={"model.json": json.dumps(meta).encode()})
        with pytest.raises(BundleError, match=message):
            ModelBundle.load(tmp_path / "s.sinr")
    rewrite(tmp_path / "m.sinr", tmp_path / "list.sinr", replace={"model.json": b"[1, 2]"})
    with pytest.raises(BundleError, match="not a JSON object"):
        ModelBundle.load(tmp_path / "list.sinr")


def test_bundle_without_sums_loads_with_a_warning_and_gets_them_when_saved(tmp_path, caplog):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=3)
    meta = {k: v for k, v in b.meta.items() if k != SUMS_KEY}
    rewrite(tmp_path / "m.sinr", tmp_path / "old.sinr", replace={"model.json": json.dumps(meta).encode()})
    with caplog.at_level(logging.WARNING, logger="sinr_qgis"):
        old = ModelBundle.load(tmp_path / "old.sinr")
    assert len(old.warnings) == 1 and old.warnings[0].startswith("old.sinr has no SHA-256 checksums")
    assert [r.getMessage() for r in caplog.records] == old.warnings
    np.testing.assert_array_equal(old.head, b.head)
    old.write(tmp_path / "new.sinr")
    assert old.warnings == []
    assert ModelBundle.load(tmp_path / "new.sinr").warnings == []
