"""``sin_cos_multi`` end to end: the bundle keeps its frequencies, torch / ONNX / numpy embeddings
agree, a bundle whose input width disagrees with its frequency list is refused, the CLI option."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle, Species
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.runtime import Predictor
from tests.helpers.cli_helpers import FAST, write_csv
from tests.tolerances import f32_atol, logit_atol
from training.cli import main
from training.export import export_bundle
from training.model import SinrModel

FREQS = (1, 2, 8, 64)  # not the default list


def make_model(frequencies=FREQS) -> SinrModel:
    torch.manual_seed(3)
    model = SinrModel(5, "sin_cos_multi", 0, width=48, depth=2, frequencies=frequencies)
    with torch.no_grad():  # larger weights than the default init, so errors would show
        for p in model.parameters():
            p.mul_(2.0)
    return model.eval()


def export(tmp_path: Path, model: SinrModel) -> ModelBundle:
    species = [Species(i, f"s{i}", f"Sp {i}", 1) for i in range(5)]
    export_bundle(model, species, tmp_path / "m.sinr", name="m")
    return ModelBundle.load(tmp_path / "m.sinr")


def lonlat_points(n: int = 800) -> np.ndarray:
    rng = np.random.default_rng(7)
    ll = np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)
    ll[:2] = [[180, 10], [-180, 10]]
    return ll


def test_bundle_round_trip_keeps_frequencies(tmp_path):
    b = export(tmp_path, make_model())
    assert b.encoding == "sin_cos_multi" and b.frequencies == FREQS
    assert b.meta["encoding"]["frequencies"] == list(FREQS)
    assert b.meta["architecture"]["input_dim"] == 16 == b.weights[network.INPUT_W].shape[1]
    b.write(tmp_path / "again.sinr")
    assert ModelBundle.load(tmp_path / "again.sinr").frequencies == FREQS


def test_torch_onnx_and_numpy_embeddings_agree(tmp_path):
    model = make_model()
    b = export(tmp_path, model)
    ll = lonlat_points()
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(ll)).numpy()
    sess = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["lonlat"]  # coordinates only: no env input
    got_onnx = sess.run(["embedding"], {"lonlat": ll})[0]
    got_numpy = network.embed(b.weights, b.encoding, ll, frequencies=b.frequencies)
    tol = f32_atol(ref)  # torch, onnxruntime and numpy: float32 rounding only
    np.testing.assert_allclose(got_onnx, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(got_numpy, ref, atol=tol, rtol=0)
    np.testing.assert_array_equal(got_onnx[0], got_onnx[1])  # the dateline
    # both runtime backends use the bundle's own frequency list
    for backend in ("numpy", "onnxruntime"):
        pred = Predictor(b, backend=backend)
        assert not pred.needs_covariates
        np.testing.assert_allclose(pred.embed(ll), ref, atol=tol, rtol=0)
    # the benchmark's scorer uses the bundle's list too
    from training.benchmarks.na_trees import bundle_scorer
    np.testing.assert_allclose(bundle_scorer(b)(ll, ["s2"])[:, 0], ref @ b.head[2], atol=logit_atol(ref, b.head[2]),
                               rtol=0)
    # without the list the numpy path refuses rather than guess
    with pytest.raises(ValueError, match="frequencies"):
        network.embed(b.weights, b.encoding, ll)
    # another list of the same length gives other embeddings: the comparisons above are meaningful
    wrong = SinrModel(5, "sin_cos_multi", 0, width=48, depth=2, frequencies=(1, 2, 4, 128))
    wrong.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert np.abs(wrong.eval().embed(torch.from_numpy(ll)).numpy() - ref).max() > 1e-2


def _tamper(src: Path, dst: Path, frequencies) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "model.json":
                meta = json.loads(data)
                if frequencies is None:
                    del meta["encoding"]["frequencies"]
                else:
                    meta["encoding"]["frequencies"] = frequencies
                data = json.dumps(meta).encode()
            zout.writestr(item, data)
    return dst


def test_width_or_list_disagreeing_with_the_input_layer_is_refused(tmp_path):
    b = export(tmp_path, make_model())
    with pytest.raises(BundleError, match=r"input layer takes 16 features.*3 frequencies gives 12"):
        ModelBundle.load(_tamper(b.path, tmp_path / "short.sinr", [1, 2, 8]))
    with pytest.raises(BundleError, match=r"needs encoding\.frequencies"):
        ModelBundle.load(_tamper(b.path, tmp_path / "none.sinr", None))
    with pytest.raises(BundleError, match="whole numbers"):
        ModelBundle.load(_tamper(b.path, tmp_path / "frac.sinr", [1, 2, 8, 0.5]))
    # same length, other values: accepted (the width cannot tell), and the list is what is used
    ok = ModelBundle.load(_tamper(b.path, tmp_path / "other.sinr", [1, 2, 8, 32]))
    assert ok.frequencies == (1, 2, 8, 32)
    # in memory too: validate() checks what write() would store
    b.meta["encoding"]["frequencies"] = [1, 2, 4, 8, 16]
    with pytest.raises(BundleError, match="5 frequencies gives 20"):
        b.write(tmp_path / "never.sinr")
    assert not (tmp_path / "never.sinr").exists()


def test_cli_trains_a_multifrequency_bundle(tmp_path, capsys):
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    code = main(["train", "--data", str(data), "--out", str(out), "--cap", "50", "--pos-weight", "3",
                 "--encoding", "sin_cos_multi", "--frequencies", "1,4,16", *FAST])
    assert code == 0, capsys.readouterr().err
    b = ModelBundle.load(out)
    assert b.frequencies == (1, 4, 16) and b.weights[network.INPUT_W].shape[1] == 12
    assert b.meta["training"]["encoding"] == "sin_cos_multi" and b.meta["training"]["frequencies"] == [1, 4, 16]
    out2 = tmp_path / "n.sinr"
    assert main(["train", "--data", str(data), "--out", str(out2), "--cap", "50", "--encoding", "sin_cos_multi",
                 "--n-frequencies", "3", *FAST]) == 0
    assert ModelBundle.load(out2).frequencies == (1, 2, 4)
    out3 = tmp_path / "d.sinr"  # no list given: the default
    assert main(["train", "--data", str(data), "--out", str(out3), "--cap", "50", "--encoding", "sin_cos_multi",
                 *FAST]) == 0
    assert ModelBundle.load(out3).frequencies == (1, 2, 4, 8, 16, 32)


@pytest.mark.parametrize("args, message", [
    (["--frequencies", "1,2"], "need --encoding sin_cos_multi"),
    (["--encoding", "sin_cos_multi", "--frequencies", "1,2.5"], "whole numbers"),
    (["--encoding", "sin_cos_multi", "--frequencies", "1,x"], "--frequencies"),
    (["--encoding", "sin_cos_multi", "--n-frequencies", "0"], "at least 1"),
    (["--encoding", "sin_cos_multi", "--frequencies", "1,2", "--n-frequencies", "2"], "not both"),
    (["--encoding", "sin_cos_multi", "--covariates", "x.tif"], "--covariates needs"),
])
def test_cli_refuses_bad_frequency_options(tmp_path, capsys, args, message):
    data = write_csv(tmp_path / "obs.csv")
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "m.sinr"), *args, *FAST])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert not (tmp_path / "m.sinr").exists()


def test_onnx_graph_holds_the_encoding(tmp_path):
    """The exported graph takes degrees: feeding it pre-encoded features is impossible (shape 2)."""
    b = export(tmp_path, make_model())
    sess = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[1] == 2
