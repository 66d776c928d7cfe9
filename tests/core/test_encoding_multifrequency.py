"""``sin_cos_multi``: numpy, torch and the exported ONNX graph agree; the dateline stays seamless;
its k = 1 block is the paper's ``sin_cos``; frequency lists are validated."""
from __future__ import annotations

import io
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import encoding as enc

# not the default list, and up to a 2.8-degree wavelength: a backend that ignored the list, or
# lost precision at high k, would show
FREQS = (1, 3, 16, 128)


class MultiGraph(torch.nn.Module):
    def __init__(self, frequencies) -> None:
        super().__init__()
        self.frequencies = frequencies

    def forward(self, lonlat):
        return enc.encode("sin_cos_multi", lonlat, xp=torch, frequencies=self.frequencies)


def run_onnx(lonlat: np.ndarray, frequencies=FREQS) -> np.ndarray:
    buf = io.BytesIO()
    torch.onnx.export(MultiGraph(frequencies).eval(), (torch.from_numpy(lonlat),), buf, input_names=["lonlat"],
                      output_names=["out"], dynamic_axes={"lonlat": {0: "n"}, "out": {0: "n"}},
                      opset_version=17, dynamo=False)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"lonlat": lonlat})[0]


def encode_with(backend: str, lonlat: np.ndarray, frequencies=FREQS) -> np.ndarray:
    if backend == "numpy":
        return enc.encode("sin_cos_multi", lonlat, frequencies=frequencies)
    if backend == "torch":
        return enc.encode("sin_cos_multi", torch.from_numpy(lonlat), xp=torch, frequencies=frequencies).numpy()
    return run_onnx(lonlat, frequencies)


def points(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lonlat = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    lonlat[:6] = [[180, 10], [-180, 10], [0, 90], [0, -90], [-125.3, 24.1], [-66.7, 49.9]]
    return lonlat


def test_known_values_and_layout():
    # lon 45, lat 22.5: k*pi*lon_n = k*pi/4, k*pi*lat_n = k*pi/4
    f = enc.sin_cos_multi(np.array([[45.0, 22.5]]), (1, 2, 4))[0]
    expected = []
    for k in (1, 2, 4):
        a = k * math.pi / 4
        expected += [math.sin(a), math.sin(a), math.cos(a), math.cos(a)]
    np.testing.assert_allclose(f, expected, atol=1e-12)
    assert enc.input_dim("sin_cos_multi", 0, FREQS) == 16
    assert enc.input_dim("sin_cos_multi") == 4 * len(enc.DEFAULT_FREQUENCIES)


def test_first_block_is_the_paper_encoding():
    lonlat = points()
    np.testing.assert_allclose(enc.sin_cos_multi(lonlat, FREQS)[:, :4], enc.sin_cos(lonlat), atol=1e-6)
    np.testing.assert_allclose(enc.sin_cos_multi(lonlat, (1,)), enc.sin_cos(lonlat), atol=1e-6)


def test_numpy_torch_and_onnx_agree():
    lonlat = points()
    ref = enc.sin_cos_multi(lonlat.astype(np.float64), FREQS)  # float64 reference from the float32 inputs
    outs = {b: encode_with(b, lonlat) for b in ("numpy", "torch", "onnx")}
    for b, got in outs.items():
        assert got.shape == (len(lonlat), 16) and got.dtype == np.float32, b
        # float32 rounding of lon/180 alone moves 128*pi*lon_n by up to ~3e-5 rad
        np.testing.assert_allclose(got, ref, atol=5e-5, err_msg=b)
    # the same float32 reduction (exact) then sin/cos of an angle in [0, 2 pi): the angle's rounding
    # (eps * 2 pi ~ 7.5e-7) and a few ulp of each backend's sin/cos on this CPU
    np.testing.assert_allclose(outs["torch"], outs["numpy"], atol=1e-5)
    np.testing.assert_allclose(outs["onnx"], outs["numpy"], atol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "torch", "onnx"])
def test_dateline_is_seamless(backend):
    lonlat = np.array([[180, 10], [-180, 10], [179.999, -45], [-179.999, -45], [179.999, -44.99]], np.float32)
    f = encode_with(backend, lonlat)
    np.testing.assert_array_equal(f[0], f[1])  # exactly: the reduction mod 2 is exact
    np.testing.assert_allclose(f[2], f[3], atol=1e-2)  # 0.002 degrees apart, across the line
    # the highest frequency does resolve a 0.01 degree step, so the check above is not vacuous
    assert np.abs(f[2] - f[4]).max() > 1e-2


def test_frequency_lists_are_validated():
    assert enc.check_frequencies([1, 2.0, 8]) == (1, 2, 8)
    assert enc.powers_of_two(4) == (1, 2, 4, 8)
    for bad in ([], [0, 1], [1, 1], [1.5], ["x"]):
        with pytest.raises(ValueError, match="frequencies"):
            enc.check_frequencies(bad)
    with pytest.raises(ValueError):
        enc.powers_of_two(0)


def test_only_env_encodings_use_covariates():
    assert [e for e in enc.ENCODINGS if enc.uses_covariates(e)] == ["env", "sin_cos_env"]
