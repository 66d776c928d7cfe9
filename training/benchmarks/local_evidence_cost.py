"""What a location costs the bundled model, against another bundle's encoder, side by side in one run.

    python -m training.benchmarks.local_evidence_cost --baseline OTHER.sinr [--points 200000]

Times (best of ``--rounds``, interleaved) on the same random North American land-and-sea points:
the baseline's encoder, the bundled model's encoder, its head for one species and for all, and its
local-evidence offsets for one species and for all (``Predictor.offsets``). Prints each as a ratio
to the baseline's encoder. The issue-13 budget: at most 2x the baseline (v1) encoder per location.
The v1 bundle is in git: ``git show 381b2a0:resources/models/na_trees_coords_v1.sinr > v1.sinr``.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.resources import BUNDLED_MODEL
from sinr_qgis.core.runtime import Predictor


def best_of(fn: Callable[[], object], rounds: int) -> float:
    """The shortest of ``rounds`` timings of ``fn()`` (seconds)."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m training.benchmarks.local_evidence_cost",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, help="the bundle whose encoder is the unit (v1)")
    ap.add_argument("--model", default=str(BUNDLED_MODEL), help="the bundle timed (default: the bundled model)")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    ll = np.column_stack([rng.uniform(-130, -60, a.points), rng.uniform(20, 60, a.points)]).astype(np.float32)
    base, model = Predictor(ModelBundle.load(a.baseline)), Predictor(ModelBundle.load(a.model))
    if model.local_evidence is None:
        raise SystemExit(f"{a.model} stores no local evidence")
    emb = model.embed(ll)
    one, every = np.array([0]), np.arange(model.n_species)
    pure = Predictor(model.bundle, local_evidence=False)
    rows: dict[str, float] = {}
    for _ in range(a.rounds):  # interleaved: a slow moment of the machine hits every row alike
        for name, fn in (("baseline encoder", lambda: base.embed(ll)),
                         ("model encoder", lambda: model.embed(ll)),
                         ("head, 1 species", lambda: pure.logits(emb, one)),
                         ("local evidence, 1 species", lambda: model.offsets(ll, one)),
                         (f"head, {model.n_species} species", lambda: pure.logits(emb, every)),
                         (f"local evidence, {model.n_species} species", lambda: model.offsets(ll, every))):
            rows[name] = min(rows.get(name, float("inf")), best_of(fn, 1))
    unit = rows["baseline encoder"]
    print(f"{a.points:,} locations; best of {a.rounds}; ratio to the baseline's encoder ({unit * 1e3:.0f} ms)")
    for name, t in rows.items():
        print(f"  {name:<32} {t * 1e3:8.1f} ms  {t / unit:6.3f}x")
    first = (rows["model encoder"] + rows["head, 1 species"] + rows["local evidence, 1 species"]) / unit
    print(f"  first species with local evidence: {first:.3f}x the baseline encoder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
