"""The .sinr bundle: round trip, and clear BundleErrors for damaged or inconsistent files."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sinr_qgis.core.bundle import MEMBERS, ModelBundle, Species
from sinr_qgis.core.errors import BundleError

pytest.importorskip("torch")
from tests.factories import make_bundle


def rewrite(src: Path, dst: Path, drop: str | None = None, replace: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name == drop:
                continue
            zout.writestr(name, (replace or {}).get(name, zin.read(name)))
    return dst


def test_round_trip_keeps_everything(tmp_path):
    b = make_bundle(tmp_path / "m.sinr", n_species=4, encoding="sin_cos_env", covariate_names=("a", "b"),
                    env_mean=[1.0, 2.0], env_std=[3.0, 4.0])
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
    make_bundle(tmp_path / "m.sinr")
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
    make_bundle(tmp_path / "m.sinr")
    rewrite(tmp_path / "m.sinr", tmp_path / "x.sinr", drop=member)
    with pytest.raises(BundleError, match=f"missing {member}"):
        ModelBundle.load(tmp_path / "x.sinr")


def test_species_count_mismatch_is_refused(tmp_path):
    make_bundle(tmp_path / "m.sinr", n_species=5)
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
    b = make_bundle(tmp_path / "m.sinr", n_species=3)
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
    b = make_bundle(tmp_path / "m.sinr")
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
    b = make_bundle(tmp_path / "m.sinr", n_species=3)
    b.species.append(Species(3, "extra", "Extra", 1))
    with pytest.raises(BundleError, match="species count"):
        b.write(tmp_path / "bad.sinr")
    assert not (tmp_path / "bad.sinr").exists()
