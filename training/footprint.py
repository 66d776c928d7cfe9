"""The data footprint of a trained model (:mod:`sinr_qgis.core.footprint`), computed at export and by
``python -m training footprint`` for older bundles. numpy and scipy; no torch.

Distances are great-circle: locations become 3-D unit vectors, a ``scipy.spatial.cKDTree`` finds
the nearest ones by chord length, and a chord ``c`` is the arc ``2 asin(c / 2)`` (times the Earth's
radius). The chord grows with the arc, so the k nearest by chord are the k nearest by arc.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from sinr_qgis.core.footprint import (
    DEFAULT_K,
    DEFAULT_PERCENTILE,
    DEFAULT_RESOLUTION,
    EARTH_RADIUS_KM,
    CovariateRanges,
    DistanceField,
    Footprint,
    grid_shape,
    ordinal,
)

LEAF_SIZE = 64  # nodes far from every location visit many leaves: larger leaves halved the grid's time
ROWS_PER_QUERY = 32  # grid rows per tree query: bounded memory for the neighbours' distances


def unit_vectors(lonlat: np.ndarray) -> np.ndarray:
    """(lon, lat) degrees [N, 2] -> unit vectors float64 [N, 3]."""
    ll = np.radians(np.asarray(lonlat, dtype=np.float64).reshape(-1, 2))
    cos_lat = np.cos(ll[:, 1])
    return np.stack([cos_lat * np.cos(ll[:, 0]), cos_lat * np.sin(ll[:, 0]), np.sin(ll[:, 1])], axis=1)


def chord_to_km(chord: np.ndarray) -> np.ndarray:
    """Chord length between unit vectors -> great-circle distance (km), float64."""
    return 2.0 * np.arcsin(np.clip(np.asarray(chord, dtype=np.float64) / 2.0, 0.0, 1.0)) * EARTH_RADIUS_KM


def distinct_locations(lonlat: np.ndarray) -> np.ndarray:
    """The distinct finite (lon, lat) rows of ``lonlat`` [N, 2] degrees, float64 [M, 2]: many records
    at one place (a plot with several species) are one location."""
    ll = np.asarray(lonlat, dtype=np.float64).reshape(-1, 2)
    return np.unique(ll[np.isfinite(ll).all(axis=1)], axis=0)


def leave_one_out_km(tree: cKDTree, k: int) -> np.ndarray:
    """Per location of ``tree`` (distinct points), the distance (km) to its ``k``-th nearest other
    location, float64 [M]: the spacing of the training data itself."""
    # only the (k+1)-th column (the nearest is the location itself): 16 bytes a location, not 16 (k+1)
    chord, _ = tree.query(tree.data, k=[k + 1], workers=-1)
    return chord_to_km(chord[:, 0])


def grid_distances(tree: cKDTree, k: int, resolution: float) -> np.ndarray:
    """The distance (km) to the ``k``-th nearest point of ``tree`` at every node of the global grid
    of ``resolution`` degrees (:func:`sinr_qgis.core.footprint.grid_shape`), float32 [rows, columns]."""
    n_lat, n_lon = grid_shape(resolution)
    lon = -180.0 + resolution * np.arange(n_lon)
    out = np.empty((n_lat, n_lon), dtype=np.float32)
    for r0 in range(0, n_lat, ROWS_PER_QUERY):
        r1 = min(n_lat, r0 + ROWS_PER_QUERY)
        lat = -90.0 + resolution * np.arange(r0, r1)
        nodes = np.stack(np.meshgrid(lon, lat), axis=-1).reshape(-1, 2)
        chord, _ = tree.query(unit_vectors(nodes), k=[k], workers=-1)
        out[r0:r1] = chord_to_km(chord[:, 0]).reshape(r1 - r0, n_lon)
    return out


def distance_field(lonlat: np.ndarray, k: int = DEFAULT_K, resolution: float = DEFAULT_RESOLUTION,
                   percentile: float = DEFAULT_PERCENTILE) -> DistanceField | None:
    """The footprint's distance rule from the training records' (lon, lat) degrees [N, 2]: the grid
    of distances to the ``k``-th nearest distinct location, and the threshold: the ``percentile``
    of the locations' own leave-one-out distances. With ``k`` or fewer distinct locations ``k`` is
    their number minus one; None with fewer than two (no spacing to learn from)."""
    locations = distinct_locations(lonlat)
    if locations.shape[0] < 2:
        return None
    k = min(int(k), locations.shape[0] - 1)
    tree = cKDTree(unit_vectors(locations), leafsize=LEAF_SIZE)
    threshold = float(np.percentile(leave_one_out_km(tree, k), percentile))
    rule = (f"{percentile:g}th percentile of the {locations.shape[0]:,} distinct training locations' distance to "
            f"their {ordinal(k)} nearest other training location")
    return DistanceField(grid_distances(tree, k, resolution), resolution, k, threshold, rule, int(locations.shape[0]))


def covariate_ranges(env: np.ndarray, names: list[str], classes: list[tuple[float, ...] | None] | None
                     ) -> CovariateRanges:
    """The footprint's covariate rule from the raw covariate values at the training records
    ``env`` [N, k]: each continuous covariate's minimum and maximum (NaN ignored); a categorical
    one (``classes`` not None) keeps its classes."""
    env = np.asarray(env, dtype=np.float64).reshape(-1, len(names))
    classes = list(classes) if classes is not None else [None] * len(names)
    low = np.full(len(names), np.nan)
    high = np.full(len(names), np.nan)
    for j, cls in enumerate(classes):
        col = env[:, j][np.isfinite(env[:, j])]
        if cls is None and col.size:
            low[j], high[j] = float(col.min()), float(col.max())
    return CovariateRanges(tuple(names), low, high, tuple(classes))


def reads_coordinates(encoding: str) -> bool:
    """Whether an encoding feeds the network the location itself (all but ``env``, which sees only
    the covariates: distance from the records says nothing about such a model)."""
    return encoding != "env"


def model_footprint(encoding: str, lonlat: np.ndarray, env: np.ndarray | None = None,
                    covariate_names: list[str] | None = None,
                    classes: list[tuple[float, ...] | None] | None = None, *, k: int = DEFAULT_K,
                    resolution: float = DEFAULT_RESOLUTION) -> Footprint | None:
    """The footprint of a model with ``encoding`` trained on records at ``lonlat`` [N, 2] degrees with
    raw covariate values ``env`` [N, k] (covariate models): the distance rule when the encoding reads
    coordinates, the covariate ranges when it reads covariates, both for ``sin_cos_env``. None when
    neither can be made (a coordinate model with one location)."""
    distance = distance_field(lonlat, k, resolution) if reads_coordinates(encoding) else None
    ranges = covariate_ranges(env, list(covariate_names or []), classes) \
        if env is not None and covariate_names else None
    return Footprint(distance, ranges) if distance or ranges else None
