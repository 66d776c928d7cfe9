"""Run by test_blas.py in QGIS's own interpreter (Debian: /usr/bin/python3 with Debian's numpy).

Loads GSL's reference CBLAS into the global symbol scope first (unless LIBGSLCBLAS is "none"), as
the QGIS program has it, then either runs the numpy backend (``backend``: embeddings and logits)
or numpy's own float32 product (``numpy``), and saves the arrays to OUT.npz. Prints one JSON line.

    python gsl_capture_probe.py backend|numpy LIBGSLCBLAS|none BUNDLE.sinr OUT.npz
"""
from __future__ import annotations

import ctypes
import json
import sys
import time
from pathlib import Path

mode, gsl, bundle_path, out = sys.argv[1:5]
if gsl != "none":
    ctypes.CDLL(gsl, mode=ctypes.RTLD_GLOBAL)  # before numpy, as in the QGIS process
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from sinr_qgis.core import blas  # noqa: E402

result = {"engine": blas.product_engine(), "global_cblas": blas.global_cblas_library(), "numpy": np.__file__}
rng = np.random.default_rng(0)
if mode == "backend":
    from sinr_qgis.core.bundle import ModelBundle
    from sinr_qgis.core.runtime import Predictor

    predictor = Predictor(ModelBundle.load(bundle_path), backend="numpy")
    lonlat = np.column_stack([rng.uniform(-180, 180, 5000), rng.uniform(-60, 75, 5000)]).astype(np.float32)
    t = time.perf_counter()
    emb = predictor.embed(lonlat)
    logits = predictor.logits(emb)
    result["seconds"] = time.perf_counter() - t
    np.savez(out, lonlat=lonlat, emb=emb, logits=logits)
else:
    x = rng.standard_normal((2048, 256), dtype=np.float32)
    w = rng.standard_normal((256, 256), dtype=np.float32)
    t = time.perf_counter()
    y = x @ w.T
    result["seconds"] = time.perf_counter() - t
    result["max_error"] = float(np.abs(y.astype(np.float64) - x.astype(np.float64) @ w.T.astype(np.float64)).max())
    np.savez(out, y=y)
print(json.dumps(result))
