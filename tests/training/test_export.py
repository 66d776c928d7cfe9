"""The exported encoder.onnx reproduces the torch model (eval mode); numpy backend agrees too."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle, Species
from tests.tolerances import f32_atol
from training.dropout import use_fast_dropout
from training.export import export_bundle
from training.model import SinrModel

COVS = ("bio1", "bio12", "elev")


def make_model(encoding: str) -> SinrModel:
    torch.manual_seed(1)
    model = SinrModel(7, encoding, 0 if encoding == "sin_cos" else len(COVS), width=64, depth=3)
    with torch.no_grad():  # larger weights than the default init, so errors would show
        for p in model.parameters():
            p.mul_(2.0)
        if encoding != "sin_cos":
            model.env_mean[:] = torch.tensor([150.0, 900.0, 300.0])
            model.env_std[:] = torch.tensor([60.0, 500.0, 400.0])
    use_fast_dropout(model)  # as the trainer leaves it; must not change the export
    return model


def random_inputs(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    env = np.c_[rng.normal(150, 80, n), rng.normal(900, 600, n), rng.normal(300, 500, n)].astype(np.float32)
    env[::17, 0] = np.nan
    return lonlat, env


@pytest.mark.parametrize("encoding", ["sin_cos", "env", "sin_cos_env"])
def test_onnx_embedding_equals_torch_eval_embedding(tmp_path, encoding):
    model = make_model(encoding)
    names = () if encoding == "sin_cos" else COVS
    species = [Species(i, f"s{i}", f"Sp {i}", 1) for i in range(7)]
    export_bundle(model, species, tmp_path / "m.sinr", name="m", covariate_names=names)
    bundle = ModelBundle.load(tmp_path / "m.sinr")
    lonlat, env = random_inputs()
    use_env = None if encoding == "sin_cos" else env
    model.eval()
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(lonlat), None if use_env is None else torch.from_numpy(use_env)).numpy()
    sess = ort.InferenceSession(bundle.onnx_bytes, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    assert inputs == (["lonlat"] if use_env is None else ["lonlat", "env"])  # the bundle contract
    feed = {"lonlat": lonlat} | ({} if use_env is None else {"env": use_env})
    got = sess.run(["embedding"], feed)[0]
    assert got.shape == (len(lonlat), 64)
    tol = f32_atol(ref)  # torch, onnxruntime and numpy: float32 rounding only
    np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(network.embed(bundle.weights, encoding, lonlat, use_env), ref, atol=tol, rtol=0)
    # training mode (dropout on) would differ: the comparison is meaningful
    model.train()
    with torch.no_grad():
        noisy = model.embed(torch.from_numpy(lonlat), None if use_env is None else torch.from_numpy(use_env)).numpy()
    assert np.abs(noisy - ref).max() > 1e-2
    assert np.allclose(bundle.head, model.head.weight.detach().numpy())
    if use_env is not None:
        assert bundle.covariate_names == list(COVS)
        assert [c["mean"] for c in bundle.covariates] == pytest.approx([150.0, 900.0, 300.0])
