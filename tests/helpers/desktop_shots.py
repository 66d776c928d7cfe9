"""The real-desktop walks' findings: a step's entry, checks of a screenshot's pixels, publishing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from qgis.PyQt.QtGui import QColor, QImage

from tests.desktop.qgis_desktop import ROOT

SCREENSHOTS = ROOT / "build" / "screenshots"


def publish_artifacts(shots: Path, walk: str) -> None:
    """Replace build/screenshots/<walk> with this run's screenshots, JSON findings and QGIS log."""
    target = SCREENSHOTS / walk
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{walk}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(shots, staging)
    shutil.rmtree(target, ignore_errors=True)
    try:
        staging.rename(target)
    except OSError:  # another run published at the same moment: keep theirs
        shutil.rmtree(staging, ignore_errors=True)


def step(e2e, name: str) -> dict:
    entry = e2e["steps"][name]
    assert "error" not in entry, f"step {name} failed:\n{entry['error']}"
    return entry


def non_background_fraction(png: str, rect: list[int], background: str) -> float:
    """Share of pixels inside ``rect`` (x, y, w, h) of a screenshot that differ from ``background``."""
    image = QImage(png)
    x0, y0, w, h = rect
    bg = QColor(background)
    differ = total = 0
    for y in range(y0 + 2, y0 + h - 2, 6):
        for x in range(x0 + 2, x0 + w - 2, 6):
            c = image.pixelColor(x, y)
            total += 1
            if abs(c.red() - bg.red()) + abs(c.green() - bg.green()) + abs(c.blue() - bg.blue()) > 30:
                differ += 1
    return differ / max(total, 1)


def colour_fraction(png: str, rect: list[int], colour: str, tolerance: int = 60) -> float:
    """Share of pixels inside ``rect`` close to ``colour`` (e.g. the expert-range outline)."""
    image = QImage(png)
    x0, y0, w, h = rect
    want = QColor(colour)
    hits = total = 0
    for y in range(y0 + 2, y0 + h - 2, 2):
        for x in range(x0 + 2, x0 + w - 2, 2):
            c = image.pixelColor(x, y)
            total += 1
            if abs(c.red() - want.red()) + abs(c.green() - want.green()) + abs(c.blue() - want.blue()) < tolerance:
                hits += 1
    return hits / max(total, 1)


def check_window_shot(e2e, name: str) -> dict:
    info = e2e["screenshots"][name]
    image = QImage(info["path"])
    assert not image.isNull(), info["path"]
    assert image.width() >= 1000 and image.height() >= 700, (image.width(), image.height())
    return info


def assert_paints_its_data(rendered: dict, colours: int = 10) -> None:
    """A prediction layer rendered alone over its own extent paints the cells that hold a value
    (land inside the model's data footprint; the rest is nodata and stays transparent) and no
    others, within 0.05 (the render samples every 4th screen pixel of a resampled raster), with
    more than ``colours`` distinct colours of its ramp."""
    assert rendered["data_fraction"] > 0.1, rendered  # the map is not empty
    assert abs(rendered["painted_fraction"] - rendered["data_fraction"]) < 0.05, rendered
    assert rendered["distinct_colours"] > colours, rendered
