"""Score a mean-logit ensemble of model bundles on the NA-Trees tasks (issue 13's study).

An ensemble of networks costs one encoder pass per member, so it cannot ship as the bundled model
(at most 2x v1's encoder cost per location); its score is what ``--distill-from`` tries to fit
into one network. Logits, not probabilities, are averaged, per species code (the bundles may list
their species in any order; only the first bundle's species are scored).

    .venv/bin/python -m training.benchmarks.ensemble A.sinr B.sinr [--out report.json]
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sinr_qgis.core.bundle import ModelBundle
from training.benchmarks import na_trees as nt


def ensemble_scorer(bundles: Sequence[ModelBundle]) -> nt.ScoreFn:
    """A scorer returning the mean of the bundles' logits, float64 [N, S], for the species asked."""
    scorers = [nt.bundle_scorer(b) for b in bundles]

    def score(lonlat: np.ndarray, codes: list[str]) -> np.ndarray:
        return np.mean([np.asarray(s(lonlat, codes), np.float64) for s in scorers], axis=0)

    return score


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate the ensemble of the bundles given and print (or write) both MAPs."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="model bundles (.sinr) whose logits are averaged")
    ap.add_argument("--out", help="write the per-task results as JSON here")
    args = ap.parse_args(argv)
    bundles = [ModelBundle.load(p) for p in args.models]
    codes = [s.code for s in bundles[0].species]
    missing = {Path(p).name: sorted(set(codes) - {s.code for s in b.species})
               for p, b in zip(args.models, bundles) if set(codes) - {s.code for s in b.species}}
    if missing:
        ap.error(f"every bundle needs the first bundle's species; missing: {missing}")
    results = nt.evaluate(ensemble_scorer(bundles), codes, nt.load_tasks())
    label = " + ".join(Path(p).name for p in args.models)
    print(label + ": " + ", ".join(f"{task} MAP {r['map']:.2f}" for task, r in results.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"models": [str(p) for p in args.models], "results": results},
                                             indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
