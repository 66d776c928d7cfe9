"""`make package`: the zip is what the QGIS plugin repository accepts, and it installs and loads.

The zip is built once per session by scripts/package.sh (pb_tool) into a temporary folder. The
install tests unzip it into clean, isolated profiles: the real desktop (under Xvfb) and
qgis_process, both with QGIS's own Python only (no project venv), as on a user's machine.
"""
from __future__ import annotations

import configparser
import html
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.desktop.qgis_desktop import ROOT, require_desktop, run_desktop

# Every test but the metadata check builds the zip with scripts/package.sh: marked integration.
PLUGIN = "sinr_qgis"
MAX_BYTES = 25 * 1024 * 1024
FORBIDDEN = re.compile(r"(__pycache__/|\.py[co]$|/tests?/|/benchmarks/|\.csv(\.gz)?$|\.gpkg$|\.npy$|"
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


@pytest.mark.integration
def test_zip_has_one_top_level_folder_with_the_required_files(plugin_zip, names):
    assert plugin_zip.name == f"sinr_qgis.{metadata_version()}.zip"
    assert {n.split("/")[0] for n in names} == {PLUGIN}
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", PLUGIN)
    for required in ("__init__.py", "metadata.txt", "LICENSE", "plugin.py", "resources/icons/sinr.svg"):
        assert f"{PLUGIN}/{required}" in names, required


@pytest.mark.integration
def test_zip_holds_every_python_module_and_resource_of_the_package(names):
    """pb_tool.cfg lists folders and top-level modules: a new one must not be forgotten there."""
    expected = [n for n in repo_files(ROOT / PLUGIN)
                if n.endswith(".py") or f"{PLUGIN}/resources/" in n or n.endswith((".ui", ".qml", ".svg"))]
    missing = sorted(set(expected) - set(names))
    assert not missing, f"not in the zip (add them to pb_tool.cfg): {missing}"


@pytest.mark.integration
def test_zip_carries_the_training_code_without_its_benchmarks(plugin_zip, names):
    """The training package rides along as sinr_qgis/training, byte for byte, so an installed plugin
    can train; its benchmarks, results and configs stay in the repository."""
    wanted = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "training").glob("*.py"))
    carried = sorted(n.removeprefix(f"{PLUGIN}/") for n in names
                     if n.startswith(f"{PLUGIN}/training/") and not n.endswith("/"))
    assert carried == wanted and "training/cli.py" in carried and "training/__main__.py" in carried
    with zipfile.ZipFile(plugin_zip) as zf:
        for rel in wanted:
            assert zf.read(f"{PLUGIN}/{rel}") == (ROOT / rel).read_bytes(), rel


@pytest.mark.integration
def test_zip_holds_no_tests_training_data_compiled_or_binary_files(plugin_zip, names):
    bad = [n for n in names if FORBIDDEN.search("/" + n)]
    assert not bad, bad
    assert plugin_zip.stat().st_size < MAX_BYTES


@pytest.mark.integration
def test_zip_ships_the_bundled_model_card_and_land_mask(names):
    from sinr_qgis.core.resources import BUNDLED_MODEL

    models = sorted(ROOT.glob("resources/models/*.sinr"))
    assert BUNDLED_MODEL.name in [m.name for m in models]
    for model in models:
        assert f"{PLUGIN}/resources/models/{model.name}" in names
        assert f"{PLUGIN}/resources/models/{model.stem}.md" in names  # its model card
    assert f"{PLUGIN}/resources/land_mask.tif" in names
    assert f"{PLUGIN}/resources/help/index.html" in names


@pytest.mark.integration
def test_package_builds_without_the_training_stack(tmp_path):
    """`make package` does not run `make setup` (torch): pb_tool comes from its own small venv."""
    dry = subprocess.run(["make", "-n", "package"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "setup.sh" not in dry.stdout and "package.sh" in dry.stdout, dry.stdout
    # the packaging venv that `make setup` prepared (scripts/package.sh --venv-only): nothing downloaded here
    venv = ROOT / "build" / "package-venv"
    env = dict(os.environ, SINR_PACKAGE_DIR=str(tmp_path / "out"))
    env.pop("SINR_PACKAGE_VENV", None)
    run = subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(list((tmp_path / "out").glob("sinr_qgis.*.zip"))) == 1
    assert (venv / "bin" / "pb_tool").is_file()
    has_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert has_torch.returncode != 0  # the packaging venv holds pb_tool, not the training stack


@pytest.mark.integration
def test_help_points_only_to_what_the_zip_carries(names, plugin_zip, qgis_app):
    """Links of the guide are its own anchors or web addresses; files named in the guide, the
    algorithms' help and the messages users see exist in the zip; the README is named with its URL."""
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.resources import BUNDLED_MODEL
    from sinr_qgis.core.train_setup import README_INSTALL, setup_steps
    from sinr_qgis.processing.provider import available_algorithms

    with zipfile.ZipFile(plugin_zip) as zf:
        guide = zf.read(f"{PLUGIN}/resources/help/index.html").decode("utf-8")
        about = zf.read(f"{PLUGIN}/metadata.txt").decode("utf-8")
    anchors = set(re.findall(r'<a (?:name|id)="([^"]+)"', guide))
    for href in re.findall(r'href="([^"]+)"', guide):
        assert href.startswith("https://") or (href.startswith("#") and href[1:] in anchors), href
    texts = {"guide": guide, "metadata": about, "card": ModelBundle.load(BUNDLED_MODEL).card(),
             "set-up steps": setup_steps("/plugins/sinr_qgis")}
    for alg in available_algorithms():
        alg.initAlgorithm()
        texts[alg.name()] = alg.shortHelpString() + " ".join(p.description() for p in alg.parameterDefinitions())
    for where, text in texts.items():
        for path in re.findall(r"(?<![\w/.])((?:resources|docs|training|tests|scripts|shared)/[\w./-]*\w)", text):
            assert path.startswith("resources/") and f"{PLUGIN}/{path}" in names, (where, path)
        for mention in re.finditer(r"README", text):
            assert "https://github.com/sinr-qgis/sinr-qgis" in text[mention.start():mention.start() + 120], (
                where, text[mention.start() - 60:mention.start() + 60])
    assert README_INSTALL in guide


def metadata_version() -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "metadata.txt", encoding="utf-8")
    return cfg["general"]["version"]


@pytest.mark.integration
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


@pytest.mark.integration
@pytest.mark.desktop
def test_installed_zip_loads_in_a_clean_desktop_profile_without_optional_packages(installed, tmp_path):
    require_desktop()
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
    from sinr_qgis.core.resources import BUNDLED_MODEL

    n_species = ModelBundle.load(BUNDLED_MODEL).n_species
    assert res["dock_backend"] == "numpy" and f"{n_species} species" in res["dock_model"], res["dock_model"]
    assert res["predict"]["n_valid"] > 500 and 0.0 <= res["predict"]["min"] < res["predict"]["max"] <= 1.0
    # The zip carries the training code; the stock Python has no PyTorch: said, with "Set up PyTorch for me"
    assert "PyTorch is missing" in res["check_message"] and " -m pip install " in res["check_message"]
    reasons = html.unescape(" ".join(res["log_messages"] + res["bar_messages"] + [res["train_dialog_message"]]))
    assert "training code" not in reasons and "git clone" not in reasons, reasons
    assert "To set up training on Linux, click 'Set up PyTorch for me'" in reasons, reasons


def qgis_process(args: list[str], home: Path, plugins: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.update(HOME=str(home), QGIS_PLUGINPATH=str(plugins), QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=str(home))
    return subprocess.run(["qgis_process.bin", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=home)


@pytest.mark.integration
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


def _points(path: Path) -> Path:
    """A point layer (GeoPackage, EPSG:4326) of 3 species, 10 points each, on three continents."""
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    layer = ds.CreateLayer("obs", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("species", ogr.OFTString))
    for name, lon, lat in (("Aus bus", -100, 40), ("Cus dus", 10, 50), ("Eus fus", 140, -25)):
        for i in range(10):
            f = ogr.Feature(layer.GetLayerDefn())
            f.SetField("species", name)
            f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({lon + i % 5} {lat + i // 5})"))
            layer.CreateFeature(f)
    ds = None
    return path


TINY = ["EPOCHS=40", "BATCH_SIZE=32", "WIDTH=32", "DEPTH=1", "THREADS=1"]


@pytest.mark.integration
def test_installed_zip_says_pytorch_is_missing_before_exporting(installed, tmp_path):
    """A zip install has the training code; with a Python that has no PyTorch, sinr:train_model
    says so once, offering "Set up PyTorch for me", before it exports a single observation."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    points = _points(tmp_path / "obs.gpkg")
    assert qgis_process(["plugins", "enable", PLUGIN], home, installed).returncode == 0
    run = qgis_process(["run", "sinr:train_model", "--", f"INPUT={points}", "SPECIES_FIELD=species",
                        "PYTHON=/usr/bin/python3", f"OUTPUT={tmp_path / 'm.sinr'}"], home, installed)
    assert run.returncode != 0
    text = run.stdout + run.stderr
    assert text.count("PyTorch is missing: the Python interpreter /usr/bin/python3") == 1, text
    assert "To set up training on Linux, click 'Set up PyTorch for me'" in text and "sinr:setup_training" in text
    assert "training code" not in text and "git clone" not in text
    assert "exported" not in text and not (tmp_path / "m.sinr").exists()


@pytest.mark.integration
def test_qgis_process_trains_with_the_zips_training_code(installed, tmp_path):
    """sinr:train_model from the zip install, PYTHON = a Python with torch that has no checkout on its
    path: the child runs the zip's own copy (sinr_qgis.training) and writes the bundle."""
    from sinr_qgis.core.bundle import ModelBundle

    python = ROOT / ".venv" / "bin" / "python"
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    bare = {"PATH": os.environ["PATH"], "HOME": str(home)}
    # that Python cannot import this checkout's code by itself: only the zip can give it to the child
    for module in ("training", "sinr_qgis"):
        probe = subprocess.run([str(python), "-c", f"import {module}"], cwd=home, env=bare, capture_output=True)
        assert probe.returncode != 0, module
    points = _points(tmp_path / "obs.gpkg")
    out = tmp_path / "m.sinr"
    assert qgis_process(["plugins", "enable", PLUGIN], home, installed).returncode == 0
    run = qgis_process(["run", "sinr:train_model", "--", f"INPUT={points}", "SPECIES_FIELD=species",
                        f"PYTHON={python}", f"OUTPUT={out}", *TINY], home, installed)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    bundle = ModelBundle.load(out)
    assert sorted(s.name for s in bundle.species) == ["Aus bus", "Cus dus", "Eus fus"]
    assert bundle.meta["data"]["n_used"] == 30


def lonlat_centres(ds) -> np.ndarray:
    """The lon/lat centres of a north-up EPSG:4326 raster's pixels, row by row: [H * W, 2]."""
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    lon = x0 + (np.arange(ds.RasterXSize) + 0.5) * dx
    lat = y0 + (np.arange(ds.RasterYSize) + 0.5) * dy
    return np.stack(np.meshgrid(lon, lat), -1).reshape(-1, 2).astype(np.float32)


def epsg(ds) -> str | None:
    from osgeo import osr

    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    return srs.GetAuthorityCode(None)


# A map written by QGIS (the numpy backend, grid blocks) against the model computed here on the pixel
# centres (numpy points; torch for the official network): the same float32 network along two paths
# agrees to ~1e-7 (tests/tolerances.py); 1e-5 leaves a margin and still catches a pixel off by a cell.
MAP_ATOL = 1e-5


@pytest.fixture
def training_folder(tmp_path):
    """A new folder for the training Python, with a space in its name as in many Windows profiles;
    removed afterwards (about 1 GB)."""
    folder = tmp_path / "training python"
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.slow
def test_zip_install_sets_up_pytorch_trains_imports_and_maps(installed, tmp_path, shared_data, training_folder):
    """From a zip in a clean profile with nothing else, qgis_process.bin alone: sinr:setup_training (from a
    local package source: no download) makes the training Python in a chosen folder; sinr:train_model
    trains from a point layer with it without being told; sinr:import_sinr_checkpoint converts an
    official-layout checkpoint named by the web app's names file (PYTHON = that Python); sinr:predict_range
    maps a species of each model, pixel for pixel as the models themselves compute it."""
    from osgeo import gdal

    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.runtime import Predictor
    from tests.desktop.official_checkpoint import TAXA, fit_official_checkpoint
    from tests.helpers.setup_helpers import local_torch_source

    wheels = local_torch_source(tmp_path / "wheels")
    official = fit_official_checkpoint(tmp_path / "official", shared_data)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    assert qgis_process(["plugins", "enable", PLUGIN], home, installed).returncode == 0
    setup = qgis_process(["--json", "run", "sinr:setup_training", "--", f"FOLDER={training_folder}",
                          f"PACKAGE_SOURCE={wheels}"], home, installed, timeout=900)
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
    venv_python = training_folder / "bin" / "python"
    torch_version = next(wheels.glob("torch-*.whl")).name.split("-")[1]
    assert json.loads(setup.stdout)["results"] == {"FOLDER": str(training_folder), "PYTHON": str(venv_python),
                                                   "TORCH": torch_version}
    assert "Base interpreter: QGIS's Python" in setup.stdout + setup.stderr
    assert json.loads((training_folder / "sinr_training.json").read_text())["source"] == str(wheels)

    points = _points(tmp_path / "obs.gpkg")
    model = tmp_path / "m.sinr"
    train = qgis_process(["run", "sinr:train_model", "--", f"INPUT={points}", "SPECIES_FIELD=species",
                          f"OUTPUT={model}", *TINY], home, installed)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert f"Python for training: {venv_python}" in train.stdout  # the set-up's Python, remembered
    trained = ModelBundle.load(model)
    assert sorted(s.name for s in trained.species) == ["Aus bus", "Cus dus", "Eus fus"]

    imported = tmp_path / "official.sinr"
    run = qgis_process(["run", "sinr:import_sinr_checkpoint", "--", f"INPUT={official.path}",
                        f"TAXA={official.names}", f"PYTHON={venv_python}", f"OUTPUT={imported}"], home, installed)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "N_SPECIES:\t3" in run.stdout
    assert [(s.code, s.name) for s in ModelBundle.load(imported).species] == [(str(t), n) for t, n, _c in TAXA]

    maps = {}
    for name, bundle_path, species, extent, pixel in (
            ("aus", model, "Aus bus", "-180,180,-90,90 [EPSG:4326]", "2"),
            ("pinus", imported, "Pinus taeda", "-100,-60,24,50 [EPSG:4326]", "0.5")):
        raster = tmp_path / f"{name}.tif"
        predict = qgis_process(["run", "sinr:predict_range", "--", f"MODEL={bundle_path}", f"SPECIES={species}",
                                f"EXTENT={extent}", f"PIXEL_SIZE={pixel}", "MASK_OCEAN=false", f"OUTPUT={raster}"],
                               home, installed)
        assert predict.returncode == 0, predict.stdout[-3000:] + predict.stderr[-3000:]
        maps[name] = gdal.Open(str(raster))
    aus, pinus = maps["aus"], maps["pinus"]
    assert aus.GetGeoTransform() == (-180.0, 2.0, 0.0, 90.0, 0.0, -2.0)
    assert pinus.GetGeoTransform() == (-100.0, 0.5, 0.0, 50.0, 0.0, -0.5)
    assert [(ds.RasterXSize, ds.RasterYSize) for ds in (aus, pinus)] == [(180, 90), (80, 52)]
    assert epsg(aus) == epsg(pinus) == "4326"
    values = aus.GetRasterBand(1).ReadAsArray().ravel()
    expected = Predictor(trained, "numpy").predict_points(lonlat_centres(aus))[:, trained.find_species("Aus bus").index]
    np.testing.assert_allclose(values, expected, rtol=0, atol=MAP_ATOL)
    # the species' own records (around 100 W, 40 N) score above the other species' (10 E, 50 N)
    grid = values.reshape(90, 180)
    assert grid[(90 - 41) // 2, (180 - 98) // 2] > grid[(90 - 51) // 2, (180 + 12) // 2]
    values = pinus.GetRasterBand(1).ReadAsArray().ravel()
    np.testing.assert_allclose(values, official.probabilities(lonlat_centres(pinus), 0), rtol=0, atol=MAP_ATOL)
    assert values.max() > 0.9 and values.min() < 0.1  # the pine's range in the south-east, not a flat map
