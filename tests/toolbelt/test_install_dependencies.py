"""One-click install of private packages (onnxruntime) for QGIS's Python: toolbelt/dependencies.py,
toolbelt/private_packages.py, tasks/install_task.py and gui/install_button.py.

Nothing is downloaded: the tests build tiny wheels (a "sinr_probe_pkg" that declares numpy as a
dependency, a fake numpy 99 that would break every import, a wheel for another platform, one whose
import fails) and install them with QGIS's own interpreter (Debian's /usr/bin/python3 and its pip)
from a local folder. Failures are real pip runs where a machine can produce them (a closed port on
127.0.0.1 for "no network", a local proxy that answers 407), simulated otherwise (a full disk).
"""
from __future__ import annotations

import http.server
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsSettings

from sinr_qgis.core.errors import CancelledError, DependencyInstallError
from sinr_qgis.toolbelt import dependencies as deps
from sinr_qgis.toolbelt import private_packages
from tests.helpers.refusing_proxy import RefusingProxy
from tests.helpers.setup_helpers import wheel as _wheel

PROBE = deps.PackageSet("sinr-probe-pkg", "sinr_probe_pkg", ("sinr_probe_pkg==1.0",), size_mb=1)
PROBE_2 = deps.PackageSet("sinr-probe-pkg", "sinr_probe_pkg", ("sinr_probe_pkg==2.0",), size_mb=1)
KEY = "py3x-test"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    for version in ("1.0", "2.0"):
        _wheel(folder, "sinr_probe_pkg", version, {"sinr_probe_pkg/__init__.py": f'__version__ = "{version}"\n'},
               requires=("numpy>=99",))
    # If the install ever resolved dependencies, this numpy would land in the folder and break imports
    _wheel(folder, "numpy", "99.0", {"numpy/__init__.py": 'raise ImportError("the fake numpy 99 was installed")\n'})
    _wheel(folder, "sinr_broken_pkg", "1.0",
           {"sinr_broken_pkg/__init__.py": 'raise ImportError("libsinr_missing.so: cannot open shared object file")\n'})
    _wheel(folder, "sinr_win_pkg", "1.0", {"sinr_win_pkg/__init__.py": ""}, tag="cp311-cp311-win_amd64")
    return folder


@pytest.fixture(scope="module")
def qgis_python() -> Path:
    """QGIS's own interpreter on this Debian machine, found as the plugin finds it inside QGIS."""
    found = deps.find_interpreter(deps.interpreter_candidates(executable="/usr/bin/qgis", prefixes=(sys.base_prefix,)))
    assert found.version == tuple(sys.version_info[:2])
    return found.path


def _local(wheels: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(wheels))


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if ".partial-" in p.name or "-old-" in p.name]


# ---- the pinned package set -----------------------------------------------------------------------
@pytest.mark.parametrize("python, version", [((3, 8), "1.19.2"), ((3, 9), "1.19.2"), ((3, 12), "1.19.2"),
                                             ((3, 13), "1.20.1"), ((3, 14), "1.24.1")])
def test_onnxruntime_is_pinned_per_python_and_never_brings_numpy(python, version):
    s = deps.onnxruntime_set(python)
    assert s.name == "onnxruntime" and s.version == version and s.import_name == "onnxruntime"
    assert all("==" in r for r in s.requirements)  # every package pinned
    assert not any(r.lower().startswith("numpy") for r in s.requirements)


def test_a_package_set_that_would_install_numpy_is_refused():
    with pytest.raises(ValueError, match="must not install"):
        deps.PackageSet("x", "x", ("x==1", "NumPy==2.0"), size_mb=1)


def test_pip_command_installs_only_the_pins_into_the_target(tmp_path):
    cmd = deps.pip_install_command("/usr/bin/python3.11", deps.onnxruntime_set((3, 11)), tmp_path)
    assert cmd[:5] == ["/usr/bin/python3.11", "-I", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == str(tmp_path)
    assert "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert cmd[-8:] == ["onnxruntime==1.19.2", "coloredlogs==15.0.1", "humanfriendly==10.0", "flatbuffers==24.3.25",
                        "packaging==24.1", "protobuf==5.28.3", "sympy==1.13.3", "mpmath==1.3.0"]


def test_proxy_from_qgis_settings():
    on = {"proxy/proxyEnabled": "true", "proxy/proxyType": "HttpProxy", "proxy/proxyHost": "proxy.example",
          "proxy/proxyPort": "3128", "proxy/proxyUser": "ana@lab", "proxy/proxyPassword": "p:w/1"}
    assert deps.proxy_url(on) == "http://ana%40lab:p%3Aw%2F1@proxy.example:3128"
    assert deps.proxy_url({**on, "proxy/proxyUser": ""}) == "http://proxy.example:3128"
    assert deps.proxy_url({**on, "proxy/proxyType": "Socks5Proxy", "proxy/proxyUser": ""}) == \
        "socks5://proxy.example:3128"
    assert deps.proxy_url({**on, "proxy/proxyType": "DefaultProxy"}) is None  # pip finds the system's itself
    assert deps.proxy_url({**on, "proxy/proxyEnabled": "false"}) is None
    assert deps.proxy_url({}) is None


def test_qgis_proxy_reads_qgis_settings(qgis_app):
    settings = QgsSettings()
    old = {k: settings.value(k) for k in private_packages._PROXY_KEYS}
    try:
        for k, v in [("proxy/proxyEnabled", True), ("proxy/proxyType", "HttpProxy"),
                     ("proxy/proxyHost", "10.1.2.3"), ("proxy/proxyPort", 8080), ("proxy/proxyUser", "")]:
            settings.setValue(k, v)
        assert private_packages.qgis_proxy() == "http://10.1.2.3:8080"
    finally:
        for k, v in old.items():
            settings.remove(k) if v is None else settings.setValue(k, v)


def test_environment_keeps_pip_on_the_target_and_hides_the_proxy_password():
    env = deps.clean_environment({"PATH": "/usr/bin", "PYTHONPATH": "/elsewhere", "PYTHONHOME": "/x",
                                  "PIP_TARGET": "/y", "PIP_USER": "1", "PIP_INDEX_URL": "https://mirror/simple"},
                                 proxy="http://u:secret@proxy:3128")
    assert env["PATH"] == "/usr/bin" and env["PIP_INDEX_URL"] == "https://mirror/simple"  # the user's mirror stays
    assert "PYTHONPATH" not in env and "PYTHONHOME" not in env and "PIP_TARGET" not in env
    assert env["PIP_USER"] == "0" and env["PIP_REQUIRE_VIRTUALENV"] == "0"
    assert env["PIP_PROXY"] == "http://u:secret@proxy:3128"  # in the environment, not on the command line


# ---- finding QGIS's interpreter -------------------------------------------------------------------
def _fake_python(path: Path, version: tuple[int, int], pip: str | None, started: Path | None = None) -> Path:
    """A stand-in interpreter: answers the probe with a version and pip's version (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = json.dumps({"version": list(version), "pip": pip})
    touch = f'touch "{started}"\n' if started else ""
    path.write_text(f"#!/bin/sh\n{touch}echo '{info}'\n")
    path.chmod(0o755)
    return path


def test_windows_layout_finds_apps_python_and_never_starts_qgis(tmp_path):
    qgis = tmp_path / "QGIS 3.22"
    started = tmp_path / "qgis-was-started"
    exe = _fake_python(qgis / "bin" / "qgis-bin.exe", (3, 9), "22.0", started=started)
    python = _fake_python(qgis / "apps" / "Python39" / "python.exe", (3, 9), "23.0.1")
    cands = deps.interpreter_candidates(str(exe), prefixes=(str(qgis / "apps" / "Python39"),), system="win32",
                                        python=(3, 9))
    assert cands[0] == python and exe not in cands
    found = deps.find_interpreter(cands, python=(3, 9))
    assert found == deps.Interpreter(python, (3, 9), "23.0.1")
    assert not started.exists()


def test_macos_layout_finds_the_python_beside_the_qgis_program(tmp_path):
    app = tmp_path / "QGIS.app" / "Contents"
    exe = _fake_python(app / "MacOS" / "QGIS", (3, 9), "22.0", started=tmp_path / "started")
    python = _fake_python(app / "MacOS" / "bin" / "python3", (3, 9), "21.3")
    framework = app / "Frameworks" / "Python.framework" / "Versions" / "3.9"  # no interpreter there
    cands = deps.interpreter_candidates(str(exe), prefixes=(str(framework),), system="darwin", python=(3, 9))
    assert deps.find_interpreter(cands, python=(3, 9)).path == python
    assert not (tmp_path / "started").exists()


def test_an_interpreter_of_another_version_is_not_used(tmp_path):
    wrong = _fake_python(tmp_path / "bin" / "python3", (3, 10), "23.0")
    with pytest.raises(DependencyInstallError) as err:
        deps.find_interpreter([tmp_path / "bin" / "python3.9", wrong], python=(3, 9))
    assert err.value.reason == "no_interpreter"
    assert str(err.value).startswith("QGIS's Python 3.9 interpreter was not found (looked for: ")
    assert str(wrong) in str(err.value) and "numpy backend" in str(err.value)


def test_an_interpreter_without_pip_says_how_to_get_pip(tmp_path):
    python = _fake_python(tmp_path / "bin" / "python3.11", (3, 11), None)
    with pytest.raises(DependencyInstallError) as err:
        deps.find_interpreter([python], python=(3, 11))
    assert err.value.reason == "no_pip"
    assert f"QGIS's Python ({python}) has no pip" in str(err.value)
    assert "sudo apt install python3-pip" in str(err.value)


# ---- installing -----------------------------------------------------------------------------------
def test_install_puts_only_the_pins_in_a_private_folder(tmp_path, wheels, qgis_python, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    lines: list[str] = []
    result = deps.install(PROBE, tmp_path, qgis_python, index_args=_local(wheels), key=KEY, on_line=lines.append)
    folder = tmp_path / KEY / "sinr-probe-pkg"
    assert result.folder == folder and result.version == "1.0"
    assert sorted(p.name for p in folder.iterdir()) == [deps.MARKER, "sinr_probe_pkg", "sinr_probe_pkg-1.0.dist-info"]
    # QGIS's numpy was used by the verification, not the fake one from the index
    assert result.imported["numpy"] != "99.0" and not result.imported["numpy_file"].startswith(str(tmp_path))
    assert result.imported["file"] == str(folder / "sinr_probe_pkg" / "__init__.py")
    marker = deps.read_marker(folder)
    assert marker["requirements"] == ["sinr_probe_pkg==1.0"] and marker["imported"]["version"] == "1.0"
    assert lines[0].startswith(f"$ {qgis_python} -I -m pip install --target ") and "--no-deps" in lines[0]
    assert lines[-1] == f"sinr_probe_pkg 1.0 installed in {folder}"
    assert _leftovers(tmp_path) == []
    # the plugin start puts it on sys.path, after QGIS's own entries
    assert deps.install_state(folder, PROBE, lambda: False) == deps.InstallState.MISSING
    assert deps.activate(folder) and sys.path[-1] == str(folder)
    assert deps.activate(folder) and sys.path.count(str(folder)) == 1
    import sinr_probe_pkg

    assert sinr_probe_pkg.__version__ == "1.0"
    assert deps.install_state(folder, PROBE, lambda: True) == deps.InstallState.CURRENT
    # a plugin upgrade with new pins: OUTDATED, and the update replaces the folder
    assert deps.install_state(folder, PROBE_2, lambda: True) == deps.InstallState.OUTDATED
    deps.install(PROBE_2, tmp_path, qgis_python, index_args=_local(wheels), key=KEY)
    assert deps.read_marker(folder)["requirements"] == ["sinr_probe_pkg==2.0"]
    assert (folder / "sinr_probe_pkg-2.0.dist-info").is_dir() and not (folder / "sinr_probe_pkg-1.0.dist-info").exists()
    assert _leftovers(tmp_path) == []
    sys.modules.pop("sinr_probe_pkg", None)


def test_an_update_of_an_install_in_use_waits_for_the_next_start(tmp_path, wheels, qgis_python, monkeypatch):
    """Windows refuses to rename a folder whose DLLs are loaded: the update is kept beside it and
    replaces it at the next plugin start, before anything imports it."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    deps.install(PROBE, tmp_path, qgis_python, index_args=_local(wheels), key=KEY)
    folder = tmp_path / KEY / PROBE.key
    real_rename = Path.rename

    def in_use(self, target):
        if self == folder:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", in_use)
    lines: list[str] = []
    result = deps.install(PROBE_2, tmp_path, qgis_python, index_args=_local(wheels), key=KEY, on_line=lines.append)
    assert result.pending_restart and lines[-1] == (f"sinr_probe_pkg 2.0 is ready in {folder}.next: the one in use "
                                                    "is replaced at the next start")
    assert deps.read_marker(folder)["requirements"] == ["sinr_probe_pkg==1.0"]  # the old one still works
    assert deps.read_marker(tmp_path / KEY / f"{PROBE.key}.next")["requirements"] == ["sinr_probe_pkg==2.0"]
    monkeypatch.setattr(Path, "rename", real_rename)  # the next start: nothing holds the folder
    assert deps.activate(folder) and sys.path[-1] == str(folder)
    assert deps.read_marker(folder)["requirements"] == ["sinr_probe_pkg==2.0"]
    assert sorted(p.name for p in (tmp_path / KEY).iterdir()) == [PROBE.key]


def _expect_failure(reason: str, tmp_path: Path, qgis_python: Path, package_set=PROBE, **kw) -> str:
    with pytest.raises(DependencyInstallError) as err:
        deps.install(package_set, tmp_path / "root", qgis_python, key=KEY, **kw)
    assert err.value.reason == reason, str(err.value)
    assert not (tmp_path / "root" / KEY / package_set.key).exists()  # nothing installed
    assert _leftovers(tmp_path) == []  # no partial folder
    return str(err.value)


def test_a_wheel_for_another_platform_is_refused_clearly(tmp_path, wheels, qgis_python):
    win = deps.PackageSet("sinr-win-pkg", "sinr_win_pkg", ("sinr_win_pkg==1.0",), size_mb=1)
    msg = _expect_failure("platform", tmp_path, qgis_python, win, index_args=_local(wheels))
    assert msg.startswith("sinr_win_pkg 1.0 has no build for this system (Python 3.")
    assert msg.endswith("Nothing was installed; predictions keep working with the numpy backend.")


def test_no_network_is_said_as_such(tmp_path, qgis_python):
    # a closed port on this machine: pip's real connection error, nothing leaves the machine
    msg = _expect_failure("network", tmp_path, qgis_python,
                          index_args=("--index-url", "http://127.0.0.1:9/simple", "--retries", "1", "--timeout", "3"))
    assert msg.startswith("Could not download sinr_probe_pkg 1.0: no connection to the package index (pypi.org).")
    assert "Settings > Options > Network" in msg


def test_a_refusing_proxy_is_said_as_such(tmp_path, qgis_python):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        msg = _expect_failure("proxy", tmp_path, qgis_python, proxy=f"http://127.0.0.1:{server.server_port}",
                              index_args=("--index-url", "https://pypi.org/simple", "--retries", "1", "--timeout", "3"))
    finally:
        server.shutdown()
        server.server_close()
    assert msg.startswith("The proxy refused the download of sinr_probe_pkg 1.0. Check the proxy's host, port, user")


def test_a_package_that_does_not_import_is_not_kept(tmp_path, wheels, qgis_python):
    broken = deps.PackageSet("sinr-broken-pkg", "sinr_broken_pkg", ("sinr_broken_pkg==1.0",), size_mb=1)
    msg = _expect_failure("verify", tmp_path, qgis_python, broken, index_args=_local(wheels))
    assert msg == ("sinr_broken_pkg 1.0 was downloaded but does not import in QGIS's Python (ImportError: "
                   "libsinr_missing.so: cannot open shared object file), so it was not kept. Predictions keep "
                   "working with the numpy backend.")


def test_an_unwritable_folder_is_refused_before_downloading(read_only_folder, qgis_python, wheels):
    with pytest.raises(DependencyInstallError) as err:
        deps.install(PROBE, read_only_folder, qgis_python, key=KEY, index_args=_local(wheels))
    assert err.value.reason == "permission"
    assert str(err.value) == (f"The folder {read_only_folder / KEY} cannot be created ({read_only_folder} is not "
                              "writable), so sinr_probe_pkg 1.0 cannot be installed there. Check its permissions.")
    assert list(read_only_folder.iterdir()) == []


def test_a_full_disk_is_refused_before_downloading(tmp_path, qgis_python, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 10**6, 10**6))
    big = deps.PackageSet("big", "big", ("big==1",), size_mb=250)
    msg = _expect_failure("disk", tmp_path, qgis_python, big, index_args=("--no-index",))
    assert "it needs about 250 MB, 1 MB are free" in msg


@pytest.mark.parametrize("output, reason", [
    ("ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device", "disk"),
    ("ERROR: Could not install packages due to an OSError: [WinError 112] There is not enough space on the disk",
     "disk"),
    ("ERROR: Could not install packages due to an OSError: [Errno 13] Permission denied: '/x'", "permission"),
    ("WARNING: Retrying ... ProxyError('Cannot connect to proxy.', NewConnectionError(...))\n"
     "ERROR: No matching distribution found for onnxruntime==1.19.2", "proxy"),
    ("Could not fetch URL https://pypi.org/simple/onnxruntime/: There was a problem confirming the ssl certificate: "
     "HTTPSConnectionPool(...): Max retries exceeded (Caused by SSLError(SSLCertVerificationError(1, "
     "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed')))", "ssl"),
    ("ERROR: onnxruntime-1.19.2-cp311-cp311-win_amd64.whl is not a supported wheel on this platform.", "platform"),
    ("/usr/bin/python3: No module named pip", "no_pip"),
    ("ERROR: Exception:\nTraceback ...\nKeyError: 'x'", "pip"),
])
def test_pip_failures_are_told_apart(output, reason, tmp_path):
    err = deps.classify_pip_failure(2, output, deps.ONNXRUNTIME, tmp_path / "t")
    assert err.reason == reason
    assert "pip install" not in str(err)  # never a command that could replace QGIS's numpy
    if reason == "pip":
        assert str(err).startswith(f"pip failed (exit code 2) while installing onnxruntime {deps.ONNXRUNTIME.version}")
        assert "KeyError: 'x'" in str(err)


def test_cancel_stops_pip_and_leaves_nothing(tmp_path, qgis_python):
    # cancelled at the first poll: pip is stopped, the partial folder removed
    with pytest.raises(CancelledError, match=r"Install cancelled; nothing was installed\."):
        deps.install(PROBE, tmp_path, qgis_python, key=KEY, is_cancelled=lambda: True,
                     index_args=("--index-url", "http://127.0.0.1:9/simple"))
    assert not (tmp_path / KEY / PROBE.key).exists() and _leftovers(tmp_path) == []


def test_run_logged_streams_lines_and_stops_on_cancel():
    lines: list[str] = []
    code, out = deps.run_logged([sys.executable, "-c", "print('a'); print('b')"], dict(os.environ), lines.append)
    assert (code, out, lines) == (0, "a\nb", ["a", "b"])
    slow = [sys.executable, "-u", "-c", "import time\nprint('started')\ntime.sleep(60)"]
    with pytest.raises(CancelledError):
        deps.run_logged(slow, dict(os.environ), lines.append, is_cancelled=lambda: lines[-1] == "started")
    code, out = deps.run_logged(slow, dict(os.environ), timeout=1.0)
    assert code == -1 and out.endswith("(stopped after 1 s)")


# ---- the QGIS side: profile folder, start-up hook, task, button -----------------------------------
def test_private_folder_is_in_the_qgis_profile(qgis_app):
    root = private_packages.private_packages_root()
    assert root == Path(QgsApplication.qgisSettingsDirPath()) / "python" / "dependencies" / "sinr_qgis"
    assert private_packages.onnxruntime_folder() == root / deps.version_key() / "onnxruntime"
    assert deps.version_key((3, 11), "linux", "x86_64") == "py311-linux-x86_64"


def test_plugin_start_puts_installed_packages_on_sys_path(qgis_iface, tmp_path, monkeypatch):
    import sinr_qgis

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(private_packages, "private_packages_root", lambda: tmp_path)
    folder = deps.install_folder(tmp_path, deps.ONNXRUNTIME)
    folder.mkdir(parents=True)
    (folder / "sinr_fake_ort_probe.py").write_text("WHERE = 'private'\n")
    plugin = sinr_qgis.classFactory(qgis_iface)
    assert sys.path[-1] == str(folder)
    import sinr_fake_ort_probe

    assert sinr_fake_ort_probe.WHERE == "private"
    del plugin
    sys.modules.pop("sinr_fake_ort_probe", None)


def _run_task(qtbot, task):
    done: list[bool] = []
    task.on_done = lambda t, ok: done.append(ok)
    QgsApplication.taskManager().addTask(task)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    return done[0]


def test_install_task_installs_and_the_package_imports_without_restart(qgis_app, qtbot, tmp_path, wheels,
                                                                        qgis_python, monkeypatch):
    from sinr_qgis.tasks.install_task import InstallTask

    monkeypatch.setattr(sys, "path", list(sys.path))
    sys.modules.pop("sinr_probe_pkg", None)
    task = InstallTask(PROBE, root=tmp_path, index_args=_local(wheels), interpreter=qgis_python)
    assert _run_task(qtbot, task) is True
    folder = deps.install_folder(tmp_path, PROBE)
    assert task.error is None and task.result.folder == folder
    assert not task.needs_restart and str(folder) in sys.path
    assert task.summary == f"sinr_probe_pkg 1.0 installed in {folder}. It is used from now on."
    assert any("Successfully installed sinr_probe_pkg-1.0" in ln for ln in task.log)
    assert deps.read_marker(folder)["plugin_version"]
    sys.modules.pop("sinr_probe_pkg", None)


def test_an_older_copy_already_imported_needs_a_restart(qgis_app, qtbot, tmp_path, wheels, qgis_python,
                                                        monkeypatch):
    from sinr_qgis.gui import install_button
    from sinr_qgis.tasks.install_task import InstallTask

    old = tmp_path / "old"
    (old / "sinr_probe_pkg").mkdir(parents=True)
    (old / "sinr_probe_pkg" / "__init__.py").write_text('__version__ = "0.9"\n')
    monkeypatch.setattr(sys, "path", [*sys.path, str(old)])
    sys.modules.pop("sinr_probe_pkg", None)
    import sinr_probe_pkg  # what an earlier install left loaded in this QGIS

    assert sinr_probe_pkg.__version__ == "0.9"
    monkeypatch.setattr(install_button, "onnxruntime_install_state", lambda: deps.InstallState.OUTDATED)
    monkeypatch.setattr(install_button, "InstallTask", lambda _set, on_done: InstallTask(
        PROBE, on_done=on_done, root=tmp_path / "new", index_args=_local(wheels), interpreter=qgis_python))
    button = install_button.OnnxruntimeInstallButton(None)
    qtbot.addWidget(button)
    with qtbot.waitSignal(button.installed, timeout=120_000):
        task = button.start_install()
    folder = deps.install_folder(tmp_path / "new", PROBE)
    assert task.needs_restart and task.summary == f"sinr_probe_pkg 1.0 installed in {folder}. Restart QGIS to use it."
    assert button.text() == "Restart QGIS to use the new onnxruntime" and not button.isEnabled()
    button.refresh()  # stays so until QGIS restarts
    assert button.text() == "Restart QGIS to use the new onnxruntime" and not button.isHidden()
    sys.modules.pop("sinr_probe_pkg", None)


def test_cancelling_the_task_stops_pip_and_leaves_nothing(qgis_app, qtbot, tmp_path, qgis_python):
    from sinr_qgis.tasks.install_task import InstallTask

    # a closed local port with retries: pip keeps retrying for seconds, long enough to cancel it
    task = InstallTask(PROBE, root=tmp_path, interpreter=qgis_python,
                       index_args=("--index-url", "http://127.0.0.1:9/simple", "--retries", "8"))
    done: list[bool] = []
    task.on_done = lambda t, ok: done.append(ok)
    QgsApplication.taskManager().addTask(task)
    qtbot.waitUntil(lambda: len(task.log) >= 1, timeout=60_000)
    task.cancel()
    qtbot.waitUntil(lambda: bool(done), timeout=60_000)
    assert done == [False] and isinstance(task.error, CancelledError)
    assert str(task.error) == "Install cancelled; nothing was installed."
    assert not deps.install_folder(tmp_path, PROBE).exists() and _leftovers(tmp_path) == []


def test_install_task_reports_a_failure(qgis_app, qtbot, tmp_path, wheels, qgis_python):
    from sinr_qgis.tasks.install_task import InstallTask

    win = deps.PackageSet("sinr-win-pkg", "sinr_win_pkg", ("sinr_win_pkg==1.0",), size_mb=1)
    task = InstallTask(win, root=tmp_path, index_args=_local(wheels), interpreter=qgis_python)
    assert _run_task(qtbot, task) is False
    assert isinstance(task.error, DependencyInstallError) and task.error.reason == "platform"
    assert not deps.install_folder(tmp_path, win).exists()


def test_install_button_hides_when_onnxruntime_imports_and_installs_on_click(qgis_app, qtbot, tmp_path, wheels,
                                                                             qgis_python, monkeypatch):
    from sinr_qgis.gui import install_button
    from sinr_qgis.tasks.install_task import InstallTask

    state = {"now": deps.InstallState.MISSING}
    monkeypatch.setattr(install_button, "onnxruntime_install_state", lambda: state["now"])
    button = install_button.OnnxruntimeInstallButton(None)
    qtbot.addWidget(button)
    assert button.objectName() == "SinrInstallOnnxruntimeButton"
    assert not button.isHidden() and button.text() == "Install onnxruntime"
    assert "numpy and GDAL are left untouched" in button.toolTip()
    state["now"] = deps.InstallState.OUTDATED
    button.refresh()
    assert not button.isHidden() and button.text() == "Update onnxruntime"
    state["now"] = deps.InstallState.CURRENT
    button.refresh()
    assert button.isHidden()

    # a click installs (here the probe package from the local folder) and emits ``installed``
    state["now"] = deps.InstallState.MISSING
    button.refresh()
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(install_button, "InstallTask", lambda _set, on_done: InstallTask(
        PROBE, on_done=on_done, root=tmp_path, index_args=_local(wheels), interpreter=qgis_python))
    with qtbot.waitSignal(button.installed, timeout=120_000):
        state["now"] = deps.InstallState.CURRENT  # what the refresh after the install will see
        button.click()
        assert not button.isEnabled() and button.text() == "Installing onnxruntime…"
    assert button.isHidden() and button.last_error == ""
    sys.modules.pop("sinr_probe_pkg", None)

    # a failure re-enables the button and says why (no modal box when quiet)
    state["now"] = deps.InstallState.MISSING
    button.refresh()
    button.quiet = True
    win = deps.PackageSet("sinr-win-pkg", "sinr_win_pkg", ("sinr_win_pkg==1.0",), size_mb=1)
    monkeypatch.setattr(install_button, "InstallTask",
                        lambda _set, on_done: InstallTask(win, on_done=on_done, root=tmp_path / "w",
                                                          index_args=_local(wheels), interpreter=qgis_python))
    with qtbot.waitSignal(button.failed, timeout=120_000) as failed:
        button.click()
    assert failed.args[0].startswith("sinr_win_pkg 1.0 has no build for this system")
    assert button.last_error == failed.args[0]
    assert button.isEnabled() and not button.isHidden()
