"""SINR's residual fully connected location encoder and bias-free species head (PyTorch)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sinr_qgis.core import encoding as enc
from sinr_qgis.core import network


class ResidualBlock(nn.Module):
    """h <- h + ReLU(W2 Dropout(ReLU(W1 h + b1)) + b2): ReLU before the add, as the reference."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.w1 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        self.w2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Embedding [N, width] -> the same plus the block's residual, [N, width]."""
        return h + torch.relu(self.w2(self.drop(torch.relu(self.w1(h)))))


class LocationEncoder(nn.Module):
    """Input features [N, d_in] -> embedding [N, width]: Linear+ReLU then ``depth`` blocks."""

    def __init__(self, d_in: int, width: int = 256, depth: int = 4, dropout: float = 0.5) -> None:
        super().__init__()
        self.input = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, dropout) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded features [N, d_in] -> embedding [N, width]."""
        h = torch.relu(self.input(x))
        for block in self.blocks:
            h = block(h)
        return h


class SinrModel(nn.Module):
    """Encoder + bias-free linear head; ``forward`` returns logits [N, n_species]."""

    def __init__(self, n_species: int, encoding: str = "sin_cos", n_covariates: int = 0,
                 width: int = 256, depth: int = 4, dropout: float = 0.5,
                 frequencies: Sequence[int] | None = None,
                 classes: Sequence[Sequence[float] | None] | None = None,
                 sh_degree: int | None = None) -> None:
        """``classes``: per covariate, the class codes of a categorical one (one-hot encoded, see
        :func:`sinr_qgis.core.encoding.encode_covariates`) or None; None: all continuous.
        ``sh_degree``: ``spherical_harmonics`` only, L (None: ``DEFAULT_SH_DEGREE``); ValueError
        when out of range."""
        super().__init__()
        if encoding not in enc.ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}")
        self.encoding = encoding
        self.n_covariates = n_covariates
        # sin_cos_multi only: plain ints, traced into encoder.onnx as constants
        self.frequencies = (enc.check_frequencies(frequencies or enc.DEFAULT_FREQUENCIES)
                            if encoding == "sin_cos_multi" else None)
        self.sh_degree = (enc.check_sh_degree(enc.DEFAULT_SH_DEGREE if sh_degree is None else sh_degree)
                          if encoding == "spherical_harmonics" else None)
        self.classes = (None if classes is None or all(c is None for c in classes)
                        else [None if c is None else tuple(float(x) for x in c) for c in classes])
        self.config = {"width": width, "depth": depth, "dropout": dropout}
        self.encoder = LocationEncoder(
            enc.input_dim(encoding, enc.covariate_features(n_covariates, self.classes), self.frequencies,
                          self.sh_degree),
            width, depth, dropout)
        self.head = nn.Linear(width, n_species, bias=False)
        # covariate standardisation, stored with the model (identity for coords-only)
        self.register_buffer("env_mean", torch.zeros(n_covariates))
        self.register_buffer("env_std", torch.ones(n_covariates))
        # class codes as buffers: they follow the model to its device and trace into encoder.onnx
        for j, cls in enumerate(self.classes or []):
            if cls is not None:
                self.register_buffer(f"env_classes_{j}", torch.tensor(cls, dtype=torch.float32))

    def class_tensors(self) -> list[torch.Tensor | None] | None:
        """The ``classes`` as the float32 buffers the encoding compares codes with."""
        if self.classes is None:
            return None
        return [None if c is None else getattr(self, f"env_classes_{j}") for j, c in enumerate(self.classes)]

    def features(self, lonlat: torch.Tensor, env: torch.Tensor | None = None) -> torch.Tensor:
        """Encoded input features from degrees and raw covariates (the shared core formula)."""
        return enc.encode(self.encoding, lonlat, env, self.env_mean, self.env_std, xp=torch,
                          frequencies=self.frequencies, classes=self.class_tensors(), degree=self.sh_degree)

    def embed(self, lonlat: torch.Tensor, env: torch.Tensor | None = None) -> torch.Tensor:
        """Degrees [N, 2] (lon, lat) and raw covariates [N, k] or None -> embedding [N, width]."""
        return self.encoder(self.features(lonlat, env))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from already-encoded features (the trainer pre-encodes its data)."""
        return self.head(self.encoder(x))

    def numpy_weights(self) -> dict:
        """Plain float32 arrays under the bundle's ``weights.npz`` names."""
        sd = {k: v.detach().cpu().float().numpy() for k, v in self.state_dict().items()}
        out = {network.INPUT_W: sd["encoder.input.weight"], network.INPUT_B: sd["encoder.input.bias"],
               network.HEAD: sd["head.weight"]}
        for i in range(len(self.encoder.blocks)):
            w1, b1, w2, b2 = network.block_keys(i)
            p = f"encoder.blocks.{i}."
            out[w1], out[b1] = sd[p + "w1.weight"], sd[p + "w1.bias"]
            out[w2], out[b2] = sd[p + "w2.weight"], sd[p + "w2.bias"]
        if enc.uses_covariates(self.encoding):
            out[network.ENV_MEAN], out[network.ENV_STD] = sd["env_mean"], sd["env_std"]
        return out


class EncoderGraph(nn.Module):
    """What goes into ``encoder.onnx``: degrees (+ raw covariates) -> embedding, encoding inside."""

    def __init__(self, model: SinrModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, lonlat: torch.Tensor, env: torch.Tensor | None = None) -> torch.Tensor:
        """Degrees [N, 2] (lon, lat) and raw covariates [N, k] or None -> embedding [N, width]."""
        return self.model.embed(lonlat, env)
