"""Shared helpers of the training tests: generated observation layers and a model scorer."""
from __future__ import annotations

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsVectorLayer,
)

from sinr_qgis.core import network
from sinr_qgis.core.bundle import ModelBundle

# three species in three separate places (lon, lat centres, degrees)
CENTRES = {"Quercus testii": (-100.0, 40.0), "Acer fakum": (-80.0, 35.0), "Fagus exempli": (20.0, 48.0)}
TINY = {"EPOCHS": 40, "BATCH_SIZE": 32, "WIDTH": 32, "DEPTH": 1, "CAP": 0, "THREADS": 1}


def lonlat_points(n_per_species: int = 100, seed: int = 0) -> tuple[np.ndarray, list[str], list[str]]:
    """(lon, lat) [N, 2], species names, and a source id per point."""
    rng = np.random.default_rng(seed)
    ll, sp, src = [], [], []
    for name, (lon, lat) in CENTRES.items():
        for _ in range(n_per_species):
            ll.append((lon + 3 * rng.standard_normal(), lat + 2 * rng.standard_normal()))
            sp.append(name)
            src.append(f"survey{rng.integers(3)}")
    return np.asarray(ll), sp, src


def point_layer(crs: str = "EPSG:3857", n_per_species: int = 100, species: list[str] | None = None,
                lonlat: np.ndarray | None = None, name: str = "observations") -> QgsVectorLayer:
    """A memory point layer in ``crs`` with fields ``taxon`` and ``dataset``."""
    ll, sp, src = lonlat_points(n_per_species)
    if lonlat is not None:
        ll = np.asarray(lonlat, float)
        sp = (species or sp)[: len(ll)]
        src = src[: len(ll)]
    elif species is not None:
        sp = species
    uri = "Point?" + (f"crs={crs}&" if crs else "") + "field=taxon:string&field=dataset:string&field=n:integer"
    layer = QgsVectorLayer(uri, name, "memory")
    assert layer.isValid()
    target = QgsCoordinateReferenceSystem(crs) if crs else None
    xform = (QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), target, QgsProject.instance())
             if target is not None and target.isValid() else None)
    feats = []
    for (lon, lat), s, d in zip(ll, sp, src):
        p = QgsPointXY(lon, lat)
        if xform is not None:
            p = xform.transform(p)
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(p))
        f.setAttributes([s, d, 1])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    layer.updateExtents()
    return layer


def probabilities(bundle: ModelBundle, lonlat: np.ndarray, species_index: int) -> np.ndarray:
    """The model's probability of one species at (lon, lat) points (numpy forward pass)."""
    emb = network.embed(bundle.weights, bundle.encoding, np.asarray(lonlat, np.float32))
    return 1.0 / (1.0 + np.exp(-(emb @ bundle.head[species_index])))


def listed_model(path):
    """The model list's entry for the file at ``path``, or None (entries keep resolved paths)."""
    from pathlib import Path

    from sinr_qgis.toolbelt import model_registry

    key = str(Path(path).expanduser().resolve())
    return next((e for e in model_registry.list_models(prune=False) if e.path == key), None)


@pytest.fixture
def isolated_model_list():
    """An empty model list for the test; the user's list (and interpreter choice) restored after."""
    from qgis.core import QgsSettings

    from sinr_qgis.toolbelt.settings import key

    keys = (key("models/registry"), key("training/python"))
    s = QgsSettings()
    saved = {k: s.value(k) for k in keys if s.contains(k)}
    for k in keys:
        s.remove(k)
    yield
    for k in keys:
        s.remove(k)
        if k in saved:
            s.setValue(k, saved[k])
