"""The trainer on small synthetic data: dropout, progress events, cancel, checkpoints and resume."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from sinr_qgis.core.errors import CancelledError
from tests.helpers.trainer_helpers import small_config, synthetic
from training.dropout import BitDropout, set_dropout_rows
from training.errors import TrainerError
from training.trainer import Trainer

torch.set_num_threads(2)


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_bit_dropout_matches_dropout_statistics(p):
    torch.manual_seed(0)
    d = BitDropout(p)
    x = torch.ones(400, 512)
    y = d(x)
    assert (y == 0).float().mean().item() == pytest.approx(p, abs=0.005)
    for lane in range(4):  # each 16-bit lane of the random words (element index mod 4) is unbiased
        assert (y[:, lane::4] == 0).float().mean().item() == pytest.approx(p, abs=0.01)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    # masks are not repeated between calls or correlated along rows
    assert not torch.equal(d(x), d(x))
    assert abs(np.corrcoef((y[:, :-1] == 0).flatten().numpy(), (y[:, 1:] == 0).flatten().numpy())[0, 1]) < 0.02
    d.eval()
    assert torch.equal(d(x), x)
    # gradient flows only through kept elements, scaled
    d.train()
    xg = torch.ones(10, 64, requires_grad=True)
    out = d(xg)
    out.sum().backward()
    assert torch.equal(xg.grad, out.detach())


def test_fit_lowers_loss_and_emits_the_documented_events():
    tr = Trainer(synthetic(), small_config(epochs=3, lr=1e-2))
    stream = io.StringIO()
    res = tr.fit(progress=False, jsonl=stream, jsonl_every=3)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert events[0]["event"] == "start" and events[0]["steps_total"] == 3 * tr.steps_per_epoch == 24
    steps = [e for e in events if e["event"] == "step"]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["step"] for e in steps] == list(range(3, 25, 3))
    assert set(steps[0]) >= {"epoch", "step", "steps_total", "loss", "progress", "samples_per_s"}
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and epochs[-1]["progress"] == 1.0
    assert epochs[1]["lr"] == pytest.approx(1e-2 * 0.98 ** 2)
    assert res.epoch_losses[-1] < res.epoch_losses[0]
    assert res.samples == 3 * 900 and res.steps == 24
    # the learnt model puts each species in its own box
    lonlat = torch.tensor([[-95.0, 35.0], [5.0, 45.0], [125.0, -25.0]])
    with torch.no_grad():
        logits = tr.model.head(tr.model.embed(lonlat))
    assert logits.argmax(1).tolist() == [0, 1, 2]
    probs = tr.own_species_probabilities()
    assert probs.shape == (900,) and probs.min() > 0 and probs.max() < 1


def test_shards_take_their_rows_of_the_whole_batchs_dropout_mask():
    # one process: the mask of the 6-row batch; two processes: rows 0-2 and 3-5 of the same mask
    # (the same seed in every process), so sharding does not change which units are dropped
    x = torch.ones(6, 40)
    d = BitDropout(0.5).train()
    torch.manual_seed(7)
    whole = d(x)
    shards = []
    for rows in (torch.arange(0, 3), torch.arange(3, 6)):
        torch.manual_seed(7)
        set_dropout_rows(d, rows, 6)
        shards.append(d(x[rows]))
    set_dropout_rows(d, None)
    assert torch.equal(torch.cat(shards), whole)
    assert 0.3 < (whole == 0).float().mean() < 0.7 and set(whole.unique().tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("loss", ["an_ssdl", "an_slds", "me_full", "me_ssdl", "gp"])
def test_every_loss_trains(loss):
    res = Trainer(synthetic(100), small_config(loss=loss, epochs=1)).fit(progress=False)
    assert np.isfinite(res.final_loss)


def test_cancel_between_steps_keeps_last_epoch_checkpoint(tmp_path):
    tr = Trainer(synthetic(), small_config(epochs=3))
    calls = {"n": 0}

    def cancel_after_ten() -> bool:
        calls["n"] += 1
        return calls["n"] > 10

    ck = tmp_path / "m.sinr.ckpt.pt"
    with pytest.raises(CancelledError):
        tr.fit(checkpoint=ck, progress=False, should_cancel=cancel_after_ten)
    assert tr.epoch == 1 and ck.is_file()  # 8 steps per epoch: epoch 1 done, stopped in epoch 2
    saved = torch.load(ck, weights_only=True)
    assert saved["epoch"] == 1


def test_resume_continues_from_the_saved_epoch_exactly(tmp_path):
    data = synthetic()
    straight = Trainer(data, small_config(epochs=2)).fit(progress=False)
    ck = tmp_path / "ck.pt"
    Trainer(data, small_config(epochs=1)).fit(checkpoint=ck, progress=False)
    tr = Trainer(data, small_config(epochs=2))
    tr.load_checkpoint(ck)
    assert tr.epoch == 1
    stream = io.StringIO()
    resumed = tr.fit(checkpoint=ck, progress=False, jsonl=stream)
    assert json.loads(stream.getvalue().splitlines()[0])["start_epoch"] == 2
    assert resumed.steps == tr.steps_per_epoch  # only the second epoch ran
    assert resumed.epoch_losses == pytest.approx(straight.epoch_losses)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k


def test_resume_refuses_other_settings_or_data(tmp_path):
    data = synthetic()
    ck = tmp_path / "ck.pt"
    Trainer(data, small_config(epochs=1)).fit(checkpoint=ck, progress=False)
    with pytest.raises(TrainerError, match="lr"):
        Trainer(data, small_config(lr=1e-3)).load_checkpoint(ck)
    with pytest.raises(TrainerError, match="different data"):
        Trainer(synthetic(seed=9), small_config()).load_checkpoint(ck)
    with pytest.raises(TrainerError, match="No checkpoint"):
        Trainer(data, small_config()).load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(TrainerError, match="cannot be read"):
        Trainer(data, small_config()).load_checkpoint(tmp_path / "junk.pt")


def test_env_training_uses_covariates_and_a_random_pool(shared_data):
    from sinr_qgis.core.covariates import CovariateStack

    stack = CovariateStack.open([shared_data / "covariates" / "sa_bioclim_0p5deg.tif"])
    data = synthetic(60)
    data.lonlat[:, 0] = np.clip(data.lonlat[:, 0], -120, -40)  # inside the raster's longitudes
    data.lonlat[:, 1] = np.clip(data.lonlat[:, 1], -50, 35)
    data.env = stack.sample(data.lonlat.astype(np.float64)).astype(np.float32)
    mean, std = stack.stats()
    tr = Trainer(data, small_config(encoding="sin_cos_env", epochs=1, env_pool=5000),
                 env_mean=mean, env_std=std, rand_env=stack.sample)
    assert tr.features.shape == (180, 4 + 9) and tr.rand_pool.shape == (5000, 13)
    assert torch.isfinite(tr.features).all() and torch.isfinite(tr.rand_pool).all()
    assert np.allclose(tr.model.env_mean.numpy(), mean)
    res = tr.fit(progress=False)
    assert np.isfinite(res.final_loss)
    with pytest.raises(TrainerError, match="covariates"):
        Trainer(data, small_config(encoding="env"))


def test_bf16_precision_trains_and_unknown_precision_is_refused():
    res = Trainer(synthetic(100), small_config(precision="bf16", epochs=2, lr=1e-2)).fit(progress=False)
    assert np.isfinite(res.final_loss) and res.epoch_losses[-1] < res.epoch_losses[0]
    assert next(res.model.parameters()).dtype == torch.float32  # master weights stay fp32
    with pytest.raises(TrainerError, match="precision"):
        Trainer(synthetic(10), small_config(precision="fp8"))


def test_the_trainers_events_carry_the_fields_core_defines():
    """``start``, ``step`` and ``epoch`` lines hold exactly the fields of ``core.training.events``'
    StartEvent, StepEvent and EpochEvent, the one definition the supervisor reads."""
    from sinr_qgis.core.training.events import EpochEvent, StartEvent, StepEvent, read_event

    stream = io.StringIO()
    trainer = Trainer(synthetic(50), small_config(epochs=1))
    trainer.fit(progress=False, jsonl=stream, jsonl_every=1)
    events = [read_event(line) for line in stream.getvalue().splitlines()]
    schema = {"start": StartEvent, "step": StepEvent, "epoch": EpochEvent}
    assert [e["event"] for e in events] == ["start"] + ["step"] * trainer.steps_per_epoch + ["epoch"]
    assert trainer.steps_per_epoch == 2  # 150 records in batches of 128
    for event in events:
        assert set(event) == set(schema[event["event"]].__annotations__), event["event"]
