"""Data footprints for tests: brute-force great-circle distances (haversine, float64) and bundles
that carry a footprint, made from the committed fixtures without torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.footprint import EARTH_RADIUS_KM, DistanceField, Footprint, grid_shape


def haversine_km(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distances (km) [N, M] between (lon, lat) degrees ``a`` [N, 2] and ``b`` [M, 2]."""
    a = np.radians(np.asarray(a, np.float64).reshape(-1, 2))[:, None, :]
    b = np.radians(np.asarray(b, np.float64).reshape(-1, 2))[None, :, :]
    h = (np.sin((b[..., 1] - a[..., 1]) / 2) ** 2
         + np.cos(a[..., 1]) * np.cos(b[..., 1]) * np.sin((b[..., 0] - a[..., 0]) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def kth_nearest_km(points: np.ndarray, locations: np.ndarray, k: int, chunk: int = 4096) -> np.ndarray:
    """Brute force: the distance (km) from each point [N, 2] to its ``k``-th nearest of the distinct
    ``locations`` [M, 2], float64 [N]."""
    locations = np.unique(np.asarray(locations, np.float64).reshape(-1, 2), axis=0)
    points = np.asarray(points, np.float64).reshape(-1, 2)
    out = np.empty(points.shape[0])
    for i in range(0, points.shape[0], chunk):
        d = haversine_km(points[i:i + chunk], locations)
        out[i:i + chunk] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


def pair_km(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle distances (km) [N] between the rows of ``a`` and ``b`` ([N, 2] degrees)."""
    a, b = np.radians(np.asarray(a, np.float64)), np.radians(np.asarray(b, np.float64))
    h = (np.sin((b[:, 1] - a[:, 1]) / 2) ** 2
         + np.cos(a[:, 1]) * np.cos(b[:, 1]) * np.sin((b[:, 0] - a[:, 0]) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def corner_km(points: np.ndarray, resolution: float) -> np.ndarray:
    """The largest distance (km) from each point [N, 2] to the four nodes of its grid cell: how far
    a bilinear value of a 1-Lipschitz distance field may lie from the true one there."""
    ll = np.asarray(points, np.float64).reshape(-1, 2)
    x0 = np.floor((ll[:, 0] + 180) / resolution) * resolution - 180
    y0 = np.floor((ll[:, 1] + 90) / resolution) * resolution - 90
    return np.max([pair_km(ll, np.stack([x0 + dx, y0 + dy], axis=1))
                   for dx in (0.0, resolution) for dy in (0.0, resolution)], axis=0)


def brute_distance_field(locations: np.ndarray, k: int, resolution: float, threshold_km: float) -> DistanceField:
    """A distance field computed by brute force at every node (whole km, as a bundle stores it)."""
    n_lat, n_lon = grid_shape(resolution)
    lon = -180.0 + resolution * np.arange(n_lon)
    lat = -90.0 + resolution * np.arange(n_lat)
    nodes = np.stack(np.meshgrid(lon, lat), axis=-1).reshape(-1, 2)
    km = np.rint(kth_nearest_km(nodes, locations, k)).astype(np.float32).reshape(n_lat, n_lon)
    return DistanceField(km, resolution, k, threshold_km, "test rule", int(np.unique(locations, axis=0).shape[0]))


def bundle_with_footprint(src: ModelBundle, path: Path, footprint: Footprint) -> ModelBundle:
    """``src`` with ``footprint`` written to ``path`` and loaded back."""
    src.footprint = footprint
    src.write(path)
    return ModelBundle.load(path)
