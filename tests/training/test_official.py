"""import-official: a checkpoint built in the official SINR layout converts to an equivalent bundle."""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core.bundle import ModelBundle
from training.cli import main
from training.official import OfficialCheckpointError, convert_official

W, DEPTH, TAXA = 32, 3, [3017, 48484, 12, 777]


def official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """The official ResidualFCNet layout: feats = Sequential(Linear, ReLU, ResLayer x depth)."""
    g = torch.Generator().manual_seed(seed)
    st = {"feats.0.weight": torch.randn(W, 4, generator=g), "feats.0.bias": torch.randn(W, generator=g)}
    for i in range(DEPTH):
        for lin in ("w1", "w2"):
            st[f"feats.{i + 2}.{lin}.weight"] = torch.randn(W, W, generator=g) * 0.2
            st[f"feats.{i + 2}.{lin}.bias"] = torch.randn(W, generator=g) * 0.2
    st["class_emb.weight"] = torch.randn(len(TAXA), W, generator=g)
    return st


def write_checkpoint(path: Path, state=None, **params) -> Path:
    p = {"class_to_taxa": TAXA, "input_enc": "sin_cos", "num_filts": W, "depth": DEPTH,
         "num_classes": len(TAXA), "input_dim": 4, "loss": "an_full"} | params
    torch.save({"state_dict": collections.OrderedDict(state or official_state()), "params": p}, path)
    return path


def write_taxa(path: Path) -> Path:
    path.write_text("taxon_id,name\n3017,Columba livia\n48484,Harmonia axyridis\n12,Cardinalis cardinalis\n")
    return path


def official_logits(state: dict[str, torch.Tensor], lonlat: np.ndarray) -> np.ndarray:
    """The official forward pass written out independently in numpy, from the official names."""
    s = {k: v.numpy().astype(np.float64) for k, v in state.items()}
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1]) * 2
    x = np.stack([np.sin(lon), np.sin(lat), np.cos(lon), np.cos(lat)], 1)
    h = np.maximum(x @ s["feats.0.weight"].T + s["feats.0.bias"], 0)
    for i in range(2, 2 + DEPTH):
        t = np.maximum(h @ s[f"feats.{i}.w1.weight"].T + s[f"feats.{i}.w1.bias"], 0)
        h = h + np.maximum(t @ s[f"feats.{i}.w2.weight"].T + s[f"feats.{i}.w2.bias"], 0)
    return h @ s["class_emb.weight"].T


def test_converted_bundle_reproduces_the_official_network(tmp_path):
    state = official_state()
    ck = write_checkpoint(tmp_path / "model.pt", state)
    bundle = convert_official(ck, write_taxa(tmp_path / "taxa.csv"), tmp_path / "inat.sinr")
    b = ModelBundle.load(tmp_path / "inat.sinr")
    assert [s.code for s in b.species] == ["3017", "48484", "12", "777"]
    assert [s.name for s in b.species] == ["Columba livia", "Harmonia axyridis", "Cardinalis cardinalis", "777"]
    assert b.meta["architecture"]["depth"] == DEPTH and b.embedding_dim == W
    assert b.meta["training"]["params"]["loss"] == "an_full" and b.meta["data"]["file"] == "model.pt"
    rng = np.random.default_rng(1)
    lonlat = np.c_[rng.uniform(-180, 180, 300), rng.uniform(-90, 90, 300)].astype(np.float32)
    emb = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"]).run(
        ["embedding"], {"lonlat": lonlat})[0]
    np.testing.assert_allclose(emb @ b.head.T, official_logits(state, lonlat), rtol=1e-4, atol=1e-3)
    assert bundle.sha256 == b.sha256


def test_block_order_matters(tmp_path):
    """Swapping two blocks must change the output: the mapping is checked, not just the shapes."""
    state = official_state()
    swapped = dict(state)
    for lin in ("w1", "w2"):
        for kind in ("weight", "bias"):
            a, b = f"feats.2.{lin}.{kind}", f"feats.3.{lin}.{kind}"
            swapped[a], swapped[b] = state[b], state[a]
    convert_official(write_checkpoint(tmp_path / "s.pt", swapped), write_taxa(tmp_path / "t.csv"), tmp_path / "s.sinr")
    b = ModelBundle.load(tmp_path / "s.sinr")
    lonlat = np.array([[10.0, 20.0], [-70.0, -30.0]], np.float32)
    emb = ort.InferenceSession(b.onnx_bytes, providers=["CPUExecutionProvider"]).run(None, {"lonlat": lonlat})[0]
    assert not np.allclose(emb @ b.head.T, official_logits(state, lonlat), rtol=1e-3)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


@pytest.mark.parametrize("case, message", [
    ("pickled_code", "cannot be loaded safely"),
    ("env", "only coordinate models"),
    ("taxa_count", "class_to_taxa has 3"),
    ("missing_block", "feats.4.w1.weight"),
    ("not_dict", "not an official SINR checkpoint"),
])
def test_bad_checkpoints_are_refused(tmp_path, capsys, case, message):
    ck = tmp_path / "bad.pt"
    if case == "pickled_code":
        torch.save({"state_dict": official_state(), "params": {"x": Evil()}}, ck)
    elif case == "env":
        write_checkpoint(ck, input_enc="env", input_dim=20)
    elif case == "taxa_count":
        write_checkpoint(ck, class_to_taxa=TAXA[:3])
    elif case == "missing_block":
        st = official_state()
        del st["feats.4.w1.weight"]
        write_checkpoint(ck, st)
    else:
        torch.save([1, 2, 3], ck)
    with pytest.raises(OfficialCheckpointError, match=message):
        convert_official(ck, write_taxa(tmp_path / "t.csv"), tmp_path / "out.sinr")
    assert not (tmp_path / "out.sinr").exists()
    assert "code ran" not in capsys.readouterr().out  # nothing in the file was executed


def test_cli_import_official(tmp_path, capsys):
    ck = write_checkpoint(tmp_path / "model.pt")
    code = main(["import-official", str(ck), "--taxa", str(write_taxa(tmp_path / "taxa.csv")),
                 "--out", str(tmp_path / "m.sinr")])
    assert code == 0 and ModelBundle.load(tmp_path / "m.sinr").n_species == 4
    capsys.readouterr()
    code = main(["import-official", str(tmp_path / "none.pt"), "--taxa", str(tmp_path / "taxa.csv"),
                 "--out", str(tmp_path / "x.sinr")])
    assert code == 2 and capsys.readouterr().err.startswith("error: Checkpoint")
