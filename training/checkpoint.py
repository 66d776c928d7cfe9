"""The trainer's checkpoint file: its format stamp, atomic writing and checked reading.

What a checkpoint holds is ``Trainer.state``; whether one fits the trainer that resumes it (the
same settings and data) is ``Trainer.load_checkpoint``'s check.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sinr_qgis.core.atomic import atomic_path

from .errors import TrainerError

CHECKPOINT_FORMAT = "sinr-qgis-training-checkpoint"
# 2: random streams seeded per epoch (no generator states: they differ between CPU and GPU)
CHECKPOINT_VERSION = 2


def write_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` (tensors on any device) to ``path``, stamped with the format and version;
    atomically, so that a crash or a cancel leaves the previous epoch's checkpoint whole."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION} | state, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state saved at ``path``, its tensors on the CPU. Raises ``TrainerError`` when there is
    no file, it cannot be read or it is not a checkpoint of this trainer."""
    p = Path(path)
    if not p.is_file():
        raise TrainerError(f"No checkpoint to resume at {p}. Run without --resume first.")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file in any way torch can report it
        raise TrainerError(f"Checkpoint {p.name} cannot be read ({type(exc).__name__}); "
                            "delete it and train without --resume.") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise TrainerError(f"{p.name} is not a training checkpoint of this trainer.")
    return ck
