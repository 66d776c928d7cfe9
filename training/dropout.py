"""Dropout for the trainer's CPU speed: ``BitDropout``, the same distribution as ``nn.Dropout`` with
the keep mask built from random bits (several times faster than torch's Bernoulli sampler on the
CPU), and the batch-wide masks that keep several processes' shards in step with one process."""
from __future__ import annotations

import math

import torch
from torch import nn


class BitDropout(nn.Module):
    """``nn.Dropout`` with the keep mask built from the four 16-bit lanes of random 64-bit words.

    Each element is zeroed with probability round(p * 65536) / 65536 and the kept ones are
    scaled by 1 / (1 - p), like ``nn.Dropout``; identity in eval mode. Has no parameters, so a
    model's state dict is unchanged when it replaces ``nn.Dropout``.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        # int16 lane value v is uniform on [-32768, 32767]; keep when v >= threshold
        self._threshold = round(self.p * 65536) - 32768
        # under several processes (set_dropout_rows): the rows [b] of x within the whole batch of
        # batch_rows rows, whose mask every process draws alike and takes its rows of
        self.rows: torch.Tensor | None = None
        self.batch_rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Activations [N, width] -> the same with dropped units zeroed (identity in eval mode)."""
        if not self.training or self.p <= 0.0:
            return x
        if self.p >= 1.0:
            return torch.zeros_like(x)
        shape = (self.batch_rows, *x.shape[1:]) if self.rows is not None else x.shape
        if x.is_cpu:
            n = math.prod(shape)
            # full-range int64 words: all 64 bits uniform, so every 16-bit lane is (no copy needed)
            words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
            keep = words.view(torch.int16)[:n].view(shape) >= self._threshold
        else:  # the bit trick is a CPU speed-up; on a GPU uniform draws cost little
            keep = torch.rand(shape, device=x.device) >= self.p
        if self.rows is not None:
            keep = keep[self.rows]
        # one float mask with the scale folded in: a single multiply forward and backward
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


def set_dropout_rows(model: nn.Module, rows: torch.Tensor | None, batch_rows: int = 0) -> None:
    """Make every ``BitDropout`` of ``model`` draw the mask of a whole batch of ``batch_rows`` rows
    and apply its ``rows`` [b] (int64, on the device) to the input: one process's shard then meets
    the dropout it meets when one process trains the whole batch. ``rows`` None: the input is the batch."""
    for module in model.modules():
        if isinstance(module, BitDropout):
            module.rows, module.batch_rows = rows, batch_rows


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` of ``model`` by ``BitDropout`` (same p), in place."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Dropout):
            setattr(model, name, BitDropout(child.p))
        else:
            use_fast_dropout(child)
    return model
