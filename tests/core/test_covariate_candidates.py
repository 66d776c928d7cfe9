"""``band_candidates``: which of many bands (a project's raster layers) go by each covariate's name,
by the rules ``match_covariates`` applies to the bands given."""
from __future__ import annotations

import numpy as np
from osgeo import gdal, osr

from sinr_qgis.core.covariate_match import band_candidates, band_labels
from sinr_qgis.core.covariates import CovariateRaster


def _tif(path, n_bands: int, names=None) -> CovariateRaster:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 4, 4, n_bands, gdal.GDT_Float32)
    ds.SetGeoTransform((-80.0, 1.0, 0.0, 45.0, 0.0, -1.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(n_bands):
        ds.GetRasterBand(i + 1).WriteArray(np.full((4, 4), i, np.float32))
        if names:
            ds.GetRasterBand(i + 1).SetDescription(names[i])
    ds = None
    return CovariateRaster(path)


def test_bands_go_by_description_file_name_and_alias_letter_case_aside(tmp_path):
    stack = _tif(tmp_path / "stack.tif", 2, ["BIO12", "bio1"])
    single = _tif(tmp_path / "elev.tif", 1)
    unnamed = _tif(tmp_path / "x.tif", 1)
    labels = [band_labels(stack, 1), band_labels(stack, 2), band_labels(single, 1), [*band_labels(unnamed, 1), "Temp"]]
    assert labels[:3] == [["BIO12", "stack_b1"], ["bio1", "stack_b2"], ["elev", "elev_b1"]]
    assert band_candidates(["bio1", "bio12", "elev", "temp", "soil"], labels) == [[1], [0], [2], [3], []]


def test_two_bands_of_one_name_are_both_candidates_and_worldclim_names_fill_the_rest(tmp_path):
    labels = [["bio1"], ["wc2.1_10m_bio_12"], ["bio1"], ["wc2.1_30s_bio_12"], ["wc2.1_10m_bio_1"]]
    # bio1 is named exactly twice (the WorldClim file of bio1 is not needed); bio12 only by WorldClim variable
    assert band_candidates(["bio1", "bio12"], labels) == [[0, 2], [1, 3]]
    # names that are not all WorldClim variables: no WorldClim comparison
    assert band_candidates(["bio1", "bio12", "landcover"], labels) == [[0, 2], [], []]
