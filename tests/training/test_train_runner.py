"""The plugin's training runner (sinr_qgis/core/training) against the real training package and torch:
the CLI understands every default and loss core offers, the interpreter probe reads the real torch,
and the command core builds starts the CLI. (The runner against a fake CLI: tests/core, without torch.)"""
from __future__ import annotations

import subprocess
import sys

import torch

from sinr_qgis.core.training.defaults import DEFAULTS, LOSS_HELP, LOSSES
from sinr_qgis.core.training.interpreter import check_python
from sinr_qgis.core.training.options import TrainOptions
from sinr_qgis.core.training.process import cli_arguments, training_cli
from training import cli, losses


def test_the_cli_understands_every_default_and_loss():
    assert sorted(LOSSES) == sorted(losses.LOSSES) == sorted(LOSS_HELP)
    # every default is an option the CLI understands
    args = cli.build_parser().parse_args(cli_arguments(TrainOptions(
        data="d", out="o", **{k: v for k, v in DEFAULTS.items()}, source_column="source")))
    assert (args.pos_weight, args.cap, args.pseudo_negatives, args.negatives) == ("species", 0, "land", "source_site")
    assert (args.encoding, args.sh_degree, args.local_evidence) == ("spherical_harmonics", None, True)
    # categorical band names after the rasters: each list to its own option
    args = cli.build_parser().parse_args(cli_arguments(TrainOptions(
        data="d", out="o", covariates=["a.tif", "b.tif"], categorical=["biome"])))
    assert (args.covariates, args.categorical) == (["a.tif", "b.tif"], ["biome"])


def test_the_probe_reports_versions_and_gpus_of_a_real_python():
    info = check_python(sys.executable)
    assert info["torch"] == torch.__version__ and info["missing"] == []
    assert info["cuda"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
    assert info["mps"] is False  # not a Mac


def test_the_located_training_cli_starts(tmp_path, monkeypatch):
    """From another working folder, under QGIS's PYTHONPATH/PYTHONHOME (which the child does not
    get: tests/core/test_train_setup.py checks its argv, folder and environment)."""
    monkeypatch.setenv("PYTHONPATH", "/qgis/python")
    monkeypatch.setenv("PYTHONHOME", "/qgis/apps/Python39")
    monkeypatch.chdir(tmp_path)
    argv, cwd, env = training_cli(sys.executable, ["--help"])
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "import-official" in proc.stdout, proc.stderr
