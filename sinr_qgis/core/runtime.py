"""Inference runtime: a bundle's encoder on onnxruntime or numpy, species heads, and whole grids.

Points
------
::

    predictor = Predictor(bundle)                  # backend="auto" | "onnxruntime" | "numpy"
    predictor.backend_name                         # "onnxruntime" or "numpy": show it to the user
    emb = predictor.embed(lonlat)                  # [N, 2] degrees (+ env [N, k] raw) -> [N, D] float32
    p = predictor.predict_points(lonlat, species)  # -> probabilities [N, S] float32
    idx, p = predictor.top_species(lonlat, k=10)   # ranked species per point ("expected nearby")
    n = predictor.count_above(emb, species, thresholds)  # int32 [N]: species with p >= their threshold

``species`` is anything :meth:`Predictor.resolve_species` accepts: an index, a code or name, a
``Species``, or a list of them (None = all species). Rows whose lon/lat (or covariates) are
NaN give NaN. "auto" uses onnxruntime when it can be imported, else numpy; both give the same
embedding to ~1e-6. The encoder runs in batches of ``batch_size`` locations on ``threads`` CPU
threads (default: all cores). ``predictor.encoder_calls`` counts backend runs and
``predictor.locations_encoded`` counts encoded locations (the embedding cache is visible there).

Grids
-----
A :class:`~sinr_qgis.core.grid.Grid` is processed in row blocks of about ``TILE_PIXELS``
pixels, so memory is bounded by one block whatever the grid size; ``progress(percent)`` is
called after each block and ``is_cancelled()`` is checked between blocks (then
:class:`~sinr_qgis.core.errors.CancelledError` is raised and no file is left behind). A pixel is
valid when its centre transforms to lon/lat, lies on land (``mask_ocean=True``, the shipped
global mask), has every covariate (env models) and lies inside the model's data footprint
(``mask_footprint=True``, the default, for a bundle that stores one: :mod:`~sinr_qgis.core.footprint`;
``WithFootprint`` adds its values as bands); other pixels are nodata. Only valid pixels are
encoded. The embeddings of the last grid are cached in the predictor when they fit in
``cache_max_bytes`` (default 1 GiB of float32), so a further species on the same grid, mask and
covariates costs only the head product.

Many species (a paper-scale model has 47,375) never make one [pixels x species] array larger
than ``SPECIES_BLOCK_BYTES`` (64 MiB): ``top_species`` works a few rows at a time,
``count_above`` (species richness: logits against
:func:`~sinr_qgis.core.thresholds.logit_thresholds`, no sigmoid of a block)
in cache-sized tiles of ``COUNT_TILE_SPECIES`` x ``COUNT_TILE_ROWS`` at the machine's matrix rate,
multi-band outputs are written in row pieces of that size, and one file per species writes at
most ``MAX_OPEN_OUTPUTS`` files per pass over the grid.

::

    probs = predict_grid(predictor, grid, species)                        # [S, H, W] float32, NaN = nodata
    apply_on_grid(predictor, grid, fn, n_bands)                           # any fn(emb [m, D], lonlat [m, 2]) -> [m, B]
    apply_on_grid_to_geotiff(predictor, grid, "emb.tif", fn, band_names)  # the same, streamed to a GeoTIFF
    stream_to_geotiffs(predictor, grid, [(writer, fn, n_bands), ...])     # several files, one pass each

What is made of a grid or points (species maps with their bands and names, species richness,
embeddings, rankings) is in :mod:`~sinr_qgis.core.products`; thresholds in
:mod:`~sinr_qgis.core.thresholds`.

``covariates`` (env models only) gives the raster bands: a list of ``(path, band)`` (or just a
path: all its bands), matched to the bundle's covariates by name
(:func:`~sinr_qgis.core.covariate_match.match_covariates`: another order is re-ordered, names that
cannot be placed are refused), or the user's explicit dict {covariate name: (path, band)}. Values
are read at the pixel centres by the training reader's rules (``covariates.RasterBandSampler``:
masks, scale and offset, rasters in any CRS, 0..360 longitudes wrapped, bilinear); outside a
raster or in a nodata cell the pixel is nodata (never a silent zero), and a map with no valid
pixel at all is an error that says why, never an empty file. A categorical covariate (``classes``,
:mod:`~sinr_qgis.core.categories`) is read at its nearest cell and one-hot encoded; a class no
training record had encodes as no class, with a warning (``Predictor.take_class_warnings``,
``products.PredictionResult.warnings``). A bundle imported from an official SINR
environmental checkpoint reads them as the official code did instead (``covariate_match.covariate_samplers``,
:mod:`~sinr_qgis.core.official_env`: standardised, missing cells 0).

GeoTIFF outputs (see :mod:`~sinr_qgis.core.raster_io`): Float32 COG, DEFLATE, nodata -9999, with
the model's dataset metadata (:func:`model_metadata`) and written atomically once the whole grid
is done.

A predictor is not thread-safe: use one per thread (create it where it is used).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import network
from .blas import matmul_t
from .bundle import ModelBundle, Species
from .categories import count_unseen, unseen_class_warnings
from .covariate_match import CovariateSampler, covariate_samplers, match_covariates
from .encoding import uses_covariates
from .errors import (
    BundleError,
    CancelledError,
    CovariateError,
    GridError,
    SinrError,
    SpeciesNotFoundError,
)
from .footprint import footprint_status
from .grid import Grid
from .landmask import LandMask, load_land_mask
from .local_evidence import LocalEvidence
from .metrics import sigmoid
from .raster_io import GeoTiffWriter
from .thresholds import logit_thresholds

LOG = logging.getLogger("sinr_qgis")
BACKENDS = ("auto", "onnxruntime", "numpy")
TILE_PIXELS = 1 << 17  # pixels per row block: ~130 MB of float32 embeddings at D = 256
DEFAULT_BATCH = 4096  # locations per encoder run: activations stay in cache (benchmarked)
DEFAULT_CACHE_BYTES = 1 << 30
# The most bytes of one [locations x species] block (logits, their comparisons and ranks, a
# multi-band tile) held at once: a 47,375-species model on a 97,631-pixel block would otherwise
# need 17.2 GiB. 64 MiB keeps the products large enough for BLAS to run at full speed.
SPECIES_BLOCK_BYTES = 64 << 20
# count_above's tile: [COUNT_TILE_SPECIES x COUNT_TILE_ROWS] logits (8 MiB) are compared and counted
# while still in cache, and the product is large enough for BLAS's two threads. [283 x 47,375]
# blocks (53 MB) read memory for every comparison: 196 instead of 228 GFLOP/s on 2 cores, 106
# instead of 137 under load (training/benchmarks/README.md, issue 12).
COUNT_TILE_ROWS = 2048
COUNT_TILE_SPECIES = 1024
MAX_OPEN_OUTPUTS = 32  # GeoTIFFs written at once: each holds a file open (macOS allows 256 per process)

ProgressFn = Callable[[float], None]
CancelFn = Callable[[], bool]
SpeciesLike = int | str | Species
CovariateSpec = Sequence[str | tuple[str, int]] | Mapping[str, str | tuple[str, int]] | None


def onnxruntime_available() -> bool:
    """Whether the onnxruntime backend can be used in this Python."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_threads() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# ---- backends --------------------------------------------------------------------------------
class _NumpyBackend:
    """The encoder in numpy, its products on scipy's BLAS (see :mod:`~sinr_qgis.core.blas`)."""

    name = "numpy"

    def __init__(self, bundle: ModelBundle) -> None:
        # C-contiguous float32 once here (a no-op for loaded bundles), so no product copies a weight
        self.weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in bundle.weights.items()}
        self.encoding = bundle.encoding
        self.frequencies = bundle.frequencies
        self.classes = bundle.covariate_classes

    def embed(self, lonlat: np.ndarray, env: np.ndarray | None) -> np.ndarray:
        return network.embed(self.weights, self.encoding, lonlat, env, self.frequencies, self.classes)


class _OnnxBackend:
    name = "onnxruntime"

    def __init__(self, bundle: ModelBundle, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Idle pool threads sleep instead of spinning: with QGIS's own threads (or other processes)
        # on the same cores, spinning threads steal the CPU the working ones need (2x slower measured).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(bundle.onnx_bytes, sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BundleError(f"The encoder.onnx of model {bundle.name!r} cannot be loaded by onnxruntime "
                              f"({exc}). Re-export the model, or use the numpy backend.") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name

    def embed(self, lonlat: np.ndarray, env: np.ndarray | None) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {}
        if "lonlat" in self.inputs:
            feeds["lonlat"] = lonlat
        if "env" in self.inputs:
            feeds["env"] = env
        return self.session.run([self.output], feeds)[0]


# ---- grid blocks and cache -----------------------------------------------------------------
@dataclass
class GridBlock:
    """Rows ``row0..row1-1`` of a grid: which pixels are valid and the embedding of those pixels."""

    row0: int
    row1: int
    valid: np.ndarray  # bool [(row1 - row0) * width], row-major
    embedding: np.ndarray  # float32 [valid.sum(), D]
    # the model's footprint values at the valid pixels (core.footprint: distance km, novelty):
    # float32 [valid.sum(), n rules]; None when the model stores no footprint
    footprint: np.ndarray | None = None
    lonlat: np.ndarray | None = None  # float64 [valid.sum(), 2]: the valid pixels' centres (degrees)


@dataclass
class _GridCache:
    key: tuple
    blocks: list[GridBlock]
    unseen: Counter = field(default_factory=Counter)  # the grid's cells in classes unseen in training


@dataclass
class GridCoverage:
    """How many pixels of the last grid computed were on the globe, then on land (when the ocean is
    left empty), then had every covariate and lay inside the model's data footprint (when what lies
    outside is left empty); the covariate rasters' extents, and the pixels left empty as outside
    the footprint, for messages."""

    on_globe: int
    on_land: int
    valid: int
    mask_ocean: bool
    raster_extents: list[str] = field(default_factory=list)
    outside_footprint: int = 0

    def empty_reason(self) -> SinrError:
        """The error for a map without a valid pixel: what emptied it and what to change."""
        if self.on_globe and not self.on_land:
            return GridError("Every pixel of the extent is at sea and the ocean is left empty, so there is nothing "
                             "to predict; no file was written. Choose an extent over land, or untick 'Leave the "
                             "ocean empty'.")
        if self.outside_footprint:
            return GridError("Every pixel of the extent lies outside the model's data footprint (far from its "
                             "training records, or outside the covariate values it was trained on), so there is "
                             "nothing to show; no file was written. Show extrapolation (Processing: "
                             "OUTSIDE_FOOTPRINT) to see the model's guesses there, or choose an extent near its data.")
        if self.on_land and self.raster_extents:
            where = " on land" if self.mask_ocean else ""
            return CovariateError(f"The covariate rasters have no value at any pixel of the extent{where} (they cover "
                                  f"{'; '.join(self.raster_extents)}), so there is nothing to predict; no file was "
                                  "written. Choose covariate rasters that cover the extent, or an extent inside them.")
        return GridError("No pixel of the extent can be predicted; no file was written. Choose an extent on the globe.")


def _scaled(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    if progress is None:
        return None
    return lambda p: progress(lo + (hi - lo) * max(0.0, min(100.0, p)) / 100.0)


def _check_cancel(is_cancelled: CancelFn | None) -> None:
    if is_cancelled is not None and is_cancelled():
        raise CancelledError("Prediction cancelled; no output was written.")


class Predictor:
    """A bundle ready for inference on one backend (see the module docstring)."""

    def __init__(self, bundle: ModelBundle, backend: str = "auto", *, threads: int | None = None,
                 batch_size: int = DEFAULT_BATCH, cache_max_bytes: int = DEFAULT_CACHE_BYTES,
                 local_evidence: bool = True) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.bundle = bundle
        self.threads = int(threads or default_threads())
        self.batch_size = max(1, int(batch_size))
        self.cache_max_bytes = int(cache_max_bytes)
        self.warnings: list[str] = []
        self.encoder_calls = 0
        self.locations_encoded = 0
        # locations encoded in categorical classes no training record had (take_class_warnings)
        self._unseen: Counter[tuple[int, float]] = Counter()
        self._cache: _GridCache | None = None
        self.grid_coverage: GridCoverage | None = None  # of the last grid computed (iter_grid)
        self.covariate_warnings: list[str] = []  # what the covariate rasters' reading called for, last grid
        self._head = np.ascontiguousarray(bundle.head, dtype=np.float32)
        self._head_memo: tuple[np.ndarray, np.ndarray] | None = None
        # the bundle's local-evidence offsets (core.local_evidence), unless switched off: pure SINR
        self.local_evidence: LocalEvidence | None = bundle.local_evidence if local_evidence else None
        self._backend: _NumpyBackend | _OnnxBackend
        if backend == "numpy":
            self._backend = _NumpyBackend(bundle)
        elif backend == "onnxruntime":
            if not onnxruntime_available():
                raise BundleError("The onnxruntime backend was requested but onnxruntime is not installed. "
                                  "Install it with the Install onnxruntime button of the SINR panel (a plain "
                                  "pip install would upgrade QGIS's numpy), or use the numpy backend.")
            self._backend = _OnnxBackend(bundle, self.threads)
        elif onnxruntime_available():
            try:
                self._backend = _OnnxBackend(bundle, self.threads)
            except BundleError as exc:
                msg = f"{exc} Falling back to the numpy backend (same results, slower)."
                self.warnings.append(msg)
                LOG.warning(msg)
                self._backend = _NumpyBackend(bundle)
        else:
            self._backend = _NumpyBackend(bundle)

    # ---- identity ---------------------------------------------------------------------------
    @property
    def backend_name(self) -> str:
        """"onnxruntime" or "numpy": which engine computes the embeddings."""
        return self._backend.name

    @property
    def n_species(self) -> int:
        return self.bundle.n_species

    @property
    def embedding_dim(self) -> int:
        return int(self._head.shape[1])

    @property
    def needs_covariates(self) -> bool:
        return uses_covariates(self.bundle.encoding)

    def resolve_species(self, species: SpeciesLike | Iterable[SpeciesLike] | None) -> list[Species]:
        """Species from indices, codes/names, ``Species`` objects or a list of them (duplicates
        dropped); None = all."""
        if species is None:
            return list(self.bundle.species)
        if isinstance(species, (str, int, np.integer, Species)):
            items: list[Any] = [species]
        else:
            items = list(species)
        out: list[Species] = []
        for s in items:
            if isinstance(s, Species):
                if not (0 <= s.index < self.n_species) or self.bundle.species[s.index].code != s.code:
                    raise SpeciesNotFoundError(f"Species {s.label!r} is not in model {self.bundle.name!r}.")
                out.append(self.bundle.species[s.index])
            elif isinstance(s, (int, np.integer)):
                if not 0 <= int(s) < self.n_species:
                    raise SpeciesNotFoundError(f"Species index {int(s)} is out of range: model "
                                               f"{self.bundle.name!r} has {self.n_species} species.")
                out.append(self.bundle.species[int(s)])
            else:
                out.append(self.bundle.find_species(str(s)))
        if not out:
            raise SpeciesNotFoundError("No species given. Choose one or more species of the model.")
        return list({s.index: s for s in out}.values())  # duplicates removed, order kept

    def _indices(self, species: SpeciesLike | Iterable[SpeciesLike] | None) -> np.ndarray:
        if isinstance(species, np.ndarray) and species.ndim == 1 and species.dtype.kind in "iu" and species.size:
            # fast path for per-block calls with an index array (thousands of species)
            if species.min() < 0 or species.max() >= self.n_species:
                raise SpeciesNotFoundError(f"Species index out of range: model {self.bundle.name!r} has "
                                           f"{self.n_species} species.")
            return species.astype(np.int64, copy=False)
        return np.array([s.index for s in self.resolve_species(species)], dtype=np.int64)

    def _head_rows(self, idx: np.ndarray) -> np.ndarray:
        """head[idx], memoised for the last index set (grid blocks reuse it)."""
        if len(idx) == self.n_species and (idx == np.arange(self.n_species)).all():
            return self._head
        memo = self._head_memo
        if memo is None or not np.array_equal(memo[0], idx):
            memo = (idx.copy(), np.ascontiguousarray(self._head[idx]))
            self._head_memo = memo
        return memo[1]

    # ---- points -----------------------------------------------------------------------------
    def embed(self, lonlat: np.ndarray, env: np.ndarray | None = None) -> np.ndarray:
        """Embeddings [N, D] float32 of (lon, lat) degrees [N, 2] (+ raw covariates [N, k]).

        Rows with a non-finite coordinate or covariate are NaN (they are not encoded).
        """
        ll = np.asarray(lonlat, dtype=np.float32)
        if ll.ndim != 2 or ll.shape[1] != 2:
            raise ValueError(f"lonlat must have shape [N, 2], got {ll.shape}")
        ok = np.isfinite(ll).all(axis=1)
        ev = None
        if self.needs_covariates:
            k = len(self.bundle.covariates)
            if env is None:
                raise CovariateError(f"Model {self.bundle.name!r} needs {k} covariate values per location "
                                     f"({', '.join(self.bundle.covariate_names)}). Provide covariate rasters.")
            ev = np.asarray(env, dtype=np.float32)
            if ev.shape != (ll.shape[0], k):
                raise CovariateError(f"Covariate values have shape {ev.shape}; model {self.bundle.name!r} "
                                     f"needs [{ll.shape[0]}, {k}] ({', '.join(self.bundle.covariate_names)}).")
            ok &= np.isfinite(ev).all(axis=1)
        # One output array, filled batch by batch in place: a second full-size array and a
        # full-size masked scatter made one call on 615,775 points 1.4x slower (2.2x reported)
        out = np.empty((ll.shape[0], self.embedding_dim), dtype=np.float32)
        if ok.all():
            return self._encode(ll, ev, out)
        out[~ok] = np.nan
        return self._encode(ll, ev, out, rows=np.flatnonzero(ok))

    def _encode(self, ll: np.ndarray, env: np.ndarray | None, out: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> np.ndarray:
        """Embeddings of valid rows, the backend run on at most ``batch_size`` contiguous float32
        rows at a time: of every row of ``ll`` [N, 2] (``env`` [N, k]), or only of the indices
        ``rows``; written into those rows of ``out`` [N, D] (allocated when None), which is returned."""
        if out is None:
            out = np.empty((ll.shape[0], self.embedding_dim), dtype=np.float32)
        n = ll.shape[0] if rows is None else len(rows)
        for i in range(0, n, self.batch_size):
            pick = slice(i, min(n, i + self.batch_size)) if rows is None else rows[i:i + self.batch_size]
            e = None if env is None else np.ascontiguousarray(env[pick], dtype=np.float32)
            if e is not None and self.bundle.covariate_classes is not None:
                self._unseen += count_unseen(e, self.bundle.covariate_classes)
            out[pick] = self._backend.embed(np.ascontiguousarray(ll[pick], dtype=np.float32), e)
            self.encoder_calls += 1
        self.locations_encoded += n
        return out

    def take_class_warnings(self) -> list[str]:
        """Sentences about the locations encoded since the last call in categorical classes that no
        training record had (encoded as no class: :mod:`~sinr_qgis.core.categories`); the count
        starts again. Empty for a model without categorical covariates."""
        classes = self.bundle.covariate_classes
        counts, self._unseen = self._unseen, Counter()
        return unseen_class_warnings(counts, classes, self.bundle.covariate_names) if classes else []

    def use_local_evidence(self, on: bool) -> None:
        """Add the bundle's local evidence from now on (``on``; a bundle without one: pure SINR either
        way) or not. Only what is added to the logits changes: the cached grid embedding stays valid."""
        self.local_evidence = self.bundle.local_evidence if on else None

    def _needs_lonlat(self, lonlat: np.ndarray | None) -> None:
        if self.local_evidence is not None and lonlat is None:
            raise ValueError(f"model {self.bundle.name!r} adds local evidence: give the locations (lonlat), or "
                             "make the Predictor with local_evidence=False")

    def offsets(self, lonlat: np.ndarray, species: SpeciesLike | Iterable[SpeciesLike] | None = None) -> np.ndarray:
        """float32 [N, S]: what local evidence adds to the logits of ``species`` at (lon, lat)
        degrees [N, 2]; zeros when the predictor uses none (:mod:`~sinr_qgis.core.local_evidence`)."""
        idx = self._indices(species)
        if self.local_evidence is None:
            return np.zeros((np.asarray(lonlat).reshape(-1, 2).shape[0], idx.size), dtype=np.float32)
        return self.local_evidence.offsets(lonlat, idx)

    def scoring_species(self, species: Sequence[Species]) -> list[Species]:
        """``species`` with the LPT-R threshold of the score this predictor gives: the local-evidence
        one where it is used (NaN stored: none), else the network's own."""
        le = self.local_evidence
        if le is None:
            return list(species)
        return [dataclasses.replace(s, threshold=float(le.lpt_r[s.index]) if np.isfinite(le.lpt_r[s.index]) else None)
                for s in species]

    def logits(self, embedding: np.ndarray, species: SpeciesLike | Iterable[SpeciesLike] | None = None,
               lonlat: np.ndarray | None = None) -> np.ndarray:
        """Logits [N, S] = embedding . head[species], plus the local-evidence offsets at ``lonlat``
        [N, 2] when the predictor uses them (then ``lonlat`` is required: ``ValueError``)."""
        self._needs_lonlat(lonlat)
        idx = self._indices(species)
        out = matmul_t(np.ascontiguousarray(embedding, dtype=np.float32), self._head_rows(idx))
        if self.local_evidence is not None:
            out += self.local_evidence.offsets(lonlat, idx)
        return out

    def probabilities(self, embedding: np.ndarray, species: SpeciesLike | Iterable[SpeciesLike] | None = None,
                      lonlat: np.ndarray | None = None) -> np.ndarray:
        """Presence probabilities [N, S] = sigmoid(logits) (``lonlat`` as :meth:`logits`), computed in
        the logits' own array (no second array of the result's size)."""
        return sigmoid(self.logits(embedding, species, lonlat), np.float32, in_place=True)

    def count_above(self, embedding: np.ndarray, species: SpeciesLike | Iterable[SpeciesLike] | None,
                    thresholds: Sequence[float] | np.ndarray, lonlat: np.ndarray | None = None) -> np.ndarray:
        """How many of ``species`` reach their probability threshold (p >= t) at each row of
        ``embedding`` [N, D]: int32 [N] (0 for a row with NaN). ``thresholds`` [S] in [0, 1], one per
        species in the order given.

        Logits are compared with :func:`logit_thresholds` (the same decisions as the 0/1 bands) in
        tiles of at most ``COUNT_TILE_SPECIES`` species x ``COUNT_TILE_ROWS`` rows (fewer rows where
        ``SPECIES_BLOCK_BYTES`` is smaller), so memory is bounded whatever N and S (e.g. 47,375 species
        on a 131,072-pixel block) and the product runs near the machine's matrix rate."""
        self._needs_lonlat(lonlat)
        idx = self._indices(species)
        cut = logit_thresholds(thresholds)
        if cut.size != idx.size:
            raise ValueError(f"{cut.size} thresholds for {idx.size} species")
        emb = np.ascontiguousarray(embedding, dtype=np.float32)
        head = self._head_rows(idx)
        n = emb.shape[0]
        counts = np.zeros(n, dtype=np.int32)
        cols = min(idx.size, COUNT_TILE_SPECIES)
        rows = max(1, min(n, COUNT_TILE_ROWS, _rows_per_block(cols, 4 + 1)))  # float32 logits + bool comparison
        # one flat buffer of each for every tile, reshaped so that a smaller last tile stays contiguous
        logits = np.empty(cols * rows, dtype=np.float32)
        above = np.empty(cols * rows, dtype=np.bool_)
        cut_col = cut[:, None]
        for i in range(0, n, rows):
            e = emb[i:i + rows]
            for j in range(0, idx.size, cols):
                h = head[j:j + cols]
                shape = (h.shape[0], e.shape[0])  # species x locations: the count sums whole rows of it
                lg = matmul_t(h, e, out=logits[:shape[0] * shape[1]].reshape(shape))
                if self.local_evidence is not None:
                    lg += self.local_evidence.offsets(lonlat[i:i + rows], idx[j:j + cols]).T
                ab = np.greater_equal(lg, cut_col[j:j + cols], out=above[:lg.size].reshape(shape))
                counts[i:i + shape[1]] += ab.sum(axis=0, dtype=np.int32)
        return counts

    def predict_points(self, lonlat: np.ndarray, species: SpeciesLike | Iterable[SpeciesLike] | None = None,
                       env: np.ndarray | None = None) -> np.ndarray:
        """Probabilities [N, S] float32 of ``species`` (None = all) at (lon, lat) degrees [N, 2]."""
        return self.probabilities(self.embed(lonlat, env), species, lonlat)

    def top_species(self, lonlat: np.ndarray, k: int = 10,
                    env: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most probable species per point: indices int64 [N, k] and probabilities [N, k],
        best first. Points that cannot be evaluated get index -1 and probability NaN."""
        emb = self.embed(lonlat, env)
        n, s = emb.shape[0], self.n_species
        k = max(1, min(int(k), s))
        idx = np.full((n, k), -1, dtype=np.int64)
        prob = np.full((n, k), np.nan, dtype=np.float32)
        valid = np.flatnonzero(np.isfinite(emb).all(axis=1))
        # ranked on logits (the sigmoid is monotone): only the k kept get a probability
        chunk = min(max(1, valid.size), _rows_per_block(s, 4 + 8))  # float32 logits + argpartition's int64
        logits = np.empty((chunk, s), dtype=np.float32)  # one buffer for every chunk
        for i in range(0, valid.size, chunk):
            rows = valid[i:i + chunk]
            lg = matmul_t(emb[rows], self._head, out=logits[:rows.size])
            if self.local_evidence is not None:
                lg += self.local_evidence.offsets(np.asarray(lonlat)[rows], np.arange(s))
            # the k kept copied out, so the full [rows, S] positions are freed at once
            part = np.argpartition(lg, s - k, axis=1)[:, s - k:].copy() if k < s else \
                np.broadcast_to(np.arange(s), lg.shape)
            vals = np.take_along_axis(lg, part, axis=1)
            order = np.lexsort((part, -vals), axis=1)  # best first; equal logits by head order
            idx[rows] = np.take_along_axis(part, order, axis=1)
            prob[rows] = sigmoid(np.take_along_axis(vals, order, axis=1), np.float32)
        return idx, prob

    # ---- grids ------------------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Forget the cached grid embedding."""
        self._cache = None

    @property
    def cached_bytes(self) -> int:
        if self._cache is None:
            return 0
        return sum(b.embedding.nbytes + b.valid.nbytes for b in self._cache.blocks)

    def iter_grid(self, grid: Grid, *, mask_ocean: bool = True, covariates: CovariateSpec = None,
                  land_mask: str | Path | None = None, progress: ProgressFn | None = None,
                  is_cancelled: CancelFn | None = None, mask_footprint: bool = True) -> Iterator[GridBlock]:
        """Yield the grid's row blocks top to bottom with their valid pixels' embeddings.

        ``mask_footprint``: pixels outside the model's data footprint (:mod:`~sinr_qgis.core.footprint`)
        are not valid (nor encoded); a model without a footprint has every pixel inside. Uses (and
        refreshes) the embedding cache. ``progress`` gets 0..100 after each block;
        ``is_cancelled`` is checked before each block (then ``CancelledError``).
        """
        sources = self._covariate_sources(covariates)
        rows = max(1, TILE_PIXELS // grid.width)
        key = (grid.key, bool(mask_ocean), str(land_mask or ""), tuple(_file_key(p, b) for p, b in sources),
               rows, self.bundle.sha256 or id(self.bundle), bool(mask_footprint))
        n_blocks = -(-grid.height // rows)
        if self._cache is not None and self._cache.key == key:
            yield from self._replay_cache(n_blocks, progress, is_cancelled)
            return
        self._cache = None  # free the old grid's embeddings before computing new ones
        mask = load_land_mask(land_mask) if mask_ocean else None
        # already matched by name: the explicit mapping keeps that order
        samplers = covariate_samplers(self.bundle.meta["encoding"], dict(zip(self.bundle.covariate_names, sources)))
        totals = (0, 0, 0, 0)  # pixels on the globe, on land, valid; left empty outside the footprint
        # Cache only grids that can fit; a huge grid (20000 x 20000) then never holds more than a block.
        kept: list[GridBlock] | None = \
            [] if grid.n_pixels * (4 * self.embedding_dim + 1) <= 4 * self.cache_max_bytes else None
        size = 0
        unseen_before = Counter(self._unseen)
        for i, (r0, r1) in enumerate(grid.row_blocks(rows)):
            _check_cancel(is_cancelled)
            block, counts = self._compute_block(grid, r0, r1, mask, samplers, mask_footprint)
            totals = tuple(a + b for a, b in zip(totals, counts))
            if kept is not None:
                size += block.embedding.nbytes + block.valid.nbytes
                if size <= self.cache_max_bytes:
                    kept.append(block)
                else:
                    kept = None  # too big to cache: stream only
            yield block
            if progress is not None:
                progress(100.0 * (i + 1) / n_blocks)
        # what the grid held, for the reason of an empty map (a cached grid is the last one computed)
        self.grid_coverage = GridCoverage(*totals[:3], bool(mask_ocean), [
            s.extent_text() for s in samplers if hasattr(s, "extent_text")], outside_footprint=totals[3])
        self.covariate_warnings = list(dict.fromkeys(w for s in samplers for w in getattr(s, "warnings", [])))
        for w in self.covariate_warnings:
            LOG.warning(w)
        if kept is not None:
            self._cache = _GridCache(key, kept, self._unseen - unseen_before)

    def _replay_cache(self, n_blocks: int, progress: ProgressFn | None,
                      is_cancelled: CancelFn | None) -> Iterator[GridBlock]:
        """Yield the cached grid's blocks again, with the same progress and cancel checks."""
        self._unseen += self._cache.unseen  # the cached grid's cells are in those classes again
        for i, block in enumerate(self._cache.blocks):
            _check_cancel(is_cancelled)
            yield block
            if progress is not None:
                progress(100.0 * (i + 1) / n_blocks)

    def _compute_block(self, grid: Grid, r0: int, r1: int, mask: LandMask | None, samplers: list[CovariateSampler],
                       mask_footprint: bool = True) -> tuple[GridBlock, tuple[int, int, int, int]]:
        """Rows ``r0:r1`` of ``grid``: the block (valid pixels' embeddings, float32 [n_valid, dim],
        and footprint values) and its pixel counts (on the globe, then on land, then valid, and
        those left empty outside the footprint)."""
        lonlat, valid = grid.lonlat(r0, r1)
        n_globe = int(valid.sum())
        if mask is not None:
            valid &= mask.is_land(lonlat)
        n_land = int(valid.sum())
        env = None
        if samplers:
            env = np.stack([s.sample(lonlat[valid]) for s in samplers], axis=1)
            have = np.isfinite(env).all(axis=1)  # a pixel missing any covariate stays empty
            valid[valid] = have
            env = env[have]
        values, env, n_outside = self._footprint_values(lonlat, valid, env, mask_footprint)
        emb = self._encode(lonlat[valid].astype(np.float32), env) if valid.any() else \
            np.empty((0, self.embedding_dim), np.float32)
        return GridBlock(r0, r1, valid, emb, values, lonlat[valid]), (n_globe, n_land, int(valid.sum()), n_outside)

    def _footprint_values(self, lonlat: np.ndarray, valid: np.ndarray, env: np.ndarray | None,
                          mask_footprint: bool) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """The footprint's values at the ``valid`` pixels (float32 [n, n rules]; None without a
        footprint), the covariate rows ``env`` of the pixels kept, and how many pixels were left
        empty: with ``mask_footprint`` the pixels outside become invalid (``valid`` is changed in place).
        Sampled at the lon/lat the block already has (vectorised, a few ms per block)."""
        fp = self.bundle.footprint
        if fp is None or not valid.any():
            return (None if fp is None else np.empty((0, len(fp.band_names)), np.float32)), env, 0
        outside, values = fp.measure(lonlat[valid], env)
        if not mask_footprint or not outside.any():
            return values, env, 0
        inside = ~outside
        valid[valid] = inside
        return values[inside], None if env is None else env[inside], int(outside.sum())

    def _covariate_sources(self, covariates: CovariateSpec) -> list[tuple[str, int]]:
        """(path, band) per covariate of the bundle, in its order (matched by name); [] for a
        coordinate model."""
        names = self.bundle.covariate_names
        if not self.needs_covariates:
            return []
        if not covariates:
            raise CovariateError(f"Model {self.bundle.name!r} needs covariate rasters for: {', '.join(names)}. "
                                 "Choose a raster band for each covariate.")
        return match_covariates(names, covariates)


def _rows_per_block(n_species: int, bytes_per_value: int) -> int:
    """Rows of a [rows, n_species] block of ``bytes_per_value`` bytes each that fit in
    ``SPECIES_BLOCK_BYTES`` (at least one)."""
    return max(1, SPECIES_BLOCK_BYTES // (bytes_per_value * max(1, n_species)))


def _file_key(path: str, band: int) -> tuple:
    try:
        st = os.stat(path)
        return (os.path.abspath(path), band, st.st_mtime_ns, st.st_size)
    except OSError:
        return (path, band)


# ---- grid functions ------------------------------------------------------------------------------
def apply_on_grid(predictor: Predictor, grid: Grid, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], n_bands: int, *,
                  mask_ocean: bool = True, covariates: CovariateSpec = None, land_mask: str | Path | None = None,
                  progress: ProgressFn | None = None, is_cancelled: CancelFn | None = None,
                  mask_footprint: bool = True) -> np.ndarray:
    """In memory: ``fn(embedding [m, D], lonlat [m, 2]) -> [m, n_bands]`` at every valid pixel -> float32
    [n_bands, H, W], NaN = nodata (``mask_footprint``: also outside the model's data footprint).
    For small grids (the whole result is held in memory)."""
    h, w = grid.shape
    out = np.full((n_bands, h, w), np.nan, dtype=np.float32)
    piece = max(1, SPECIES_BLOCK_BYTES // (4 * w * max(1, n_bands)))  # fn's values beside the result: bounded
    for blk in predictor.iter_grid(grid, mask_ocean=mask_ocean, covariates=covariates, land_mask=land_mask,
                                   progress=progress, is_cancelled=is_cancelled, mask_footprint=mask_footprint):
        for part in _row_pieces(blk, w, piece):
            out[:, part.row0:part.row1] = _block_values(part, fn, n_bands, w)
    return out


@dataclass(frozen=True)
class WithFootprint:
    """A band function ``fn(embedding [m, D], lonlat [m, 2]) -> [m, n_bands]`` followed by the model's footprint
    values at the same pixels (``Footprint.band_names``: distance km, novelty): the optional extra
    band(s) of a map. Only for a model that stores a footprint."""

    fn: Callable[[np.ndarray, np.ndarray], np.ndarray]
    n_bands: int  # fn's own bands

    def of(self, blk: GridBlock) -> np.ndarray:
        """float32 [valid pixels of ``blk``, n_bands + footprint bands]."""
        own = np.asarray(self.fn(blk.embedding, blk.lonlat), dtype=np.float32)
        own = own.reshape(blk.embedding.shape[0], self.n_bands)
        return np.concatenate([own, blk.footprint], axis=1)


def _block_values(blk: GridBlock, fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | WithFootprint, n_bands: int,
                  width: int) -> np.ndarray:
    tile = np.full((n_bands, blk.valid.size), np.nan, dtype=np.float32)
    if blk.embedding.shape[0]:
        vals = fn.of(blk) if isinstance(fn, WithFootprint) else fn(blk.embedding, blk.lonlat)
        vals = np.asarray(vals, dtype=np.float32).reshape(blk.embedding.shape[0], n_bands)
        tile[:, blk.valid] = vals.T
    return tile.reshape(n_bands, blk.row1 - blk.row0, width)


def predict_grid(predictor: Predictor, grid: Grid, species: SpeciesLike | Iterable[SpeciesLike] | None, *,
                 mask_ocean: bool = True, covariates: CovariateSpec = None, land_mask: str | Path | None = None,
                 progress: ProgressFn | None = None, is_cancelled: CancelFn | None = None,
                 mask_footprint: bool = True) -> np.ndarray:
    """Probabilities [S, H, W] float32 (NaN = nodata) of ``species`` on ``grid``, in memory."""
    idx = predictor._indices(species)
    return apply_on_grid(predictor, grid, lambda e, ll: predictor.probabilities(e, idx, ll), len(idx),
                         mask_ocean=mask_ocean, covariates=covariates, land_mask=land_mask,
                         progress=progress, is_cancelled=is_cancelled, mask_footprint=mask_footprint)


def stream_to_geotiffs(predictor: Predictor, grid: Grid, outputs: list[tuple[GeoTiffWriter, Callable, int]], *,
                       mask_ocean: bool, covariates: CovariateSpec, land_mask: str | Path | None,
                       progress: ProgressFn | None, is_cancelled: CancelFn | None,
                       mask_footprint: bool = True) -> list[Path]:
    """Feed every (writer, fn, n_bands) from passes over the grid; then commit all (or none) and
    return the written paths in ``outputs`` order. ``fn(embedding [m, D], lonlat [m, 2]) -> [m, n_bands]`` (or a
    :class:`WithFootprint`) is a writer's values at the valid pixels (``mask_footprint``: inside the
    model's data footprint); a grid without a valid pixel raises the reason
    (``GridCoverage.empty_reason``) and a cancel ``CancelledError``, with no file left.

    At most ``MAX_OPEN_OUTPUTS`` writers are open at once (one pass each group; a cached grid
    embedding makes the later passes cost only their products), and a block is handed to the
    ``fn`` in row pieces of at most ``SPECIES_BLOCK_BYTES`` of float32 values per output."""
    groups = [outputs[i:i + MAX_OPEN_OUTPUTS] for i in range(0, len(outputs), MAX_OPEN_OUTPUTS)]
    try:
        for g, group in enumerate(groups):
            _stream_group(predictor, grid, group, mask_ocean=mask_ocean, covariates=covariates,
                          land_mask=land_mask, progress=_scaled(progress, 100 * g / len(groups),
                                                                100 * (g + 1) / len(groups)),
                          is_cancelled=is_cancelled, mask_footprint=mask_footprint)
        _check_cancel(is_cancelled)
        paths = [w.commit() for w, _, _ in outputs]
    finally:
        for w, _, _ in outputs:
            w.discard()
    if progress is not None:
        progress(100.0)
    return paths


def _stream_group(predictor: Predictor, grid: Grid, outputs: list[tuple[GeoTiffWriter, Callable, int]], *,
                  mask_ocean: bool, covariates: CovariateSpec, land_mask: str | Path | None,
                  progress: ProgressFn | None, is_cancelled: CancelFn | None, mask_footprint: bool) -> None:
    """One pass over the grid writing ``outputs`` (progress 0-90), then each one finished (90-100).
    A grid without any valid pixel raises the reason (``GridCoverage.empty_reason``): an empty map
    is never a success."""
    rows = max(1, TILE_PIXELS // grid.width)
    piece = max(1, SPECIES_BLOCK_BYTES // (4 * grid.width * max(nb for _, _, nb in outputs)))
    for w, _, _ in outputs:
        w.open(min(rows, piece, grid.height))
    n_valid = 0
    for blk in predictor.iter_grid(grid, mask_ocean=mask_ocean, covariates=covariates, land_mask=land_mask,
                                   progress=_scaled(progress, 0, 90), is_cancelled=is_cancelled,
                                   mask_footprint=mask_footprint):
        n_valid += int(np.count_nonzero(blk.valid))
        for part in _row_pieces(blk, grid.width, piece):
            for w, fn, nb in outputs:
                w.write_rows(part.row0, _block_values(part, fn, nb, grid.width))
    _check_cancel(is_cancelled)
    if n_valid == 0 and predictor.grid_coverage is not None:
        raise predictor.grid_coverage.empty_reason()
    for i, (w, _, _) in enumerate(outputs):
        lo = 90 + 10 * i / len(outputs)
        w.finish(_scaled(progress, lo, lo + 10 / len(outputs)), is_cancelled)


def _row_pieces(blk: GridBlock, width: int, max_rows: int) -> Iterator[GridBlock]:
    """``blk`` as consecutive blocks of at most ``max_rows`` rows (views of its arrays)."""
    if blk.row1 - blk.row0 <= max_rows:
        yield blk
        return
    # embedding rows are the valid pixels in row-major order: row r starts at ends[r - row0]
    ends = np.concatenate(([0], np.cumsum(blk.valid.reshape(-1, width).sum(axis=1))))
    for r0 in range(blk.row0, blk.row1, max_rows):
        r1 = min(blk.row1, r0 + max_rows)
        a, b = r0 - blk.row0, r1 - blk.row0
        yield GridBlock(r0, r1, blk.valid[a * width:b * width], blk.embedding[ends[a]:ends[b]],
                        None if blk.footprint is None else blk.footprint[ends[a]:ends[b]], blk.lonlat[ends[a]:ends[b]])


def apply_on_grid_to_geotiff(predictor: Predictor, grid: Grid, path: str | Path,
                             fn: Callable[[np.ndarray, np.ndarray], np.ndarray], band_names: Sequence[str], *,
                             metadata: Mapping[str, object] | None = None, style: str | None = None,
                             resampling: str = "AVERAGE", mask_ocean: bool = True, covariates: CovariateSpec = None,
                             land_mask: str | Path | None = None, progress: ProgressFn | None = None,
                             is_cancelled: CancelFn | None = None, mask_footprint: bool = True) -> Path:
    """Streamed: ``fn(embedding [m, D], lonlat [m, 2]) -> [m, len(band_names)]`` at every valid pixel, written as a
    Float32 COG at ``path`` (any grid size; e.g. embeddings, a PCA projection, species richness).
    ``metadata`` gets MODEL_NAME, MODEL_SHA256, ENCODING, BACKEND, FOOTPRINT added."""
    meta = {**model_metadata(predictor, mask_ocean, mask_footprint), **(metadata or {})}
    writer = GeoTiffWriter(path, grid, list(band_names), metadata=meta, style=style, resampling=resampling)
    return stream_to_geotiffs(predictor, grid, [(writer, fn, len(band_names))], mask_ocean=mask_ocean,
                   covariates=covariates, land_mask=land_mask, progress=progress, is_cancelled=is_cancelled,
                   mask_footprint=mask_footprint)[0]


def model_metadata(predictor: Predictor, mask_ocean: bool, mask_footprint: bool = True) -> dict[str, str]:
    """The dataset metadata every output carries: MODEL_NAME, MODEL_SHA256, ENCODING, BACKEND,
    OCEAN_MASK (yes | no), FOOTPRINT (the data footprint's rule and whether the pixels outside it
    are empty or shown, or "no footprint stored"), LOCAL_EVIDENCE (:func:`local_evidence_status`), SOFTWARE
    and, for an env model, COVARIATES
    (comma-separated names)."""
    b = predictor.bundle
    meta = {"MODEL_NAME": b.name, "MODEL_SHA256": b.sha256, "ENCODING": b.encoding,
            "BACKEND": predictor.backend_name, "OCEAN_MASK": "yes" if mask_ocean else "no",
            "FOOTPRINT": footprint_status(b.footprint, b.meta, shown=not mask_footprint),
            "SOFTWARE": "SINR for QGIS", "LOCAL_EVIDENCE": local_evidence_status(predictor)}
    if b.covariates:
        meta["COVARIATES"] = ",".join(b.covariate_names)
    return meta


def local_evidence_status(predictor: Predictor) -> str:
    """Whether ``predictor``'s values include the bundle's local evidence: its description, "off (pure
    SINR)" when switched off, or "none stored (pure SINR)"."""
    if predictor.local_evidence is not None:
        return predictor.local_evidence.describe()
    return "off (pure SINR)" if predictor.bundle.local_evidence is not None else "none stored (pure SINR)"
