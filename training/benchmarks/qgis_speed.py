"""Prediction speed as inside QGIS: numpy backend vs onnxruntime, with and without GSL's CBLAS.

QGIS on Debian/Ubuntu links GSL, whose reference CBLAS (libgslcblas.so.0) sits in the process's
global symbol scope, so Debian numpy's float32 product binds to it (see sinr_qgis/core/blas.py).
This script reproduces that outside QGIS: it runs QGIS's own interpreter (default: the Python this
venv was made from, with Debian's numpy and scipy) twice, once plain and once with libgslcblas
loaded RTLD_GLOBAL before numpy, as the QGIS program has it. Each run times, interleaved round by
round on the same points (best round kept):

- ``numpy backend``: the plugin's numpy backend (products on scipy's BLAS);
- ``numpy matmul``: the same backend with numpy's own product (the plugin before issue 15, and
  the plugin where scipy is missing);
- ``onnxruntime``: the onnxruntime backend (from ``--onnxruntime-path``, default this venv's
  site-packages, appended after the interpreter's own paths as the plugin's private folder is).

    .venv/bin/python training/benchmarks/qgis_speed.py                 # ~30 s on 2 cores
    .venv/bin/python training/benchmarks/qgis_speed.py --points 40000 --rounds 7

Uses the bundled model (``sinr_qgis.core.resources.BUNDLED``).
"""
from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the plugin package sits at the top level

from sinr_qgis.core.resources import BUNDLED  # noqa: E402

CONTESTANTS = ("numpy backend", "numpy matmul", "onnxruntime")

# Runs in the child (QGIS's interpreter): argv = gsl|none, points, rounds, bundle, onnxruntime path
CHILD = r'''
import ctypes, json, sys, time
gsl, points, rounds, bundle, ort_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
if gsl != "none":
    ctypes.CDLL(gsl, mode=ctypes.RTLD_GLOBAL)
sys.path.insert(0, sys.argv[6])
sys.path.append(ort_path)
import numpy as np
from sinr_qgis.core import blas
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.runtime import Predictor, onnxruntime_available

b = ModelBundle.load(bundle)
rng = np.random.default_rng(0)
lonlat = np.column_stack([rng.uniform(-180, 180, points), rng.uniform(-60, 75, points)]).astype(np.float32)
fast, plain = Predictor(b, "numpy"), Predictor(b, "numpy")
scipy_gemms = blas._scipy_gemms

def numpy_matmul():
    blas._scipy_gemms = lambda: None  # what a QGIS without scipy (or the plugin before issue 15) runs
    try:
        return plain.embed(lonlat)
    finally:
        blas._scipy_gemms = scipy_gemms

fns = {"numpy backend": lambda: fast.embed(lonlat), "numpy matmul": numpy_matmul}
if onnxruntime_available():
    ort = Predictor(b, "onnxruntime")
    fns["onnxruntime"] = lambda: ort.embed(lonlat)
for fn in fns.values():
    fn()  # warm up
best = {k: float("inf") for k in fns}
for _ in range(rounds):
    for name, fn in fns.items():
        t = time.perf_counter()
        fn()
        best[name] = min(best[name], time.perf_counter() - t)
print(json.dumps({"rates": {k: points / v for k, v in best.items()}, "numpy": np.__version__,
                  "global_cblas": blas.global_cblas_library(), "engine": blas.product_engine()}))
'''


def run(python: str, gsl: str, args: argparse.Namespace) -> dict:
    """Time the bundled model in a child ``python``, preloading ``gsl`` (a libgslcblas path or
    "none"); returns the child's JSON figures.

    Exits with the child's stderr when the child fails.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run([python, "-I", "-c", CHILD, gsl, str(args.points), str(args.rounds), str(BUNDLED.path),
                           args.onnxruntime_path, str(ROOT)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{python} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}."
                                             f"{sys.version_info[1]}"), help="QGIS's interpreter")
    ap.add_argument("--points", type=int, default=20000, help="locations per timing")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best is kept)")
    ap.add_argument("--onnxruntime-path", default=sysconfig.get_paths()["purelib"],
                    help="folder holding onnxruntime (appended to the child's sys.path)")
    args = ap.parse_args()
    gsl = ctypes.util.find_library("gslcblas")
    if gsl is None:
        sys.exit("libgslcblas not found: apt-get install libgslcblas0 (it comes with QGIS on Debian/Ubuntu)")
    print(f"model {BUNDLED.file}; {args.points:,} points, best of {args.rounds} rounds; interpreter {args.python}; "
          f"load average {os.getloadavg()[0]:.1f}")
    results = {"plain": run(args.python, "none", args), "GSL loaded (as in QGIS)": run(args.python, gsl, args)}
    first = next(iter(results.values()))
    print(f"numpy {first['numpy']}; product engine: {first['engine']}\n")
    print(f"{'locations/s':<16}" + "".join(f"{k:>26}" for k in results))
    for name in CONTESTANTS:
        cells = [r["rates"].get(name) for r in results.values()]
        print(f"{name:<16}" + "".join(f"{c:>26,.0f}" if c else f"{'-':>26}" for c in cells))
    for label, r in results.items():
        rates = r["rates"]
        if "onnxruntime" in rates:
            print(f"{label}: numpy backend at {rates['numpy backend'] / rates['onnxruntime']:.0%} of onnxruntime "
                  f"(numpy matmul at {rates['numpy matmul'] / rates['onnxruntime']:.0%}); "
                  f"cblas_sgemm in the global scope: {r['global_cblas'] or 'none'}")


if __name__ == "__main__":
    main()
