"""tests/data/bundles/make_bundles.py still makes the committed fixture bundles."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from sinr_qgis.core.bundle import SUMS_KEY, ModelBundle
from tests.data.bundles.make_bundles import FIXTURES, HERE, make_all
from tests.tolerances import f32_atol


def _embeddings(bundle: ModelBundle) -> np.ndarray:
    """The bundle's encoder.onnx run by onnxruntime on fixed points (and covariates): [40, D]."""
    rng = np.random.default_rng(0)
    feeds = {"lonlat": np.c_[rng.uniform(-180, 180, 40), rng.uniform(-90, 90, 40)].astype(np.float32)}
    session = ort.InferenceSession(bundle.onnx_bytes, providers=["CPUExecutionProvider"])
    if "env" in {i.name for i in session.get_inputs()}:
        # continuous values around the fixtures' means; class codes 1, 2, 5 and one unknown (3)
        feeds["env"] = np.c_[rng.normal(10, 5, 40), rng.choice([1.0, 2.0, 3.0, 5.0], 40)].astype(np.float32)
        if bundle.encoding != "env":
            feeds["env"][:, 0] = rng.normal(500, 300, 40)
    return session.run(["embedding"], feeds)[0]


def test_the_script_makes_the_committed_fixtures_again(tmp_path):
    made = make_all(tmp_path)
    assert sorted(made) == sorted(f"{spec.name}.sinr" for spec in FIXTURES)
    for name in made:
        new, old = ModelBundle.load(tmp_path / name), ModelBundle.load(HERE / name)
        # weights.npz and the zip carry the time they were written, so compare what they hold
        assert {k: v for k, v in new.meta.items() if k != SUMS_KEY} == {
            k: v for k, v in old.meta.items() if k != SUMS_KEY}, name
        assert new.species == old.species, name
        assert sorted(new.weights) == sorted(old.weights), name
        for key in old.weights:
            np.testing.assert_array_equal(new.weights[key], old.weights[key], err_msg=f"{name} {key}")
        # the same weights traced again (another torch may write other ONNX bytes): the same
        # function, up to float32 rounding along two graphs
        ref = _embeddings(old)
        np.testing.assert_allclose(_embeddings(new), ref, rtol=0, atol=f32_atol(ref), err_msg=name)
