"""Inputs and a runner for the training command-line tests: a small occurrence CSV, fast settings."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np

from training.cli import main

ROOT = Path(__file__).resolve().parents[2]


FAST = ["--epochs", "1", "--batch-size", "256", "--width", "16", "--depth", "1", "--threads", "2", "--no-progress"]


def write_csv(path: Path, n_per: int = 150, extra_bad: bool = True) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    species = [("aaa", "Alpha a", (-90, 35)), ("bbb", "Beta b", (-110, 45)), ("ccc", "Gamma c", (-75, 42))]
    for code, name, (x, y) in species:
        for _ in range(n_per):
            rows.append([name, code, f"{y + rng.normal(0, 2):.5f}", f"{x + rng.normal(0, 2):.5f}", "src1"])
    if extra_bad:
        rows.append(["Alpha a", "aaa", "", "-90", "src1"])  # missing latitude
        rows.append(["Alpha a", "aaa", "95", "-90", "src1"])  # out of range
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "code", "latitude", "longitude", "source"])
        w.writerows(rows)
    return path


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
