"""`make package`: the zip is what the QGIS plugin repository accepts, and it installs and loads.

The zip is built once per session by scripts/package.sh (pb_tool) into a temporary folder. The
install tests unzip it into clean, isolated profiles: the real desktop (under Xvfb) and
qgis_process, both with QGIS's own Python only (no project venv), as on a user's machine.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.desktop.qgis_desktop import ROOT, desktop_available, run_desktop

PLUGIN = "sinr_qgis"
MAX_BYTES = 25 * 1024 * 1024
FORBIDDEN = re.compile(r"(__pycache__/|\.py[co]$|/tests?/|/training/|\.csv(\.gz)?$|\.gpkg$|\.npy$|"
                       r"\.(so|dll|dylib|exe|pyd)$|\.part\.|/zip_build/|!README\.txt$|\.DS_Store$)")
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                     "email", "repository", "tracker", "homepage")


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], cwd=ROOT,
                          env=dict(os.environ, SINR_PACKAGE_DIR=str(out)),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zips = list(out.glob("sinr_qgis.*.zip"))
    assert len(zips) == 1, list(out.iterdir())
    return zips[0]


@pytest.fixture(scope="module")
def names(plugin_zip) -> list[str]:
    with zipfile.ZipFile(plugin_zip) as zf:
        assert zf.testzip() is None
        return zf.namelist()


def repo_files(folder: Path) -> list[str]:
    """Files of the repository's plugin package as zip names (symlinks followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if f.endswith((".pyc", ".pyo")):
                continue
            rel = (Path(dirpath) / f).relative_to(folder)
            out.append(f"{PLUGIN}/{rel.as_posix()}")
    return out


def test_zip_has_one_top_level_folder_with_the_required_files(plugin_zip, names):
    assert plugin_zip.name == f"sinr_qgis.{metadata_version()}.zip"
    assert {n.split("/")[0] for n in names} == {PLUGIN}
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", PLUGIN)
    for required in ("__init__.py", "metadata.txt", "LICENSE", "plugin.py", "resources/icons/sinr.svg"):
        assert f"{PLUGIN}/{required}" in names, required


def test_zip_holds_every_python_module_and_resource_of_the_package(names):
    """pb_tool.cfg lists folders and top-level modules: a new one must not be forgotten there."""
    expected = [n for n in repo_files(ROOT / PLUGIN)
                if n.endswith(".py") or f"{PLUGIN}/resources/" in n or n.endswith((".ui", ".qml", ".svg"))]
    missing = sorted(set(expected) - set(names))
    assert not missing, f"not in the zip (add them to pb_tool.cfg): {missing}"


def test_zip_holds_no_tests_training_data_compiled_or_binary_files(plugin_zip, names):
    bad = [n for n in names if FORBIDDEN.search("/" + n)]
    assert not bad, bad
    assert plugin_zip.stat().st_size < MAX_BYTES


def test_zip_ships_the_bundled_model_card_and_land_mask(names):
    from sinr_qgis.toolbelt.paths import BUNDLED_MODEL

    models = sorted(ROOT.glob("resources/models/*.sinr"))
    assert BUNDLED_MODEL.name in [m.name for m in models]
    for model in models:
        assert f"{PLUGIN}/resources/models/{model.name}" in names
        assert f"{PLUGIN}/resources/models/{model.stem}.md" in names  # its model card
    assert f"{PLUGIN}/resources/land_mask.tif" in names
    assert f"{PLUGIN}/resources/help/index.html" in names


def metadata_version() -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "metadata.txt", encoding="utf-8")
    return cfg["general"]["version"]


def test_zip_metadata_is_complete_and_states_the_optional_dependencies(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as zf:
        text = zf.read(f"{PLUGIN}/metadata.txt").decode("utf-8")
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read_string(text)
        general = cfg["general"]
        for key in REQUIRED_METADATA:
            assert general.get(key, "").strip(), key
        assert "<" not in general["about"] and "<" not in general["description"]  # no HTML
        about = general["about"].lower()
        assert "onnxruntime" in about and "torch" in about and "pip install" in about
        icon = general["icon"]
        assert icon.endswith((".png", ".jpg", ".jpeg")), icon  # the plugin repository's formats
        assert f"{PLUGIN}/{icon}" in zf.namelist()
        assert len(zf.read(f"{PLUGIN}/LICENSE")) > 1000


def test_metadata_category_matches_the_menu_and_the_email_is_the_projects():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "metadata.txt", encoding="utf-8")
    general = cfg["general"]
    # QGIS documents the category as the menu holding the plugin (Raster, Vector, Database, Mesh,
    # Web); this plugin's entries are in the Plugins menu, which has no category value, so none is set
    assert "addPluginToMenu(" in (ROOT / "sinr_qgis" / "plugin.py").read_text(encoding="utf-8")
    assert "category" not in general
    # a real address of the project (its GitHub organisation), not a placeholder domain
    owner = re.fullmatch(r"https://github\.com/([\w.-]+)/[\w.-]+", general["repository"])[1]
    assert general["email"] == f"{owner}@users.noreply.github.com"
    assert not re.search(r"@(example\.(org|com|net)|localhost|test|invalid)$", general["email"])


@pytest.fixture(scope="module")
def installed(plugin_zip, tmp_path_factory) -> Path:
    """The zip unzipped into a plugins folder, as the Plugin Manager's "Install from ZIP" does."""
    plugins = tmp_path_factory.mktemp("installed")
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    return plugins


@pytest.mark.desktop
def test_installed_zip_loads_in_a_clean_desktop_profile_without_optional_packages(installed, tmp_path):
    why = desktop_available()
    if why:
        pytest.skip(why)
    work = tmp_path / "work"
    work.mkdir()
    # QGIS's own Python and /usr/bin/python3 for training: a stock machine without the optional packages.
    run = run_desktop(tmp_path / "profiles", installed / PLUGIN, ROOT / "tests" / "desktop" / "load_check.py",
                      tmp_path / "result.json", with_venv=False, copy=True, timeout=150,
                      settings={"sinr_qgis/training/python": "/usr/bin/python3"},
                      extra_env={"SINR_LOAD_CHECK_DEEP": "1", "SINR_LOAD_CHECK_WORK": str(work)})
    assert run.result, f"QGIS gave no result (rc {run.returncode}):\n{run.log[-3000:]}"
    res = run.result
    assert "error" not in res, res["error"]
    assert PLUGIN in res["plugins"] and PLUGIN in res["active"], res
    # Loaded from the clean profile, not from this checkout.
    assert res["plugin_file"].startswith(str(tmp_path / "profiles" / "profiles")), res["plugin_file"]
    assert res["provider"]
    assert any("Diagnostics" in t for t in res["menu"]), res["menu"]
    # Stock QGIS Python: neither optional package is there, and the plugin still loads.
    assert res["importable"] == {"onnxruntime": False, "torch": False}
    assert not res["torch_loaded"]
    # The panel loads the bundled model from the zip and predicts with the numpy backend.
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.toolbelt.paths import BUNDLED_MODEL

    n_species = ModelBundle.load(BUNDLED_MODEL).n_species
    assert res["dock_backend"] == "numpy" and f"{n_species} species" in res["dock_model"], res["dock_model"]
    assert res["predict"]["n_valid"] > 500 and 0.0 <= res["predict"]["min"] < res["predict"]["max"] <= 1.0
    # Training is unavailable, and says why and how to fix it.
    assert "PyTorch is missing" in res["check_message"] and "pip install torch" in res["check_message"]
    reasons = " ".join(res["log_messages"] + res["bar_messages"] + [res["train_dialog_message"]])
    assert "training code" in reasons and "git clone" in reasons, reasons


def qgis_process(args: list[str], home: Path, plugins: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.update(HOME=str(home), QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(home))
    return subprocess.run(["qgis_process.bin", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=home)


def test_installed_zip_loads_in_qgis_process_with_a_clean_profile(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    enable = qgis_process(["plugins", "enable", PLUGIN], home, installed)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listed = qgis_process(["--json", "plugins"], home, installed)
    assert json.loads(listed.stdout)["plugins"][PLUGIN]["loaded"] is True
    algs = qgis_process(["--json", "list"], home, installed)
    providers = json.loads(algs.stdout)["providers"]
    assert "sinr" in providers, list(providers)
