"""The paper-scale benchmark's data (training/benchmarks/scale.py) and the GPU check script's dry run
(scripts/gpu_check.sh); the figures themselves are in training/benchmarks/README.md, not asserted."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from training.benchmarks import scale
from training.columnar import read_occurrences_columnar

ROOT = Path(__file__).resolve().parents[2]


def test_species_counts_are_long_tailed_and_exact():
    counts = scale.species_counts(scale.PAPER_RECORDS, scale.PAPER_SPECIES)
    assert counts.sum() == 35_500_000 and len(counts) == 47_375
    assert counts.min() >= scale.MIN_PER_SPECIES and np.all(np.diff(counts[1:]) <= 0)
    # long-tailed: the commonest species hold a large share, most species few records
    assert counts[:100].sum() > 0.3 * counts.sum()
    assert np.median(counts) < 200 < counts[0] // 1000


def test_generated_file_has_the_shape_and_is_made_once(tmp_path):
    path = scale.generate(tmp_path, 20_000, 300, seed=1)
    assert path.name == "occurrences_20000_300_1.parquet" and not list(tmp_path.glob("*.part"))
    occ = read_occurrences_columnar(path)
    assert (len(occ), occ.n_read, occ.n_dropped) == (20_000, 20_000, 0)
    ids, n = np.unique(occ.species.astype(str), return_counts=True)
    by_id = dict(zip(ids.tolist(), n.tolist()))
    expected = scale.species_counts(20_000, 300)
    assert [by_id[str(1_000_000 + i)] for i in range(300)] == expected.tolist()
    assert np.all(np.abs(occ.lat) < 90) and np.all(np.abs(occ.lon) <= 180)
    mtime = path.stat().st_mtime_ns
    assert scale.generate(tmp_path, 20_000, 300, seed=1) == path and path.stat().st_mtime_ns == mtime


def test_gpu_check_dry_run_checks_its_commands_without_a_gpu():
    out = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("dry run: would run")
    assert "-m training.benchmarks.scale --device cuda --skip-read --steps 100 --warmup 5 --processes 1 2" \
        in " ".join(lines[1].split())
    train = " ".join(lines[2].split())
    assert "-m training train --data" in train and "--device cuda" in train
    bad = subprocess.run(["bash", "scripts/gpu_check.sh", "--gpu"], cwd=ROOT, capture_output=True, text=True)
    assert (bad.returncode, bad.stderr.strip()) == (2, "usage: scripts/gpu_check.sh [--dry-run]")
