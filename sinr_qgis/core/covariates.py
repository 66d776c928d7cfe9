"""Covariate rasters (climate, land cover) read and sampled at (lon, lat) points: one set of rules
for training and prediction. numpy + GDAL.

Values are read as GDAL and QGIS define them (:func:`read_band`):

- a cell is missing where the band's mask says so (GDAL's ``GetMaskBand``: the declared nodata, an
  alpha band, a per-dataset or ``.msk`` mask), where the file's alpha band is 0 (GDAL's mask uses an
  alpha band only in 2- and 4-band files; QGIS draws any alpha band; an alpha band is never a
  covariate itself), where it is NaN or infinite, and where it holds a
  float fill value (|v| >= 1e30, such as WorldClim's -3.4e38 written without a nodata tag; a
  warning says to declare it);
- packed integers are unpacked with the band's scale and offset (``raw * scale + offset``);
- other usual fill values (-9999; -32768 in an Int16 band; 65535 in a UInt16 band) met among the
  valid cells stay values (they may be real), with a warning that says to declare nodata;
- a band with GDAL category names, a raster attribute table, a palette or band metadata
  ``CATEGORICAL=YES`` holds classes
  (:mod:`.categories`): it is read at the nearest cell, never interpolated, and not standardised;
  so is a band the user marks categorical.

Where a raster lies (:class:`CovariateRaster`): in any CRS (points are transformed to it); without
a CRS it is read as EPSG:4326 when its extent fits longitude/latitude degrees (a note says so),
else refused; a rotated raster is refused. On a geographic raster longitudes wrap by 360 degrees,
so a 0..360 grid is read where a -180..180 one would be (a note says so).

Sampling: bilinear between cell centres, weights renormalised over the valid neighbours (coasts do
not bleed nodata inwards), or the nearest cell for the bands asked. A point whose own cell is
missing, or that lies outside the raster, reads NaN: missing coverage is never made up. A band of
at most ``KEEP_BAND_BYTES`` is read once and kept; larger ones are read in tiles of
``TILE_CELLS`` around the points. Statistics (mean, std) are over each band's valid cells, read in
strips.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from .categories import BandClasses, declared_classes
from .errors import CovariateError, GridError
from .grid import WGS84_WKT, parse_crs, transform_points

FILL_MAGNITUDE = 1e30  # beyond any covariate's values; float fill values sit at float32's extremes
# fill values many products write without declaring them, by GDAL data type: kept, with a warning
USUAL_FILLS = {"Int16": (-9999, -32768), "UInt16": (65535,), "Int32": (-9999,), "Float32": (-9999,),
               "Float64": (-9999,)}
KEEP_BAND_BYTES = 1 << 24  # a band of up to 4 million cells (16 MiB of float32) is read once and kept
TILE_CELLS = 512  # larger bands are read in tiles of 512 x 512 cells (+ 1 around) holding points
STRIP_CELLS = 1 << 22  # cells read at once for statistics
_ALL_VALID, _PER_DATASET, _ALPHA, _NODATA = 0x01, 0x02, 0x04, 0x08  # GDAL's GMF_* mask flags


@dataclass(frozen=True)
class CovariateBand:
    """What GDAL says about one raster band.

    ``name``: its description, else ``<file stem>_b<index>``; ``index`` 1-based; ``dtype`` GDAL's
    type name; ``nodata`` the declared nodata (raw units) or None; ``scale``, ``offset``: value =
    raw * scale + offset; ``mask``: how GDAL's mask knows its missing cells ("none", "nodata",
    "alpha band", "dataset mask"); ``alpha``: the file's alpha band number where GDAL's mask does
    not use it (0: none), read as a mask too; ``classes``: the classes GDAL declares for it (category names, a
    raster attribute table, a palette: :func:`~.categories.declared_classes`), None for a continuous
    band."""

    name: str
    index: int
    dtype: str
    nodata: float | None
    scale: float
    offset: float
    mask: str
    classes: BandClasses | None
    alpha: int = 0


def band_info(band: Any, index: int, stem: str, alpha: int = 0) -> CovariateBand:
    """The :class:`CovariateBand` of ``band`` (a ``gdal.Band``), band ``index`` of file ``stem``
    whose alpha band is number ``alpha`` (0: none)."""
    flags = band.GetMaskFlags()
    mask = ("none" if flags & _ALL_VALID else "nodata" if flags & _NODATA else
            "alpha band" if flags & _ALPHA else "dataset mask")
    extra = alpha if alpha and not flags & _ALPHA else 0
    return CovariateBand(name=band.GetDescription() or f"{stem}_b{index}", index=index,
                         dtype=gdal.GetDataTypeName(band.DataType), nodata=band.GetNoDataValue(),
                         scale=band.GetScale() or 1.0, offset=band.GetOffset() or 0.0, mask=mask,
                         classes=declared_classes(band), alpha=extra)


def read_band(band: Any, info: CovariateBand, window: tuple[int, int, int, int] | None = None,
              fills: Counter | None = None) -> np.ndarray:
    """float32 [h, w] values of ``band`` (a ``gdal.Band`` described by ``info``) in ``window``
    (first column, first row, width, height; default: the whole band), NaN where missing, read by
    the module's rules. ``fills`` (if given) counts the fill values met, as
    ``("missing" | "kept", value) -> cells``. Call it under :func:`gdal_read_errors`."""
    c0, r0, w, h = window or (0, 0, band.XSize, band.YSize)
    raw = band.ReadAsArray(c0, r0, w, h)
    if raw is None:
        raise RuntimeError(f"band {info.index} cannot be read")
    missing = ~np.isfinite(raw) if raw.dtype.kind == "f" else np.zeros(raw.shape, dtype=bool)
    if info.mask != "none":
        missing |= band.GetMaskBand().ReadAsArray(c0, r0, w, h) == 0
    if info.alpha:
        missing |= band.GetDataset().GetRasterBand(info.alpha).ReadAsArray(c0, r0, w, h) == 0
    if info.scale != 1.0 or info.offset != 0.0:
        values = (raw.astype(np.float64) * info.scale + info.offset).astype(np.float32)
    else:
        values = raw.astype(np.float32)
    with np.errstate(invalid="ignore"):
        extreme = (np.abs(values) >= FILL_MAGNITUDE) & ~missing
    if fills is not None:
        if extreme.any():
            codes, counts = np.unique(values[extreme], return_counts=True)
            fills.update({("missing", float(v)): int(n) for v, n in zip(codes, counts)})
        for v in USUAL_FILLS.get(info.dtype, ()):
            n = int(np.count_nonzero((raw == v) & ~missing))
            if n:
                fills[("kept", float(v))] += n
    values[missing | extreme] = np.nan
    return values


def fill_warnings(file_name: str, info: CovariateBand, fills: Counter) -> list[str]:
    """What a user should know about the fill values ``read_band`` counted in one band."""
    out = []
    for (what, value), n in sorted(fills.items()):
        where = f"{file_name} (band {info.index}, {info.name})"
        if what == "missing":
            out.append(f"{where}: {n:,} cells read hold {value:.7g}, a fill value, and no nodata is declared for it; "
                       f"they are read as missing. Declare the nodata value (e.g. gdal_edit.py -a_nodata {value:.9g} "
                       f"{file_name}) so every program reads the raster alike.")
        else:
            declared = f"the declared nodata is {info.nodata:g}" if info.nodata is not None else "no nodata is declared"
            out.append(f"{where}: {n:,} cells read hold {value:g}, a usual fill value, but {declared}, so they are "
                       f"read as values. If these cells are empty, declare the nodata value (e.g. gdal_edit.py "
                       f"-a_nodata {value:g} {file_name}); if they are real values, ignore this warning.")
    return out


@contextlib.contextmanager
def gdal_read_errors(p: Path) -> Iterator[list[str]]:
    """GDAL failures inside the block become one ``CovariateError`` naming ``p``, whether GDAL
    exceptions are on or off: that mode is process-wide, QGIS's and other plugins' to choose, so it
    is never changed here. Yields the failure messages so far (for calls that return None)."""
    from osgeo import gdal

    failures: list[str] = []

    def collect(err_class: int, _err_no: int, message: str) -> None:
        if err_class >= gdal.CE_Failure:
            failures.append(message.strip())

    gdal.PushErrorHandler(collect)  # also keeps GDAL's messages off stderr
    try:
        yield failures
    except RuntimeError as exc:  # GDAL exceptions on (by QGIS or another plugin)
        failures.append(str(exc).strip())
    finally:
        gdal.PopErrorHandler()
    if failures:
        raise _unreadable(p, failures[0])


def _unreadable(p: Path, why: str) -> CovariateError:
    return CovariateError(f"Cannot read covariate raster {p.name}: {why.rstrip('.')}. "
                          "Choose a raster file GDAL can read (e.g. a GeoTIFF).")


class CovariateRaster:
    """One covariate raster file: its covariate bands (:class:`CovariateBand`; all but an alpha band,
    which masks them), where it lies, and its values at points (the module's rules). Bands are
    known by GDAL's numbers (1-based). Values are read when asked for.

    ``names``: one per band (:attr:`CovariateBand.name`); ``geotransform``, ``width``, ``height``:
    GDAL's; ``categorical``: per band, its classes (:class:`~.categories.BandClasses`) when it is
    categorical, else None; ``notes``: what was assumed (a missing CRS read as EPSG:4326,
    longitudes wrapped).
    Raises ``CovariateError`` for a missing, unreadable, bandless or rotated raster, one without CRS
    whose extent is not in degrees, and one whose CRS cannot be reached from lon/lat."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        if not p.is_file():
            raise CovariateError(f"Covariate raster {p} does not exist. Choose an existing raster file.")
        with gdal_read_errors(p) as failures:
            ds = gdal.Open(str(p))
            if ds is None:
                raise _unreadable(p, failures[0] if failures else "GDAL does not recognise it as a raster")
            # an alpha band is the other bands' mask (read_band applies it), not a covariate
            alphas = [i for i in range(1, ds.RasterCount + 1)
                      if ds.GetRasterBand(i).GetColorInterpretation() == gdal.GCI_AlphaBand]
            self.bands = [band_info(ds.GetRasterBand(i), i, p.stem, alphas[0] if alphas else 0)
                          for i in range(1, ds.RasterCount + 1) if i not in alphas]
            wkt = ds.GetProjection()
        if not self.bands:
            raise CovariateError(f"Covariate raster {p.name} has no bands with values (only an alpha band, or none). "
                                 "Choose a raster with values.")
        self._position = {b.index: i for i, b in enumerate(self.bands)}
        gt = tuple(ds.GetGeoTransform())
        if gt[2] != 0 or gt[4] != 0:
            raise CovariateError(f"Covariate raster {p.name} is rotated; warp it to a north-up grid first.")
        self.path, self.geotransform = p, gt
        self.width, self.height = ds.RasterXSize, ds.RasterYSize
        self._ds = ds
        self.categorical: list[BandClasses | None] = [b.classes for b in self.bands]
        self.notes: list[str] = []
        self._crs, self.geographic = self._raster_crs(wkt)
        self._kept: dict[int, np.ndarray] = {}
        self._fills: dict[int, Counter] = {}

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bands]

    @property
    def n_bands(self) -> int:
        """How many covariate bands the file has (its bands but an alpha band)."""
        return len(self.bands)

    @property
    def band_numbers(self) -> list[int]:
        """GDAL's (1-based) number of each covariate band, in order."""
        return [b.index for b in self.bands]

    def info(self, band: int) -> CovariateBand:
        """The :class:`CovariateBand` of GDAL band number ``band``. Raises ``CovariateError`` for a
        band the file does not have, or its alpha band."""
        if band not in self._position:
            what = "is its alpha band (a mask), not a covariate" if 1 <= band <= self._ds.RasterCount else \
                "does not exist"
            raise CovariateError(f"Covariate raster {self.path.name} has covariate band(s) "
                                 f"{', '.join(map(str, self.band_numbers))}; band {band} {what}. Choose one of these.")
        return self.bands[self._position[band]]

    def is_categorical(self, band: int) -> bool:
        """Whether GDAL band number ``band`` holds classes: read at the nearest cell, not standardised."""
        return self.categorical[self._position[band]] is not None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in the raster's CRS units."""
        x0, dx, _, y0, _, dy = self.geotransform
        xs, ys = sorted((x0, x0 + self.width * dx)), sorted((y0, y0 + self.height * dy))
        return xs[0], ys[0], xs[1], ys[1]

    def extent_text(self) -> str:
        """The raster's extent in words, for messages."""
        west, south, east, north = self.bounds
        if self.geographic:
            return f"lon {west:.2f} to {east:.2f}, lat {south:.2f} to {north:.2f}"
        return f"x {west:.6g} to {east:.6g}, y {south:.6g} to {north:.6g} in its CRS"

    @property
    def warnings(self) -> list[str]:
        """The notes, then what the fill values met so far call for."""
        return self.notes + [w for i, f in sorted(self._fills.items())
                             for w in fill_warnings(self.path.name, self.info(i), f)]

    def _raster_crs(self, wkt: str) -> tuple[str | None, bool]:
        """(the CRS points are transformed to, or None for lon/lat as they are; whether it is geographic)."""
        name = self.path.name
        west, south, east, north = self.bounds
        if not wkt:
            tol = 0.5 * abs(self.geotransform[1]) + 1e-9
            if west >= -180 - tol and east <= 360 + tol and south >= -90 - tol and north <= 90 + tol:
                self.notes.append(f"Covariate raster {name} has no CRS; its extent (lon {west:g} to {east:g}, lat "
                                  f"{south:g} to {north:g}) fits longitude/latitude degrees, so it is read as "
                                  f"EPSG:4326 (WGS 84). If it is in another CRS, assign that CRS to the file (e.g. "
                                  f"gdal_edit.py -a_srs EPSG:<code> {name}).")
                geographic = True
                crs = None
            else:
                raise CovariateError(
                    f"Covariate raster {name} has no CRS, and its extent (x {west:g} to {east:g}, y {south:g} to "
                    f"{north:g}) is not in longitude/latitude degrees. Assign its CRS to the file (e.g. gdal_edit.py "
                    f"-a_srs EPSG:<code> {name}) and choose it again.")
        else:
            try:
                srs = parse_crs(wkt)
                geographic = bool(srs.IsGeographic())
                crs = None if geographic and srs.IsSame(parse_crs(WGS84_WKT)) else wkt
                if crs is not None:
                    transform_points(np.empty(0), np.empty(0), WGS84_WKT, crs)  # refuses an unreachable CRS now
            except GridError as exc:
                raise CovariateError(f"Covariate raster {name}: {exc}") from None
        if geographic and east > 180 + 0.5 * abs(self.geotransform[1]) + 1e-9:
            self.notes.append(f"Covariate raster {name} spans longitudes {west:g} to {east:g} (a 0..360 grid): "
                              "longitudes are wrapped by 360 degrees to read it, in training and prediction alike.")
        return crs, geographic

    def _raster_xy(self, lonlat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, ok) of (lon, lat) degrees [N, 2] in the raster's CRS; geographic longitudes wrapped
        into [west, west + 360)."""
        x, y = lonlat[:, 0].copy(), lonlat[:, 1].copy()
        ok = np.isfinite(x) & np.isfinite(y)
        if self._crs is not None and ok.any():
            x[ok], y[ok], good = transform_points(x[ok], y[ok], WGS84_WKT, self._crs)
            ok[ok] = good
        if self.geographic:
            west = self.bounds[0]
            with np.errstate(invalid="ignore"):
                x = west + np.mod(x - west, 360.0)
        return x, y, ok

    def sample(self, lonlat: np.ndarray, bands: Sequence[int] | None = None,
               nearest: Sequence[bool] | None = None) -> np.ndarray:
        """float64 [N, len(bands)]: ``bands`` (1-based; default all) at (lon, lat) degrees [N, 2],
        NaN where missing (module docstring). ``nearest`` (one per band; default: the categorical
        bands) takes the value of the cell holding the point instead of interpolating."""
        idx = [self.info(b).index for b in bands] if bands is not None else self.band_numbers
        near = list(nearest) if nearest is not None else [self.is_categorical(b) for b in idx]
        ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
        out = np.full((len(ll), len(idx)), np.nan)
        x, y, ok = self._raster_xy(ll)
        x0, dx, _, y0, _, dy = self.geotransform
        w, h = self.width, self.height
        with np.errstate(invalid="ignore"):
            u, v = (x - x0) / dx, (y - y0) / dy  # continuous cell coordinates, 0 at the raster's first corner
            ok &= (u >= 0) & (u <= w) & (v >= 0) & (v <= h)
        pick = np.flatnonzero(ok)
        if not pick.size:
            return out
        u, v = u[pick], v[pick]
        col = np.minimum(np.floor(u).astype(np.int64), w - 1)
        row = np.minimum(np.floor(v).astype(np.int64), h - 1)
        for (c0, r0, c1, r1), sel in self._windows(col, row):
            for j, b in enumerate(idx):
                cells = self._cells(b, c0, r0, c1, r1)
                out[pick[sel], j] = _interpolate(cells, u[sel] - c0, v[sel] - r0, near[j])
        return out

    def _windows(self, col: np.ndarray, row: np.ndarray) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray]]:
        """((c0, r0, c1, r1), point indices) of the windows to read: the whole band when it is kept,
        else each tile holding points, with one cell around for the interpolation."""
        w, h = self.width, self.height
        if w * h * 4 <= KEEP_BAND_BYTES:
            yield (0, 0, w, h), np.arange(col.size)
            return
        tiles_across = -(-w // TILE_CELLS)
        tile = (row // TILE_CELLS) * tiles_across + col // TILE_CELLS
        order = np.argsort(tile, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(tile[order]) != 0])
        for s, e in zip(starts, np.r_[starts[1:], order.size]):
            t = int(tile[order[s]])
            tr, tc = divmod(t, tiles_across)
            c0, r0 = max(0, tc * TILE_CELLS - 1), max(0, tr * TILE_CELLS - 1)
            c1, r1 = min(w, (tc + 1) * TILE_CELLS + 1), min(h, (tr + 1) * TILE_CELLS + 1)
            yield (c0, r0, c1, r1), order[s:e]

    def _cells(self, b: int, c0: int, r0: int, c1: int, r1: int) -> np.ndarray:
        """float32 values of band ``b`` in rows r0:r1, columns c0:c1 (NaN = missing)."""
        if b in self._kept:
            return self._kept[b][r0:r1, c0:c1]
        keep = self.width * self.height * 4 <= KEEP_BAND_BYTES
        window = (0, 0, self.width, self.height) if keep else (c0, r0, c1 - c0, r1 - r0)
        with gdal_read_errors(self.path):
            cells = read_band(self._ds.GetRasterBand(b), self.info(b), window,
                              self._fills.setdefault(b, Counter()))
        if keep:
            self._kept[b] = cells
            return cells[r0:r1, c0:c1]
        return cells

    def band_stats(self, bands: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) float64 [len(bands)] of each band's valid cells (std 1 where it would be 0;
        mean 0, std 1 for a band without valid cells, and for a categorical band, which is one-hot
        encoded, not standardised), read in strips of ``STRIP_CELLS``."""
        idx = [self.info(b).index for b in bands] if bands is not None else self.band_numbers
        mean, std = np.zeros(len(idx)), np.ones(len(idx))
        rows = max(1, STRIP_CELLS // self.width)
        for j, b in enumerate(idx):
            if self.is_categorical(b):
                continue
            n, m, m2 = 0, 0.0, 0.0
            for r0 in range(0, self.height, rows):
                r1 = min(self.height, r0 + rows)
                cells = self._cells(b, 0, r0, self.width, r1)
                valid = cells[np.isfinite(cells)].astype(np.float64)
                if not valid.size:
                    continue
                # strips merged exactly (Chan et al.): no float64 copy of the whole band
                vm = float(valid.mean())
                vm2 = float(np.square(valid - vm).sum())
                total = n + valid.size
                delta = vm - m
                m += delta * valid.size / total
                m2 += vm2 + delta * delta * n * valid.size / total
                n = total
            if n:
                mean[j] = m
                std[j] = np.sqrt(m2 / n) if m2 > 0 else 1.0
        return mean, std


def _interpolate(cells: np.ndarray, u: np.ndarray, v: np.ndarray, nearest: bool) -> np.ndarray:
    """float64 [n] values of ``cells`` [h, w] at continuous cell coordinates (``u`` columns, ``v``
    rows, 0 at the window's corner): the point's own cell, or bilinear between the four nearest
    cell centres renormalised over the valid ones; NaN where the own cell is missing."""
    h, w = cells.shape
    own = cells[np.clip(np.floor(v).astype(np.int64), 0, h - 1),
                np.clip(np.floor(u).astype(np.int64), 0, w - 1)].astype(np.float64)
    if nearest:
        return own
    pu, pv = u - 0.5, v - 0.5
    ix, iy = np.floor(pu), np.floor(pv)
    fx, fy = pu - ix, pv - iy
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    cols = (np.clip(ix, 0, w - 1), np.clip(ix + 1, 0, w - 1))
    rows = (np.clip(iy, 0, h - 1), np.clip(iy + 1, 0, h - 1))
    acc, wsum = np.zeros(u.size), np.zeros(u.size)
    for r, wr in ((rows[0], 1 - fy), (rows[1], fy)):
        for c, wc in ((cols[0], 1 - fx), (cols[1], fx)):
            val = cells[r, c].astype(np.float64)
            good = np.isfinite(val)
            acc += np.where(good, val * wr * wc, 0.0)
            wsum += np.where(good, wr * wc, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(own), acc / wsum, np.nan)  # the own cell's weight is >= 1/4


class RasterBandSampler:
    """One band of a covariate raster at (lon, lat) points, for predictions: the rules and the
    interpolation of :class:`CovariateRaster` (the training reader), so predictions see covariates
    the way the model did in training; ``nearest`` for a categorical covariate."""

    def __init__(self, path: str | Path, band: int = 1, *, nearest: bool = False) -> None:
        self.raster = CovariateRaster(path)
        self.path, self.band, self.nearest = self.raster.path, int(band), bool(nearest)
        self.raster.info(self.band)  # refuses a band the file does not have

    @property
    def warnings(self) -> list[str]:
        return self.raster.warnings

    def extent_text(self) -> str:
        return f"{self.path.name}: {self.raster.extent_text()}"

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """float64 [N]: the band's value at each (lon, lat) (bilinear, or with ``nearest`` its
        cell's); NaN where there is no coverage."""
        return self.raster.sample(lonlat, [self.band], [self.nearest])[:, 0]

    def band_stats(self) -> tuple[float, float]:
        """(mean, std) of the band's valid cells, read by the sampler's rules (see
        :meth:`CovariateRaster.band_stats`)."""
        mean, std = self.raster.band_stats([self.band])
        return float(mean[0]), float(std[0])


class CovariateStack:
    """Several covariate rasters used together; covariates in file order, then band order. A band
    GDAL declares categorical, or named in ``categorical``, is read at its nearest cell and not
    standardised."""

    def __init__(self, rasters: Sequence[CovariateRaster]) -> None:
        self.rasters = list(rasters)
        names = [n for r in self.rasters for n in r.names]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise CovariateError(f"Covariate names repeat across rasters: {', '.join(dup)}. "
                                 "Give each band a unique description.")
        self.names = names

    @classmethod
    def open(cls, paths: Sequence[str | Path], categorical: Sequence[str] = ()) -> CovariateStack:
        """The rasters at ``paths`` (see :class:`CovariateRaster` for the errors); the bands named in
        ``categorical`` are categorical (the user's choice), on top of those GDAL declares so."""
        if not paths:
            raise CovariateError("No covariate raster given.")
        stack = cls([CovariateRaster(p) for p in paths])
        stack.mark_categorical(categorical)
        return stack

    def mark_categorical(self, names: Sequence[str]) -> None:
        """Make the covariates ``names`` categorical (nearest cell, one-hot). Raises
        ``CovariateError`` for a name that is not a covariate, listing the covariates."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise CovariateError(f"No covariate band is named {', '.join(map(repr, unknown))}; the covariates are "
                                 f"{', '.join(self.names)}. Mark categorical covariates by these names.")
        for r in self.rasters:
            for b, n in enumerate(r.names):
                if n in names and r.categorical[b] is None:
                    r.categorical[b] = BandClasses("your choice")

    @property
    def categorical(self) -> list[BandClasses | None]:
        """Per covariate: its classes' declaration when it is categorical, else None."""
        return [c for r in self.rasters for c in r.categorical]

    @property
    def n_covariates(self) -> int:
        return len(self.names)

    @property
    def warnings(self) -> list[str]:
        """Every raster's notes and fill-value warnings so far (after sampling or ``stats``)."""
        return list(dict.fromkeys(w for r in self.rasters for w in r.warnings))

    def sample(self, lonlat: np.ndarray) -> np.ndarray:
        """Raw covariate values at (lon, lat) [N, 2] -> float64 [N, k], NaN where missing."""
        return np.concatenate([r.sample(lonlat) for r in self.rasters], axis=1)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-covariate (mean, std) over valid raster cells (0 and 1 for a categorical covariate)."""
        ms = [r.band_stats() for r in self.rasters]
        return np.concatenate([m for m, _ in ms]), np.concatenate([s for _, s in ms])
