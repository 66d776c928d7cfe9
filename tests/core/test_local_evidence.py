"""Local evidence (core.local_evidence): storage, sampling, and every scoring path of the Predictor
adding exactly the stored offsets (or none when switched off)."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from sinr_qgis.core import local_evidence
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core.metrics import sigmoid
from sinr_qgis.core.runtime import Predictor, local_evidence_status, predict_grid
from sinr_qgis.core.scoring import point_logits
from tests.helpers.bundle_files import rewrite
from tests.helpers.local_evidence_bundles import FLOOR, RESOLUTION, le_bundle

BOXES = {0: (-10.0, 40.0, 5.0, 52.0), 2: (0.0, 45.0, 3.0, 47.0)}
# quantised to 65535 levels over an 8-logit spread: 1.2e-4 logit units per level; float32 sums
# of logits of order 10 carry ~1e-6 relative error
TOL = 2e-4


@pytest.fixture(scope="module")
def le_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("le") / "le.sinr"
    return le_bundle(path, BOXES, lpt_r=[0.2, np.nan, 0.3, np.nan, np.nan, np.nan])


def _grid_value(le, s, lon, lat):
    """The stored (dequantised) value of species ``s`` at a node."""
    i0, j0, nx, ny = le.window[s]
    i, j = round((lon + 180) / le.resolution_deg) - i0, round((lat + 90) / le.resolution_deg) - j0
    vals = le.values[le.start[s]:le.start[s + 1]].reshape(ny, nx)
    return FLOOR + float(vals[j, i]) * float(le.scale[s])


def test_offsets_are_the_nodes_bilinear_between_them_and_the_floor_outside(le_model):
    le = le_model.local_evidence
    nodes = np.array([[-10.0, 40.0], [-9.5, 40.0], [-10.0, 40.5], [-9.5, 40.5]])
    at = le.offsets(nodes, np.array([0]))[:, 0]
    expect = [_grid_value(le, 0, lon, lat) for lon, lat in nodes]
    np.testing.assert_allclose(at, expect, atol=TOL)
    mid = le.offsets(np.array([[-9.75, 40.25]]), np.array([0]))[0, 0]
    assert mid == pytest.approx(np.mean(expect), abs=TOL)
    # outside the window, for a species without records and for a missing coordinate
    far = le.offsets(np.array([[100.0, -30.0], [-9.75, 40.25], [np.nan, 40.0]]), np.array([0, 1]))
    assert far[0, 0] == pytest.approx(FLOOR) and far[1, 1] == pytest.approx(FLOOR)
    assert np.isnan(far[2]).all()


def test_a_species_shift_moves_all_its_offsets(le_model):
    import dataclasses

    le = le_model.local_evidence
    moved = dataclasses.replace(le, shift=np.array([1.5, -2.0, 0, 0, 0, 0], np.float32))
    pts = np.array([[-9.75, 40.25], [100.0, -30.0]])  # inside species 0's window, and outside every window
    both = np.array([0, 1])
    np.testing.assert_allclose(moved.offsets(pts, both), le.offsets(pts, both) + np.array([1.5, -2.0]), atol=TOL)


def test_round_trip_keeps_every_array(le_model, tmp_path):
    le = le_model.local_evidence
    le_model.write(tmp_path / "again.sinr")
    back = ModelBundle.load(tmp_path / "again.sinr").local_evidence
    for name in local_evidence.ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(le, name))
    assert (back.bandwidth_deg, back.record_weight, back.survey_weight, back.resolution_deg) == \
        (le.bandwidth_deg, le.record_weight, le.survey_weight, RESOLUTION)
    assert "Local evidence" in ModelBundle.load(tmp_path / "again.sinr").card()


def _edited_meta(src, edit):
    with zipfile.ZipFile(src) as z:
        meta = json.loads(z.read("model.json"))
    edit(meta)
    return {"model.json": json.dumps(meta).encode()}


def test_broken_components_are_refused_with_what_to_do(le_model, tmp_path):
    src = le_model.path
    rewrite(src, tmp_path / "no_member.sinr", drop=local_evidence.MEMBER,
            replace=_edited_meta(src, lambda m: m["member_sha256"].pop(local_evidence.MEMBER)))
    with pytest.raises(BundleError, match=r"local_evidence\.npz is missing.*Re-export"):
        ModelBundle.load(tmp_path / "no_member.sinr")
    no_entry = _edited_meta(src, lambda m: m.pop(local_evidence.LOCAL_EVIDENCE_KEY))
    rewrite(src, tmp_path / "no_entry.sinr", replace=no_entry)
    with pytest.raises(BundleError, match="no 'local_evidence'"):
        ModelBundle.load(tmp_path / "no_entry.sinr")
    le = le_model.local_evidence
    short = local_evidence.LocalEvidence(le.bandwidth_deg, le.record_weight, le.survey_weight, le.resolution_deg,
                                         le.window[:2], le.start[:3], le.values[:int(le.start[2])], le.scale[:2],
                                         le.shift[:2], le.lpt_r[:2])
    rewrite(src, tmp_path / "short.sinr", replace={local_evidence.MEMBER: short.to_npz()})  # its sum recorded
    with pytest.raises(BundleError, match="does not fit the model's 6 species"):
        ModelBundle.load(tmp_path / "short.sinr")

def test_every_scoring_path_adds_exactly_the_offsets(le_model):
    rng = np.random.default_rng(1)
    ll = np.column_stack([rng.uniform(-12, 6, 300), rng.uniform(38, 53, 300)])
    on, off = Predictor(le_model, "numpy"), Predictor(le_model, "numpy", local_evidence=False)
    assert off.local_evidence is None and on.local_evidence is le_model.local_evidence
    emb = on.embed(ll)
    offsets = le_model.local_evidence.offsets(ll, np.arange(6))
    pure = off.logits(emb)
    np.testing.assert_allclose(on.logits(emb, None, ll), pure + offsets, atol=TOL)
    np.testing.assert_allclose(on.predict_points(ll), sigmoid(pure + offsets), atol=TOL)
    np.testing.assert_allclose(point_logits(on, ll, le_model.species), pure + offsets, atol=TOL)
    np.testing.assert_allclose(point_logits(off, ll, le_model.species), pure, atol=TOL)
    with pytest.raises(ValueError, match="give the locations"):
        on.logits(emb)
    # ranking and richness follow the same score
    idx, prob = on.top_species(ll, k=3)
    full = sigmoid(pure + offsets)
    np.testing.assert_allclose(prob, np.take_along_axis(full, idx, axis=1), atol=TOL)
    thr = np.full(6, 0.5)
    np.testing.assert_array_equal(on.count_above(emb, np.arange(6), thr, ll),
                                  ((pure + offsets) >= 0).sum(axis=1))
    assert "local evidence" in local_evidence_status(on) and local_evidence_status(off) == "off (pure SINR)"
    # switched in place (the dock's box): the same predictor gives pure SINR, then the offsets again
    on.use_local_evidence(False)
    np.testing.assert_allclose(on.logits(emb), pure, atol=TOL)
    on.use_local_evidence(True)
    np.testing.assert_allclose(on.logits(emb, None, ll), pure + offsets, atol=TOL)


def test_grid_maps_add_the_offsets_at_pixel_centres(le_model):
    grid = Grid((-12.0, 38.0, 6.0, 53.0), "EPSG:4326", 36, 30)
    on, off = Predictor(le_model, "numpy"), Predictor(le_model, "numpy", local_evidence=False)
    with_le = predict_grid(on, grid, [0, 2], mask_ocean=False)
    pure = predict_grid(off, grid, [0, 2], mask_ocean=False)
    lonlat, _ = grid.lonlat(0, grid.height)
    offs = le_model.local_evidence.offsets(lonlat, np.array([0, 2])).T.reshape(2, grid.height, grid.width)
    logit = np.log(pure / (1 - pure))
    # probabilities near 0 or 1 lose the logit's digits: compare where they are informative
    ok = (pure > 1e-4) & (pure < 1 - 1e-4)
    np.testing.assert_allclose(with_le[ok], sigmoid(logit + offs)[ok], atol=1e-4)
    assert not np.allclose(with_le, pure)


def test_lpt_r_of_the_score_in_use(le_model):
    on, off = Predictor(le_model, "numpy"), Predictor(le_model, "numpy", local_evidence=False)
    thr = [s.threshold for s in on.scoring_species(le_model.species)]
    assert thr[0] == pytest.approx(0.2) and thr[2] == pytest.approx(0.3) and thr[1] is None
    assert [s.threshold for s in off.scoring_species(le_model.species)] == [s.threshold for s in le_model.species]


def test_npz_member_is_compressed_uint16(le_model):
    with zipfile.ZipFile(le_model.path) as z:
        data = z.read(local_evidence.MEMBER)
    with np.load(io.BytesIO(data)) as z:
        assert z["values"].dtype == np.uint16 and z["window"].shape == (6, 4)
