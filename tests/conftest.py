"""Shared fixtures: paths to the shared real data and a temporary output folder."""
from __future__ import annotations

import os
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
