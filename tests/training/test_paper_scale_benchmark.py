"""The issue 12 rows of training/benchmarks/paper_scale.py run end to end on a small model (the
figures themselves are in training/benchmarks/README.md, not asserted: no timed assertions)."""
from __future__ import annotations

import sys

from tests.factories import make_bundle
from training.benchmarks import paper_scale


def test_issue12_rows_print_every_figure_beside_its_target(tmp_path):
    path = tmp_path / "m.sinr"
    make_bundle(path, n_species=30, width=16, depth=1, seed=2)
    out = paper_scale.issue12_figures(path, rounds=1, side=24, python=sys.executable)
    assert out["canvas"].startswith("24 x 24 EPSG:3857 over North America, ") and "30 species" in out["canvas"]
    land = int(out["canvas"].split(", ")[1].split()[0].replace(",", ""))
    assert 0 < land < 24 * 24  # the ocean mask leaves the sea out
    assert "(target < 25x): " in out["richness / encoder"]
    peak = out["richness peak memory (whole process)"]
    assert "(target < 2 GB): " in peak and 0 < float(peak.split()[0]) < 2
    assert "(target < 50 ms): " in out["what lives here at a click, top 10 of all species"]
