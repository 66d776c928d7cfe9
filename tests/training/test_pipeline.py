"""``training.pipeline``: the ``train`` command's options are one request, trainable without the CLI."""
from __future__ import annotations

import dataclasses
import io
import json

from sinr_qgis.core.bundle import ModelBundle
from tests.helpers.cli_helpers import write_csv
from training.cli import build_parser
from training.pipeline import TrainRequest, train_bundle


def _train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def test_the_request_holds_every_train_option_with_the_parsers_default():
    # the CLI builds the request field by field from argparse's names: none may be missing or extra
    options = {a.dest: a.default for a in _train_parser()._actions if a.dest not in ("help", "jsonl")}
    fields = {f.name: f for f in dataclasses.fields(TrainRequest)}
    assert sorted(options) == sorted(fields)
    request = TrainRequest(data="obs.csv", out="m.sinr")
    for name, default in options.items():
        if name not in ("data", "out"):
            assert getattr(request, name) == default, name


def test_train_bundle_trains_in_process_and_reports_the_cli_summary(tmp_path):
    data = write_csv(tmp_path / "obs.csv")
    out = tmp_path / "m.sinr"
    stream = io.StringIO()
    summary = train_bundle(TrainRequest(data=str(data), out=str(out), epochs=1, batch_size=256, width=16, depth=1,
                                        cap=100, pos_weight=3.0, threads=2, no_progress=True), stream)
    assert summary["out"] == str(out) and summary["n_species"] == 3 and summary["n_records"] == 300
    assert summary["epochs"] == 1 and summary["sha256"] == ModelBundle.load(out).sha256
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events[0] == "note" and events[1] == "start" and events[-1] == "epoch"
    assert [s.n_train for s in ModelBundle.load(out).species] == [100, 100, 100]
