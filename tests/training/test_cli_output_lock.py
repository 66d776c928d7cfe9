"""The CLI takes the plugin's output lock (issue 16, kind 7): two trainings to one output never both
report success with the later silently replacing the other."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sinr_qgis.core.training.lock import LOCK_TOKENS_ENV, lock_path, output_busy_message, output_lock
from sinr_qgis.core.training.process import child_environment

REPO = Path(__file__).resolve().parents[2]


def _data(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["species,longitude,latitude"] + [f"{s},{x:.4f},{y:.4f}" for s, x, y in
                                             zip(["a", "b"] * 15, rng.uniform(-10, 10, 30), rng.uniform(40, 50, 30))]
    path = tmp_path / "obs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _train(data: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", "train", "--data", str(data), "--out", str(out),
                           "--epochs", "1", "--width", "8", "--depth", "1", "--threads", "1", "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_second_training_to_the_same_output_refuses(tmp_path):
    data, out = _data(tmp_path), tmp_path / "model.sinr"
    env = child_environment(REPO)
    env.pop(LOCK_TOKENS_ENV)  # a training started by hand, not the plugin's child
    with output_lock(out) as lp:  # the first training (this process) is writing model.sinr
        second = _train(data, out, env)
        assert second.returncode == 2
        last = second.stderr.strip().splitlines()[-1]
        assert last.startswith("error: A training is already writing model.sinr (process ")
        assert last.endswith(f"Wait for it to finish or cancel it, or choose another output file. If no training "
                             f"is running, delete {lp}.")
        assert "Traceback" not in second.stderr
        assert not out.exists()
    # once the first is done the output is free again; the CLI's own lock goes with it
    assert _train(data, out, env).returncode == 0
    assert out.is_file() and not lock_path(out).exists()


def test_the_cli_holds_the_lock_file_while_it_trains(tmp_path, monkeypatch):
    import json
    import os

    from training import cli

    out = tmp_path / "model.sinr"
    seen = {}

    def fake_train(args, jsonl):  # what another process finds while this CLI trains
        seen["owner"] = json.loads(lock_path(out).read_text())
        seen["busy"] = output_busy_message(out)
        return {}

    monkeypatch.setattr(cli, "run_train", fake_train)
    monkeypatch.delenv(LOCK_TOKENS_ENV, raising=False)
    assert cli.main(["train", "--data", str(_data(tmp_path)), "--out", str(out)]) == 0
    assert seen["owner"]["pid"] == os.getpid() and len(seen["owner"]["token"]) == 32
    assert seen["busy"] == ("A training is already writing model.sinr. Wait for it to finish or cancel it, or "
                            "choose another output file.")
    assert not lock_path(out).exists()  # released when the command ends
