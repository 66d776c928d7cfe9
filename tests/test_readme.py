"""The README tells the truth about the plugin: the algorithms, parameters, labels, sizes and
screenshots it names are the code's, and the old checkout-only training steps are gone."""
from __future__ import annotations

import re
import runpy

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "sinr_qgis").rglob("*.py")))
# Buttons, menu entries, dialogs and fields the README sends users to, as the code spells them
LABELS = ("Set up PyTorch for me", "Set up PyTorch for training", "Import SINR checkpoint…", "Train…",
          "Train a SINR model", "Open model file…", "Check", "Python with PyTorch", "Install onnxruntime",
          "Predict on canvas extent", "What lives here?", "Species ranges panel", "Diagnostics…", "Checkpoint",
          "Species names", "Covariate rasters", "Save as", "Import", "Package source", "Add local evidence")


@pytest.fixture(scope="module")
def algorithms(qgis_app) -> dict[str, set[str]]:
    """Each registered algorithm's id and the names of its parameters and outputs."""
    from sinr_qgis.processing.provider import available_algorithms

    names = {}
    for alg in available_algorithms():
        alg.initAlgorithm()
        names[f"sinr:{alg.name()}"] = ({p.name() for p in alg.parameterDefinitions()}
                                       | {o.name() for o in alg.outputDefinitions()})
    return names


def test_every_algorithm_named_exists(algorithms):
    named = set(re.findall(r"\bsinr:([a-z_]+)", README))
    assert {"setup_training", "train_model", "import_sinr_checkpoint", "predict_range"} <= named
    assert {f"sinr:{n}" for n in named} <= set(algorithms), sorted(named)


def test_the_algorithm_table_names_real_parameters_and_outputs(algorithms):
    rows = re.findall(r"^\| `(sinr:[a-z_]+)` \|(.*)$", README, re.M)
    assert len(rows) == 8, [r[0] for r in rows]
    for alg, text in rows:
        keys = set(re.findall(r"`([A-Z][A-Z_]{2,})`", text))
        assert keys and keys <= algorithms[alg], (alg, sorted(keys - algorithms[alg]))
    # and the command-line example's parameters
    for alg, args in re.findall(r"qgis_process\.bin run (sinr:[a-z_]+) -- ((?:.*\\\n)*.*)", README):
        keys = set(re.findall(r"\b([A-Z][A-Z_]+)=", args))
        assert keys and keys <= algorithms[alg], (alg, sorted(keys - algorithms[alg]))


@pytest.mark.parametrize("label", LABELS)
def test_each_label_cited_is_the_codes(label):
    assert label in README
    assert f'"{label}' in SOURCE or f"'{label}" in SOURCE, label


def test_the_set_up_sizes_are_the_codes():
    from sinr_qgis.toolbelt.training_python import SIZE_MB

    assert f"about {SIZE_MB / 1000:.1f} GB on disk" in README and "a download of about 200 MB" in README
    assert "the download is about 200 MB" in SOURCE  # the button's tooltip says the same


def test_screenshots_are_the_ones_the_script_picks_and_exist():
    picks = runpy.run_path(str(ROOT / "scripts" / "readme_screenshots.py"))["PICKS"]
    shown = re.findall(r"docs/screenshots/([\w.-]+\.png)", README)
    assert sorted(set(shown)) == sorted(picks) and len(shown) == len(set(shown))
    for name in shown:
        assert (ROOT / "docs" / "screenshots" / name).is_file(), name


def test_install_is_for_zip_users_and_its_anchor_is_the_messages():
    from sinr_qgis.core.train_setup import README_INSTALL

    assert README_INSTALL.endswith("#install") and re.search(r"^## Install$", README, re.M)
    for stale in ("git clone", "training code not found", "copy its `training` folder"):
        assert stale not in README, stale
    # the two one-command lines at the top, and the Makefile targets they name
    assert "make demo    #" in README and "make test    #" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
