"""Copy the best end-to-end desktop screenshots into docs/screenshots/, small enough for the README.

The desktop tests (`make test-desktop`) leave full-size PNGs in build/screenshots/: afternoon/ from
the zip install in a clean profile on QGIS's own Python (tests/desktop/test_first_afternoon.py),
which also sets PyTorch up, trains and imports an official-layout checkpoint; checkout/ from the
checkout with the venv (tests/desktop/test_desktop_e2e.py). The README shows the zip install's, scaled
to at most the width given (a palette would band the colour ramps, so they stay RGB).
`make screenshots` runs the tests, then this.
"""
from __future__ import annotations

import sys
from pathlib import Path

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QGuiApplication, QImage

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "build" / "screenshots"
TARGET = ROOT / "docs" / "screenshots"
# README name <- e2e screenshot, width
PICKS = {"predict.png": ("afternoon/a05_here_list.png", 1000),
         "compare.png": ("afternoon/a06_compare.png", 1000),
         "setup_offered.png": ("afternoon/a10_setup_offered.png", 480),
         "setup_log.png": ("afternoon/a10_setup_running.png", 1000),
         "setup_ready.png": ("afternoon/a11_setup_ready.png", 480),
         "train_dialog.png": ("afternoon/a12_train_dialog.png", 480),
         "trained_model.png": ("afternoon/a12_trained_model.png", 1000),
         "import_dialog.png": ("afternoon/a13_import_done.png", 560),
         "imported_map.png": ("afternoon/a14_imported_map.png", 1000),
         "diagnostics.png": ("afternoon/06_diagnostics.png", 700)}


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(["readme_screenshots", "-platform", "offscreen"])  # noqa: F841
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = [src for src, _ in PICKS.values() if not (SOURCE / src).is_file()]
    if missing:
        print(f"missing in {SOURCE}: {missing}; run `make test-desktop` first", file=sys.stderr)
        return 1
    for name, (src, width) in PICKS.items():
        image = QImage(str(SOURCE / src))
        if image.width() > width:
            image = image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
        image = image.convertToFormat(QImage.Format.Format_RGB888)  # no alpha: smaller files
        out = TARGET / name
        image.save(str(out), "PNG", 9)
        print(f"{out.relative_to(ROOT)}  {image.width()}x{image.height()}  {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
