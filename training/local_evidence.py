"""Build a bundle's local-evidence component from its training records (see
:mod:`sinr_qgis.core.local_evidence` for what it adds and how it is stored).

Per species, on the 0.05-degree node grid (``CELL_DEG``) of a window around its records: the
species' distinct (location, source) records, and the distinct locations of every source that
recorded it, each binned to the nearest node and smoothed with a Gaussian of ``bandwidth_deg``
(``scipy.ndimage.gaussian_filter``, truncated at 4 sigma); then the offset

    a * log(records / N_s * 1e4 + 1e-3) + b * log(records / sites + 1e-2)

is kept at every second node (the stored ``resolution_deg`` = 0.1), and shifted so that its median
at the species' own records is 0 (``core.local_evidence``). A model trained without a
source column counts all its records as one source. The LPT-R threshold of the combined score is
computed at the species' records with the plugin's own scoring (``core.scoring.point_logits``).
"""
from __future__ import annotations

import math

import numpy as np

from sinr_qgis.core import local_evidence as le
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.thresholds import lpt_r_per_species

from .errors import TrainerError

# chosen on training records held out from validation models, never on the evaluation data:
# python -m training.benchmarks.local_evidence_select (training/benchmarks/README.md)
DEFAULT_BANDWIDTH = 0.25  # degrees
DEFAULT_RECORD_WEIGHT = 1.0
DEFAULT_SURVEY_WEIGHT = 2.0
RESOLUTION = 0.1  # stored node spacing, degrees: two CELL_DEG nodes
TRUNCATE = 4.0  # Gaussian kernel radius in sigmas
SELECTION = ("weights and bandwidth chosen on training records held out from validation models "
             "(python -m training.benchmarks.local_evidence_select)")


def _nodes(lonlat: np.ndarray) -> np.ndarray:
    """Nearest global CELL_DEG node (i, j) of each (lon, lat) [N, 2]: int64 [N, 2]."""
    return np.rint((np.asarray(lonlat, np.float64) + np.array([180.0, 90.0])) / le.CELL_DEG).astype(np.int64)


def _smoothed(nodes: np.ndarray, lo: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Counts of ``nodes`` [n, 2] on the fine window starting at node ``lo`` (i, j) with ``shape``
    (n_lat, n_lon), smoothed: float64 [n_lat, n_lon]."""
    from scipy.ndimage import gaussian_filter

    g = np.zeros(shape, dtype=np.float64)
    rel = nodes - lo
    keep = (rel[:, 0] >= 0) & (rel[:, 0] < shape[1]) & (rel[:, 1] >= 0) & (rel[:, 1] < shape[0])
    np.add.at(g, (rel[keep, 1], rel[keep, 0]), 1.0)
    return gaussian_filter(g, sigma, mode="constant", truncate=TRUNCATE)


def _windows(nodes: np.ndarray, species: np.ndarray, n_species: int,
             bandwidth_deg: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Each species' stored window around its records' fine ``nodes`` [n, 2] (head index [n]):
    first and last stored node (i, j) int64 [S, 2] each (first > last: no records), and the
    kernel's reach in stored nodes (the padding)."""
    step = round(RESOLUTION / le.CELL_DEG)
    pad = math.ceil(TRUNCATE * bandwidth_deg / RESOLUTION)
    lo = np.full((n_species, 2), np.iinfo(np.int64).max)
    hi = np.full((n_species, 2), -1, dtype=np.int64)
    np.minimum.at(lo, species, nodes // step)
    np.maximum.at(hi, species, -(-nodes // step))
    seen = hi[:, 0] >= 0
    lo[seen] = np.maximum(lo[seen] - pad, 0)
    hi[seen] = np.minimum(hi[seen] + pad, (round(360 / RESOLUTION), round(180 / RESOLUTION)))
    return lo, hi, pad


def peak_bytes(lonlat: np.ndarray, species: np.ndarray, n_species: int,
               bandwidth_deg: float = DEFAULT_BANDWIDTH) -> int:
    """Bytes :func:`build_local_evidence` holds at its peak for these records ((lon, lat) degrees
    [N, 2], head index [N]): 2 bytes per stored node of every species' window, plus, for the
    largest window, its float64 offsets and three float64 arrays on its 0.05-degree smoothing grid.
    A species recorded all over the globe takes about half a gigabyte; more species add 2 bytes a node."""
    index = np.asarray(species, np.int64)
    if index.size == 0:
        return 0
    lo, hi, pad = _windows(_nodes(lonlat), index, n_species, bandwidth_deg)
    seen = hi[:, 0] >= 0
    stored = (hi[seen] - lo[seen] + 1).prod(axis=1)
    step = round(RESOLUTION / le.CELL_DEG)
    fine = ((hi[seen] - lo[seen] + 2 * pad) * step + 1).prod(axis=1)
    return int(2 * stored.sum() + 8 * stored.max() + 3 * 8 * fine.max())


def build_local_evidence(lonlat: np.ndarray, species: np.ndarray, n_species: int, source: np.ndarray | None = None,
                         *, bandwidth_deg: float = DEFAULT_BANDWIDTH, record_weight: float = DEFAULT_RECORD_WEIGHT,
                         survey_weight: float = DEFAULT_SURVEY_WEIGHT, selection: str = SELECTION) -> le.LocalEvidence:
    """The component from training records: (lon, lat) degrees [N, 2], head index int [N] and the
    record's source [N] (None: one source). Each species' offsets are quantised as soon as they are
    computed (memory: :func:`peak_bytes`). ``lpt_r`` is NaN until :func:`attach` sets it.
    Raises ``TrainerError`` for a bandwidth under two stored nodes or negative weights."""
    if not bandwidth_deg >= 2 * RESOLUTION or record_weight < 0 or survey_weight < 0:
        raise TrainerError(f"local evidence needs a bandwidth of at least {2 * RESOLUTION:g} degrees and weights "
                           f">= 0 (got {bandwidth_deg:g}, {record_weight:g}, {survey_weight:g}).")
    nodes = _nodes(lonlat)
    index = np.asarray(species, np.int64)
    src = np.zeros(len(nodes), np.int64) if source is None else np.unique(np.asarray(source).astype(str),
                                                                        return_inverse=True)[1].ravel()
    # distinct (location, source, species): a repeated row is one record, a plot one site
    rows = np.unique(np.column_stack([nodes, src, index]), axis=0)
    sites = np.unique(rows[:, :3], axis=0)
    lo, hi, pad = _windows(nodes, index, n_species, bandwidth_deg)
    step = round(RESOLUTION / le.CELL_DEG)
    sigma = bandwidth_deg / le.CELL_DEG
    floor = record_weight * math.log(le.RECORD_FLOOR) + survey_weight * math.log(le.SURVEY_FLOOR)
    windows = np.zeros((n_species, 4), np.int64)
    start = np.zeros(n_species + 1, np.int64)
    scale = np.zeros(n_species, np.float32)
    parts = []
    by_species = np.argsort(rows[:, 3], kind="stable")
    bounds = np.searchsorted(rows[by_species, 3], np.arange(n_species + 1))
    for s in range(n_species):
        own = rows[by_species[bounds[s]:bounds[s + 1]]]
        if len(own) == 0:
            start[s + 1] = start[s]
            continue
        # the fine window reaches one kernel beyond the stored one: sites there count in the rate
        f_lo = lo[s] * step - pad * step
        shape = (int((hi[s, 1] - lo[s, 1] + 2 * pad) * step + 1), int((hi[s, 0] - lo[s, 0] + 2 * pad) * step + 1))
        rec = _smoothed(own[:, :2], f_lo, shape, sigma)
        visited = _smoothed(sites[np.isin(sites[:, 2], np.unique(own[:, 2]))][:, :2], f_lo, shape, sigma)
        cut = (slice(pad * step, shape[0] - pad * step, step), slice(pad * step, shape[1] - pad * step, step))
        rec, visited = np.maximum(rec[cut], 0.0), np.maximum(visited[cut], 0.0)
        rate = np.divide(rec, visited, out=np.zeros_like(rec), where=visited > 1e-12)
        grid = (record_weight * np.log(rec / len(own) * le.RECORD_SCALE + le.RECORD_FLOOR)
                + survey_weight * np.log(rate + le.SURVEY_FLOOR))
        levels, scale[s] = le.quantise_grid(grid, floor)
        parts.append(levels)
        start[s + 1] = start[s] + levels.size
        windows[s] = (lo[s, 0], lo[s, 1], grid.shape[1], grid.shape[0])
    comp = le.LocalEvidence(float(bandwidth_deg), float(record_weight), float(survey_weight), RESOLUTION, windows,
                            start, np.concatenate(parts) if parts else np.zeros(0, np.uint16), scale,
                            np.zeros(n_species, np.float32), np.full(n_species, np.nan, np.float32), selection)
    for s in np.unique(index):
        comp.shift[s] = -np.median(comp.offsets(np.asarray(lonlat)[index == s], np.array([s]))[:, 0])
    return comp


def attach(bundle: ModelBundle, component: le.LocalEvidence, lonlat: np.ndarray, species: np.ndarray,
           batch: int = 65536) -> ModelBundle:
    """Store ``component`` in ``bundle`` with the LPT-R of the combined score at the training
    records ((lon, lat) [N, 2], head index [N]): each record's own-species logit (the embedding in
    batches of ``batch`` records, float64 dot products with its head row, as ``point_logits``) plus
    its offset; memory stays O(N), whatever the number of species."""
    from sinr_qgis.core.runtime import Predictor

    if bundle.covariates:
        raise TrainerError("local evidence is for models that read coordinates only; this model reads covariates.")
    bundle.local_evidence = component
    predictor = Predictor(bundle, local_evidence=False)
    index = np.asarray(species, np.int64)
    ll = np.asarray(lonlat, np.float64)
    head = np.asarray(bundle.head, np.float64)
    own = np.empty(len(index), np.float64)
    for i in range(0, len(index), batch):
        emb = predictor.embed(ll[i:i + batch]).astype(np.float64)
        own[i:i + batch] = np.einsum("nd,nd->n", emb, head[index[i:i + batch]])
    for s in np.unique(index):
        rows = np.flatnonzero(index == s)
        own[rows] += component.offsets(ll[rows], np.array([s]))[:, 0]
    component.lpt_r = np.asarray(lpt_r_per_species(1.0 / (1.0 + np.exp(-own)), index, bundle.n_species), np.float32)
    return bundle
