"""The shared encoding (sinr_qgis/core/encoding.py) under torch, as training computes it, and traced to
ONNX, as encoder.onnx holds it: both agree with numpy for every encoding, for ``sin_cos_multi``'s
frequency list and for categorical covariates' one-hot inputs, and the dateline is seamless on each.
The numpy side alone is tested in tests/core (test_encoding, test_encoding_multifrequency,
test_categories), which runs without torch."""
from __future__ import annotations

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import encoding as enc


class EncodingGraph(torch.nn.Module):
    """Only the shared encoding formula, as it is traced into encoder.onnx: ``mean``/``std`` [K] and
    ``classes`` (per covariate: None or its class codes) as buffers, ``frequencies`` a constant."""

    def __init__(self, encoding: str, mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 frequencies: tuple[int, ...] | None = None,
                 classes: list[tuple[float, ...] | None] | None = None) -> None:
        super().__init__()
        self.encoding, self.frequencies = encoding, frequencies
        self.register_buffer("mean", None if mean is None else torch.tensor(mean))
        self.register_buffer("std", None if std is None else torch.tensor(std))
        self.categorical = None if classes is None else [c is not None for c in classes]
        for j, cls in enumerate(classes or []):
            if cls is not None:
                self.register_buffer(f"cls_{j}", torch.tensor(cls, dtype=torch.float32))

    def forward(self, lonlat, env=None):
        classes = None if self.categorical is None else [
            getattr(self, f"cls_{j}") if cat else None for j, cat in enumerate(self.categorical)]
        return enc.encode(self.encoding, lonlat, env, self.mean, self.std, xp=torch, frequencies=self.frequencies,
                          classes=classes)


def torch_encode(graph: EncodingGraph, lonlat: np.ndarray, env: np.ndarray | None = None) -> np.ndarray:
    with torch.no_grad():
        return graph(torch.from_numpy(lonlat), None if env is None else torch.from_numpy(env)).numpy()


def run_onnx(graph: EncodingGraph, lonlat: np.ndarray, env: np.ndarray | None = None) -> np.ndarray:
    """``graph`` exported to ONNX (as training exports encoder.onnx) and run by onnxruntime."""
    args = (torch.from_numpy(lonlat),) if env is None else (torch.from_numpy(lonlat), torch.from_numpy(env))
    names = ["lonlat"] if env is None else ["lonlat", "env"]
    buf = io.BytesIO()
    torch.onnx.export(graph.eval(), args, buf, input_names=names, output_names=["out"],
                      dynamic_axes={n: {0: "n"} for n in [*names, "out"]}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    feed = {"lonlat": lonlat} | ({} if env is None else {"env": env})
    wanted = {i.name for i in sess.get_inputs()}  # "env" alone does not read lonlat
    return sess.run(None, {k: v for k, v in feed.items() if k in wanted})[0]


# ---- every encoding (from tests/core/test_encoding.py) ------------------------------------------
K = 3
MEAN = np.array([10.0, -2.0, 500.0], np.float32)
STD = np.array([4.0, 0.5, 250.0], np.float32)


def points(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:4] = [[180, 10], [-180, 10], [180, -60], [-180, -60]]  # the dateline, both sides
    env = (MEAN + STD * rng.normal(size=(n, K))).astype(np.float32)
    env[5, 1] = np.nan  # a missing covariate value
    return lonlat, env


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_torch_and_onnx_agree_with_numpy(encoding):
    lonlat, env = points()
    use_env = env if enc.uses_covariates(encoding) else None
    ref = enc.encode(encoding, lonlat.astype(np.float64), None if use_env is None else use_env.astype(np.float64),
                     MEAN.astype(np.float64), STD.astype(np.float64), np)
    graph = EncodingGraph(encoding, MEAN, STD)
    t = torch_encode(graph, lonlat, use_env)
    onnx_out = run_onnx(graph, lonlat, use_env)
    for got in (t, onnx_out):
        assert np.isfinite(got).all()
        # elementwise float32, no sums: the argument's rounding (eps * pi ~ 4e-7), a few ulp of each
        # backend's sin/cos (SVML, SLEEF, MLAS differ by CPU) and of the z-scores (standard normal here)
        np.testing.assert_allclose(got, ref, atol=1e-5)
    if use_env is not None:  # the missing value became 0 (the mean) in every backend
        col = 1 if encoding == "env" else enc.COORD_DIM + 1
        assert ref[5, col] == 0 and t[5, col] == 0 and onnx_out[5, col] == 0


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_dateline_is_seamless(backend):
    lonlat = np.array([[180, 10], [-180, 10], [179.9999, -45], [-179.9999, -45]], np.float32)
    graph = EncodingGraph("sin_cos")
    f = torch_encode(graph, lonlat) if backend == "torch" else run_onnx(graph, lonlat)
    np.testing.assert_allclose(f[0], f[1], atol=1e-5)
    np.testing.assert_allclose(f[2], f[3], atol=1e-5)
    # and the encoding does separate genuinely different places
    assert np.abs(f[0] - f[2]).max() > 0.5


# ---- sin_cos_multi (from tests/core/test_encoding_multifrequency.py) ------------------------------
# not the default list, and up to a 2.8-degree wavelength: a backend that ignored the list, or
# lost precision at high k, would show
FREQS = (1, 3, 16, 128)


def multi_points(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:6] = [[180, 10], [-180, 10], [0, 90], [0, -90], [-125.3, 24.1], [-66.7, 49.9]]
    return lonlat


def test_multi_frequency_torch_and_onnx_agree_with_numpy():
    lonlat = multi_points()
    ref = enc.sin_cos_multi(lonlat.astype(np.float64), FREQS)  # float64 reference from the float32 inputs
    graph = EncodingGraph("sin_cos_multi", frequencies=FREQS)
    outs = {"numpy": enc.encode("sin_cos_multi", lonlat, frequencies=FREQS),
            "torch": torch_encode(graph, lonlat), "onnx": run_onnx(graph, lonlat)}
    for b in ("torch", "onnx"):
        got = outs[b]
        assert got.shape == (len(lonlat), 16) and got.dtype == np.float32, b
        # float32 rounding of lon/180 alone moves 128*pi*lon_n by up to ~3e-5 rad
        np.testing.assert_allclose(got, ref, atol=5e-5, err_msg=b)
    # the same float32 reduction (exact) then sin/cos of an angle in [0, 2 pi): the angle's rounding
    # (eps * 2 pi ~ 7.5e-7) and a few ulp of each backend's sin/cos on this CPU
    np.testing.assert_allclose(outs["torch"], outs["numpy"], atol=1e-5)
    np.testing.assert_allclose(outs["onnx"], outs["numpy"], atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_multi_frequency_dateline_is_seamless(backend):
    lonlat = np.array([[180, 10], [-180, 10], [179.999, -45], [-179.999, -45], [179.999, -44.99]], np.float32)
    graph = EncodingGraph("sin_cos_multi", frequencies=FREQS)
    f = torch_encode(graph, lonlat) if backend == "torch" else run_onnx(graph, lonlat)
    np.testing.assert_array_equal(f[0], f[1])  # exactly: the reduction mod 2 is exact
    np.testing.assert_allclose(f[2], f[3], atol=1e-2)  # 0.002 degrees apart, across the line
    # the highest frequency does resolve a 0.01 degree step, so the check above is not vacuous
    assert np.abs(f[2] - f[4]).max() > 1e-2


# ---- categorical covariates (from tests/core/test_categories.py) ----------------------------------
CAT_MEAN = np.array([10.0, 0.0, 500.0], np.float32)
CAT_STD = np.array([4.0, 1.0, 250.0], np.float32)
CLASSES = [None, (1.0, 3.0, 5.0), None]


def test_torch_and_onnx_encode_classes_as_numpy_does():
    rng = np.random.default_rng(3)
    n = 500
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    env = np.c_[rng.normal(10, 4, n), rng.choice([1.0, 2.0, 3.0, 5.0, np.nan], n),
                rng.normal(500, 250, n)].astype(np.float32)
    ref = enc.encode("sin_cos_env", lonlat, env, CAT_MEAN, CAT_STD, classes=CLASSES)
    graph = EncodingGraph("sin_cos_env", CAT_MEAN, CAT_STD, classes=CLASSES)
    got_torch = torch_encode(graph, lonlat, env)
    got_onnx = run_onnx(graph, lonlat, env)
    onehot = slice(5, 8)  # 0/1 exactly on every path: a comparison, no arithmetic
    np.testing.assert_array_equal(got_torch[:, onehot], ref[:, onehot])
    np.testing.assert_array_equal(got_onnx[:, onehot], ref[:, onehot])
    # the sines and z-scores: float32 rounding of the same formula on each path (a few eps)
    np.testing.assert_allclose(got_torch, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_onnx, ref, atol=1e-5, rtol=0)
