"""Training in several processes: ``torchrun`` and PyTorch's ``DistributedDataParallel``.

``python -m training train ...`` started by ``torchrun --nproc_per_node N [--nnodes M ...]`` finds
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in its environment and joins one process group
(``nccl`` on CUDA, ``gloo`` on the CPU). Rank 0, the leader, alone reads the occurrence file,
checks the options, logs and writes results. It writes the selected records once, as ``.npy``
files in a private folder beside the output, and sends the other ranks (followers) that folder
with the training settings; every rank memory-maps the files, so the records are held once in
the page cache, not once per process. The folder goes when the leader finishes.

Failures: a user error on the leader before the records are shared is sent to the followers,
which exit with code 2 without repeating it (``LeaderFailed``); torchrun ends the others when one
process fails, with SIGTERM, which raises ``RunStopped`` so that atomic writes remove their
temporary files; a collective that loses its peer is reported by the trainer as
``DistributedError``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as tdist

from sinr_qgis.core.errors import SinrError

from .data import TrainingData

# the followers wait while rank 0 reads and selects the records (minutes for tens of millions)
PROCESS_GROUP_TIMEOUT = timedelta(minutes=60)
NEG_MASK_FILE = "neg_mask.pt"
T = TypeVar("T")


class DistributedError(SinrError):
    """The processes of a distributed training cannot start, or one of them was lost."""


class LeaderFailed(DistributedError):
    """Rank 0 stopped on an error, which it reports; the other ranks stop with it silently."""


class RunStopped(KeyboardInterrupt):
    """SIGTERM: torchrun ends the remaining processes when one fails (or on Ctrl-C)."""


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0  # index among the processes of this machine (its GPU under CUDA)
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_leader(self) -> bool:
        """True for rank 0, the process that reports and writes files."""
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> DistEnv:
        """torchrun's ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; absent: one process.

        Raises ``DistributedError`` for values torchrun would not set.
        """
        try:
            world = int(environ.get("WORLD_SIZE") or 1)
            rank = int(environ.get("RANK") or 0)
            local = int(environ.get("LOCAL_RANK") or rank)
        except ValueError:
            raise DistributedError("RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers; start several "
                                   "training processes with torchrun.") from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise DistributedError(f"RANK {rank} does not fit WORLD_SIZE {world}; start several training "
                                   "processes with torchrun.")
        return cls(rank, local, world)


SINGLE = DistEnv()


def backend_for(device: torch.device) -> str:
    """The process-group backend for ``device``: ``nccl`` between GPUs, ``gloo`` on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise RunStopped


def leader_made(dist: DistEnv, make: Callable[[], T]) -> T:
    """``make()`` in one process; among several, rank 0's ``make()`` sent to every rank (what
    only the leader can make, such as the pseudo-negative pool sampled from the covariate
    rasters; every rank must call this at the same point)."""
    if not dist.is_distributed:
        return make()
    box = [make() if dist.is_leader else None]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def write_records(data: TrainingData, folder: Path) -> tuple[list[str], dict[str, Any]]:
    """Write ``data``'s numeric arrays as ``folder/NAME.npy``.

    Returns (the array names written, the other fields). Object arrays (record sources, only used
    to build the negative masks before training) are left out and come back as ``None``.
    """
    names: list[str] = []
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray) and value.dtype != object:
            np.save(folder / f"{f.name}.npy", np.ascontiguousarray(value))
            names.append(f.name)
        else:
            fields[f.name] = None if isinstance(value, np.ndarray) else value
    return names, fields


def open_records(folder: Path, names: list[str], fields: dict[str, Any]) -> TrainingData:
    """The ``TrainingData`` written by :func:`write_records`, its arrays memory-mapped.

    Copy-on-write maps: the pages are the file's, shared by every process that maps it, and
    ``torch.as_tensor`` can use them without a copy (a read-only map would need one).
    """
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="c") for name in names}
    return TrainingData(**fields, **arrays)


class TrainingSession:
    """This process's part in a training run, one process or several; a context manager.

    ``start`` resolves the device and, under torchrun, joins the process group; leaving the
    ``with`` block tells waiting followers of the leader's error, removes the shared records and
    leaves the group.
    """

    def __init__(self, env: DistEnv, device: torch.device) -> None:
        self.env = env
        self.device = device
        self.folder: Path | None = None  # the leader's shared records
        self._followers_wait = env.is_distributed and env.is_leader
        self._sigterm: Any = None  # the SIGTERM handler to restore

    @classmethod
    def start(cls, device: str, env: DistEnv | None = None) -> TrainingSession:
        """The session for ``--device`` ``device`` (``auto``/``cpu``/``cuda``/``mps``).

        Raises ``TrainerError`` for a device that is not there, ``DistributedError`` for a bad
        torchrun environment.
        """
        from .trainer import resolve_device

        env = env if env is not None else DistEnv.from_environ()
        dev = resolve_device(device, env)
        if env.is_distributed:
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            tdist.init_process_group(backend_for(dev), timeout=PROCESS_GROUP_TIMEOUT)
        session = cls(env, dev)
        if env.is_distributed:
            session._sigterm = signal.signal(signal.SIGTERM, _stop)
        return session

    def __enter__(self) -> TrainingSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._followers_wait and isinstance(exc, Exception):
                # best effort: a follower that is already gone is torchrun's to report
                with contextlib.suppress(RuntimeError):
                    self._send({"error": str(exc)})
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
            if self.env.is_distributed and tdist.is_initialized():
                tdist.destroy_process_group()
            if self._sigterm is not None:  # past this point there is nothing to unwind
                signal.signal(signal.SIGTERM, self._sigterm)

    def share(self, data: TrainingData, near: str | Path, neg_mask: Any = None,
              settings: dict[str, Any] | None = None) -> TrainingData:
        """Leader: the records every rank trains on. One process: ``data`` itself. Several:
        ``data``'s arrays written into a private folder beside ``near`` (the output), sent with
        ``neg_mask`` (the negative-mask builder or ``None``) and ``settings`` (picklable) to the
        followers, and returned memory-mapped from there."""
        if not self.env.is_distributed:
            return data
        near = Path(near)
        self.folder = Path(tempfile.mkdtemp(prefix=f".{near.name}.records-", dir=near.parent))
        names, fields = write_records(data, self.folder)
        if neg_mask is not None:
            torch.save(neg_mask, self.folder / NEG_MASK_FILE)
        self._send({"folder": str(self.folder), "arrays": names, "fields": fields,
                    "neg_mask": neg_mask is not None, "settings": settings or {}})
        shared = open_records(self.folder, names, fields)
        return dataclasses.replace(shared, source=data.source)

    def receive(self) -> tuple[TrainingData, Any, dict[str, Any]]:
        """Follower: (the shared records, the negative-mask builder or ``None``, the settings).

        Raises ``LeaderFailed`` when the leader stopped on an error, ``DistributedError`` when
        its folder is not visible from this process.
        """
        msg = self._receive()
        if "error" in msg:
            raise LeaderFailed(msg["error"])
        folder = Path(msg["folder"])
        if not folder.is_dir():
            raise DistributedError(f"process {self.env.rank}: the records rank 0 wrote to {folder} are not "
                                   "visible here; on several machines write --out to a file system they all "
                                   "share.")
        neg_mask = None
        if msg["neg_mask"]:
            # written by this run's rank 0 a moment ago into its private folder
            neg_mask = torch.load(folder / NEG_MASK_FILE, weights_only=False, mmap=True)
        return open_records(folder, msg["arrays"], msg["fields"]), neg_mask, msg["settings"]

    def _send(self, msg: dict[str, Any]) -> None:
        self._followers_wait = False
        tdist.broadcast_object_list([msg], src=0)

    def _receive(self) -> dict[str, Any]:
        box: list[Any] = [None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]
