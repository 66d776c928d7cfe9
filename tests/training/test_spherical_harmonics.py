"""``spherical_harmonics`` end to end: torch and the traced ONNX graph compute what numpy does
(poles and dateline exactly), the bundle keeps its degree and refuses a missing or wrong one, the
embeddings of torch / onnxruntime / numpy agree, the CLI trains such a bundle and refuses a bad
``--sh-degree``. (The numpy formula against scipy: tests/core/test_encoding_spherical.py.)"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import encoding as enc
from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.runtime import Predictor
from tests.helpers.cli_helpers import FAST, write_csv
from tests.tolerances import f32_atol, logit_atol, prob_atol
from training.cli import main
from training.export import export_bundle
from training.model import SinrModel

DEGREE = 7  # not the default: a path that ignored the bundle's degree would not fit


class HarmonicsGraph(torch.nn.Module):
    """The shared formula alone, as it is traced into encoder.onnx (the degree a constant)."""

    def __init__(self, degree: int) -> None:
        super().__init__()
        self.degree = degree

    def forward(self, lonlat):
        return enc.encode("spherical_harmonics", lonlat, xp=torch, degree=self.degree)


def onnx_session(module: torch.nn.Module, out: str = "out") -> ort.InferenceSession:
    buf = io.BytesIO()
    torch.onnx.export(module.eval(), (torch.zeros(3, 2),), buf, input_names=["lonlat"], output_names=[out],
                      dynamic_axes={"lonlat": {0: "n"}, out: {0: "n"}}, opset_version=17, dynamo=False)
    return ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


def lonlat_points(n: int = 1500) -> np.ndarray:
    rng = np.random.default_rng(5)
    ll = np.c_[rng.uniform(-180, 180, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))].astype(np.float32)
    # the dateline, then both poles at two longitudes each
    ll[:6] = [[180, 10], [-180, 10], [0, 90], [137.5, 90], [-20, -90], [180, -90]]
    return ll


def assert_poles_and_dateline(f: np.ndarray, what: str) -> None:
    np.testing.assert_array_equal(f[0], f[1], err_msg=f"{what}: dateline")
    np.testing.assert_array_equal(f[2], f[3], err_msg=f"{what}: north pole")
    np.testing.assert_array_equal(f[4], f[5], err_msg=f"{what}: south pole")


def test_torch_and_onnx_features_agree_with_numpy():
    ll = lonlat_points()
    ref = enc.spherical_harmonics(ll.astype(np.float64), DEGREE)  # float64 from the same float32 inputs
    graph = HarmonicsGraph(DEGREE)
    with torch.no_grad():
        got = {"numpy": enc.encode("spherical_harmonics", ll, degree=DEGREE),
               "torch": graph(torch.from_numpy(ll)).numpy(),
               "onnx": onnx_session(graph).run(None, {"lonlat": ll})[0]}
    for name, f in got.items():
        assert f.shape == (len(ll), DEGREE ** 2) and f.dtype == np.float32, name
        # elementwise float32 of the same short recurrence: a few eps of the largest value, plus
        # each backend's own sin/cos (SVML, SLEEF, MLAS differ by CPU) of m * pi * lon/180
        np.testing.assert_allclose(f, ref, atol=f32_atol(ref), rtol=0, err_msg=name)
        assert_poles_and_dateline(f, name)


def make_model(degree: int | None = DEGREE) -> SinrModel:
    torch.manual_seed(4)
    model = SinrModel(5, "spherical_harmonics", 0, width=48, depth=2, sh_degree=degree)
    with torch.no_grad():  # larger weights than the default init, so errors would show
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def export(tmp_path: Path, model: SinrModel) -> ModelBundle:
    export_bundle(model, [Species(i, f"s{i}", f"Sp {i}", 1) for i in range(5)], tmp_path / "m.sinr", name="m")
    return ModelBundle.load(tmp_path / "m.sinr")


def test_bundle_keeps_the_degree_and_every_backend_agrees(tmp_path):
    model = make_model()
    b = export(tmp_path, model)
    assert b.meta["encoding"] == {"name": "spherical_harmonics", "covariates": [], "degree": DEGREE}
    assert b.sh_degree == DEGREE and b.frequencies is None
    assert b.meta["architecture"]["input_dim"] == 49 == b.weights[network.INPUT_W].shape[1]
    assert "Encoding: spherical_harmonics (degree 7: 49 features)" in b.card().splitlines()
    ll = lonlat_points()
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(ll)).numpy()
    tol = f32_atol(ref)  # torch, onnxruntime and numpy: float32 rounding only
    sess = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["lonlat"] and sess.get_inputs()[0].shape[1] == 2
    outs = {"onnx graph": sess.run(["embedding"], {"lonlat": ll})[0],
            "numpy": network.embed(b.weights, b.encoding, ll, degree=b.sh_degree),
            "numpy, degree from the width": network.embed(b.weights, b.encoding, ll)}
    for backend in ("numpy", "onnxruntime"):
        pred = Predictor(b, backend=backend)
        assert not pred.needs_covariates
        outs[f"Predictor {backend}"] = pred.embed(ll)
    for name, got in outs.items():
        np.testing.assert_allclose(got, ref, atol=tol, rtol=0, err_msg=name)
        assert_poles_and_dateline(got, name)
    # another degree's features do not fit this input layer: refused, not guessed
    with pytest.raises(ValueError, match="the encoding gives 36 features, the input layer takes 49"):
        network.embed(b.weights, b.encoding, ll, degree=6)
    b.write(tmp_path / "again.sinr")
    assert ModelBundle.load(tmp_path / "again.sinr").sh_degree == DEGREE


def _tamper(src: Path, dst: Path, **encoding) -> Path:
    """``src`` with ``model.json``'s encoding entries replaced (None: removed; the member sums do
    not cover model.json, so they still hold)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "model.json":
                meta = json.loads(data)
                for k, v in encoding.items():
                    if v is None:
                        del meta["encoding"][k]
                    else:
                        meta["encoding"][k] = v
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return dst


@pytest.mark.parametrize("degree, message", [
    (None, r"t\.sinr: encoding 'spherical_harmonics' needs encoding\.degree in model\.json \(the number L of "
           r"degrees 0\.\.L-1\)\. Re-export the model\."),
    (6, r"t\.sinr: input layer takes 49 features but encoding 'spherical_harmonics' with 0 covariates and "
        r"degree 6 gives 36\."),
    (0, r"t\.sinr: model\.json encoding\.degree: the spherical-harmonics degree must be a whole number from 1 "
        r"to 32 .*got 0\. Re-export the model\."),
    (7.5, r"encoding\.degree: .*got 7\.5\."),
    ("seven", r"encoding\.degree: .*got 'seven'\."),
])
def test_a_missing_or_wrong_degree_is_refused(tmp_path, degree, message):
    b = export(tmp_path, make_model())
    with pytest.raises(BundleError, match=message):
        ModelBundle.load(_tamper(b.path, tmp_path / "t.sinr", degree=degree))


def test_a_float16_head_is_checked_on_the_bundle_degree(tmp_path):
    # the float16 check embeds points with the numpy network: it must use this bundle's degree
    model = make_model()
    export_bundle(model, [Species(i, f"s{i}", f"Sp {i}", 1) for i in range(5)], tmp_path / "h.sinr", name="h",
                  head_dtype="float16")
    b = ModelBundle.load(tmp_path / "h.sinr")
    assert b.head_dtype == "float16" and b.sh_degree == DEGREE
    np.testing.assert_array_equal(b.head, model.head.weight.detach().numpy().astype(np.float16).astype(np.float32))


def test_a_wrong_degree_in_memory_is_not_written(tmp_path):
    b = export(tmp_path, make_model())
    b.meta["encoding"]["degree"] = 8  # validate() checks what write() would store
    with pytest.raises(BundleError, match="degree 8 gives 64"):
        b.write(tmp_path / "never.sinr")
    assert not (tmp_path / "never.sinr").exists()


def test_a_newer_encoding_says_update_the_plugin(tmp_path):
    b = export(tmp_path, make_model())
    with pytest.raises(BundleError, match=r"unknown encoding 'wavelets'.*update the plugin\."):
        ModelBundle.load(_tamper(b.path, tmp_path / "w.sinr", name="wavelets"))


def test_cli_trains_a_spherical_harmonics_bundle_that_predicts(tmp_path, capsys):
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code = main(["train", "--data", str(data), "--out", str(out), "--cap", "50", "--pos-weight", "3",
                 "--encoding", "spherical_harmonics", "--sh-degree", "5", *FAST])
    assert code == 0, capsys.readouterr().err
    b = ModelBundle.load(out)
    assert b.sh_degree == 5 and b.weights[network.INPUT_W].shape[1] == 25
    assert b.meta["training"]["encoding"] == "spherical_harmonics" and b.meta["training"]["sh_degree"] == 5
    # what tools/check_bundle.py asks of every bundle: lonlat in, embedding out, a seamless dateline
    sess = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["lonlat"] and [o.name for o in sess.get_outputs()] == ["embedding"]
    pts = np.array([[-80.0, 35.0], [180.0, 10.0], [-180.0, 10.0], [-90.0, 35.0], [10.0, -60.0]], np.float32)
    emb = sess.run(["embedding"], {"lonlat": pts})[0]
    assert emb.shape == (5, 16) and np.array_equal(emb[1], emb[2])
    probs = Predictor(b).predict_points(pts, [0, 1, 2])
    logits = emb.astype(np.float64) @ b.head[:3].T.astype(np.float64)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), atol=prob_atol(logit_atol(emb, b.head[:3])), rtol=0)
    out2 = tmp_path / "d.sinr"  # no degree given: the default, recorded in the training settings too
    assert main(["train", "--data", str(data), "--out", str(out2), "--cap", "50", "--encoding",
                 "spherical_harmonics", *FAST]) == 0
    d = ModelBundle.load(out2)
    assert d.sh_degree == 10 == d.meta["training"]["sh_degree"] and d.weights[network.INPUT_W].shape[1] == 100


@pytest.mark.parametrize("args, message", [
    (["--sh-degree", "4"], "--sh-degree needs --encoding spherical_harmonics."),
    (["--encoding", "sin_cos_multi", "--sh-degree", "4"], "--sh-degree needs --encoding spherical_harmonics."),
    (["--encoding", "spherical_harmonics", "--sh-degree", "0"],
     "--sh-degree: the spherical-harmonics degree must be a whole number from 1 to 32"),
    (["--encoding", "spherical_harmonics", "--sh-degree", "33"], "from 1 to 32 (L: degrees 0..L-1, L^2 features"),
    (["--encoding", "spherical_harmonics", "--sh-degree", "2.5"], "argument --sh-degree: invalid int value: '2.5'"),
    (["--encoding", "spherical_harmonics", "--n-frequencies", "3"], "need --encoding sin_cos_multi"),
    (["--encoding", "spherical_harmonics", "--covariates", "x.tif"], "--covariates needs"),
])
def test_cli_refuses_bad_degree_options(tmp_path, capsys, args, message):
    data = write_csv(tmp_path / "obs.csv")
    try:
        code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), *args, *FAST])
    except SystemExit as exc:  # argparse refuses a value that is not a whole number itself
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and not (tmp_path / "m.sinr").exists()
