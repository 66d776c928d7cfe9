"""import-official: a checkpoint built in the official SINR layout converts to an equivalent bundle,
and the taxon-name tables that SINR, iNaturalist and GBIF publish name its classes as they come."""
from __future__ import annotations

import codecs
import gzip
import io
import json
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.runtime import Predictor
from tests.helpers.official_reference import (
    DEPTH,
    TAXA,
    OfficialLinNet,
    OfficialResidualFCNet,
    W,
    official_encode,
    official_params,
    official_state,
    write_checkpoint,
)
from tests.tolerances import logit_atol, prob_atol
from training.cli import main
from training.official import OfficialCheckpointError, convert_official
from training.taxa_names import TaxaTableError, read_taxa_names


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
    # float32 onnxruntime vs a float64 reference: the float32 side's rounding only
    np.testing.assert_allclose(emb @ b.head.T, official_logits(state, lonlat), rtol=0, atol=logit_atol(emb, b.head))
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
    # environmental checkpoints import (test_official_env.py); here their weights read 4 features
    ("env", r"input_dim 20 \(weights \(32, 4\)\) does not fit input_enc 'env'"),
    ("sin_cos_env", r"input_dim 24 .* does not fit input_enc 'sin_cos_env' \(4 sin_cos features and the covariates\)"),
    ("unknown_encoding", "encoding 'wrap'.*'sin_cos', 'env', 'sin_cos_env', and only those"),
    ("unknown_architecture", "'HyperNet' network.*ResidualFCNet and LinNet"),
    ("head_bias", "class_emb.bias.*bias-free"),
    ("extra_block", "depth 3.*unexpected feats.5.w1.weight"),
    ("duplicate_taxa", "lists taxon 12 more than once"),
    ("linnet_env_dim", "input_dim 20.*4-d sin_cos"),
    ("taxa_count", "class_to_taxa has 3"),
    ("missing_block", "feats.4.w1.weight"),
    ("not_dict", "not an official SINR checkpoint"),
])
def test_bad_checkpoints_are_refused(tmp_path, capsys, case, message):
    ck = tmp_path / "bad.pt"
    if case == "pickled_code":
        torch.save({"state_dict": official_state(), "params": {"x": Evil()}}, ck)
    elif case in ("env", "sin_cos_env"):
        write_checkpoint(ck, input_enc=case, input_dim=20 if case == "env" else 24)
    elif case == "unknown_encoding":
        write_checkpoint(ck, input_enc="wrap")
    elif case == "unknown_architecture":
        write_checkpoint(ck, model="HyperNet")
    elif case == "head_bias":
        write_checkpoint(ck, official_state() | {"class_emb.bias": torch.zeros(len(TAXA))})
    elif case == "extra_block":
        st = official_state()
        write_checkpoint(ck, st | {k.replace("feats.4.", "feats.5."): v for k, v in st.items()
                                   if k.startswith("feats.4.")})
    elif case == "duplicate_taxa":
        write_checkpoint(ck, class_to_taxa=[3017, 12, 12, 777])
    elif case == "linnet_env_dim":
        write_checkpoint(ck, {"class_emb.weight": torch.ones(len(TAXA), 20)}, model="LinNet", input_dim=20)
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


# ---- the official networks (tests/helpers/official_reference.py) against the import ---------------


def random_lonlat(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)].astype(np.float32)


@pytest.mark.parametrize("arch", ["ResidualFCNet", "LinNet", "LinNet-without-model-param"])
def test_imported_probabilities_equal_the_official_forward_pass(tmp_path, arch):
    torch.manual_seed(3)
    n_classes = 6
    if arch == "ResidualFCNet":
        net = OfficialResidualFCNet(4, n_classes, 32, 3).eval()
        params = official_params("ResidualFCNet", n_classes, num_filts=32, depth=3)
    else:
        net = OfficialLinNet(4, n_classes).eval()
        params = official_params("LinNet", n_classes)
        if arch != "LinNet":
            del params["model"]  # the weights' names alone tell a LinNet
    lonlat = random_lonlat()
    with torch.no_grad():  # logits of spread ~6, so the comparison spans the whole sigmoid
        feats = net.feats(official_encode(lonlat))
        net.class_emb.weight.mul_(6.0 / float(net.class_emb(feats).std()))
    ck = tmp_path / "model.pt"
    torch.save({"state_dict": net.state_dict(), "params": params}, ck)
    fresh = type(net)(*((4, n_classes, 32, 3) if arch == "ResidualFCNet" else (4, n_classes)))
    fresh.load_state_dict(torch.load(ck, weights_only=True)["state_dict"], strict=True)  # official layout

    convert_official(ck, None, tmp_path / "m.sinr")
    b = ModelBundle.load(tmp_path / "m.sinr")
    with torch.no_grad():
        expected = fresh.eval()(official_encode(lonlat)).numpy()
        official_emb = fresh.feats(official_encode(lonlat)).numpy()
    assert expected.min() < 0.01 and expected.max() > 0.99
    # torch and the bundle's backends run the same float32 network, summing in other orders
    tol = prob_atol(logit_atol(official_emb, fresh.class_emb.weight.detach().numpy()))
    for backend in ("numpy", "onnxruntime"):
        got = Predictor(b, backend).predict_points(lonlat)
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol, err_msg=backend)
    assert b.meta["training"]["architecture"] == arch.split("-")[0]
    assert [s.code for s in b.species] == [str(t) for t in range(1001, 1007)]
    assert [s.name for s in b.species] == [s.code for s in b.species]  # no table: ids are the names
    if arch == "ResidualFCNet":
        assert b.embedding_dim == 32 and "conversion" not in b.meta["training"]
    else:
        assert b.embedding_dim == 8 and b.meta["training"]["conversion"].startswith("LinNet")
    assert b.meta["data"]["taxa_names"]["summary"] == \
        "names: no taxa table given; all 6 classes keep their taxon id as name."


# ---- taxon-name tables as they come -------------------------------------------------------------
# The model's taxa are TAXA = [3017, 48484, 12, 777]; each table names 3017, 48484 and 12 (777 is
# left unnamed) and, where it can, one taxon the model lacks (999).

NAMES = ["Columba livia", "Harmonia axyridis", "Cardinalis cardinalis", "777"]
INAT = ("taxon_id\tancestry\trank_level\trank\tname\tactive\n"
        "3017\t48460/1/2/355675/3/7251/2715/3017\t10\tspecies\tColumba livia\ttrue\n"
        "48484\t48460/1/47120\t10\tspecies\tHarmonia axyridis\ttrue\n"
        "999\t48460/1\t10\tspecies\tNot in the model\tfalse\n"
        "12\t48460/1/2\t10\tspecies\tCardinalis cardinalis\ttrue\n")


def _zip(*members: tuple[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members:
            zf.writestr(name, text)
    return buf.getvalue()


# (file bytes, expected layout words, rows ignored as not in the model, rows skipped as unreadable)
TABLES = {
    "sinr_web_app_names": (b"3017\tColumba livia\n48484\tHarmonia axyridis\n12\tCardinalis cardinalis\n"
                           b"999\tNot in the model\n", "tab-separated id and name, no header", 1, 0),
    "inat_taxa_csv": (INAT.encode(), "tab-separated with header, columns 'taxon_id' and 'name'", 1, 0),
    "inat_taxa_csv_gz": (gzip.compress(INAT.encode()), "tab-separated with header", 1, 0),
    "bom_crlf": (codecs.BOM_UTF8 + INAT.replace("\n", "\r\n").encode(), "tab-separated with header", 1, 0),
    "excel_unicode_text": (codecs.BOM_UTF16_LE + INAT.replace("\n", "\r\n").encode("utf-16-le"),
                           "tab-separated with header", 1, 0),
    "old_mac_cr": (INAT.replace("\n", "\r").encode(), "tab-separated with header", 1, 0),
    "macos_zip": (_zip(("taxa.csv", INAT), ("__MACOSX/._taxa.csv", "\x00\x05junk")), "tab-separated", 1, 0),
    "gbif_taxon_tsv": (b"taxonID\tparentNameUsageID\tscientificName\tscientificNameAuthorship\tcanonicalName\n"
                       b"3017\t1\tColumba livia Gmelin, 1789\tGmelin, 1789\tColumba livia\n"
                       b"48484\t1\tHarmonia axyridis (Pallas, 1773)\t(Pallas, 1773)\tHarmonia axyridis\n"
                       b"12\t1\tCardinalis cardinalis (Linnaeus, 1758)\t(Linnaeus, 1758)\tCardinalis cardinalis\n",
                       "columns 'taxonID' and 'canonicalName'", 0, 0),
    "csv_id_scientific_name": (b"id,scientific_name,rank\n3017,Columba livia,species\n48484,Harmonia axyridis,"
                               b"species\n12,Cardinalis cardinalis,species\n999,x,species\n",
                               "comma-separated with header, columns 'id' and 'scientific_name'", 1, 0),
    "semicolon_csv": (b"taxon_id;name\n3017;Columba livia\n48484;Harmonia axyridis\n12;Cardinalis cardinalis\n",
                      "semicolon-separated with header", 0, 0),
    "headerless_csv": (b"3017,Columba livia\n48484,Harmonia axyridis\n\n12,Cardinalis cardinalis\n",
                       "comma-separated id and name, no header", 0, 0),
    "float_ids_and_blank_lines": (b"taxon_id,name\n3017.0,Columba livia\n\n 48484 ,Harmonia axyridis\n"
                                  b"012,Cardinalis cardinalis\n\n", "comma-separated with header", 0, 0),
    "rows_without_name": (b"taxon_id,name\n3017,Columba livia\n48484,Harmonia axyridis\n555,\n,Nameless id\n"
                          b"12,Cardinalis cardinalis\n", "comma-separated with header", 0, 2),
    "official_meta_json": (json.dumps([{"taxon_id": 3017, "latin_name": "Columba livia", "common_name": "Rock Pigeon"},
                                       {"taxon_id": 48484, "latin_name": "Harmonia axyridis"},
                                       {"taxon_id": 12, "latin_name": "Cardinalis cardinalis"},
                                       {"taxon_id": 999, "latin_name": "Not in the model"}]).encode(),
                           "JSON list of objects", 1, 0),
    "json_id_name_objects": (json.dumps([{"id": "3017", "name": "Columba livia"}, {"id": 48484, "name":
                                         "Harmonia axyridis"}, {"id": 12, "name": "Cardinalis cardinalis"},
                                         {"rank": "species"}]).encode(), "JSON list of objects", 0, 1),
    "json_mapping": (json.dumps({"3017": "Columba livia", "48484": "Harmonia axyridis",
                                 "12": "Cardinalis cardinalis", "999": "x"}).encode(), "JSON object", 1, 0),
    "inat_api_results": (json.dumps({"total_results": 3, "results": [
        {"id": 3017, "name": "Columba livia", "rank": "species"},
        {"id": 48484, "name": "Harmonia axyridis", "rank": "species"},
        {"id": 12, "name": "Cardinalis cardinalis", "rank": "species"}]}).encode(), "JSON list of objects", 0, 0),
    "json_names_in_class_order": (json.dumps(["Columba livia", "Harmonia axyridis", "Cardinalis cardinalis",
                                              None]).encode(), "JSON list of names in class order", 0, 0),
}


@pytest.mark.parametrize("case", list(TABLES))
def test_taxa_tables_as_they_come(tmp_path, case):
    data, layout, n_ignored, n_unreadable = TABLES[case]
    path = tmp_path / "table.bin"  # the extension says nothing: layouts are sniffed from the content
    path.write_bytes(data)
    naming = read_taxa_names(path, TAXA)
    assert naming.names == NAMES
    assert layout in naming.layout
    assert (naming.n_named, naming.n_unnamed, naming.n_ignored, naming.n_unreadable) == (3, 1, n_ignored,
                                                                                          n_unreadable)


def test_names_with_commas_quotes_hybrid_signs_and_other_scripts(tmp_path):
    nfd = unicodedata.normalize("NFD", "Betula pendula Roth — берёза повислая")
    text = ('taxon_id,name,rank\n'
            '3017,"Quercus alba L., 1753",species\n'
            '48484,× Chitalpa tashkentensis,hybrid\n'
            f'12,"{nfd}",species\n'
            '777,"Salix ""alba""  \t var.\n caerulea",variety\n')
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    names = read_taxa_names(path, TAXA).names
    assert names == ["Quercus alba L., 1753", "× Chitalpa tashkentensis",
                     "Betula pendula Roth — берёза повислая", 'Salix "alba" var. caerulea']
    assert unicodedata.is_normalized("NFC", names[2])
    # the same names, headerless and unquoted: the name is everything after the first comma
    path.write_text("3017,Quercus alba L., 1753\n48484,× Chitalpa tashkentensis\n", encoding="utf-8")
    assert read_taxa_names(path, TAXA).names[:2] == ["Quercus alba L., 1753", "× Chitalpa tashkentensis"]


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b"Columba livia\nHarmonia axyridis\n", "cannot tell an id from a name.*Accepted layouts: 'id<TAB>name'"),
    (b"species,count\nColumba livia,3\n", r"header \(species, count\) names no id column.*Accepted layouts"),
    (b"taxon_id\trank\n3017\tspecies\n", "names no name column"),
    (json.dumps(["Columba livia", "Harmonia axyridis"]).encode(), "list of 2 names.*the model has 4 classes"),
    (b"[1, 2, 3, 4]", "JSON of this shape is not understood.*Accepted layouts"),
    (b'{"taxa": 3', "looks like JSON but cannot be parsed"),
    (b"3017\tColumba livia\n3017\tColumba oenas\n", "gives taxon 3017 two names: 'Columba livia' \\(line 1\\) "
                                                     "and 'Columba oenas' \\(line 2\\)"),
    ("taxon_id,name\n3017,Pic épeiche\n".encode("latin-1"), "not UTF-8"),
    (_zip(("a.csv", INAT), ("b.csv", INAT)), "zip archive with 2 files"),
])
def test_tables_that_cannot_be_understood_are_refused(tmp_path, data, message):
    (tmp_path / "taxa.txt").write_bytes(data)
    ck = write_checkpoint(tmp_path / "model.pt")
    with pytest.raises(TaxaTableError, match=message):
        convert_official(ck, tmp_path / "taxa.txt", tmp_path / "out.sinr")
    assert not (tmp_path / "out.sinr").exists()


def test_repeated_rows_with_the_same_name_are_one_taxon(tmp_path):
    (tmp_path / "t.tsv").write_text("3017\tColumba livia\n3017\tColumba livia\n12\tCardinalis cardinalis\n")
    naming = read_taxa_names(tmp_path / "t.tsv", TAXA)
    assert naming.names == ["Columba livia", "48484", "Cardinalis cardinalis", "777"]
    assert (naming.n_named, naming.n_unnamed, naming.n_ignored) == (2, 2, 0)


def test_cli_reports_what_the_table_named(tmp_path, capsys):
    """Case 13: the SINR web app's headerless names file and iNaturalist's taxa.csv, via the CLI."""
    ck = write_checkpoint(tmp_path / "model.pt")
    for file, data in (("taxa_02_08_2023_names.txt", TABLES["sinr_web_app_names"][0]), ("taxa.csv", INAT.encode())):
        (tmp_path / file).write_bytes(data)
        out = tmp_path / f"{file}.sinr"
        assert main(["import-official", str(ck), "--taxa", str(tmp_path / file), "--out", str(out)]) == 0
        b = ModelBundle.load(out)
        assert [s.name for s in b.species] == NAMES
        assert b.find_species("Cardinalis cardinalis").code == "12"
        err = capsys.readouterr().err
        assert f"names: 3 of 4 classes named from {file}" in err
        assert "1 keeps its taxon id as name; 1 row of the table names a taxon that is not in the model" in err
        assert b.meta["data"]["taxa_names"] | {"summary": ""} == {
            "file": file, "layout": b.meta["data"]["taxa_names"]["layout"], "n_named": 3, "n_unnamed": 1,
            "n_ignored": 1, "n_unreadable": 0, "summary": ""}
    (tmp_path / "bad.csv").write_text("species,count\nColumba livia,3\n")
    assert main(["import-official", str(ck), "--taxa", str(tmp_path / "bad.csv"),
                 "--out", str(tmp_path / "bad.sinr")]) == 2
    assert capsys.readouterr().err.startswith("error: Taxa table bad.csv: its header")
    assert not (tmp_path / "bad.sinr").exists()
    assert main(["import-official", str(ck), "--out", str(tmp_path / "ids.sinr")]) == 0  # no table: ids
    assert [s.name for s in ModelBundle.load(tmp_path / "ids.sinr").species] == [str(t) for t in TAXA]
