"""Tiny WorldClim-like global rasters and the official SINR pipeline for environmental models,
re-implemented here from its published description, independently of the plugin's code:

- preparation (``data/env/format_env_feats.py``): each file read raw; values below -1e6 -> NaN;
  centred by the mean of the valid cells, divided by the std of the centred valid cells (float64,
  ddof 0); stored as float16 in an [H, W, C] stack, elevation first, then bio 1..19;
- loading: the float16 stack as float32; NaN -> 0 before interpolating;
- sampling (``utils.bilinear_interpolate``), float32 torch: lon/180 and lat/90, then
  x = (lon_n + 1)/2 * (W - 1), y = (1 - (lat_n + 1)/2) * (H - 1), floor, the next cell clamped
  at the last column/row, the four corners weighted (1-dx)(1-dy), dx(1-dy), (1-dx)dy, dx dy;
- ``sin_cos_env``: [sin_cos, env] concatenated in this order.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from osgeo import gdal

from tests.helpers.global_rasters import write_global_raster

WORLDCLIM_FILL = float(np.float32(-3.4e38))  # WorldClim 2.1's float nodata value
ELEV_FILL = -32768  # an Int16 elevation's nodata: above -1e6, so the official script keeps it as a value


def worldclim_like(folder: Path, shape: tuple[int, int] = (90, 180), seed: int = 0,
                   prefix: str = "wc2.1_2d") -> list[Path]:
    """20 rasters named as WorldClim's (elevation Int16 with -32768 over the sea, bio_1..bio_19
    Float32 with WorldClim's fill over the sea and a few NaN cells), in the official order."""
    rng = np.random.default_rng(seed)
    h, w = shape
    lat = np.linspace(90, -90, h)[:, None]
    lon = np.linspace(-180, 180, w)[None, :]
    sea = (np.sin(np.radians(lon) * 3) + np.cos(np.radians(lat) * 4)) > 0.9  # a quarter or so of the globe
    folder.mkdir(parents=True, exist_ok=True)
    elev = (1500 + 1200 * np.sin(np.radians(lon) * 2) * np.cos(np.radians(lat)) + rng.normal(0, 80, shape))
    elev = np.where(sea, ELEV_FILL, np.round(elev)).astype(np.int16)
    paths = [write_global_raster(folder / f"{prefix}_elev.tif", elev, ELEV_FILL, gdal.GDT_Int16)]
    for k in range(1, 20):
        v = (k * 10 + 30 * np.cos(np.radians(lat) * (1 + k % 3)) + 5 * np.sin(np.radians(lon) * (k % 5 + 1))
             + rng.normal(0, 2, shape)).astype(np.float32)
        v[sea] = WORLDCLIM_FILL
        v[rng.random(shape) < 0.002] = np.nan  # a few undefined cells (NaN is missing too)
        paths.append(write_global_raster(folder / f"{prefix}_bio_{k}.tif", v, WORLDCLIM_FILL))
    return paths


def official_stack(paths: list[Path]) -> torch.Tensor:
    """The official prepared stack [H, W, C] float32 (float16 values, NaN where missing)."""
    channels = []
    for p in paths:
        ds = gdal.Open(str(p))  # held while its band is read
        im = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)  # raw values, as tifffile reads them
        im[im < -1e6] = np.nan
        ok = ~np.isnan(im)
        im[ok] -= im[ok].mean()
        im[ok] /= im[ok].std()
        channels.append(im.astype(np.float16))
    return torch.from_numpy(np.stack(channels, axis=2).astype(np.float32))


def official_env(lonlat: np.ndarray, stack: torch.Tensor) -> torch.Tensor:
    """The official environmental input [N, C] at (lon, lat) degrees float32 [N, 2]."""
    data = stack.clone()
    data[torch.isnan(data)] = 0.0
    h, w = data.shape[0], data.shape[1]
    loc = torch.from_numpy(np.array(lonlat, dtype=np.float32))
    loc[:, 0] /= 180.0
    loc[:, 1] /= 90.0
    loc = (loc + 1) / 2.0
    loc[:, 1] = 1 - loc[:, 1]
    loc[:, 0] *= w - 1
    loc[:, 1] *= h - 1
    base = torch.floor(loc)
    x0, y0 = base[:, 0].long(), base[:, 1].long()
    x1, y1 = torch.clamp(x0 + 1, max=w - 1), torch.clamp(y0 + 1, max=h - 1)
    frac = loc - base
    dx, dy = frac[:, 0:1], frac[:, 1:2]
    return (data[y0, x0, :] * (1 - dx) * (1 - dy) + data[y0, x1, :] * dx * (1 - dy)
            + data[y1, x0, :] * (1 - dx) * dy + data[y1, x1, :] * dx * dy)


def official_sin_cos(lonlat: np.ndarray) -> torch.Tensor:
    """The official 'sin_cos' input: lon/180 and lat/90, then [sin(pi x), cos(pi x)] concatenated."""
    x = torch.from_numpy(np.array(lonlat, dtype=np.float32)) / torch.tensor([180.0, 90.0])
    return torch.cat([torch.sin(math.pi * x), torch.cos(math.pi * x)], 1)


def official_input(encoding: str, lonlat: np.ndarray, stack: torch.Tensor | None) -> torch.Tensor:
    """What the official ``CoordEncoder`` feeds the network for ``encoding``."""
    if encoding == "sin_cos":
        return official_sin_cos(lonlat)
    env = official_env(lonlat, stack)
    return env if encoding == "env" else torch.cat([official_sin_cos(lonlat), env], 1)
