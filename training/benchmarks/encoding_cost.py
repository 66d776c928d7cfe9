"""Encoder cost per location of each coordinate encoding, against the paper's ``sin_cos`` (issue 13).

Issue 13 allows a v2 model at most 2x v1's encoder cost per location. This prints, from one run on
the same points: seconds per 100,000 locations of ``Predictor.embed`` (the plugin's prediction
path) for random width-256, 4-block bundles with ``sin_cos`` (v1), ``sin_cos_multi`` (default
frequencies 1..32) and ``spherical_harmonics`` at each ``--degrees``, on the onnxruntime and numpy
backends, and each one's ratio to ``sin_cos`` on the same backend. The encoders are timed
interleaved round by round and each keeps its best round, so load from other processes hurts all
alike; CPU seconds (all the process's threads) are printed beside the wall seconds, as the cost
that load from others does not inflate. The features alone (``core.encoding.encode`` in numpy,
in the runtime's batches of ``DEFAULT_BATCH`` locations) are timed too, to show how much of the
cost is the encoding and how much the wider input layer.

    .venv/bin/python training/benchmarks/encoding_cost.py                # ~1 minute on 2 cores
    .venv/bin/python training/benchmarks/encoding_cost.py --degrees 10,20,32 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from sinr_qgis.core import encoding as enc  # noqa: E402
from sinr_qgis.core.bundle import ModelBundle, Species  # noqa: E402
from sinr_qgis.core.runtime import DEFAULT_BATCH, Predictor  # noqa: E402
from training.export import export_bundle  # noqa: E402
from training.model import SinrModel  # noqa: E402


def encodings(degrees: list[int]) -> dict[str, dict]:
    """Label -> ``SinrModel`` keyword arguments of every encoding timed, ``sin_cos`` first."""
    out = {"sin_cos": {"encoding": "sin_cos"}, "sin_cos_multi 1..32": {"encoding": "sin_cos_multi"}}
    for d in degrees:
        out[f"spherical_harmonics L={d}"] = {"encoding": "spherical_harmonics", "sh_degree": d}
    return out


def make(folder: Path, label: str, kwargs: dict, width: int, depth: int) -> ModelBundle:
    """A random-weight bundle of the paper's shape with the encoding ``kwargs``, written and loaded."""
    torch.manual_seed(0)
    model = SinrModel(10, width=width, depth=depth, **kwargs)
    path = folder / (label.replace(" ", "_").replace("=", "").replace(".", "") + ".sinr")
    export_bundle(model, [Species(i, f"s{i}", f"S {i}", 1) for i in range(10)], path, name=path.stem)
    return ModelBundle.load(path)


def best_of(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float]]:
    """Run every fn once per round, interleaved; each one's best (least) wall and CPU seconds."""
    best = dict.fromkeys(fns, (float("inf"), float("inf")))
    for _ in range(rounds):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def cell(best: dict[str, tuple[float, float]], label: str, backend: str, per: float) -> str:
    """"wall (ratio) / CPU (ratio)" of one encoding on one backend, ratios to ``sin_cos``'s."""
    (w, c), (w0, c0) = best[f"{label}|{backend}"], best[f"sin_cos|{backend}"]
    return f"{w * per:6.3f} ({w / w0:4.2f}x) / {c * per:6.3f} ({c / c0:4.2f}x)"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100_000, help="locations per timing")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (best is kept)")
    ap.add_argument("--degrees", default="10", help="spherical-harmonics degrees L, comma-separated")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="encoder threads (default: the runtime's)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    lonlat = np.c_[rng.uniform(-180, 180, args.points), rng.uniform(-90, 90, args.points)].astype(np.float32)
    specs = encodings([int(d) for d in args.degrees.split(",")])
    fns: dict[str, Callable[[], object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs in specs.items():
            bundle = make(Path(tmp), label, kwargs, args.width, args.depth)
            for backend in ("onnxruntime", "numpy"):
                pred = Predictor(bundle, backend, threads=args.threads)
                fns[f"{label}|{backend}"] = lambda p=pred: p.embed(lonlat)
            fns[f"{label}|features"] = lambda k=kwargs: [
                enc.encode(k["encoding"], lonlat[i:i + DEFAULT_BATCH], degree=k.get("sh_degree"))
                for i in range(0, len(lonlat), DEFAULT_BATCH)]
        best = best_of(fns, args.rounds)
    per = 100_000 / args.points
    print(f"seconds per 100,000 locations, wall / CPU (best of {args.rounds}; width {args.width}, {args.depth} "
          "blocks); ratio to sin_cos on the same backend")
    print(f"{'encoding':<26} {'input':>5} {'onnxruntime':>33} {'numpy':>33} {'features (CPU)':>15}")
    for label, kwargs in specs.items():
        d_in = enc.input_dim(kwargs["encoding"], degree=kwargs.get("sh_degree"))
        print(f"{label:<26} {d_in:>5} {cell(best, label, 'onnxruntime', per):>33} "
              f"{cell(best, label, 'numpy', per):>33} {best[f'{label}|features'][1] * per:>15.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
