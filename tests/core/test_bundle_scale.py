"""A bundle at paper scale loads fast and reads the same: uncompressed weights, an optional float16
head (half the size, float32 in memory, both backends), species.csv read row by row as
csv.DictReader reads it, and a model card that names a bounded number of poor species."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from collections import Counter

import numpy as np
import pytest

from sinr_qgis.core import network
from sinr_qgis.core.bundle import HEAD_DTYPE_KEY, ModelBundle, _parse_species
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.reliability import CARD_POOR, every_species_reliability, level_counts, species_levels
from sinr_qgis.core.runtime import Predictor, onnxruntime_available
from tests.factories import fixture_bundle
from tests.helpers.bundle_files import rewrite
from tests.tolerances import logit_atol, prob_atol


def _members(path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: i for i in zf.infolist()}


def _stored_head(path) -> np.ndarray:
    with zipfile.ZipFile(path) as zf, np.load(io.BytesIO(zf.read("weights.npz"))) as npz:
        return npz["head"]


def test_weights_are_stored_uncompressed_and_deflated_bundles_still_load(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=30)
    info = _members(tmp_path / "m.sinr")
    # float weights barely deflate; inflating them was a third of a paper-scale model's load
    assert info["weights.npz"].compress_type == zipfile.ZIP_STORED
    assert {info[m].compress_type for m in ("model.json", "species.csv", "encoder.onnx")} == {zipfile.ZIP_DEFLATED}
    assert ModelBundle.load(tmp_path / "m.sinr").head.tobytes() == b.head.tobytes()
    # as bundles written before stored it: every member deflated (the bundled model's file was so until it got
    # its data footprint)
    deflated = tmp_path / "deflated.sinr"
    with zipfile.ZipFile(tmp_path / "m.sinr") as zin, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    assert _members(deflated)["weights.npz"].compress_type == zipfile.ZIP_DEFLATED
    assert ModelBundle.load(deflated).head.tobytes() == b.head.tobytes()


def test_a_float16_head_halves_the_head_and_is_read_as_float32_by_both_backends(tmp_path):
    b = fixture_bundle(tmp_path / "f32.sinr", "sin_cos_w64", n_species=2000, seed=2)
    assert b.head_dtype == "float32" and HEAD_DTYPE_KEY not in b.meta  # older readers see nothing new
    b.meta[HEAD_DTYPE_KEY] = "float16"
    b.write(tmp_path / "f16.sinr")
    stored = _stored_head(tmp_path / "f16.sinr")
    assert stored.dtype == np.float16 and _stored_head(tmp_path / "f32.sinr").dtype == np.float32
    sizes = {n: _members(tmp_path / n)["weights.npz"].file_size for n in ("f32.sinr", "f16.sinr")}
    assert sizes["f32.sinr"] - sizes["f16.sinr"] == 2000 * 64 * 2  # two bytes less per head weight
    half = ModelBundle.load(tmp_path / "f16.sinr")
    assert half.head_dtype == "float16" and half.head.dtype == np.float32
    np.testing.assert_array_equal(half.head, stored.astype(np.float32))
    np.testing.assert_array_equal(b.head, half.head)  # write() keeps the written (rounded) head in memory
    assert "Species head stored as float16 (smaller file; probabilities within 0.001)" in half.card().splitlines()
    rng = np.random.default_rng(0)
    lonlat = np.c_[rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500)].astype(np.float32)
    full = ModelBundle.load(tmp_path / "f32.sinr")
    backends = ["numpy"] + (["onnxruntime"] if onnxruntime_available() else [])
    ref = Predictor(full, "numpy").predict_points(lonlat)
    emb = network.embed(full.weights, full.encoding, lonlat)
    for backend in backends:
        p = Predictor(half, backend).predict_points(lonlat)
        # float16 rounding of the head, plus the two backends' float32 paths
        assert np.abs(p - ref).max() <= 1e-3 + prob_atol(logit_atol(emb, full.head))
    # re-saving a float16 bundle keeps it float16 (same bytes of head)
    half.write(tmp_path / "again.sinr")
    np.testing.assert_array_equal(_stored_head(tmp_path / "again.sinr"), stored)


def test_an_unknown_head_dtype_is_refused_with_what_to_do(tmp_path):
    fixture_bundle(tmp_path / "m.sinr", n_species=3)
    with zipfile.ZipFile(tmp_path / "m.sinr") as zf:
        meta = json.loads(zf.read("model.json"))
    meta[HEAD_DTYPE_KEY] = "int8"
    rewrite(tmp_path / "m.sinr", tmp_path / "bad.sinr", replace={"model.json": json.dumps(meta).encode()})
    with pytest.raises(BundleError, match=r"bad\.sinr: model\.json head_dtype 'int8' is not one of "
                                          r"\('float32', 'float16'\)\. Update the plugin, or re-export the model\."):
        ModelBundle.load(tmp_path / "bad.sinr")


@pytest.mark.parametrize("text", [
    "index,code,name,n_train\n0,a,Aus bus,1\n\n1,b,Bus cus,2\n",  # a blank line
    "index,code,name,n_train,threshold,common_name\n0,a,Aus bus,1\n1,b,Bus cus,2,0.25, bus tree \n",  # short row
    'index,code,name,n_train,habit,lon_min,lat_min,lon_max,lat_max,n_cells\n0,a,"Aus bus L., 1753",3,tree,'
    '-10.5,20,-5,25.25,4\n1,"b,c","Bus\ncus",0,,,,,,\n',  # quoted commas and line breaks, extent columns
    "index,code,name,n_train,name\n0,a,first,1,second\n",  # a column twice: the last one counts
])
def test_species_csv_reads_as_csv_dictreader_reads_it(text):
    fast = _parse_species(text)
    rows = [r for r in csv.DictReader(io.StringIO(text))]
    assert [(s.index, s.code, s.name, s.n_train) for s in fast] == [
        (int(r["index"]), r["code"], r["name"], int(r["n_train"] or 0)) for r in rows]
    assert [s.threshold for s in fast] == [float(r["threshold"]) if r.get("threshold") else None for r in rows]
    assert [s.common_name for s in fast] == [(r.get("common_name") or "").strip() for r in rows]
    boxes = [s.record_extent for s in fast]
    assert boxes in ([None] * len(rows), [(-10.5, 20.0, -5.0, 25.25), None])
    assert [s.n_cells for s in fast] in ([None] * len(rows), [4, None])


def test_the_card_names_at_most_CARD_POOR_poor_species_and_counts_the_rest(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=130)
    # a species trained on 2 records is poor: 120 of them, and 10 with 5,000 records (good)
    b.species = [dataclasses.replace(s, n_train=2 if s.index < 120 else 5000) for s in b.species]
    lines = b.card().splitlines()
    start = lines.index("Poor maps (120; check them against a range map before use):")
    listed = lines[start + 1:start + 1 + CARD_POOR]
    assert listed == [f"  Species number{i} (sp{i:03d}): 2 records" for i in range(CARD_POOR)]
    assert lines[start + 1 + CARD_POOR:] == [
        "  … and 70 more: the panel's species list or Processing 'List a model's species' "
        "(sinr:model_species) shows them all."]
    assert lines[start - 1].startswith("Reliability of the species' maps: 10 good, 120 poor")


def test_levels_alone_equal_the_full_assessment(tmp_path):
    b = fixture_bundle(tmp_path / "m.sinr", n_species=8)
    b.species = [dataclasses.replace(s, n_train=n, n_cells=c) for s, n, c in
                 zip(b.species, [0, 2, 4, 30, 106, 1500, 300, 5000], [None, 1, 9, 2, 22, 5, 90, None])]
    b.meta["evaluation"] = {"ranges_ap": {"sp004": 0.11, "sp006": 0.3, "sp001": 0.9}}
    full = [r.level for _, r in every_species_reliability(b)]
    assert species_levels(b) == full == ["unknown", "caution", "poor", "poor", "poor", "good", "caution", "good"]
    assert level_counts(b) == dict(Counter(full)) | {"good": 2}
