"""Small rasters written into tmp_path for the covariate tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ascii_grid(path: Path, arr: np.ndarray, x0: float, y0: float, cell: float) -> Path:
    """An ESRI ASCII grid (lower-left corner x0, y0) without a .prj: no CRS, as many are shared."""
    rows = "\n".join(" ".join(f"{v:g}" for v in row) for row in arr)
    path.write_text(f"ncols {arr.shape[1]}\nnrows {arr.shape[0]}\nxllcorner {x0}\nyllcorner {y0}\n"
                    f"cellsize {cell}\nNODATA_value -9999\n{rows}\n", encoding="ascii")
    return path
