"""The encodings: numpy, torch and the exported ONNX graph agree; the dateline is seamless."""
from __future__ import annotations

import io
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import encoding as enc

K = 3
MEAN = np.array([10.0, -2.0, 500.0], np.float32)
STD = np.array([4.0, 0.5, 250.0], np.float32)


class EncodingGraph(torch.nn.Module):
    """Only the shared encoding formula, as it is traced into encoder.onnx."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self.encoding = encoding
        self.register_buffer("mean", torch.tensor(MEAN))
        self.register_buffer("std", torch.tensor(STD))

    def forward(self, lonlat, env=None):
        return enc.encode(self.encoding, lonlat, env, self.mean, self.std, xp=torch)


def run_onnx(encoding: str, lonlat: np.ndarray, env: np.ndarray | None) -> np.ndarray:
    graph = EncodingGraph(encoding).eval()
    args = (torch.from_numpy(lonlat),) if env is None else (torch.from_numpy(lonlat), torch.from_numpy(env))
    names = ["lonlat"] if env is None else ["lonlat", "env"]
    buf = io.BytesIO()
    torch.onnx.export(graph, args, buf, input_names=names, output_names=["out"],
                      dynamic_axes={n: {0: "n"} for n in [*names, "out"]}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    feed = {"lonlat": lonlat} | ({} if env is None else {"env": env})
    wanted = {i.name for i in sess.get_inputs()}  # "env" alone does not read lonlat
    return sess.run(None, {k: v for k, v in feed.items() if k in wanted})[0]


def points(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:4] = [[180, 10], [-180, 10], [180, -60], [-180, -60]]  # the dateline, both sides
    env = (MEAN + STD * rng.normal(size=(n, K))).astype(np.float32)
    env[5, 1] = np.nan  # a missing covariate value
    return lonlat, env


def test_sin_cos_known_values_and_order():
    got = enc.sin_cos(np.array([[90.0, 45.0], [0.0, 0.0], [-90.0, -45.0], [180.0, 90.0]]))
    expected = [[1, 1, 0, 0], [0, 0, 1, 1], [-1, -1, 0, 0], [0, 0, -1, -1]]
    assert np.allclose(got, expected, atol=1e-12)
    assert enc.sin_cos(np.array([[30.0, 20.0]]))[0] == pytest.approx(
        [math.sin(math.pi / 6), math.sin(2 * math.pi * 20 / 180), math.cos(math.pi / 6),
         math.cos(2 * math.pi * 20 / 180)])


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_numpy_torch_and_onnx_agree(encoding):
    lonlat, env = points()
    use_env = env if enc.uses_covariates(encoding) else None
    ref = enc.encode(encoding, lonlat.astype(np.float64), None if use_env is None else use_env.astype(np.float64),
                     MEAN.astype(np.float64), STD.astype(np.float64), np)
    np_f32 = enc.encode(encoding, lonlat, use_env, MEAN, STD, np)
    with torch.no_grad():
        t = enc.encode(encoding, torch.from_numpy(lonlat), None if use_env is None else torch.from_numpy(use_env),
                       torch.from_numpy(MEAN), torch.from_numpy(STD), xp=torch).numpy()
    onnx_out = run_onnx(encoding, lonlat, use_env)
    assert ref.shape == (len(lonlat), enc.input_dim(encoding, K))
    for got in (np_f32, t, onnx_out):
        assert np.isfinite(got).all()
        # elementwise float32, no sums: the argument's rounding (eps * pi ~ 4e-7), a few ulp of each
        # backend's sin/cos (SVML, SLEEF, MLAS differ by CPU) and of the z-scores (standard normal here)
        np.testing.assert_allclose(got, ref, atol=1e-5)
    if use_env is not None:  # the missing value became 0 (the mean) in every backend
        col = 1 if encoding == "env" else enc.COORD_DIM + 1
        assert ref[5, col] == 0 and t[5, col] == 0 and onnx_out[5, col] == 0


@pytest.mark.parametrize("backend", ["numpy", "torch", "onnx"])
def test_dateline_is_seamless(backend):
    lonlat = np.array([[180, 10], [-180, 10], [179.9999, -45], [-179.9999, -45]], np.float32)
    if backend == "numpy":
        f = enc.sin_cos(lonlat)
    elif backend == "torch":
        f = enc.sin_cos(torch.from_numpy(lonlat), torch).numpy()
    else:
        f = run_onnx("sin_cos", lonlat, None)
    np.testing.assert_allclose(f[0], f[1], atol=1e-5)
    np.testing.assert_allclose(f[2], f[3], atol=1e-5)
    # and the encoding does separate genuinely different places
    assert np.abs(f[0] - f[2]).max() > 0.5


def test_unknown_encoding_and_missing_covariates_are_refused():
    with pytest.raises(ValueError, match="covariate"):
        enc.encode("env", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="unknown encoding"):
        enc.encode("bogus", np.zeros((1, 2)), np.zeros((1, 1)), 0, 1)
