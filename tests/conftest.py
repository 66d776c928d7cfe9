"""Shared fixtures: paths to the shared real data and a temporary output folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SINR_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder (``../shared/data``)."""
    if not (SHARED_DATA / "occurrences" / "na_trees.csv.gz").is_file():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set SINR_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture
def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder the code must treat as not writable, for every user: mode 0500, and ``os.access``
    reports no write access to it, because root (CI) passes permission bits and would otherwise
    never reach the "not writable" path."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path) == folder:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o700)


_SESSION_STATUS: dict[str, int] = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _SESSION_STATUS["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without Python's interpreter teardown once QGIS has exited.

    QGIS/PyQt wrappers freed during interpreter shutdown, after ``exitQgis()``, intermittently
    segfault or abort ("double free") after every test has passed and the summary is printed.
    The exit code must be the tests' result, so skip that teardown (QGIS itself never runs it).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_SESSION_STATUS.get("status", 0))


@pytest.fixture(scope="session")
def little_ranges(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the Little range GeoPackage.

    QGIS and OGR may open a GeoPackage in update mode, which rewrites SQLite header bytes even
    when no feature changes; the shared data must never be written, so tests open a copy.
    """
    import shutil

    dst = tmp_path_factory.mktemp("ranges") / "little_ranges.gpkg"
    shutil.copyfile(shared_data / "ranges" / "little_ranges.gpkg", dst)
    return dst


PAPER_SPECIES = 47_375  # the paper's (and the official checkpoints') number of species


@pytest.fixture(scope="session")
def paper_bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A paper-scale bundle, made once per session without torch: 47,375 species of width 256
    (random weights, ~50 MB, a few seconds). Its encoder has no residual blocks: what these tests
    measure is the species head (47,375 x 256), whose size they need, not the encoder's depth."""
    from tests.factories import fixture_bundle

    path = tmp_path_factory.mktemp("paper") / "paper_scale.sinr"
    fixture_bundle(path, "sin_cos_w256", n_species=PAPER_SPECIES)
    return path
