"""The bundled NA-Trees model on the real shared data (slow): it beats the best discretized grid
on both benchmark tasks, and its committed evaluation report is what the harness measures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sinr_qgis.core.bundle import ModelBundle
from tests.tolerances import ap_atol
from training.benchmarks import baselines as bl
from training.benchmarks import na_trees as nt

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
MODEL = MODELS / "na_trees_coords_v1.sinr"
EVAL = MODELS / "na_trees_coords_v1.eval.json"


def map_atol(bundle: ModelBundle, task: nt.Task) -> float:
    """Largest change of the task's MAP (percent) that float32 rounding of the bundle's logits allows."""
    matched, _ = nt.match_species(task.codes, [s.code for s in bundle.species])
    used = [(j, code) for j, code in matched if task.labels[:, j].any() and not task.labels[:, j].all()]
    scores = nt.bundle_scorer(bundle)(task.lonlat, [code for _, code in used])
    return 100 * sum(ap_atol(task.labels[:, j], scores[:, k]) for k, (j, _) in enumerate(used)) / len(used)


@pytest.mark.slow
def test_bundled_model_beats_the_best_grid_on_both_tasks(shared_data):
    # the harness caches the range labels; a cold cache is rebuilt here (about 10-30 s)
    tasks = nt.load_tasks(shared_data / "ranges" / "little_ranges.gpkg",
                          shared_data / "presence_absence" / "se_fia_eval_plots.csv.gz")
    bundle = ModelBundle.load(MODEL)
    model = nt.evaluate(nt.bundle_scorer(bundle), [s.code for s in bundle.species], tasks)
    records = bl.read_training_records(shared_data / "occurrences" / "na_trees.csv.gz")
    grids = [nt.evaluate(bl.grid_scorer(records, size), records.codes, tasks) for size in bl.GRID_SIZES]
    committed = json.loads(EVAL.read_text(encoding="utf-8"))
    for task, name in zip(tasks, ("ranges", "plots")):
        best_grid = max(g[name]["map"] for g in grids)
        assert model[name]["map"] > best_grid + 1.0, (name, model[name]["map"], best_grid)
        assert model[name]["n_species"] == committed[name]["n_species"]
        # the committed report was measured on another CPU (other BLAS kernels): MAP moves only where
        # near-tied scores swap order, as far as float32 rounding allows; it is rounded to 6 decimals
        assert model[name]["map"] == pytest.approx(committed[name]["map"], abs=map_atol(bundle, task) + 1e-6)
    assert committed["model"]["sha256"] == bundle.sha256


def test_bundled_model_carries_member_checksums_and_its_records_name_the_file():
    from sinr_qgis.core.bundle import SUMS_KEY, file_sha256

    bundle = ModelBundle.load(MODEL)
    assert bundle.warnings == [] and sorted(bundle.meta[SUMS_KEY]) == ["encoder.onnx", "species.csv", "weights.npz"]
    sha = file_sha256(MODEL)
    assert json.loads(EVAL.read_text(encoding="utf-8"))["model"]["sha256"] == sha
    card = (MODELS / "na_trees_coords_v1.md").read_text(encoding="utf-8")
    assert f"| SHA-256 | `{sha}` |" in card and f"({MODEL.stat().st_size:,} bytes)" in card
