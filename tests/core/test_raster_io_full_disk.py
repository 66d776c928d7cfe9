"""A GeoTIFF the disk refuses is an OutputError and leaves nothing behind, never a success with a
truncated file. The full disk is real, not mocked: a child process gets a file size limit
(RLIMIT_FSIZE, which binds root too), so every write past it fails with EFBIG as on a full disk.
GDAL caches blocks and reports such failures only when it flushes or closes a file."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, resource, signal, sys
import numpy as np
from osgeo import gdal
from sinr_qgis.core.errors import OutputError
from sinr_qgis.core.grid import Grid
from sinr_qgis.core import raster_io
from sinr_qgis.core.raster_io import write_geotiff

limit, out, exceptions = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "on"
if sys.argv[4] == "strips":  # as a raster larger than IN_MEMORY_BYTES: rows go to temporary strips
    raster_io.IN_MEMORY_BYTES = 0
raster_io.OVERVIEW_MIN_SIDE = 0  # a pyramid, as on a raster larger than a canvas: the COG outgrows the strips
if exceptions:  # QGIS or another plugin may have turned GDAL exceptions on
    gdal.UseExceptions()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
grid = Grid.from_pixel_size((0, 0, 100, 50), "EPSG:4326", 0.1)  # 1000 x 500
values = np.random.default_rng(0).random((2, *grid.shape)).astype(np.float32)  # ~4 MB, incompressible
try:
    write_geotiff(out, grid, values)
    result = {"ok": True}
except OutputError as exc:
    result = {"ok": False, "error": str(exc)}
print(json.dumps(result))
"""


# Strips, 100 kB: the temporary strips fail while being written; 4 MB: the strips fit (deflate at
# level 1 saves a little) but the final COG does not (the case that used to return a truncated
# file). In memory (rasters up to IN_MEMORY_BYTES): the COG fails at either limit.
@pytest.mark.parametrize("limit", [100_000, 4_000_000])
@pytest.mark.parametrize("exceptions", ["off", "on"])
@pytest.mark.parametrize("rows_to", ["strips", "memory"])
def test_a_full_disk_is_an_output_error_and_leaves_no_file(tmp_path, limit, exceptions, rows_to):
    out = tmp_path / "big.tif"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(limit), str(out), exceptions, rows_to], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is False
    assert result["error"].startswith(f"Writing {out} failed (")
    assert result["error"].endswith("Free disk space or choose another folder; no file was written.")
    if exceptions == "off":  # (with exceptions on, GDAL 3.6 prints "Exception ignored" when it closes
        assert "Traceback" not in proc.stderr  # the failed file: a destructor cannot raise; nothing escapes)
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary file


@pytest.mark.parametrize("rows_to", ["strips", "memory"])
def test_the_same_write_succeeds_without_the_limit(tmp_path, rows_to):
    out = tmp_path / "big.tif"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(1 << 40), str(out), "off", rows_to], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"ok": True}, proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["big.tif"]
