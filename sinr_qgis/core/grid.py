"""Prediction grids: an extent in any CRS, cut into square-ish pixels, and their centres in lon/lat.

A :class:`Grid` is what a range map is computed on and written as: ``extent`` = (xmin, ymin, xmax,
ymax) in the grid's CRS, ``width`` x ``height`` pixels, north-up. Pixel (row r, col c) covers
x in [xmin + c*xres, xmin + (c+1)*xres], y in [ymax - (r+1)*yres, ymax - r*yres]; the model is
evaluated at the pixel *centre*. The GeoTIFF geotransform is ``(xmin, xres, 0, ymax, 0, -yres)``.

Build one with::

    grid = Grid.from_pixel_size((-125, 24, -66, 50), "EPSG:4326", 0.1)   # pixel size in CRS units
    grid = Grid((xmin, ymin, xmax, ymax), crs_wkt, width=800, height=600)

``from_pixel_size`` keeps the top-left corner and the pixel size exactly and rounds the pixel
count up, so the extent may grow by less than one pixel to the right/bottom (``grid.extent`` is
the exact, possibly grown, extent). ``crs`` is anything ``osr.SetFromUserInput`` understands: an
authority id (``"EPSG:3857"``), WKT (what ``QgsCoordinateReferenceSystem.toWkt()`` gives), PROJ.

Coordinates are always in the traditional GIS axis order: x = easting/longitude, y =
northing/latitude, whatever the CRS definition says.

``grid.lonlat(row0, row1)`` returns the WGS 84 (lon, lat) of the centres of rows ``row0..row1-1``
(row-major, float64 [n, 2]) and a boolean ``ok`` array: False where the centre is off the globe;
those pixels are nodata. Off the globe means: outside the projection's domain (checked by a round
trip), or, in a geographic CRS, beyond a pole or, when the extent spans more than a full turn of
longitude, outside -180..180 (so no meridian is mapped twice; a narrower window such as 170..190
across the antimeridian is wrapped). A map view that shows more than the world ("Zoom Full") is
thus predicted where it can be, with nodata around; :func:`off_globe_note` says so in a sentence.

Where longitude depends on x alone and latitude on y alone (EPSG:4326, EPSG:3857 and other
cylindrical CRSs: ``grid.separable``, tested once per grid on a sample of centres), ``lonlat``
transforms one row and one column and broadcasts them; elsewhere each request is one vectorised
GDAL call and its round trip. pyproj is not used: QGIS's Python may carry one without its PROJ
data (as Debian's does), while GDAL's PROJ is the one QGIS itself uses.

Invalid requests raise :class:`~sinr_qgis.core.errors.GridError` with a message that says what
to change: an empty or inverted extent, a non-positive pixel size, more than ``MAX_PIXELS``
pixels, or a CRS that cannot be parsed or has no transformation to WGS 84.
"""
from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal, osr

from .errors import GridError

MAX_PIXELS = 500_000_000  # 20000 x 20000 = 400 M fits; beyond this a request is almost surely a typo
WGS84_WKT = osr.SRS_WKT_WGS84_LAT_LONG
_ROUNDTRIP_TOL = 1e-3  # of a pixel: how far a round-tripped centre may move before it is "invalid"
OFF_GLOBE_SAMPLE = 256  # off_globe_fraction samples at most this many rows and columns of a projected grid
# How far a sampled centre may lie from its row-and-column value for a grid to count as separable:
# 1e-9 deg is 0.1 mm, far below the 1e-5 deg a float32 longitude resolves (the encoder's input).
SEPARABLE_TOL_DEG = 1e-9
SEPARABLE_SAMPLE = 32  # the separability check compares up to this many rows x columns of centres


def parse_crs(crs: str) -> osr.SpatialReference:
    """An ``osr.SpatialReference`` (traditional GIS axis order) from an authid, WKT or PROJ string."""
    text = str(crs or "").strip()
    if not text:
        raise GridError("No CRS given for the prediction grid. Give an authority id such as "
                        "'EPSG:4326' or a WKT definition.")
    srs = osr.SpatialReference()
    try:
        with _quiet_gdal():
            err = srs.SetFromUserInput(text)
    except RuntimeError as exc:  # raised when osr exceptions are on
        raise GridError(f"Cannot understand the CRS {_short(text)!r} ({exc}). "
                        "Give an authority id such as 'EPSG:3857' or a valid WKT.") from None
    if err != 0 or not srs.ExportToWkt():
        raise GridError(f"Cannot understand the CRS {_short(text)!r}. "
                        "Give an authority id such as 'EPSG:3857' or a valid WKT.")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


@contextlib.contextmanager
def _quiet_gdal() -> Iterator[None]:
    """Silence GDAL's stderr messages; failures are reported through our own GridError."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[:n] + "..."


def _wgs84() -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromWkt(WGS84_WKT)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


@dataclass(frozen=True)
class _Axes:
    """A separable grid's centres: the longitude of each column and the latitude of each row."""

    lon: np.ndarray  # float64 [W], wrapped to [-180, 180); NaN where the column is off the globe
    col_ok: np.ndarray  # bool [W]
    lat: np.ndarray  # float64 [H]; NaN where the row is off the globe
    row_ok: np.ndarray  # bool [H]

    def lonlat(self, row0: int, row1: int) -> tuple[np.ndarray, np.ndarray]:
        """``Grid.lonlat`` of rows row0..row1-1: (lon, lat) [n, 2] (NaN off the globe) and ok [n]."""
        out = np.empty((row1 - row0, self.lon.size, 2))
        out[:, :, 0] = self.lon
        out[:, :, 1] = self.lat[row0:row1, None]
        ok = self.row_ok[row0:row1, None] & self.col_ok
        out[~ok] = np.nan
        return out.reshape(-1, 2), ok.ravel()


def _spread(n: int, k: int) -> np.ndarray:
    """Up to ``k`` distinct indices of 0..n-1, evenly spread and including both ends."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64))


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: extent (xmin, ymin, xmax, ymax) in ``crs``, ``width`` x ``height`` pixels."""

    extent: tuple[float, float, float, float]
    crs: str
    width: int
    height: int
    _srs: osr.SpatialReference = field(init=False, repr=False, compare=False)
    _transformers: dict = field(init=False, repr=False, compare=False)
    _identity: bool = field(init=False, repr=False, compare=False)
    _half_turn: float = field(init=False, repr=False, compare=False)  # 180 deg in a geographic CRS's unit
    _axes_memo: dict = field(init=False, repr=False, compare=False)  # "axes": _Axes | None, once per grid

    def __post_init__(self) -> None:
        try:
            ext = tuple(float(v) for v in self.extent)
        except (TypeError, ValueError):
            raise GridError(f"The extent {self.extent!r} is not four numbers (xmin, ymin, xmax, ymax).") from None
        if len(ext) != 4:
            raise GridError(f"The extent needs four numbers (xmin, ymin, xmax, ymax), got {len(ext)}.")
        object.__setattr__(self, "extent", ext)
        xmin, ymin, xmax, ymax = ext
        if not all(math.isfinite(v) for v in ext):
            raise GridError(f"The extent {ext} has non-finite values. Give a finite extent.")
        if xmax <= xmin or ymax <= ymin:
            what = "empty" if (xmax == xmin or ymax == ymin) else "inverted"
            raise GridError(f"The extent {ext} is {what}: it needs xmin < xmax and ymin < ymax. "
                            "Draw or type a non-empty extent.")
        try:
            w, h = int(self.width), int(self.height)
        except (TypeError, ValueError):
            raise GridError(f"Width and height must be whole numbers, got {self.width!r} x {self.height!r}.") from None
        if w < 1 or h < 1:
            raise GridError(f"The grid needs at least 1 x 1 pixels, got {w} x {h}. "
                            "Use a smaller pixel size or a larger extent.")
        object.__setattr__(self, "width", w)
        object.__setattr__(self, "height", h)
        _check_pixel_count(w, h)
        srs = parse_crs(self.crs)
        object.__setattr__(self, "_srs", srs)
        # GetAngularUnits: radians per unit (degrees, grads...); pixels beyond the poles are nodata
        unit = srs.GetAngularUnits() if srs.IsGeographic() else 0.0
        object.__setattr__(self, "_half_turn", math.pi / unit if unit > 0 else 180.0)
        wgs = _wgs84()
        identity = bool(srs.IsGeographic() and srs.IsSame(wgs))
        object.__setattr__(self, "_identity", identity)
        # One pair of transformers per thread: PROJ objects belong to the thread that made them,
        # and a grid is typically built on the main thread and used in a background task.
        object.__setattr__(self, "_transformers", {})
        object.__setattr__(self, "_axes_memo", {})
        if not identity:
            self._thread_transformers()  # fail now, with a clear error, if there is no transformation

    def _thread_transformers(self) -> tuple[object, object]:
        key = threading.get_ident()
        if key not in self._transformers:
            wkt = self._srs.ExportToWkt()
            forward = inverse = None
            try:
                with _quiet_gdal():
                    forward = gdal.Transformer(None, None, [f"SRC_SRS={wkt}", f"DST_SRS={WGS84_WKT}"])
                    inverse = gdal.Transformer(None, None, [f"SRC_SRS={WGS84_WKT}", f"DST_SRS={wkt}"])
            except RuntimeError as exc:
                raise GridError(f"No transformation from the grid's CRS ({self.crs_name}) to WGS 84 "
                                f"lon/lat ({exc}). Use a CRS tied to the Earth, e.g. EPSG:3857.") from None
            if forward is None or inverse is None:
                raise GridError(f"No transformation from the grid's CRS ({self.crs_name}) to WGS 84 "
                                "lon/lat. Use a CRS tied to the Earth, e.g. EPSG:3857.")
            self._transformers[key] = (forward, inverse)
        return self._transformers[key]

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_pixel_size(cls, extent: tuple[float, float, float, float], crs: str,
                        pixel_size: float | tuple[float, float]) -> Grid:
        """A grid of square (or (xres, yres)) pixels anchored at the extent's top-left corner.

        The pixel count is rounded up, so the extent grows by less than a pixel to the right and
        bottom when it is not a whole number of pixels (tiny float excess is ignored).
        """
        xres, yres = (pixel_size, pixel_size) if np.isscalar(pixel_size) else tuple(pixel_size)
        try:
            xres, yres = float(xres), float(yres)
        except (TypeError, ValueError):
            raise GridError(f"The pixel size {pixel_size!r} is not a number.") from None
        if not (math.isfinite(xres) and math.isfinite(yres)) or xres <= 0 or yres <= 0:
            raise GridError(f"The pixel size must be a positive number in the CRS units, got {pixel_size!r}.")
        try:
            xmin, ymin, xmax, ymax = (float(v) for v in extent)
        except (TypeError, ValueError):
            raise GridError(f"The extent {extent!r} is not four numbers (xmin, ymin, xmax, ymax).") from None
        if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmax <= xmin or ymax <= ymin:
            raise GridError(f"The extent {tuple(extent)} is empty, inverted or not finite: it needs "
                            "xmin < xmax and ymin < ymax. Draw or type a non-empty extent.")
        nx = (xmax - xmin) / xres
        ny = (ymax - ymin) / yres
        _check_pixel_count(nx, ny)
        w = max(1, math.ceil(nx - 1e-6))
        h = max(1, math.ceil(ny - 1e-6))
        return cls((xmin, ymax - h * yres, xmin + w * xres, ymax), crs, w, h)

    # ---- geometry -----------------------------------------------------------------------
    @property
    def xres(self) -> float:
        return (self.extent[2] - self.extent[0]) / self.width

    @property
    def yres(self) -> float:
        return (self.extent[3] - self.extent[1]) / self.height

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), numpy order."""
        return self.height, self.width

    @property
    def n_pixels(self) -> int:
        return self.width * self.height

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform, north-up: (xmin, xres, 0, ymax, 0, -yres)."""
        return (self.extent[0], self.xres, 0.0, self.extent[3], 0.0, -self.yres)

    @property
    def srs(self) -> osr.SpatialReference:
        """A copy of the grid's spatial reference (traditional GIS axis order)."""
        return self._srs.Clone()

    @property
    def crs_wkt(self) -> str:
        return self._srs.ExportToWkt()

    @property
    def crs_name(self) -> str:
        auth = self._srs.GetAuthorityName(None)
        code = self._srs.GetAuthorityCode(None)
        name = self._srs.GetName() or "unnamed CRS"
        return f"{auth}:{code} {name}" if auth and code else name

    @property
    def is_geographic(self) -> bool:
        return bool(self._srs.IsGeographic())

    @property
    def key(self) -> tuple:
        """Hashable identity (extent, size, CRS) used to recognise the same grid (embedding cache)."""
        return (self.extent, self.width, self.height, self.crs_wkt)

    def pixel_centres(self, row0: int = 0, row1: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x, y (grid CRS, float64, row-major, flattened) of the centres of rows row0..row1-1."""
        row1 = self.height if row1 is None else row1
        cols = self._column_x()
        rows = self._row_y(row0, row1)
        x = np.broadcast_to(cols, (row1 - row0, self.width)).ravel()
        y = np.repeat(rows, self.width)
        return x, y

    def _column_x(self) -> np.ndarray:
        """x of each column's centres, float64 [W]."""
        return self.extent[0] + (np.arange(self.width, dtype=np.float64) + 0.5) * self.xres

    def _row_y(self, row0: int = 0, row1: int | None = None) -> np.ndarray:
        """y of the centres of rows row0..row1-1, float64 [row1 - row0]."""
        row1 = self.height if row1 is None else row1
        return self.extent[3] - (np.arange(row0, row1, dtype=np.float64) + 0.5) * self.yres

    def lonlat(self, row0: int = 0, row1: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """WGS 84 (lon, lat) [n, 2] of the pixel centres of rows row0..row1-1 and a bool ``ok`` [n].

        ``ok`` is False where the centre is off the globe (see the module docstring: outside the
        CRS's domain, beyond a pole, or a repeated meridian); such rows of ``lonlat`` are NaN.
        Longitudes are wrapped to [-180, 180). A :attr:`separable` grid is answered from one row and
        one column transformed once per grid (no transform per pixel); any other grid in one
        vectorised GDAL call per request, then its round trip.
        """
        row1 = self.height if row1 is None else row1
        axes = self._axes()
        if axes is not None:
            return axes.lonlat(row0, row1)
        return self._lonlat_at(*self.pixel_centres(row0, row1))

    @property
    def separable(self) -> bool:
        """Whether every centre's longitude depends on its x alone and its latitude on its y alone
        (EPSG:4326, EPSG:3857 and other cylindrical CRSs), checked by transforming one row and one
        column and comparing a sample of up to ``SEPARABLE_SAMPLE`` x ``SEPARABLE_SAMPLE`` centres
        spread over the grid with the point-by-point transform (within ``SEPARABLE_TOL_DEG``, same
        off-globe pixels). Computed once per grid."""
        return self._axes() is not None

    def _axes(self) -> _Axes | None:
        memo = self._axes_memo
        if "axes" not in memo:  # two threads may both compute it: same value, no lock needed
            memo["axes"] = self._separable_axes()
        return memo["axes"]

    def _separable_axes(self) -> _Axes | None:
        """The centres' lon of each column and lat of each row when the grid is separable, else None."""
        x, y = self._column_x(), self._row_y()
        # reference row and column: lon/lat 0 needs no transform; otherwise the grid's middle
        ry = 0.0 if self._identity else y[self.height // 2]
        cx = 0.0 if self._identity else x[self.width // 2]
        lon_cols, col_ok = self._lonlat_at(x, np.full_like(x, ry))
        lat_rows, row_ok = self._lonlat_at(np.full_like(y, cx), y)
        axes = _Axes(lon_cols[:, 0], col_ok, lat_rows[:, 1], row_ok)
        rows = _spread(self.height, SEPARABLE_SAMPLE)
        cols = _spread(self.width, SEPARABLE_SAMPLE)
        sx, sy = np.meshgrid(x[cols], y[rows])
        want, want_ok = self._lonlat_at(sx.ravel(), sy.ravel())
        got_ok = np.outer(row_ok[rows], col_ok[cols]).ravel()
        if not np.array_equal(want_ok, got_ok):
            return None
        got_lon = np.broadcast_to(axes.lon[cols], (rows.size, cols.size)).ravel()[got_ok]
        got_lat = np.repeat(axes.lat[rows], cols.size)[got_ok]
        dlon = np.mod(want[got_ok, 0] - got_lon + 180.0, 360.0) - 180.0  # -180 and 180 are one meridian
        if np.any(np.abs(dlon) > SEPARABLE_TOL_DEG) or np.any(np.abs(want[got_ok, 1] - got_lat) > SEPARABLE_TOL_DEG):
            return None
        return axes

    def _lonlat_at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lonlat`` for any points (x, y) of the grid's CRS, float64 [n]."""
        on_globe = self._on_globe(x, y)
        if self._identity:
            lon, lat = x.copy(), y.copy()
            ok = on_globe
        else:
            forward, inverse = self._thread_transformers()
            with _quiet_gdal():  # a centre off the domain is reported by ok, not one stderr line per pixel
                lon, lat, ok = _transform(forward, x, y)
                # round trip: a centre that does not come back was outside the projection's domain
                bx, by, ok2 = _transform(inverse, np.where(ok, lon, 0.0), np.where(ok, lat, 0.0))
            tol = _ROUNDTRIP_TOL * min(self.xres, self.yres)
            with np.errstate(invalid="ignore"):
                dx = bx - x
                if self.is_geographic:  # longitudes may come back wrapped by 360 deg
                    dx = np.mod(dx + 180.0, 360.0) - 180.0
                ok &= ok2 & (np.abs(dx) <= tol) & (np.abs(by - y) <= tol)
            ok &= on_globe & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90.0)
        out = np.full((x.size, 2), np.nan)
        out[ok, 0] = np.mod(lon[ok] + 180.0, 360.0) - 180.0
        out[ok, 1] = lat[ok]
        return out, ok

    def _on_globe(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """bool [n]: False where a geographic grid's own coordinates leave the globe (beyond a pole, or
        outside -180..180 when the extent spans more than a full turn); all True when projected."""
        ok = np.ones(np.shape(x), dtype=bool)
        if not self.is_geographic:
            return ok  # a projection's domain is checked by the round trip in _lonlat_at
        half = self._half_turn
        ok &= np.abs(y) <= half / 2 * (1 + 1e-12)
        if self.repeats_meridians:
            ok &= np.abs(x) <= half * (1 + 1e-12)
        return ok

    @property
    def reaches_beyond_poles(self) -> bool:
        """A geographic extent whose north or south edge lies past a pole."""
        pole = self._half_turn / 2
        return self.is_geographic and (self.extent[1] < -pole or self.extent[3] > pole)

    @property
    def repeats_meridians(self) -> bool:
        """A geographic extent wider than a full turn: wrapping would map some meridians twice."""
        return self.is_geographic and self.extent[2] - self.extent[0] > 2 * self._half_turn * (1 + 1e-9)

    def off_globe_fraction(self) -> float:
        """Share (0..1) of the pixels whose centre is off the globe (nodata in every output).

        Exact for a geographic or :attr:`separable` grid (rows beyond a pole, repeated columns,
        columns past the edge of the world); for any other projected grid it is estimated on at
        most ``OFF_GLOBE_SAMPLE`` evenly spread rows by as many columns.
        """
        axes = self._axes()
        if axes is not None:
            return float(1.0 - axes.row_ok.mean() * axes.col_ok.mean())
        x_cols, y_rows = self._column_x(), self._row_y()
        if self.is_geographic:
            rows_on = self._on_globe(np.zeros_like(y_rows), y_rows).mean()
            cols_on = self._on_globe(x_cols, np.zeros_like(x_cols)).mean()
            return float(1.0 - rows_on * cols_on)
        rows, cols = _spread(self.height, OFF_GLOBE_SAMPLE), _spread(self.width, OFF_GLOBE_SAMPLE)
        x, y = np.meshgrid(x_cols[cols], y_rows[rows])
        _, ok = self._lonlat_at(x.ravel(), y.ravel())
        return float(1.0 - ok.mean())

    def row_blocks(self, rows: int) -> Iterator[tuple[int, int]]:
        """(row0, row1) pairs covering the grid top to bottom, ``rows`` rows each (last one shorter)."""
        rows = max(1, int(rows))
        for r0 in range(0, self.height, rows):
            yield r0, min(self.height, r0 + rows)


def off_globe_note(grid: Grid, what: str = "extent") -> str:
    """One sentence telling the user that part of ``grid`` is off the globe and left empty, e.g.
    "10 % of the extent lies off the globe (beyond the poles); ...", or "" when none is.

    ``what`` names the area in the sentence ("extent", "map view"). Raises ``GridError`` when no
    pixel is on the globe, since such a map would be empty.
    """
    frac = grid.off_globe_fraction()
    if frac <= 0.0:
        return ""
    if grid.is_geographic:
        where = []
        if grid.reaches_beyond_poles:
            where.append("beyond the poles")
        if grid.repeats_meridians:
            where.append("past 180 degrees of longitude, where the map would repeat itself")
        reason = " or ".join(where)
    else:
        reason = f"outside what {grid.crs_name} can show"
    if frac >= 1.0:
        raise GridError(f"The whole {what} lies off the globe ({reason}), so there is nothing to predict. "
                        "Pan or zoom to a part of the Earth.")
    share = f"{frac * 100:.0f} %" if frac >= 0.005 else "Less than 1 %"
    if not grid.is_geographic and frac >= 0.005:
        share = "About " + share  # estimated on a sample of the pixels
    return f"{share} of the {what} lies off the globe ({reason}); those pixels are left empty (nodata)."


def extent_across_antimeridian(west: float, south: float, east: float, north: float,
                               crs: str) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of an extent typed west edge first, where ``west > east`` may mean
    a window that crosses the antimeridian.

    In a geographic CRS, ``170, 50, -170, 70`` is the 20-degree window from 170 E eastwards to
    170 W, returned as ``(170, 50, 190, 70)`` (longitudes past 180 are the same meridians, and
    :meth:`Grid.lonlat` wraps them). An extent that does not cross is returned unchanged. In a
    projected CRS an x range with ``west > east`` is refused (``GridError``): there is no seam to
    cross, so it is a typo.
    """
    vals = (float(west), float(south), float(east), float(north))
    if not all(math.isfinite(v) for v in vals):
        raise GridError(f"The extent {vals} has non-finite values. Give a finite extent.")
    if west <= east:
        return vals
    if not parse_crs(crs).IsGeographic():
        raise GridError(f"The extent's x minimum ({west:g}) is greater than its x maximum ({east:g}) in a "
                        "projected CRS. Give xmin < xmax.")
    return (vals[0], vals[1], vals[2] + 360.0 * math.ceil((vals[0] - vals[2]) / 360.0 + 1e-12), vals[3])


def longitude_window(lon: np.ndarray) -> tuple[float, float]:
    """(west, east) degrees of the narrowest window holding all longitudes ``lon`` (any, [N]).

    The window is the circle minus the widest empty gap between neighbouring longitudes, so
    points on both sides of the antimeridian (179 E and 179 W) give (179, 181), not (-179, 179).
    ``east`` may exceed 180; ``west`` lies in [-180, 180). Raises ``GridError`` for no finite value.
    """
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lon = np.sort(np.mod(lon[np.isfinite(lon)] + 180.0, 360.0) - 180.0)
    if lon.size == 0:
        raise GridError("No longitude to take an extent from. Give an extent.")
    gaps = np.diff(np.r_[lon, lon[0] + 360.0])  # the last gap wraps from the easternmost back round
    widest = int(np.argmax(gaps))
    if widest == lon.size - 1:
        return float(lon[0]), float(lon[-1])
    return float(lon[widest + 1]), float(lon[widest] + 360.0)


def transform_points(x: np.ndarray, y: np.ndarray, src_crs: str, dst_crs: str
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points (x, y float64 [N], traditional GIS axis order) from ``src_crs`` to ``dst_crs`` (anything
    :func:`parse_crs` reads), with PROJ's default operation.

    Returns (x, y, ok): ``ok`` is False where the point has no image (outside the target CRS's
    domain, e.g. the opposite pole of a polar stereographic CRS); those x, y are NaN. Raises
    ``GridError`` when there is no transformation between the two CRSs at all.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    src, dst = parse_crs(src_crs), parse_crs(dst_crs)
    if src.IsSame(dst):
        return x.copy(), y.copy(), np.isfinite(x) & np.isfinite(y)
    try:
        with _quiet_gdal():
            transformer = gdal.Transformer(None, None, [f"SRC_SRS={src.ExportToWkt()}",
                                                        f"DST_SRS={dst.ExportToWkt()}"])
    except RuntimeError:
        transformer = None
    if transformer is None:
        raise GridError(f"No transformation from {_short(src.GetName() or src_crs)} to "
                        f"{_short(dst.GetName() or dst_crs)}. Check both layers' CRS.")
    if x.size == 0:
        return x, y, np.zeros(0, dtype=bool)
    with _quiet_gdal():
        tx, ty, ok = _transform(transformer, x, y)
    ok &= np.isfinite(tx) & np.isfinite(ty)
    return np.where(ok, tx, np.nan), np.where(ok, ty, np.nan), ok


def _check_pixel_count(nx: float, ny: float) -> None:
    n = float(nx) * float(ny)
    if n > MAX_PIXELS:
        raise GridError(f"The grid would have {round(nx):,} x {round(ny):,} = {n:,.0f} pixels, more "
                        f"than the limit of {MAX_PIXELS:,}. Use a larger pixel size or a smaller extent.")


def _transform(transformer: object, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transform points with a ``gdal.Transformer``; failed points get ok=False (never raises per point)."""
    pts = np.stack([x, y], axis=1)
    out, ok = transformer.TransformPoints(0, pts)  # type: ignore[attr-defined]
    arr = np.asarray(out, dtype=np.float64).reshape(-1, 3)
    ok_arr = np.asarray(ok, dtype=bool).reshape(-1)
    return arr[:, 0], arr[:, 1], ok_arr
