"""How fast this process predicts, and why when it is slow (for Diagnostics).

Measured in the calling process with the predictor the panel uses: inside QGIS a library QGIS
loads can slow numpy's matrix product down (see :mod:`~sinr_qgis.core.blas`), which a benchmark in
another Python would never show. The whole check takes about one second.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import blas, network

if TYPE_CHECKING:
    from .runtime import Predictor

SLOW_GFLOPS = 10.0  # an optimised BLAS gives 20-200 GFLOP/s on one modern core; reference loops 3-5
SPEED_POINTS = 20_000
SPEED_BUDGET_S = 0.8
CHUNK = 1024  # points per timed call: small enough that a slow machine stops near the budget
INSTALL_HINT = "the Install onnxruntime button of the SINR panel (or of this dialog)"

Clock = Callable[[], float]


def encoder_flops(weights: Mapping[str, np.ndarray]) -> float:
    """Floating-point operations of the encoder per location (2 x multiply-adds of every layer)."""
    mats = [weights[network.INPUT_W]]
    for i in range(network.count_blocks(weights)):
        w1, _, w2, _ = network.block_keys(i)
        mats += [weights[w1], weights[w2]]
    return float(sum(2 * m.shape[0] * m.shape[1] for m in mats))


def measure_embed(predictor: Predictor, n: int = SPEED_POINTS, budget_s: float = SPEED_BUDGET_S,
                  clock: Clock = time.perf_counter) -> tuple[int, float]:
    """Embed up to ``n`` points spread over the land latitudes, ``CHUNK`` at a time, stopping once
    ``budget_s`` seconds are spent. Returns (points embedded, seconds). One unmeasured chunk first
    (onnxruntime sets its session up on the first run)."""
    rng = np.random.default_rng(0)
    lonlat = np.column_stack([rng.uniform(-180, 180, n), rng.uniform(-60, 75, n)]).astype(np.float32)
    env = None
    if predictor.needs_covariates:  # typical standardised values: the speed does not depend on them
        mean = predictor.bundle.weights.get(network.ENV_MEAN)
        env = np.tile(np.asarray(mean, np.float32), (n, 1))
    predictor.embed(lonlat[:CHUNK], None if env is None else env[:CHUNK])
    done, start = 0, clock()
    while done < n and (done == 0 or clock() - start < budget_s):
        stop = min(n, done + CHUNK)
        predictor.embed(lonlat[done:stop], None if env is None else env[done:stop])
        done = stop
    return done, max(clock() - start, 1e-9)


def matmul_gflops(product: Callable[[np.ndarray, np.ndarray], np.ndarray], rows: int = 1024, width: int = 256,
                  budget_s: float = 0.1, clock: Clock = time.perf_counter) -> float:
    """GFLOP/s of ``product(x, w)`` = x @ w.T on float32 [rows, width] x [width, width], best of a
    few runs within ``budget_s`` (the size of one layer of the bundled model on one batch)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, width), dtype=np.float32)
    w = rng.standard_normal((width, width), dtype=np.float32)
    product(x, w)
    best, start = float("inf"), clock()
    for _ in range(5):
        t = clock()
        product(x, w)
        best = min(best, clock() - t)
        if clock() - start > budget_s:
            break
    return 2.0 * rows * width * width / max(best, 1e-9) / 1e9


@dataclass(frozen=True)
class SpeedReport:
    """The measured speed of one predictor in this process."""

    backend: str               # "onnxruntime" or "numpy"
    engine: str                # blas.product_engine(): who computes the numpy backend's products
    locations: int
    seconds: float
    flops_per_location: float
    numpy_gflops: float        # numpy's own float32 matmul here
    engine_gflops: float       # the plugin's product (blas.matmul_t) here
    captured_by: str | None    # the library holding cblas_sgemm in the global symbol scope, if any

    @property
    def locations_per_s(self) -> float:
        return self.locations / self.seconds

    @property
    def gflops(self) -> float:
        """The encoder's effective rate."""
        return self.locations_per_s * self.flops_per_location / 1e9

    @property
    def slow(self) -> bool:
        return self.gflops < SLOW_GFLOPS

    def speed_line(self) -> str:
        """Locations/s, and why when slow (what to do)."""
        head = (f"{self.locations_per_s:,.0f} locations/s with {self.backend} ({self.locations:,} points in "
                f"{self.seconds:.2f} s, {self.gflops:.1f} GFLOP/s)")
        if not self.slow:
            tip = f"; onnxruntime is usually faster still: {INSTALL_HINT}" if self.backend == "numpy" else ""
            return f"{head}: normal{tip}"
        return f"{head}: SLOW, {self.why_slow()}"

    def why_slow(self) -> str:
        if self.backend == "onnxruntime":
            return "the CPU is busy with other work, or QGIS may use only few cores"
        if self.engine == blas.ENGINE_NUMPY:
            cause = (f"numpy's matrix product is bound to a reference BLAS ({self.captured_by}) that QGIS loads, "
                     "and scipy is missing, so the plugin cannot avoid it" if self.captured_by else
                     f"scipy is missing and numpy's matrix product runs at {self.numpy_gflops:.1f} GFLOP/s")
            return (f"{cause}. Install onnxruntime with {INSTALL_HINT}, or scipy for QGIS's Python "
                    "(Debian/Ubuntu: sudo apt install python3-scipy)")
        return (f"scipy's BLAS runs at {self.engine_gflops:.1f} GFLOP/s here: an unoptimised BLAS library "
                "(Debian/Ubuntu: sudo apt install libopenblas0-pthread) or a busy CPU. Install onnxruntime "
                f"with {INSTALL_HINT}")

    def product_line(self) -> str:
        """Who computes the numpy backend's products, how fast, and whether numpy's own is captured."""
        line = f"{self.engine}: {self.engine_gflops:.1f} GFLOP/s; numpy matmul {self.numpy_gflops:.1f} GFLOP/s"
        if self.captured_by:
            line += (f" (numpy's cblas_sgemm is bound to {self.captured_by}, a reference BLAS QGIS loads"
                     + ("; the plugin uses scipy's BLAS instead)" if self.engine == blas.ENGINE_SCIPY else ")"))
        return line


def speed_report(predictor: Predictor, n: int = SPEED_POINTS, budget_s: float = SPEED_BUDGET_S) -> SpeedReport:
    """Measure ``predictor`` and the matrix products in this process (about ``budget_s`` + 0.2 s)."""
    locations, seconds = measure_embed(predictor, n, budget_s)
    return SpeedReport(
        backend=predictor.backend_name, engine=blas.product_engine(), locations=locations, seconds=seconds,
        flops_per_location=encoder_flops(predictor.bundle.weights),
        numpy_gflops=matmul_gflops(blas.numpy_matmul_t), engine_gflops=matmul_gflops(blas.matmul_t),
        captured_by=blas.global_cblas_library())
