"""The shipped resources: their paths spelled once, and the bundled model's catalogue entry (file,
SHA-256, label, input spec, licence), which matches the file and which the plugin's loader checks."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from sinr_qgis.core import model_cache, resources
from sinr_qgis.core.bundle import ModelBundle, file_sha256
from sinr_qgis.core.errors import BundleError
from sinr_qgis.core.resources import BUNDLED, BUNDLED_MODEL, check_bundled_model

ROOT = Path(__file__).resolve().parents[2]
QGIS_RESOURCES_USER = ROOT / "tests" / "desktop" / "first_afternoon.py"  # names QGIS's own resources folder


def test_the_resources_are_where_the_paths_say():
    assert resources.RESOURCES.resolve() == (ROOT / "resources").resolve()
    for path in (resources.LAND_MASK, resources.HELP_PAGE, resources.STYLES / "prediction.qml",
                 resources.ICONS / "sinr.svg", BUNDLED.card, BUNDLED.evaluation):
        assert path.is_file(), path
    assert BUNDLED_MODEL == resources.MODELS / BUNDLED.file == BUNDLED.path and BUNDLED.file.endswith(".sinr")
    stem = BUNDLED.file.removesuffix(".sinr")
    assert (BUNDLED.card.name, BUNDLED.evaluation.name) == (stem + ".md", stem + ".eval.json")
    assert resources.help_url("ranges") == f"file://{resources.HELP_PAGE}#ranges"
    assert resources.icon_path("sinr.svg") == str(resources.ICONS / "sinr.svg")


def test_the_catalogue_entry_describes_the_shipped_file():
    assert file_sha256(BUNDLED_MODEL) == BUNDLED.sha256
    bundle = ModelBundle.load(BUNDLED_MODEL)
    # v2: spherical harmonics of degree 10 (100 input features), the network alone taking coordinates
    assert (bundle.encoding, bundle.sh_degree, tuple(bundle.covariate_names), bundle.n_species) == \
        ("spherical_harmonics", 10, (), 169)
    assert (BUNDLED.encoding, BUNDLED.covariates, BUNDLED.n_species) == ("spherical_harmonics", (), 169)
    assert bundle.meta["licence"].startswith(BUNDLED.licence + " for the model weights")
    card = BUNDLED.card.read_text(encoding="utf-8")
    assert f"| SHA-256 | `{BUNDLED.sha256}` |" in card and f"**{BUNDLED.licence}**" in card
    assert (BUNDLED.label, BUNDLED.taxa) == ("North American trees", "trees")
    report = json.loads(BUNDLED.evaluation.read_text(encoding="utf-8"))
    assert report["model"] == {"file": BUNDLED.file, "sha256": BUNDLED.sha256}
    check_bundled_model(bundle)  # the shipped file passes


def test_a_changed_bundled_file_is_refused_and_other_files_pass(tmp_path, monkeypatch):
    bundle = ModelBundle.load(BUNDLED_MODEL)
    monkeypatch.setattr(resources, "BUNDLED", dataclasses.replace(BUNDLED, sha256="ab" * 32))
    with pytest.raises(BundleError) as err:
        check_bundled_model(bundle)
    assert str(err.value) == (
        f"The bundled model {BUNDLED_MODEL} is not the file the plugin shipped (SHA-256 {BUNDLED.sha256[:12]}…, "
        "expected abababababab…): it was changed or damaged. Reinstall the plugin, or choose another .sinr "
        "model file.")
    copy = tmp_path / BUNDLED.file  # the same name elsewhere is not the bundled model
    copy.write_bytes(BUNDLED_MODEL.read_bytes())
    check_bundled_model(ModelBundle.load(copy))


def test_the_plugin_loader_checks_the_bundled_file(monkeypatch):
    monkeypatch.setattr(model_cache, "_cache", {})  # a bundle loaded before was checked then
    monkeypatch.setattr(resources, "BUNDLED", dataclasses.replace(BUNDLED, sha256="ab" * 32))
    for path in ("", str(BUNDLED_MODEL)):  # empty = the bundled model, or its file chosen by name
        with pytest.raises(BundleError, match=rf"is not the file the plugin shipped \(SHA-256 {BUNDLED.sha256[:12]}…, "
                                              r"expected abababababab…\)"):
            model_cache.load_model(path)
    monkeypatch.setattr(resources, "BUNDLED", BUNDLED)
    assert model_cache.load_model("").sha256 == BUNDLED.sha256


def _resource_spellings(path: Path) -> list[str]:
    """The strings in ``path`` that spell a resource path: a ``/`` join with "resources", or the
    bundled model's file name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    joined = [side.value for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
              for side in (n.left, n.right) if isinstance(side, ast.Constant) and side.value == "resources"]
    return joined + [t for t in texts if t.endswith(BUNDLED.file)]


def test_resource_paths_are_spelled_only_in_core_resources():
    # the land mask, styles, help page and bundled model paths were written out in core, toolbelt,
    # the benchmarks, a script and the tests; a copy drifts when a file moves or the model is replaced
    exempt = {Path(resources.__file__).resolve(), Path(__file__).resolve(), QGIS_RESOURCES_USER}
    offenders = [f"{path.relative_to(ROOT)}: {text!r}"
                 for folder in ("sinr_qgis", "training", "scripts", "tests")
                 for path in sorted((ROOT / folder).rglob("*.py")) if path not in exempt
                 for text in _resource_spellings(path)]
    assert offenders == []
