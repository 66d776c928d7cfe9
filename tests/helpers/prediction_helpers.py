"""Fixtures and helpers shared by the prediction tests (algorithms, dock, qgis_process)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsApplication, QgsProcessingFeedback

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.processing.provider import SinrProvider
from tests.factories import make_bundle


@pytest.fixture
def sinr_provider(qgis_processing):
    """The plugin's provider registered for one test (removed after, as the plugin's unload does)."""
    registry = QgsApplication.processingRegistry()
    provider = SinrProvider()
    assert registry.addProvider(provider)
    yield provider
    registry.removeProvider(provider)


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    """A random-weight 6-species coordinate model (no shared data needed)."""
    path = tmp_path_factory.mktemp("models") / "test_model.sinr"
    make_bundle(path, n_species=6, width=32, depth=2, seed=3)
    return path


@pytest.fixture(scope="session")
def bundle(model_file) -> ModelBundle:
    return ModelBundle.load(model_file)


def read_raster(path: str | Path) -> tuple[np.ndarray, dict]:
    """float64 [bands, H, W] with NaN for nodata, plus georeferencing facts."""
    ds = gdal.Open(str(path))
    assert ds is not None, path
    bands = []
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        a = b.ReadAsArray().astype(np.float64)
        nd = b.GetNoDataValue()
        if nd is not None:
            a[a == nd] = np.nan
        bands.append(a)
    info = {"size": (ds.RasterXSize, ds.RasterYSize), "gt": ds.GetGeoTransform(), "wkt": ds.GetProjection(),
            "descriptions": [ds.GetRasterBand(i).GetDescription() for i in range(1, ds.RasterCount + 1)],
            "band_metadata": [ds.GetRasterBand(i).GetMetadata() for i in range(1, ds.RasterCount + 1)],
            "metadata": ds.GetMetadata()}
    ds = None
    return np.stack(bands), info


def pixel_centre(gt: tuple, row: int, col: int) -> tuple[float, float]:
    """Centre of pixel (row, col) in the raster's CRS, from its geotransform."""
    return gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps the warnings and the information lines an algorithm pushes."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[str] = []
        self.infos: list[str] = []

    def pushWarning(self, text: str) -> None:
        self.warnings.append(text)
        super().pushWarning(text)

    def pushInfo(self, text: str) -> None:
        self.infos.append(text)
        super().pushInfo(text)
