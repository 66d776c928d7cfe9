"""describe_event: the training CLI's JSON events in the words both the Train task and sinr:train_model log."""
from __future__ import annotations

import pytest

from sinr_qgis.core.training.events import describe_event


def test_start_names_records_species_and_epochs():
    event = {"event": "start", "n_records": 12345, "n_species": 3, "epochs": 20, "start_epoch": 1,
             "steps_per_epoch": 7, "steps_total": 140, "config": {}}
    assert describe_event(event) == "Training 12,345 records of 3 species for 20 epochs"
    assert describe_event(event | {"start_epoch": 4}) == (
        "Training 12,345 records of 3 species for 20 epochs, resuming at epoch 4")


def test_epoch_gives_the_mean_loss_to_four_decimals():
    assert describe_event({"event": "epoch", "epoch": 3, "epochs": 20, "loss": 0.123456, "lr": 5e-4}) == (
        "Epoch 3/20: loss 0.1235")


@pytest.mark.parametrize("event, text", [
    ({"event": "start"}, "Training ? records of ? species for ? epochs"),
    ({"event": "epoch", "epoch": 2, "epochs": 5, "loss": float("nan")}, "Epoch 2/5: loss ?"),
    ({"event": "epoch", "epoch": 2, "epochs": 5, "loss": "high"}, "Epoch 2/5: loss ?"),
    ({"event": "start", "n_records": True, "n_species": 2.0, "epochs": 2.5}, "Training ? records of 2 species "
                                                                             "for ? epochs"),
])
def test_fields_the_cli_left_out_or_garbled_read_as_a_question_mark(event, text):
    assert describe_event(event) == text


@pytest.mark.parametrize("kind", ["step", "done", "error", "cancelled", "something_new", None])
def test_events_without_a_line_of_their_own(kind):
    # steps only move the progress bar; done / error / cancelled are reported by the supervisor
    assert describe_event({"event": kind, "step": 3, "loss": 0.5, "message": "x"}) is None


def test_a_note_is_logged_as_its_message():
    # what the CLI says about its inputs (e.g. how a categorical covariate is read) reaches both logs
    text = "Covariate 'biome' is categorical (category names): read at the nearest cell"
    assert describe_event({"event": "note", "message": text}) == text
    assert describe_event({"event": "note"}) is None and describe_event({"event": "note", "message": ""}) is None


def test_an_event_is_one_flushed_json_line_and_other_lines_are_not_events():
    import io

    from sinr_qgis.core.training.events import read_event, write_event

    stream = io.StringIO()
    write_event(stream, {"event": "note", "message": "3 bands"})
    write_event(None, {"event": "note", "message": "nowhere"})  # no stream (--jsonl not given): nothing
    assert stream.getvalue() == '{"event": "note", "message": "3 bands"}\n'
    assert read_event(stream.getvalue()) == {"event": "note", "message": "3 bands"}
    assert [read_event(line) for line in ("Epoch 1", "[1, 2]", "", "{\"event\": \"done\"")] == [None] * 4
