"""Private Python packages for the plugin, installed with pip into a folder of the user's QGIS profile.

Made for onnxruntime (the fast prediction backend) and for further package sets later. Pure logic,
no QGIS: the QGIS side is in ``toolbelt/private_packages.py`` (profile folder, proxy settings)
and ``tasks/install_task.py`` (the task).

Layout: ``<root>/<py311-linux-x86_64>/<set key>/`` holds the packages (``pip install --target``)
and ``MARKER``. A folder per Python version and platform, because a profile can be shared by
QGIS versions with other Pythons; at plugin start each marked folder of this Python is appended
to ``sys.path`` (after QGIS's own paths, so QGIS's numpy, GDAL and friends always win).

Rules that keep QGIS working:

- pip runs with ``--no-deps`` and an explicit, pinned list: numpy (and anything else in
  ``PackageSet.never_install``) is never installed or upgraded. A numpy 2 next to QGIS's GDAL,
  built against numpy 1, breaks ``osgeo.gdal_array``.
- pip is run by QGIS's real interpreter (``sys.executable`` is the QGIS program on Windows and
  macOS), found from ``sys.base_prefix`` and checked to be the same Python version.
- Installs go to a temporary folder beside the final one, are verified by importing them in a
  fresh interpreter, and only then renamed into place: a failure or a cancel leaves nothing.
"""
from __future__ import annotations

import json
import os
import platform
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import quote

from ..core.errors import CancelledError, DependencyInstallError

MARKER = "sinr_install.json"
PROBE_TIMEOUT_S = 60.0
PIP_TIMEOUT_S = 1800.0  # a slow line downloads ~20 MB; pip's own network timeouts end it earlier
# pip settings a user's environment could carry that break an install into a target folder
_PIP_ENV_DROPPED = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_REQUIRE_VIRTUALENV",
                    "PIP_CONSTRAINT", "PIP_REQUIREMENT", "PIP_NO_DEPS", "PIP_ONLY_BINARY", "PIP_NO_BINARY",
                    "PIP_UPGRADE", "PIP_UPGRADE_STRATEGY")

LineFn = Callable[[str], None]
CancelFn = Callable[[], bool]


class InstallState(Enum):
    """Whether a package set needs the install button."""

    MISSING = "missing"    # not importable
    OUTDATED = "outdated"  # installed by an earlier plugin version with other pins
    CURRENT = "current"    # importable (ours with today's pins, or the user's own)


@dataclass(frozen=True)
class PackageSet:
    """Packages installed together into one private folder.

    ``requirements`` are exact pins installed with ``--no-deps``; the first one is the package
    the user asked for (``import_name`` is imported to verify it). ``size_mb`` is the disk space
    the install needs (checked before downloading).
    """

    key: str
    import_name: str
    requirements: tuple[str, ...]
    size_mb: int
    never_install: tuple[str, ...] = ("numpy",)

    def __post_init__(self) -> None:
        names = {_requirement_name(r).lower().replace("_", "-") for r in self.requirements}
        clash = names & {n.lower() for n in self.never_install}
        if clash:  # a programming error: the pins would replace QGIS's own copy
            raise ValueError(f"package set {self.key!r} must not install {sorted(clash)}")

    @property
    def name(self) -> str:
        return _requirement_name(self.requirements[0])

    @property
    def version(self) -> str:
        return self.requirements[0].partition("==")[2]


def _requirement_name(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].strip()


# onnxruntime builds per Python version. 1.19 is the first built against numpy 2 (so its binary
# runs with QGIS's numpy 1.x and 2.x alike); 1.19.2 has wheels for Python 3.8-3.12, 1.20.1 adds
# 3.13, 1.24.1 has 3.14. The pure-Python dependencies it declares are pinned with it.
_ORT_BY_PYTHON: tuple[tuple[tuple[int, int], tuple[int, int], tuple[str, ...]], ...] = (
    ((3, 8), (3, 12), ("onnxruntime==1.19.2", "coloredlogs==15.0.1", "humanfriendly==10.0")),
    ((3, 13), (3, 13), ("onnxruntime==1.20.1", "coloredlogs==15.0.1", "humanfriendly==10.0")),
    ((3, 14), (3, 99), ("onnxruntime==1.24.1",)),
)
_ORT_COMMON = ("flatbuffers==24.3.25", "packaging==24.1", "protobuf==5.28.3", "sympy==1.13.3", "mpmath==1.3.0")


def onnxruntime_set(python: Sequence[int] = tuple(sys.version_info[:2])) -> PackageSet:
    """The onnxruntime package set for Python ``python`` (major, minor)."""
    version = (int(python[0]), int(python[1]))
    pins = next((p for lo, hi, p in _ORT_BY_PYTHON if lo <= version <= hi), _ORT_BY_PYTHON[0][2])
    return PackageSet("onnxruntime", "onnxruntime", pins + _ORT_COMMON, size_mb=250)


ONNXRUNTIME = onnxruntime_set()


# ---- folders and markers ------------------------------------------------------------------------
def version_key(python: Sequence[int] = tuple(sys.version_info[:2]), system: str = sys.platform,
                machine: str | None = None) -> str:
    """Folder name for one Python version and platform, e.g. ``py311-linux-x86_64``."""
    arch = (machine or platform.machine() or "unknown").lower()
    return f"py{python[0]}{python[1]}-{system}-{arch}"


def install_folder(root: str | Path, package_set: PackageSet, key: str | None = None) -> Path:
    """Where ``package_set`` lives under ``root`` for this Python (``key``: see :func:`version_key`)."""
    return Path(root) / (key or version_key()) / package_set.key


def read_marker(folder: str | Path) -> dict | None:
    """The marker written by a finished install in ``folder``, or None (no install, or unreadable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def install_state(folder: str | Path, package_set: PackageSet, importable: Callable[[], bool]) -> InstallState:
    """MISSING, OUTDATED (our install, other pins: an earlier plugin version) or CURRENT."""
    marker = read_marker(folder)
    if marker is not None and tuple(marker.get("requirements", ())) != package_set.requirements:
        return InstallState.OUTDATED
    return InstallState.CURRENT if importable() else InstallState.MISSING


def activate(folder: str | Path) -> bool:
    """Append an existing ``folder`` to ``sys.path`` (once); True when it is on the path. A folder
    without a marker counts too: the README's manual command installs into it. An update that
    waited for a restart (see ``install``) replaces the folder first."""
    folder = Path(folder)
    if read_marker(_pending(folder)) is not None and str(folder) not in sys.path:
        _replace(_pending(folder), folder)  # nothing imported from it yet; if this fails, it waits again
    if not folder.is_dir():
        return False
    entry = str(folder)
    if entry not in sys.path:
        sys.path.append(entry)  # after QGIS's own paths: its numpy and GDAL always win
        import importlib

        importlib.invalidate_caches()
    return True


# ---- the interpreter ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Interpreter:
    """A Python that can run pip for QGIS: its path, version and pip's version."""

    path: Path
    version: tuple[int, int]
    pip: str


_PROBE = ("import json, sys\n"
          "try:\n    import pip\n    v = pip.__version__\nexcept Exception:\n    v = None\n"
          "print(json.dumps({'version': list(sys.version_info[:2]), 'pip': v}))")


def interpreter_candidates(executable: str = sys.executable,
                           prefixes: Sequence[str] = (sys.prefix, sys.base_prefix), system: str = sys.platform,
                           python: Sequence[int] = tuple(sys.version_info[:2])) -> list[Path]:
    """Where QGIS's Python may be, most likely first (QGIS ML plugins look in the same places).

    Windows: the prefix is ``...\\apps\\Python39`` (python.exe there) and ``sys.executable`` is
    ``qgis-bin.exe``. macOS: ``QGIS.app/Contents/MacOS/bin/python3`` beside the QGIS program, or
    the framework's ``bin``. Linux: ``<prefix>/bin/python3.X``. ``sys.executable`` is used only when
    it is itself a Python (it may be the QGIS program, which must never be started here).
    """
    major, minor = int(python[0]), int(python[1])
    exe_dir = Path(executable or "").parent
    if system.startswith("win"):
        names: tuple[str, ...] = ("python.exe", "python3.exe")
        dirs = [*(Path(p) for p in prefixes), exe_dir, exe_dir.parent / "apps" / f"Python{major}{minor}"]
    else:
        names = (f"python{major}.{minor}", f"python{major}", "python")
        dirs = [*(Path(p) / "bin" for p in prefixes), exe_dir / "bin", exe_dir]
    out = [d / n for d in dirs for n in names]
    if executable and Path(executable).name.lower().startswith("python"):
        out.append(Path(executable))
    return list(dict.fromkeys(out))  # duplicates removed, order kept


def find_interpreter(candidates: Sequence[Path] | None = None,
                     python: Sequence[int] = tuple(sys.version_info[:2]),
                     env: Mapping[str, str] | None = None) -> Interpreter:
    """The first candidate that runs as Python ``python`` (major, minor) and has pip.

    Raises ``DependencyInstallError`` with reason "no_interpreter" (none runs as that version)
    or "no_pip" (it runs, without pip) and what to do.
    """
    want = (int(python[0]), int(python[1]))
    candidates = list(candidates) if candidates is not None else interpreter_candidates(python=want)
    without_pip: Path | None = None
    for cand in candidates:
        if not cand.is_file():
            continue
        try:
            proc = subprocess.run([str(cand), "-I", "-c", _PROBE], capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S, env=clean_environment(env), **_no_window())
            info = json.loads(proc.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            continue
        if tuple(info.get("version", ())) != want:
            continue
        if not info.get("pip"):
            without_pip = without_pip or cand
            continue
        return Interpreter(cand, want, str(info["pip"]))
    if without_pip is not None:
        fix = ("install it with the system's package manager (Debian/Ubuntu: sudo apt install python3-pip; "
               "Fedora: sudo dnf install python3-pip)" if sys.platform.startswith("linux")
               else "reinstall QGIS (its installer includes pip)")
        raise DependencyInstallError(
            f"QGIS's Python ({without_pip}) has no pip, which the install needs: {fix}, then click "
            "Install again. Predictions keep working with the numpy backend meanwhile.", "no_pip")
    looked = ", ".join(str(c) for c in candidates) or "nowhere"
    raise DependencyInstallError(
        f"QGIS's Python {want[0]}.{want[1]} interpreter was not found (looked for: {looked}). The install "
        "must use QGIS's own Python; predictions keep working with the numpy backend.", "no_interpreter")


# ---- running pip --------------------------------------------------------------------------------
def proxy_url(settings: Mapping[str, object]) -> str | None:
    """pip's ``--proxy`` URL from QGIS's proxy settings (keys as in QgsSettings: ``proxy/proxyEnabled``,
    ``proxy/proxyType``, ``proxy/proxyHost``, ``proxy/proxyPort``, ``proxy/proxyUser``,
    ``proxy/proxyPassword``), or None: no proxy, or the system's proxy (pip finds that itself)."""
    if str(settings.get("proxy/proxyEnabled", "false")).lower() not in ("true", "1"):
        return None
    kind = str(settings.get("proxy/proxyType", "") or "")
    host = str(settings.get("proxy/proxyHost", "") or "").strip()
    if kind in ("DefaultProxy", "NoProxy", "") or not host:
        return None
    scheme = "socks5" if kind == "Socks5Proxy" else "http"
    port = str(settings.get("proxy/proxyPort", "") or "").strip()
    user = str(settings.get("proxy/proxyUser", "") or "")
    password = str(settings.get("proxy/proxyPassword", "") or "")
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"{scheme}://{auth}{host}{':' + port if port else ''}"


def clean_environment(base: Mapping[str, str] | None = None, proxy: str | None = None) -> dict[str, str]:
    """The environment for pip and the verification: QGIS's, without Python and pip settings that
    would redirect the install (``PYTHONPATH``, ``PIP_TARGET``, ``PIP_USER``...). The proxy goes in
    ``PIP_PROXY`` (not on the command line, where other users could read its password)."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.upper().startswith("PYTHON") and k.upper() not in _PIP_ENV_DROPPED}
    # Environment values beat a pip.conf that says user = true or require-virtualenv = true
    env.update({"PIP_USER": "0", "PIP_REQUIRE_VIRTUALENV": "0", "PIP_NO_INPUT": "1",
                "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if proxy:
        env["PIP_PROXY"] = proxy
    return env


def pip_install_command(python: str | Path, package_set: PackageSet, target: str | Path,
                        index_args: Sequence[str] = ()) -> list[str]:
    """The pip command that installs ``package_set`` into ``target`` and nothing else
    (``index_args``: e.g. ``--no-index --find-links DIR`` in tests)."""
    return [str(python), "-I", "-m", "pip", "install", "--target", str(target), "--no-deps",
            "--only-binary=:all:", "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
            "--progress-bar", "off", *index_args, *package_set.requirements]


def _no_window() -> dict:
    """Popen options that keep a console window from flashing up on Windows."""
    return {"creationflags": subprocess.CREATE_NO_WINDOW} if sys.platform.startswith("win") else {}


def run_logged(cmd: Sequence[str], env: Mapping[str, str], on_line: LineFn | None = None,
               is_cancelled: CancelFn | None = None, timeout: float = PIP_TIMEOUT_S) -> tuple[int, str]:
    """Run ``cmd``, passing each output line to ``on_line``; return (exit code, whole output).

    ``is_cancelled`` is polled every 0.2 s: the process is then stopped and ``CancelledError``
    raised; past ``timeout`` seconds it is stopped with exit code -1.
    """
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(env), text=True, encoding="utf-8", errors="replace", **_no_window())
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\r\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    deadline = time.monotonic() + timeout
    finished = False
    while not finished:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is None:
            finished = True
        elif line:
            output.append(line)
            if on_line is not None:
                on_line(line)
        if is_cancelled is not None and is_cancelled():
            _stop(proc)
            raise CancelledError("Install cancelled; nothing was installed.")
        if time.monotonic() > deadline:
            _stop(proc)
            return -1, "\n".join([*output, f"(stopped after {timeout:.0f} s)"])
    return proc.wait(), "\n".join(output)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# (reason, patterns in pip's lower-cased output), checked in this order: a proxy or a network
# failure also ends with "no matching distribution", so the platform comes last
_FAILURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("no_pip", ("no module named pip",)),
    ("proxy", ("proxyerror", "407 proxy authentication", "tunnel connection failed", "cannot connect to proxy",
               "missing dependencies for socks support")),
    ("ssl", ("sslerror", "certificate_verify_failed")),
    ("network", ("newconnectionerror", "failed to establish a new connection", "name or service not known",
                 "temporary failure in name resolution", "nodename nor servname", "getaddrinfo failed",
                 "connection refused", "connecttimeouterror", "read timed out", "network is unreachable",
                 "max retries exceeded", "connection broken", "could not fetch url")),
    ("conflict", ("resolutionimpossible", "conflicting dependencies")),
    ("disk", ("no space left on device", "errno 28", "not enough space on the disk", "winerror 112")),
    ("permission", ("permission denied", "errno 13", "access is denied", "winerror 5]")),
    ("platform", ("no matching distribution found", "is not a supported wheel on this platform",
                  "from versions: none")),
)


def failure_reason(output: str) -> str:
    """Why a pip run failed, from its output: one of the reasons of ``_FAILURES``, else "pip"."""
    text = output.lower()
    return next((r for r, pats in _FAILURES if any(p in text for p in pats)), "pip")


def failure_message(reason: str, returncode: int, output: str, *, what: str, index: str, size_mb: int,
                    target: str | Path, keep: str, again: str, python_label: str = "QGIS's Python") -> str:
    """The user's message for a failed pip run: what went wrong with ``what`` and what to do.

    ``index`` names where pip downloads from, ``keep`` what is left as it was, ``again`` how to
    retry (e.g. "click Install again"), ``python_label`` the interpreter that runs pip."""
    host = index.split("://", 1)[-1].split("/", 1)[0] or index
    messages = {
        "no_pip": f"{python_label} has no pip, which the install needs. {keep}",
        "proxy": (f"The proxy refused the download of {what}. Check the proxy's host, port, user and password "
                  "in QGIS's Settings > Options > Network (pip cannot use a SOCKS proxy: choose an HTTP proxy), "
                  f"then {again}. {keep}"),
        "ssl": (f"The secure connection to the package index ({host}) failed while downloading {what} "
                "(certificate not trusted). A company network that inspects HTTPS needs its certificate given "
                f"to pip (ask your IT for pip's 'cert' setting). {keep}"),
        "network": (f"Could not download {what}: no connection to the package index ({host}). Check the "
                    f"internet connection, or set QGIS's proxy in Settings > Options > Network, then {again}. "
                    f"{keep}"),
        "disk": (f"Not enough disk space to install {what} into {target}: it needs about "
                 f"{size_mb} MB. Free some space, then {again}. {keep}"),
        "permission": (f"The folder {Path(target).parent} cannot be written to, so {what} cannot be installed "
                       f"there. Check its permissions (or the antivirus's), then {again}. {keep}"),
        "platform": (f"{what} has no build for this system (Python {sys.version_info[0]}.{sys.version_info[1]}, "
                     f"{platform.system()} {platform.machine()}), so it cannot be installed here. {keep}"),
        "conflict": (f"pip found no {what} that fits the packages already there. Its last lines:\n"
                     + "\n".join(output.strip().splitlines()[-5:]) + f"\n{keep}"),
        "pip": (f"pip failed (exit code {returncode}) while installing {what}. Its last lines:\n"
                + "\n".join(output.strip().splitlines()[-5:]) + f"\n{keep}"),
    }
    return messages[reason]


def classify_pip_failure(returncode: int, output: str, package_set: PackageSet, target: str | Path) -> \
        DependencyInstallError:
    """The user's error for a failed pip run: what went wrong and what to do."""
    reason = failure_reason(output)
    message = failure_message(reason, returncode, output, what=f"{package_set.name} {package_set.version}",
                              index="https://pypi.org", size_mb=package_set.size_mb, target=target,
                              keep="Nothing was installed; predictions keep working with the numpy backend.",
                              again="click Install again")
    return DependencyInstallError(message, reason)


_VERIFY = ("import json, sys\n"
           "sys.path.append(sys.argv[1])\n"  # where the plugin puts it: after QGIS's own paths
           "import numpy\n"                  # QGIS imports numpy first; the package must work with that copy
           "m = __import__(sys.argv[2])\n"
           "print(json.dumps({'version': getattr(m, '__version__', ''), 'file': getattr(m, '__file__', ''),"
           " 'numpy': numpy.__version__, 'numpy_file': numpy.__file__}))")


def verify_install(python: str | Path, folder: str | Path, package_set: PackageSet,
                   env: Mapping[str, str] | None = None) -> dict:
    """Import ``package_set`` from ``folder`` in a fresh interpreter, as the plugin will (after numpy).

    Returns what it imported (version, file, numpy's version and file); raises
    ``DependencyInstallError`` (reason "verify") with the import's error otherwise.
    """
    folder = Path(folder)
    try:
        proc = subprocess.run([str(python), "-I", "-c", _VERIFY, str(folder), package_set.import_name],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              env=clean_environment(env), **_no_window())
        info = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        proc, info = None, {"error": str(exc)}
    if info is None or "error" in info:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1] if proc is not None else info["error"]
        raise DependencyInstallError(
            f"{package_set.name} {package_set.version} was downloaded but does not import in QGIS's Python "
            f"({why}), so it was not kept. Predictions keep working with the numpy backend.", "verify")
    return info


@dataclass
class InstallResult:
    """A finished install: where, which version, what the verification imported, pip's output."""

    folder: Path
    version: str
    imported: dict
    log: list[str] = field(default_factory=list)
    pending_restart: bool = False  # the old install was in use: the new one replaces it at the next start


def install(package_set: PackageSet, root: str | Path, python: str | Path, *, proxy: str | None = None,
            index_args: Sequence[str] = (), key: str | None = None, on_line: LineFn | None = None,
            is_cancelled: CancelFn | None = None, extra_marker: Mapping[str, object] | None = None,
            env: Mapping[str, str] | None = None) -> InstallResult:
    """Install ``package_set`` under ``root`` with ``python`` (see the module docstring).

    Raises ``DependencyInstallError`` (its ``reason`` says why) or ``CancelledError``; then the
    previous install, if any, is left as it was and no partial folder remains.
    """
    folder = install_folder(root, package_set, key)
    log: list[str] = []

    def line(text: str) -> None:
        log.append(text)
        if on_line is not None:
            on_line(text)

    _check_folder(folder.parent, package_set)
    staging = Path(tempfile.mkdtemp(prefix=f".{package_set.key}-partial-", dir=folder.parent))
    try:
        env_pip = clean_environment(env, proxy)
        cmd = pip_install_command(python, package_set, staging, index_args)
        line("$ " + " ".join(cmd))
        code, output = run_logged(cmd, env_pip, line, is_cancelled)
        if code != 0:
            raise classify_pip_failure(code, output, package_set, folder)
        line(f"Checking that {package_set.name} imports in QGIS's Python…")
        imported = verify_install(python, staging, package_set, env)
        imported["file"] = imported["file"].replace(str(staging), str(folder))  # where it will be
        marker = {"package_set": package_set.key, "requirements": list(package_set.requirements),
                  "python": f"{sys.version_info[0]}.{sys.version_info[1]}", "interpreter": str(python),
                  "imported": imported, "installed": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra_marker or {})}
        (staging / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        done = _replace(staging, folder)
        if not done:  # the update waits beside the folder in use; activate() applies it at the next start
            shutil.rmtree(_pending(folder), ignore_errors=True)
            staging.rename(_pending(folder))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    version = str(imported.get("version") or package_set.version)
    line(f"{package_set.name} {version} installed in {folder}" if done else
         f"{package_set.name} {version} is ready in {_pending(folder)}: the one in use is replaced at the next start")
    return InstallResult(folder, version, imported, log, pending_restart=not done)


def _check_folder(parent: Path, package_set: PackageSet) -> None:
    check_install_folder(parent, f"{package_set.name} {package_set.version}", package_set.size_mb)


def check_install_folder(parent: Path, what: str, size_mb: int, again: str = "click Install again") -> None:
    """Refuse (``DependencyInstallError``, reason "permission" or "disk") unless ``parent`` can be
    created and written, with ``size_mb`` free for ``what``; ``again`` says how to retry."""
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise DependencyInstallError(f"The folder {parent} cannot be created ({existing} is not writable), so {what} "
                                     "cannot be installed there. Check its permissions.", "permission")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DependencyInstallError(f"The folder {parent} cannot be created ({exc.strerror or exc}), so {what} "
                                     "cannot be installed there. Check its permissions.", "permission") from None
    if not os.access(parent, os.W_OK):
        raise DependencyInstallError(f"The folder {parent} cannot be written to, so {what} cannot be installed "
                                     "there. Check its permissions.", "permission")
    free_mb = shutil.disk_usage(parent).free / 1e6
    if free_mb < size_mb:
        raise DependencyInstallError(f"Not enough disk space to install {what} into {parent}: it needs about "
                                     f"{size_mb} MB, {free_mb:.0f} MB are free. Free some space, "
                                     f"then {again}.", "disk")


def _pending(folder: Path) -> Path:
    """Where an update waits when ``folder`` is in use (Windows locks loaded DLLs)."""
    return folder.with_name(folder.name + ".next")


def _replace(staging: Path, folder: Path) -> bool:
    """Move the verified ``staging`` folder to ``folder``, replacing an older install; True when done.

    False when the older install is in use by this process (Windows refuses to rename a folder
    whose DLLs are loaded); ``staging`` is then left where it is."""
    old = None
    try:
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old-{os.getpid()}-{time.monotonic_ns()}")
            folder.rename(old)
        staging.rename(folder)
    except OSError:
        if old is not None and not folder.exists():
            old.rename(folder)  # keep the previous install usable
        return False
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return True
