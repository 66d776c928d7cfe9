"""Devices and the pieces of distributed training that run in one process: choosing the device
and precision, torchrun's environment, batch shards, the shared memory-mapped records, and
checkpoints that move between devices."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.trainer_helpers import small_config, synthetic
from training.distributed import DistEnv, DistributedError, backend_for, open_records, write_records
from training.errors import TrainerError
from training.trainer import Trainer, resolve_device, resolve_precision, shard_bounds

torch.set_num_threads(2)


def test_torchrun_environment_is_read_and_checked():
    assert DistEnv.from_environ({}) == DistEnv(0, 0, 1)
    assert not DistEnv.from_environ({}).is_distributed
    env = DistEnv.from_environ({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (env.rank, env.local_rank, env.world_size, env.is_distributed, env.is_leader) == (3, 1, 4, True, False)
    with pytest.raises(DistributedError, match="RANK 4 does not fit WORLD_SIZE 4; start several"):
        DistEnv.from_environ({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(DistributedError, match="must be whole numbers"):
        DistEnv.from_environ({"RANK": "one", "WORLD_SIZE": "2"})


@pytest.mark.parametrize("n", [0, 1, 5, 200, 2047])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_disjoint_and_cover_the_batch(n, world):
    bounds = [shard_bounds(n, world, r) for r in range(world)]
    covered = [i for lo, hi in bounds for i in range(lo, hi)]
    assert covered == list(range(n))  # in order, each record once
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(TrainerError, match=r"--device cuda: PyTorch sees no CUDA GPU .*use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(TrainerError, match="--device mps: PyTorch sees no Apple GPU"):
        resolve_device("mps")
    with pytest.raises(TrainerError, match="device must be one of auto, cpu, cuda, mps"):
        resolve_device("tpu")
    # MPS next when there is no CUDA, in one process only (it has no process-group backend)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    two = DistEnv(1, 1, 2)
    assert resolve_device("auto", two) == torch.device("cpu")
    with pytest.raises(TrainerError, match="--device mps trains in one process"):
        resolve_device("mps", two)
    # CUDA first; under torchrun each process of a machine takes the GPU of its LOCAL_RANK
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto", two) == torch.device("cuda", 1)
    with pytest.raises(TrainerError, match=r"process 2 of this machine has no GPU of its own \(2 visible\)"):
        resolve_device("cuda", DistEnv(2, 2, 3))
    assert backend_for(torch.device("cuda", 1)) == "nccl" and backend_for(torch.device("cpu")) == "gloo"


def test_precision_follows_the_device(monkeypatch):
    with pytest.raises(TrainerError, match="--precision fp16 needs a GPU"):
        resolve_precision("fp16", "cpu")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "mps") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "cuda") == "fp16"  # older GPUs: float16 with loss scaling
    with pytest.raises(TrainerError, match="no bfloat16 arithmetic"):
        resolve_precision("bf16", "cuda")


def test_shared_records_are_memory_mapped_and_the_same_data(tmp_path):
    data = synthetic(n_per=20)
    data.source = np.array(["s"] * data.n_records, dtype=object)
    names, fields = write_records(data, tmp_path)
    assert sorted(names) == ["lonlat", "species"]  # the object column stays with rank 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lonlat.npy", "species.npy"]
    shared = open_records(tmp_path, names, fields)
    assert isinstance(shared.lonlat, np.memmap) and isinstance(shared.species, np.memmap)
    np.testing.assert_array_equal(shared.lonlat, data.lonlat)
    np.testing.assert_array_equal(shared.species, data.species)
    assert shared.codes == data.codes and shared.source is None
    assert shared.fingerprint() == data.fingerprint()  # a checkpoint resumes on either copy
    # the trainer uses the mapped pages without a copy
    assert torch.as_tensor(shared.lonlat).data_ptr() == shared.lonlat.ctypes.data


def _relocate(checkpoint: Path, location: str) -> None:
    """Rewrite ``checkpoint`` as if its tensors had been saved on ``location`` (e.g. a GPU): the
    storage location each tensor is restored to is a string in the pickle of torch's zip file."""
    with zipfile.ZipFile(checkpoint) as z:
        entries = [(i, z.read(i)) for i in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info, raw in entries:
            if info.filename.endswith("data.pkl"):
                # torch.save's pickle protocol 2: "X", the length (4 bytes), the UTF-8 text
                old = b"X" + (3).to_bytes(4, "little") + b"cpu"
                new = b"X" + len(location).to_bytes(4, "little") + location.encode()
                assert old in raw
                raw = raw.replace(old, new)
            z.writestr(info, raw)
    checkpoint.write_bytes(out.getvalue())


def test_a_checkpoint_saved_on_a_gpu_resumes_on_the_cpu(tmp_path):
    data, ck = synthetic(), tmp_path / "gpu.ckpt.pt"
    first = Trainer(data, small_config(epochs=1), device="cpu")
    first.fit(progress=False, checkpoint=ck)
    _relocate(ck, "cuda:0")
    if not torch.cuda.is_available():  # the relocation is real: without a GPU torch's plain load refuses it
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(ck, weights_only=True)
    resumed = Trainer(data, small_config(epochs=2), device=torch.device("cpu"))
    resumed.load_checkpoint(ck)
    assert resumed.epoch == 1
    for name, value in first.model.state_dict().items():
        assert value.device.type == "cpu"
        assert torch.equal(resumed.model.state_dict()[name], value), name
    step = next(iter(resumed.optimizer.state.values()))["exp_avg"]
    assert step.device.type == "cpu"
    result = resumed.fit(progress=False)
    assert len(result.epoch_losses) == 2 and result.epoch_losses[0] == first.history[0]
    assert np.isfinite(result.epoch_losses).all()


def test_the_cli_refuses_a_broken_torchrun_environment_in_one_line(tmp_path, capsys, monkeypatch):
    from tests.helpers.cli_helpers import write_csv
    from training.cli import main

    monkeypatch.setenv("RANK", "x")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "m.sinr"
    assert main(["train", "--data", str(write_csv(tmp_path / "obs.csv")), "--out", str(out), "--jsonl"]) == 2
    stdout, err = capsys.readouterr()
    assert err.strip() == ("error: RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers; start several training "
                           "processes with torchrun.")
    assert [json.loads(line)["event"] for line in stdout.splitlines()] == ["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.csv"]
