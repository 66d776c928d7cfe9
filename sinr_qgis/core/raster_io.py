"""GeoTIFF output for prediction grids: streamed, compressed, Cloud Optimized, written atomically.

Files are Float32, DEFLATE-compressed, tiled 256 x 256 Cloud Optimized GeoTIFFs (GDAL's COG driver;
a tiled GTiff where that driver is missing), with overviews when a side exceeds
``OVERVIEW_MIN_SIDE`` pixels. Nodata is
``NODATA`` = -9999 in every band; in-memory arrays use NaN for nodata and are converted on write.
Each band has a description (e.g. the species name) and may carry its own metadata; the dataset
carries metadata tags (model name, sha256, species codes, encoding, backend, ...).

Two ways to write:

``write_geotiff(path, grid, array, band_names=..., metadata=..., style=...)``
    an in-memory float array [bands, H, W] (or [H, W]), NaN = nodata. For small grids, and for
    results computed elsewhere (embedding PCA, richness counts).

``GeoTiffWriter(path, grid, bands=[BandSpec(...)], metadata=...)``
    streaming, for grids of any size: ``write_rows(row0, block)`` with [bands, rows, W] blocks top
    to bottom, then ``finish()`` (builds the COG into a temporary file) and ``commit()`` (renames
    it onto ``path`` and writes the style sidecar). Use it as a context manager: leaving the block
    without ``commit()`` (error, cancel) deletes every temporary file, so no partial file is left
    under the final name. A raster of at most ``IN_MEMORY_BYTES`` is assembled in memory; a larger
    one keeps memory at one block, its rows going to a striped temporary GeoTIFF beside the output.
    GDAL converts either to the COG.

Styles: ``style="probability"`` (a 0..1 pseudocolour ramp) or ``"binary"`` (0/1 classes) writes
``<name>.qml`` beside the GeoTIFF, from ``resources/styles/prediction.qml`` /
``prediction_binary.qml`` (band 1 of the file is styled). ``style_path(kind)`` gives the template
for the QGIS side to apply when it adds a layer.

Unwritable outputs raise :class:`~sinr_qgis.core.errors.OutputError`; a cancel (``is_cancelled``
returning True during the COG conversion) raises :class:`~sinr_qgis.core.errors.CancelledError`.
A write the disk refuses (full disk, file size limit) is an ``OutputError`` too, and leaves no file
under the final name: GDAL caches blocks and reports such failures only through its error handler
when it flushes or closes a file, even where the call itself "succeeds", so every GDAL step of the
writer runs under :func:`_gdal_failures`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal

from .atomic import check_writable
from .errors import CancelledError, OutputError
from .grid import Grid
from .resources import STYLES

NODATA = -9999.0
STYLE_FILES = {"probability": "prediction.qml", "binary": "prediction_binary.qml"}
TILE = 256
# A raster of at most this many bytes of float32 (a 2048 x 2048 band) is assembled in memory and the
# COG built from it directly: deflating, writing and re-reading temporary strips took 40 % of a
# further species' time on a cached 1024 x 1024 canvas. Larger ones stream to strips on disk.
IN_MEMORY_BYTES = 16 << 20
# Overviews only when a side is longer than this. A canvas-sized raster (up to a 2048-pixel side) is
# read whole at every zoom in a few milliseconds, so a pyramid gives nothing there, while building
# GDAL's AVERAGE pyramid was 60-75 % of writing a 1024 x 1024 band (issue 12: a further species).
OVERVIEW_MIN_SIDE = 2048
# DEFLATE level 1 (with the floating-point predictor): half the time of the default level 6 for files
# about 6 % larger, measured on a 1024 x 1024 probability map (13 vs 26 ms, 1.72 vs 1.62 MB).
DEFLATE_LEVEL = 1
_FILE_MODE = 0o644  # mkstemp makes private 0600 files; outputs are ordinary readable files (as atomic.py)

ProgressFn = Callable[[float], None]
CancelFn = Callable[[], bool]


@dataclass
class BandSpec:
    """One output band: its description (shown by QGIS as the band name) and per-band metadata."""

    description: str
    metadata: dict[str, str] = field(default_factory=dict)


def style_path(kind: str = "probability") -> Path:
    """The shipped ``.qml`` template for ``kind`` ("probability" or "binary")."""
    if kind not in STYLE_FILES:
        raise ValueError(f"unknown style {kind!r}; expected one of {sorted(STYLE_FILES)}")
    return STYLES / STYLE_FILES[kind]


def write_style_sidecar(raster_path: str | Path, kind: str = "probability") -> Path:
    """Write ``<raster>.qml`` (the default style for ``kind``) beside ``raster_path``; return its path."""
    target = Path(raster_path).with_suffix(".qml")
    text = style_path(kind).read_text(encoding="utf-8")
    _write_text_atomic(target, text)
    return target


def _write_text_atomic(target: Path, text: str) -> None:
    check_writable(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc}. Choose another folder.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _gdal_failures(path: Path) -> Iterator[None]:
    """Raise ``OutputError`` for ``path`` when GDAL reports a failure inside the block (with GDAL
    exceptions on or off: a failed cached write surfaces as an error message, not a return code)."""
    failures: list[str] = []

    def handler(err_class: int, _err_no: int, message: str) -> None:
        if err_class >= gdal.CE_Failure:
            failures.append(message)

    gdal.PushErrorHandler(handler)
    try:
        yield
    except RuntimeError as exc:  # GDAL exceptions enabled (by QGIS or another plugin)
        failures.append(str(exc))
    finally:
        gdal.PopErrorHandler()
    if failures:
        raise OutputError(f"Writing {path} failed ({failures[0].strip()}). Free disk space or choose another "
                          "folder; no file was written.")


def _temp_beside(final: Path, tag: str) -> Path:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".{tag}.tif", dir=final.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write {final}: {exc}. Choose a writable folder.") from None
    os.close(fd)
    return Path(tmp)


def _remove(path: Path | None) -> None:
    if path is None:
        return
    for p in (path, Path(str(path) + ".aux.xml"), Path(str(path) + ".ovr")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


class GeoTiffWriter:
    """Stream row blocks of a grid into a Float32 COG at ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path, grid: Grid, bands: Sequence[BandSpec | str], *,
                 metadata: Mapping[str, object] | None = None, style: str | None = "probability",
                 resampling: str = "AVERAGE", cog: bool = True) -> None:
        self.path = check_writable(path)
        if self.path.suffix.lower() not in (".tif", ".tiff"):
            raise OutputError(f"Cannot write {self.path}: the output must be a GeoTIFF (.tif).")
        self.grid = grid
        self.bands = [b if isinstance(b, BandSpec) else BandSpec(str(b)) for b in bands]
        if not self.bands:
            raise ValueError("a GeoTIFF needs at least one band")
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.style = style
        self.resampling = resampling
        self.cog = cog and gdal.GetDriverByName("COG") is not None
        self._strips: Path | None = None
        self._final_tmp: Path | None = None
        self._ds: gdal.Dataset | None = None
        self._rows_written = 0
        self._committed = False

    # ---- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def open(self, rows_per_block: int | None = None) -> None:
        """Create the in-memory raster (at most ``IN_MEMORY_BYTES``) or the striped temporary file
        (``rows_per_block`` = the rows each ``write_rows`` gets).

        Called by the first ``write_rows`` with that block's height if not called before.
        """
        if self._ds is not None:
            return
        g = self.grid
        if 4 * g.width * g.height * len(self.bands) <= IN_MEMORY_BYTES:
            ds = self._gdal(lambda: gdal.GetDriverByName("MEM").Create(
                "", g.width, g.height, len(self.bands), gdal.GDT_Float32))
        else:
            self._strips = _temp_beside(self.path, "strips")
            rows = max(1, min(g.height, rows_per_block or TILE))
            opts = ["COMPRESS=DEFLATE", "ZLEVEL=1", "INTERLEAVE=BAND", f"BLOCKYSIZE={rows}", "BIGTIFF=IF_SAFER"]
            ds = self._gdal(lambda: gdal.GetDriverByName("GTiff").Create(
                str(self._strips), g.width, g.height, len(self.bands), gdal.GDT_Float32, opts))
        ds.SetGeoTransform(g.geotransform)
        ds.SetProjection(g.crs_wkt)
        ds.SetMetadata(self.metadata)
        for i, spec in enumerate(self.bands, start=1):
            band = ds.GetRasterBand(i)
            band.SetNoDataValue(NODATA)
            band.SetDescription(spec.description)
            if spec.metadata:
                band.SetMetadata({str(k): str(v) for k, v in spec.metadata.items()})
        self._ds = ds

    def write_rows(self, row0: int, block: np.ndarray) -> None:
        """Write [bands, rows, width] (or [rows, width] for one band) starting at ``row0``; NaN = nodata."""
        if self._ds is None:
            self.open(block.shape[-2])
        arr = np.asarray(block, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape[0] != len(self.bands) or arr.shape[2] != self.grid.width:
            raise ValueError(f"block shape {arr.shape} does not match {len(self.bands)} bands x "
                             f"{self.grid.width} columns")
        arr = np.where(np.isfinite(arr), arr, np.float32(NODATA))
        with _gdal_failures(self.path):
            for i in range(arr.shape[0]):
                err = self._ds.GetRasterBand(i + 1).WriteArray(arr[i], 0, int(row0))
                if err not in (0, None):
                    raise OutputError(f"Writing {self.path} failed (disk full?). Free space or choose another "
                                      "folder; no file was written.")
        self._rows_written = max(self._rows_written, int(row0) + arr.shape[1])

    def finish(self, progress: ProgressFn | None = None, is_cancelled: CancelFn | None = None) -> None:
        """Close the strips and build the COG into a temporary file beside ``path`` (not yet renamed)."""
        if self._ds is None:
            raise ValueError("nothing written")
        if self._strips is not None:
            with _gdal_failures(self.path):
                try:
                    self._ds.FlushCache()
                finally:
                    self._ds = None  # closing writes the TIFF directory: a full disk can fail here too
        self._final_tmp = _temp_beside(self.path, "part")

        def callback(done: float, _msg: object, _data: object) -> int:
            if progress is not None:
                progress(100.0 * done)
            return 0 if (is_cancelled is not None and is_cancelled()) else 1

        overviews = "AUTO" if self._wants_overviews() else "NONE"
        if self.cog:
            opts = gdal.TranslateOptions(format="COG", callback=callback, creationOptions=[
                "COMPRESS=DEFLATE", f"LEVEL={DEFLATE_LEVEL}", "PREDICTOR=YES", f"BLOCKSIZE={TILE}",
                f"OVERVIEWS={overviews}",
                f"RESAMPLING={self.resampling}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"])
        else:
            opts = gdal.TranslateOptions(format="GTiff", callback=callback, creationOptions=[
                "COMPRESS=DEFLATE", f"ZLEVEL={DEFLATE_LEVEL}", "PREDICTOR=3", "TILED=YES", f"BLOCKXSIZE={TILE}",
                f"BLOCKYSIZE={TILE}", "BIGTIFF=IF_SAFER"])
        try:
            self._translate(opts)
        except OutputError:
            if is_cancelled is not None and is_cancelled():
                raise CancelledError("Cancelled while writing the GeoTIFF; no file was written.") from None
            raise
        _remove(self._strips)
        self._strips = self._ds = None

    def _wants_overviews(self) -> bool:
        """True when a side of the grid exceeds ``OVERVIEW_MIN_SIDE`` (see there)."""
        return max(self.grid.width, self.grid.height) > OVERVIEW_MIN_SIDE

    def _translate(self, opts: gdal.GDALTranslateOptions) -> None:
        """Strips (or the in-memory raster) -> the final temporary file; every file is closed before
        returning or raising (an open file cannot be deleted on Windows)."""
        src = out = None
        try:
            with _gdal_failures(self.path):
                src = self._ds if self._strips is None else gdal.Open(str(self._strips))
                out = gdal.Translate(str(self._final_tmp), src, options=opts) if src is not None else None
                if out is None:
                    raise RuntimeError(gdal.GetLastErrorMsg() or "GDAL could not convert the file")
                if not self.cog and self._wants_overviews():
                    out.BuildOverviews(self.resampling, [2, 4, 8, 16, 32])
                out.FlushCache()
                out = None  # closing writes the last blocks and the directory
        finally:
            src = out = None

    def commit(self) -> Path:
        """Rename the finished file onto ``path`` and write the style sidecar; return ``path``."""
        if self._final_tmp is None:
            raise ValueError("call finish() before commit()")
        try:
            os.chmod(self._final_tmp, _FILE_MODE)
            os.replace(self._final_tmp, self.path)
            # statistics of a previous file of that name would be wrong for the new one
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(self.path) + ".aux.xml")
        except OSError as exc:
            raise OutputError(f"Cannot write {self.path}: {exc}. Choose another file or folder.") from None
        _remove(Path(str(self._final_tmp)))
        self._final_tmp = None
        self._committed = True
        if self.style:
            write_style_sidecar(self.path, self.style)
        return self.path

    def discard(self) -> None:
        """Delete every temporary file (a no-op after ``commit``)."""
        self._ds = None
        _remove(self._strips)
        _remove(self._final_tmp)
        self._strips = self._final_tmp = None

    def _gdal(self, make: Callable[[], gdal.Dataset | None]) -> gdal.Dataset:
        try:
            ds = make()
        except RuntimeError as exc:
            raise OutputError(f"Cannot create {self.path}: {exc}. Choose a writable folder.") from None
        if ds is None:
            raise OutputError(f"Cannot create {self.path}: {gdal.GetLastErrorMsg()}. Choose a writable folder.")
        return ds


def write_geotiff(path: str | Path, grid: Grid, array: np.ndarray, *,
                  band_names: Sequence[str] | None = None,
                  band_metadata: Sequence[Mapping[str, str]] | None = None,
                  metadata: Mapping[str, object] | None = None, style: str | None = None,
                  resampling: str = "AVERAGE") -> Path:
    """Write an in-memory array [bands, H, W] (or [H, W]) for ``grid`` as a Float32 COG; NaN = nodata.

    ``band_names`` become band descriptions (default "band 1", ...); ``style`` ("probability",
    "binary" or None) writes a ``.qml`` sidecar. Atomic: nothing is left at ``path`` on failure.
    """
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != grid.shape:
        raise ValueError(f"array shape {np.shape(array)} does not match the grid {grid.shape}")
    names = list(band_names) if band_names is not None else [f"band {i + 1}" for i in range(arr.shape[0])]
    if len(names) != arr.shape[0]:
        raise ValueError(f"{len(names)} band names for {arr.shape[0]} bands")
    metas = list(band_metadata) if band_metadata is not None else [{}] * arr.shape[0]
    specs = [BandSpec(n, dict(m)) for n, m in zip(names, metas)]
    rows = max(1, min(grid.height, (1 << 22) // max(1, grid.width * arr.shape[0])))
    with GeoTiffWriter(path, grid, specs, metadata=metadata, style=style, resampling=resampling) as w:
        for r0, r1 in grid.row_blocks(rows):
            w.write_rows(r0, arr[:, r0:r1])
        w.finish()
        return w.commit()
