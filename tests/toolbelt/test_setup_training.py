""""Set up PyTorch for me": toolbelt/training_python.py, tasks/setup_training_task.py,
processing/setup_training.py and gui/setup_training_button.py.

Nothing is downloaded. The set-up runs for real (venv, pip, the import check in the new
environment, the marker, the atomic replace) on tiny fake torch / onnx / ml_dtypes wheels from a
local folder (tests/helpers/setup_helpers.py); failures are real pip runs where a machine can make
them (a closed port for "no network", a local proxy that answers 407, a wheel whose dependency
clashes with the base's numpy). The real PyTorch install is tests/plugin/test_package.py's slow test.
"""
from __future__ import annotations

import http.server
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import processing
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsSettings

from sinr_qgis.core.errors import CancelledError, DependencyInstallError
from sinr_qgis.core.train_setup import CPU_INDEX
from sinr_qgis.toolbelt import interpreter
from sinr_qgis.toolbelt import settings as plugin_settings
from sinr_qgis.toolbelt import training_python as tp
from tests.helpers.prediction_helpers import sinr_provider  # noqa: F401
from tests.helpers.refusing_proxy import RefusingProxy
from tests.helpers.setup_helpers import FAKE_TORCH, fake_torch_source, quick_base, wheel

# a refused connection fails after one retry, not five (with none, pip does not say why it failed)
FAST_FAIL = {"PIP_RETRIES": "1", "PIP_TIMEOUT": "3"}
PYTHON_KEY = plugin_settings.key("training/python")


@pytest.fixture
def training_setting():
    """The training interpreter setting, restored after the test."""
    settings = QgsSettings()
    before = settings.value(PYTHON_KEY, None)
    yield
    if before is None:
        settings.remove(PYTHON_KEY)
    else:
        settings.setValue(PYTHON_KEY, before)


@pytest.fixture(scope="module")
def fake_source(tmp_path_factory) -> Path:
    return fake_torch_source(tmp_path_factory.mktemp("fake-wheels"))


def _base_numpy(python: Path) -> tuple[str, str]:
    out = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__); print(numpy.__file__)"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return out[0], out[1]


def _fake_python(folder: Path, name: str, answer: dict | None) -> Path:
    """A program that answers the base probe with ``answer`` (None: it is no Python at all)."""
    path = folder / name
    body = f"echo '{json.dumps(answer)}'" if answer is not None else "echo 'not python' >&2; exit 1"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


GOOD = {"version": [3, 11], "venv": "yes", "ensurepip": "yes", "pip": "23.0", "numpy": "1.24.2", "gdal": "3.6.2"}


# ---- which Python the environment is built on --------------------------------------------------
def test_a_venv_base_is_probed_through_to_its_real_python():
    """The project's .venv (where the tests run) is itself a venv: the new environment's packages
    are those of the venv's base, so that is what is probed, with its GDAL and its numpy."""
    from osgeo import gdal

    base = tp.probe_base(sys.executable, "QGIS's Python")
    real = Path(sys._base_executable)
    assert base.path == real and base.version == sys.version_info[:2]
    assert base.gdal == gdal.__version__ and base.numpy == _base_numpy(real)[0]
    assert base.describe() == (f"QGIS's Python {sys.version_info[0]}.{sys.version_info[1]} ({real}; GDAL "
                               f"{gdal.__version__}, numpy {base.numpy})")


def test_no_usable_python_names_each_one_tried_and_what_to_do(tmp_path):
    qgis = [_fake_python(tmp_path, "qgis-python", {**GOOD, "venv": None}), tmp_path / "absent"]
    qgis.append(qgis[0])  # QGIS's Python listed twice (its prefix and its program's folder): said once
    system = [_fake_python(tmp_path, "python3.8", {**GOOD, "version": [3, 8]}),
              _fake_python(tmp_path, "python3.12", {**GOOD, "gdal": None}),
              _fake_python(tmp_path, "python3.13", {**GOOD, "pip": None, "ensurepip": None}),
              _fake_python(tmp_path, "python", None), qgis[0]]
    with pytest.raises(DependencyInstallError) as err:
        tp.find_base_python(qgis, system)
    assert err.value.reason == "no_interpreter"
    assert str(err.value) == (
        f"No Python on this computer can hold PyTorch for training: {tmp_path}/qgis-python has no venv module; "
        f"{tmp_path}/python3.8 is Python 3.8; PyTorch needs 3.9 or newer; {tmp_path}/python3.12 has no GDAL "
        f"Python bindings (osgeo), which training needs; {tmp_path}/python3.13 has neither pip nor ensurepip; "
        f"{tmp_path}/python does not run as Python. Choose an existing Python that has PyTorch, onnx and GDAL "
        "under 'Use an existing Python' in the Train dialog (or the PYTHON parameter of sinr:train_model), or "
        "install QGIS from its official installer, whose Python has venv and pip, then set up again.")


def test_qgis_python_comes_first_and_a_system_python_stands_in_for_it(tmp_path):
    qgis_ok = _fake_python(tmp_path, "qgis-python", GOOD)
    system_ok = _fake_python(tmp_path, "python3.12", {**GOOD, "version": [3, 12]})
    assert tp.find_base_python([qgis_ok], [system_ok]).origin == "QGIS's Python"
    qgis_bad = _fake_python(tmp_path, "qgis-no-venv", {**GOOD, "venv": None})
    base = tp.find_base_python([qgis_bad], [system_ok])
    assert (base.path, base.version, base.origin) == (system_ok, (3, 12), "a system Python")
    assert base.describe().startswith("a system Python 3.12 (")  # the log says which


def test_a_chosen_base_python_that_cannot_is_refused_with_why(tmp_path):
    chosen = _fake_python(tmp_path, "python3", {**GOOD, "gdal": None})
    with pytest.raises(DependencyInstallError) as err:
        tp.setup_training(tmp_path / "env", base_python=chosen)
    assert err.value.reason == "no_interpreter" and str(err.value) == (
        f"The chosen Python cannot hold PyTorch for training: {chosen} has no GDAL Python bindings (osgeo), which "
        "training needs. Choose another, or leave it empty to use QGIS's own Python.")
    assert not (tmp_path / "env").exists()


def test_system_pythons_are_found_on_path_but_never_the_macos_stub(tmp_path):
    for name in ("python3.12", "python3"):
        _fake_python(tmp_path, name, GOOD)
    found = tp.system_python_candidates("linux", {"PATH": str(tmp_path)})
    assert found == [tmp_path / "python3.12", tmp_path / "python3"]
    assert Path("/usr/bin/python3") not in tp.system_python_candidates("darwin", {"PATH": "/usr/bin"})


# ---- where the packages come from --------------------------------------------------------------
def test_package_sources(tmp_path):
    assert tp.source_steps(None, "linux") == [(CPU_INDEX, ["--index-url", CPU_INDEX]),
                                               (tp.PYPI, ["--index-url", tp.PYPI])]
    assert tp.source_steps(None, "win32")[0][0] == CPU_INDEX
    assert tp.source_steps(None, "darwin")[0] == (tp.PYPI, ["--index-url", tp.PYPI])  # PyPI's is CPU/MPS there
    assert tp.source_steps(str(tmp_path)) == [(str(tmp_path), ["--no-index", "--find-links", str(tmp_path)])]
    url = "https://mirror.example.org/simple"
    assert tp.source_steps(url) == [(url, ["--index-url", url])]
    assert tp.check_source("  ") is None and tp.check_source(f" {url} ") == url
    with pytest.raises(DependencyInstallError) as err:
        tp.check_source(str(tmp_path / "wheels"))
    assert err.value.reason == "source" and str(err.value) == (
        f"The package source {tmp_path / 'wheels'} is neither a folder nor an index URL. Give a folder of wheel "
        "files (.whl) or an index URL such as https://pypi.org/simple.")


# ---- the set-up ----------------------------------------------------------------------------------
def test_the_set_up_makes_a_working_environment_that_keeps_the_bases_numpy(tmp_path, fake_source):
    base = quick_base()
    folder = tmp_path / "envs" / "training-python"
    lines: list[str] = []
    result = tp.setup_training_python(folder, base, source=str(fake_source), on_line=lines.append)
    python = tp.venv_python(folder)
    assert result.python == python and result.folder == folder and python.is_file()
    assert result.info["torch"] == "2.5.0+fake"
    assert result.info["python"].startswith(".".join(map(str, base.version)) + ".")
    assert result.info["cuda"] == "" and result.info["mps"] is False and result.info["missing"] == []
    assert sorted(p.name for p in folder.parent.iterdir()) == ["training-python"]  # no partial folder left
    marker = tp.read_marker(folder)
    assert marker["source"] == str(fake_source) and marker["numpy"] == base.numpy
    assert marker["requirements"] == [tp.TORCH, *tp.COMPANIONS] and marker["torch"] == "2.5.0+fake"
    assert tp.marked_python(python) == marker
    # GDAL's numpy: the environment imports the base's own copy, none of its own
    assert _base_numpy(python) == _base_numpy(base.path)
    assert (folder / "sinr-constraints.txt").read_text() == f"numpy=={base.numpy}\n"
    venv_cmd = next(line for line in lines if " -m venv " in line)
    assert "--system-site-packages" in venv_cmd and "--without-pip" in venv_cmd  # this base: no ensurepip
    pip_cmd = next(line for line in lines if " -m pip install " in line)
    assert f"--no-index --find-links {fake_source} torch>=2.2,<3 onnx>=1.16,<2 ml_dtypes>=0.4,<1" in pip_cmd
    assert "--only-binary=:all:" in pip_cmd and "-c " in pip_cmd
    assert lines[-1] == result.summary()
    assert result.summary() == (
        f"PyTorch is set up for training in {folder}, made from {base.describe()}. {python}: Python "
        f"{result.info['python']}, torch 2.5.0+fake, CUDA: no, Apple MPS: no.")

    # set up again: a new environment replaces the old one, only once it works
    newer = fake_torch_source(tmp_path / "newer", torch_init=FAKE_TORCH.replace("2.5.0+fake", "2.5.0+newer"))
    again = tp.setup_training_python(folder, base, source=str(newer))
    assert again.info["torch"] == "2.5.0+newer" and tp.read_marker(folder)["source"] == str(newer)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["training-python"]


@pytest.fixture
def previous(tmp_path) -> Path:
    """An earlier environment of this tool, which a failed set-up must leave as it was."""
    folder = tmp_path / "training-python"
    (folder / "bin").mkdir(parents=True)
    (folder / tp.MARKER).write_text('{"torch": "2.4.0"}')
    return folder


def _fails(folder: Path, reason: str, **kw) -> str:
    with pytest.raises(DependencyInstallError) as err:
        tp.setup_training_python(folder, quick_base(), **kw)
    assert err.value.reason == reason, str(err.value)
    return str(err.value)


def _untouched(previous: Path) -> None:
    assert tp.read_marker(previous) == {"torch": "2.4.0"}
    assert sorted(p.name for p in previous.parent.iterdir() if p.name.startswith(".")) == []  # no partial


def test_a_clash_with_the_bases_numpy_is_said_and_nothing_changes(tmp_path, previous):
    clash = fake_torch_source(tmp_path / "clash", torch_requires=("numpy>=99",))
    msg = _fails(previous, "conflict", source=str(clash))
    assert msg.startswith(f"pip found no torch, onnx, ml_dtypes that works with this Python's numpy (the one its "
                          f"GDAL was built for) in {clash}. Its last lines:\n")
    assert msg.endswith("\nNothing was kept; training keeps its previous Python.")
    _untouched(previous)


def test_a_source_without_a_build_for_this_system_is_said(tmp_path, previous):
    other = fake_torch_source(tmp_path / "other")
    (other / "torch-2.5.0-py3-none-any.whl").unlink()
    wheel(other, "torch", "2.5.0", {"torch/__init__.py": ""}, tag="cp311-cp311-win_amd64")
    msg = _fails(previous, "platform", source=str(other))
    base = quick_base()
    assert msg == (f"{other} has no torch, onnx, ml_dtypes for this system (Python {base.version[0]}."
                   f"{base.version[1]}, {platform.system()} {platform.machine()}). Give a package source that has "
                   "it, or choose an existing Python with PyTorch. Nothing was kept; training keeps its previous "
                   "Python.")
    _untouched(previous)


def test_an_environment_where_torch_does_not_import_is_not_kept(tmp_path, previous):
    broken = fake_torch_source(tmp_path / "broken", torch_init="raise ImportError('libtorch_cpu.so: cannot open')\n")
    msg = _fails(previous, "verify", source=str(broken))
    assert msg.startswith("PyTorch was installed but the new environment does not work (PyTorch is missing: the "
                          "Python interpreter ")
    assert "cannot import torch (ImportError: libtorch_cpu.so: cannot open)" in msg
    assert msg.endswith("Nothing was kept.")
    _untouched(previous)


def test_no_network_is_said_with_the_index_it_could_not_reach(previous):
    msg = _fails(previous, "network", source="http://127.0.0.1:9/simple", env={**os.environ, **FAST_FAIL})
    assert msg.startswith("Could not download torch, onnx, ml_dtypes: no connection to the package index "
                          "(127.0.0.1:9). Check the internet connection, or set QGIS's proxy in Settings > Options > "
                          "Network, then set up again.")
    _untouched(previous)


def test_an_unreachable_cpu_index_falls_back_to_pypi(previous, monkeypatch):
    monkeypatch.setattr(tp, "CPU_INDEX", "http://127.0.0.1:9/whl/cpu")
    monkeypatch.setattr(tp, "PYPI", "http://127.0.0.2:9/simple")
    lines: list[str] = []
    # a machine whose pip configuration names no wheel folder or mirror of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    msg = _fails(previous, "network", env={**env, **FAST_FAIL, "PIP_CONFIG_FILE": os.devnull}, on_line=lines.append)
    assert ("PyTorch's CPU index (http://127.0.0.1:9/whl/cpu) did not answer (network); trying PyPI instead "
            "(on Linux PyPI's PyTorch carries CUDA libraries: a larger download).") in lines
    assert [line.split("--index-url ")[1].split()[0] for line in lines if " -m pip install " in line] == [
        "http://127.0.0.1:9/whl/cpu", "http://127.0.0.2:9/simple"]
    assert msg.startswith("Could not download torch: no connection to the package index (127.0.0.2:9).")
    _untouched(previous)


def test_a_refusing_proxy_is_said_as_such(previous):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        msg = _fails(previous, "proxy", source="https://pypi.org/simple", proxy=f"http://127.0.0.1:{server.server_port}",
                     env={**os.environ, **FAST_FAIL})
    finally:
        server.shutdown()
        server.server_close()
    assert msg.startswith("The proxy refused the download of torch, onnx, ml_dtypes. Check the proxy's host, port, "
                          "user and password in QGIS's Settings > Options > Network")
    _untouched(previous)


def test_too_little_disk_is_refused_before_anything_is_made(previous, monkeypatch, fake_source):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12 - 10**6, 10**6))
    msg = _fails(previous, "disk", source=str(fake_source))
    assert msg == (f"Not enough disk space to install PyTorch into {previous.parent}: it needs about 1500 MB, 1 MB "
                   "are free. Free some space, then set up again (or choose a folder on another disk).")
    _untouched(previous)


def test_an_unwritable_folder_is_refused(read_only_folder, fake_source):
    msg = _fails(read_only_folder / "env", "permission", source=str(fake_source))
    assert msg == (f"The folder {read_only_folder} cannot be created ({read_only_folder} is not writable), so "
                   "PyTorch cannot be installed there. Check its permissions.")
    assert list(read_only_folder.iterdir()) == []


def test_a_folder_with_someone_elses_files_is_never_replaced(tmp_path, fake_source):
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    msg = _fails(folder, "folder", source=str(fake_source))
    assert msg == (f"{folder} already holds other files, and the training environment replaces its folder as a "
                   "whole. Choose a new or empty folder.")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_cancel_stops_pip_and_leaves_nothing(previous, fake_source):
    with pytest.raises(CancelledError):
        tp.setup_training_python(previous, quick_base(), source=str(fake_source),
                                 is_cancelled=lambda: any(previous.parent.glob(".*/bin/python")))
    _untouched(previous)


def test_a_second_set_up_of_the_same_folder_waits_its_turn(previous, fake_source):
    """The Train and Import dialogs both offer the set-up: a second click while one runs is refused."""
    answers: list[str] = []

    def second_click() -> bool:
        if not answers:
            with pytest.raises(DependencyInstallError) as err:
                tp.setup_training_python(previous, quick_base(), source=str(fake_source))
            answers.append(f"{err.value.reason}: {err.value}")
        return False

    tp.setup_training_python(previous, quick_base(), source=str(fake_source), is_cancelled=second_click)
    assert answers == [f"busy: PyTorch is already being set up in {previous}. Wait for it to finish (QGIS's task "
                       "manager shows its progress)."]
    assert tp.read_marker(previous)["torch"] == "2.5.0+fake"  # the first one finished


def test_progress_moves_by_stages():
    assert tp.setup_progress("Making a Python environment from ...", 1.0) == 3.0
    assert tp.setup_progress("$ /env/bin/python -m pip install ...", 3.0) == 8.0
    assert tp.setup_progress("Collecting torch", 8.0) == 8.5  # pip's lines creep along
    assert tp.setup_progress("Installing collected packages: torch", 20.0) == 60.0
    assert tp.setup_progress("Successfully installed torch", 87.9) == 88.0
    assert tp.setup_progress("Checking that PyTorch, onnx and GDAL import", 88.0) == 90.0
    assert tp.setup_progress("PyTorch is set up for training in ...", 90.0) == 90.0  # never back


# ---- the interpreter the plugin trains with -------------------------------------------------------
def test_the_set_up_environment_is_the_default_training_python(tmp_path, monkeypatch, training_setting):
    folder = tmp_path / "training-python"
    tp.venv_python(folder).parent.mkdir(parents=True)
    tp.venv_python(folder).symlink_to(sys.executable)
    monkeypatch.setattr(interpreter, "training_python_folder", lambda: folder)
    QgsSettings().remove(PYTHON_KEY)
    assert interpreter.training_interpreter() != str(tp.venv_python(folder))  # not ours until marked
    (folder / tp.MARKER).write_text("{}")
    assert interpreter.training_interpreter() == str(tp.venv_python(folder))
    interpreter.set_training_interpreter("/opt/other/python")  # the user's choice wins
    assert interpreter.training_interpreter() == "/opt/other/python"


def test_checking_an_existing_python_shows_versions_and_gpus():
    text = interpreter.check_training_interpreter(sys.executable)
    import torch

    cuda = f"CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CUDA: no"
    assert text == (f"{sys.executable}: Python {'.'.join(map(str, sys.version_info[:3]))}, torch "
                    f"{torch.__version__}, {cuda}, Apple MPS: no")


# ---- Processing: sinr:setup_training ------------------------------------------------------------------
class _Log(QgsProcessingFeedback):
    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.progress: list[float] = []
        self.progressChanged.connect(self.progress.append)

    def pushInfo(self, info: str) -> None:
        self.infos.append(info)
        super().pushInfo(info)


def test_setup_training_algorithm_makes_the_training_python(sinr_provider, tmp_path, fake_source,  # noqa: F811
                                                             training_setting):
    folder = tmp_path / "env"
    feedback = _Log()
    res = processing.run("sinr:setup_training", {"FOLDER": str(folder), "PACKAGE_SOURCE": str(fake_source)},
                         feedback=feedback)
    python = str(tp.venv_python(folder))
    assert res == {"PYTHON": python, "TORCH": "2.5.0+fake", "FOLDER": str(folder)}
    assert interpreter.training_interpreter() == python  # the Train dialog and sinr:train_model use it now
    base = next(line for line in feedback.infos if line.startswith("Base interpreter: "))
    assert re.fullmatch(r"Base interpreter: QGIS's Python 3\.\d+ \(.+; GDAL [\d.]+, numpy [\d.]+\)", base), base
    assert f"Training uses {python} from now on." in feedback.infos
    assert feedback.progress[-1] == 100 and feedback.progress == sorted(feedback.progress)


def test_setup_training_algorithm_refuses_a_missing_source_before_making_anything(sinr_provider, tmp_path,  # noqa: F811
                                                                                  training_setting):
    QgsSettings().setValue(PYTHON_KEY, "/opt/before/python")
    with pytest.raises(QgsProcessingException, match=r"^The package source .*nowhere is neither a folder nor an "
                                                     r"index URL\."):
        processing.run("sinr:setup_training", {"FOLDER": str(tmp_path / "env"),
                                               "PACKAGE_SOURCE": str(tmp_path / "nowhere")})
    assert list(tmp_path.iterdir()) == [] and interpreter.training_interpreter() == "/opt/before/python"


def test_setup_training_algorithm_defaults_to_the_profile_folder():
    from sinr_qgis.processing.setup_training import SetupTrainingAlgorithm
    from sinr_qgis.toolbelt.private_packages import private_packages_root, training_python_folder

    alg = SetupTrainingAlgorithm()
    alg.initAlgorithm()
    assert [p.name() for p in alg.parameterDefinitions()] == ["FOLDER", "PACKAGE_SOURCE", "BASE_PYTHON"]
    assert all(p.flags() & p.FlagOptional for p in alg.parameterDefinitions())
    assert training_python_folder() == private_packages_root() / "training-python"
    assert "never inside QGIS" in alg.shortHelpString() and CPU_INDEX in alg.shortHelpString()


# ---- the button and its task ---------------------------------------------------------------------
def _button(qtbot, **attrs):
    from sinr_qgis.gui.setup_training_button import SetupTrainingButton

    button = SetupTrainingButton()
    qtbot.addWidget(button)
    button.quiet = True
    for key, value in attrs.items():
        setattr(button, key, value)
    return button


def test_the_button_sets_up_training_and_hides(qgis_app, qtbot, tmp_path, fake_source, training_setting):
    QgsSettings().setValue(PYTHON_KEY, str(_fake_python(tmp_path, "no-torch", {"python": "3.11.2"})))
    button = _button(qtbot, folder=tmp_path / "env", source=str(fake_source))
    button.show()
    assert button.objectName() == "SinrSetupTrainingButton" and button.text() == "Set up PyTorch for me"
    qtbot.waitUntil(lambda: button.isVisible(), timeout=30_000)  # the configured Python cannot train
    with qtbot.waitSignal(button.ready, timeout=120_000) as ready:
        task = button.start_setup()
        assert not button.isEnabled() and button.text() == "Setting up PyTorch…"
    python = str(tp.venv_python(tmp_path / "env"))
    assert ready.args == [python] and interpreter.training_interpreter() == python
    assert not button.isVisible() and button.last_error == ""
    assert task.summary.endswith("Training uses it from now on.") and any(" -m pip install " in x for x in task.log)
    button.refresh()  # a Python this button made: hidden without a probe
    assert not button.isVisible()


def test_the_button_reports_a_failure_and_stays(qgis_app, qtbot, tmp_path, training_setting):
    QgsSettings().setValue(PYTHON_KEY, "/opt/no/python")
    button = _button(qtbot, folder=tmp_path / "env", source=str(tmp_path / "nowhere"))
    button.show()
    with qtbot.waitSignal(button.failed, timeout=60_000) as failed:
        button.start_setup()
    assert failed.args[0].startswith(f"The package source {tmp_path / 'nowhere'} is neither a folder")
    assert button.last_error == failed.args[0] and button.isVisible() and button.isEnabled()
    assert interpreter.training_interpreter() == "/opt/no/python"


def test_the_button_hides_when_the_configured_python_already_trains(qgis_app, qtbot, training_setting):
    QgsSettings().setValue(PYTHON_KEY, sys.executable)  # the project's venv has torch, onnx and GDAL
    button = _button(qtbot)
    button.show()
    qtbot.waitUntil(lambda: not button.isVisible(), timeout=60_000)
