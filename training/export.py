"""Export a trained ``SinrModel`` to the ``.sinr`` bundle (ONNX encoder + npz weights + metadata)."""
from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sinr_qgis.core.bundle import FORMAT_NAME, FORMAT_VERSION, ModelBundle, Species
from sinr_qgis.core.encoding import uses_covariates

from .model import EncoderGraph, SinrModel

ONNX_OPSET = 17
CITATION = ("Cole, E., Van Horn, G., Lange, C., Shepard, A., Leary, P., Perona, P., Loarie, S., "
            "Mac Aodha, O. (2023). Spatial Implicit Neural Representations for Global-Scale "
            "Species Mapping. ICML 2023.")


def encoder_onnx_bytes(model: SinrModel) -> bytes:
    """Trace the encoder (encoding included) to ONNX with a dynamic batch dimension."""
    graph = EncoderGraph(model).eval()
    lonlat = torch.zeros(2, 2, dtype=torch.float32)
    buf = io.BytesIO()
    if not uses_covariates(model.encoding):
        args: tuple = (lonlat,)
        names = ["lonlat"]
    else:
        args = (lonlat, torch.zeros(2, model.n_covariates, dtype=torch.float32))
        names = ["lonlat", "env"]
    axes = {n: {0: "n"} for n in names} | {"embedding": {0: "n"}}
    with torch.no_grad():
        torch.onnx.export(graph, args, buf, input_names=names, output_names=["embedding"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)
    return _ensure_lonlat_input(buf.getvalue())


def _ensure_lonlat_input(onnx_bytes: bytes) -> bytes:
    """Keep the contract's ``lonlat`` input: the tracer drops it from an ``env``-only graph,
    which does not read it. Re-add it as an (unused) input, first in order."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    if any(i.name == "lonlat" for i in proto.graph.input):
        return onnx_bytes
    lonlat = onnx.helper.make_tensor_value_info("lonlat", onnx.TensorProto.FLOAT, ["n", 2])
    proto.graph.input.insert(0, lonlat)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def build_bundle(model: SinrModel, species: Sequence[Species], *, name: str,
                 covariate_names: Sequence[str] = (), training: dict[str, Any] | None = None,
                 data: dict[str, Any] | None = None, licence: str = "",
                 extra: dict[str, Any] | None = None) -> ModelBundle:
    """A validated in-memory bundle for ``model``; call ``.write(path)`` to save it atomically."""
    model = model.eval()
    weights = model.numpy_weights()
    mean = model.env_mean.cpu().tolist()
    std = model.env_std.cpu().tolist()
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "architecture": {"type": "ResidualFCNet", "input_dim": int(weights["encoder.input.weight"].shape[1]),
                         "embedding_dim": int(weights["head"].shape[1]), **model.config},
        "encoding": {"name": model.encoding,
                     "covariates": [{"name": n, "mean": m, "std": s}
                                    for n, m, s in zip(covariate_names, mean, std)]},
        "n_species": len(species),
        "training": training or {},
        "data": data or {},
        "licence": licence,
        "citation": CITATION,
    }
    if model.frequencies is not None:
        meta["encoding"]["frequencies"] = list(model.frequencies)
    if extra:
        meta.update(extra)
    bundle = ModelBundle(meta=meta, species=list(species), weights=weights,
                         onnx_bytes=encoder_onnx_bytes(model))
    bundle.validate()
    return bundle


def export_bundle(model: SinrModel, species: Sequence[Species], path: str | Path, **kwargs: Any) -> ModelBundle:
    """Build and atomically write a bundle; returns it (with ``path`` and ``sha256`` set)."""
    bundle = build_bundle(model, species, **kwargs)
    bundle.write(path)
    return bundle
