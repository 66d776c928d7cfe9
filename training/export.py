"""Export a trained ``SinrModel`` to the ``.sinr`` bundle (ONNX encoder + npz weights + metadata),
with where each species' training records are (for :mod:`sinr_qgis.core.reliability`) and the
model's data footprint (:mod:`sinr_qgis.core.footprint`)."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sinr_qgis.core.bundle import FORMAT_NAME, FORMAT_VERSION, HEAD_DTYPE_KEY, HEAD_DTYPES, ModelBundle, Species
from sinr_qgis.core.encoding import uses_covariates
from sinr_qgis.core.errors import SinrError
from sinr_qgis.core.head_precision import check_float16_head
from sinr_qgis.core.reliability import record_footprints

from .footprint import model_footprint
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
                 extra: dict[str, Any] | None = None,
                 records: tuple[np.ndarray, np.ndarray] | None = None,
                 record_env: np.ndarray | None = None,
                 head_dtype: str = "float32",
                 class_names: Mapping[str, Mapping[float, str]] | None = None) -> ModelBundle:
    """A validated in-memory bundle for ``model``; call ``.write(path)`` to save it atomically.

    ``class_names``: per categorical covariate (by name), the raster's name of each class code,
    stored beside the model's classes (``model.json`` ``class_names``).

    ``records``: the training records as (lonlat [N, 2] degrees, head index [N]); each species
    then gets its record extent and 1-degree cell count (``species.csv``), and the bundle its data
    footprint (:mod:`training.footprint`; ``record_env`` [N, k]: the raw covariate values at the
    records, for a covariate model's ranges). About a minute for 54,000 distinct locations.
    ``head_dtype="float16"`` stores the species head in half precision: the file is about half
    the size when the head dominates it (a 47,375-species head of width 256: 24 MB instead of
    48 MB), and the bundle's head is rounded in memory too, so the returned bundle predicts what
    the file will. Raises ``BundleError`` when that moves a probability by more than 0.001
    (:mod:`sinr_qgis.core.head_precision`)."""
    if head_dtype not in HEAD_DTYPES:
        raise SinrError(f"head_dtype must be one of {HEAD_DTYPES}, got {head_dtype!r}.")
    if records is not None:
        species = with_record_footprints(species, *records)
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
                     "covariates": covariate_entries(model, covariate_names, mean, std, class_names)},
        "n_species": len(species),
        "training": training or {},
        "data": data or {},
        "licence": licence,
        "citation": CITATION,
    }
    if model.frequencies is not None:
        meta["encoding"]["frequencies"] = list(model.frequencies)
    if model.sh_degree is not None:
        meta["encoding"]["degree"] = model.sh_degree
    if extra:
        meta.update(extra)
    bundle = ModelBundle(meta=meta, species=list(species), weights=weights,
                         onnx_bytes=encoder_onnx_bytes(model))
    bundle.validate()
    if records is not None:
        bundle.footprint = model_footprint(model.encoding, records[0], record_env, list(covariate_names),
                                           bundle.covariate_classes)
    if head_dtype != "float32":
        check_float16_head(bundle)
        bundle.meta[HEAD_DTYPE_KEY] = head_dtype
        bundle.weights["head"] = bundle.head.astype(head_dtype).astype(np.float32)
    return bundle


def covariate_entries(model: SinrModel, names: Sequence[str], mean: Sequence[float], std: Sequence[float],
                      class_names: Mapping[str, Mapping[float, str]] | None = None) -> list[dict[str, Any]]:
    """``model.json`` ``encoding.covariates``: name, mean and std of each covariate; a categorical
    one adds its ``classes`` (the model's one-hot order) and, where the raster names them, their
    ``class_names`` ("" for a class without a name)."""
    out = []
    for j, (n, m, s) in enumerate(zip(names, mean, std)):
        entry: dict[str, Any] = {"name": n, "mean": m, "std": s}
        cls = model.classes[j] if model.classes else None
        if cls is not None:
            entry["classes"] = [int(c) if float(c).is_integer() else float(c) for c in cls]
            known = (class_names or {}).get(n) or {}
            if any(known.get(c) for c in cls):
                entry["class_names"] = [str(known.get(c, "")) for c in cls]
        out.append(entry)
    return out


def export_bundle(model: SinrModel, species: Sequence[Species], path: str | Path, **kwargs: Any) -> ModelBundle:
    """Build and atomically write a bundle; returns it (with ``path`` and ``sha256`` set)."""
    bundle = build_bundle(model, species, **kwargs)
    bundle.write(path)
    return bundle


def with_record_footprints(species: Sequence[Species], lonlat: np.ndarray, index: np.ndarray) -> list[Species]:
    """``species`` (head order) with ``record_extent`` and ``n_cells`` of their records
    (``lonlat`` [N, 2] degrees, ``index`` [N] head index); each ``n_train`` must be its record
    count, else ``SinrError``: the records are not the ones the model was trained on."""
    counts = np.bincount(np.asarray(index, dtype=np.int64), minlength=len(species))
    if len(counts) != len(species):
        raise SinrError(f"The records belong to {len(counts)} species, the model has {len(species)}. "
                        "Give the file and the selection the model was trained with.")
    wrong = [f"{s.label}: {s.n_train} in the model, {int(c)} given" for s, c in zip(species, counts)
             if int(c) != s.n_train]
    if wrong:
        raise SinrError(f"The records are not those the model was trained on ({len(wrong)} species with another "
                        f"count, e.g. {'; '.join(wrong[:3])}). Give the file and the selection the model was "
                        "trained with.")
    return [dataclasses.replace(s, record_extent=f.extent, n_cells=f.n_cells)
            for s, f in zip(species, record_footprints(lonlat, index, len(species)))]


def annotate_bundle(bundle: ModelBundle, codes: Sequence[str], lonlat: np.ndarray, index: np.ndarray) -> ModelBundle:
    """Add the record footprints to an existing ``bundle`` (written by an older version) from its
    training records: ``codes`` [S] species codes of ``index`` [N] (head order of the selection),
    ``lonlat`` [N, 2] degrees. Raises ``SinrError`` when they are not the model's species and
    counts. Returns the bundle (``species`` replaced); ``write`` it to save."""
    if list(codes) != [s.code for s in bundle.species]:
        missing = sorted(set(s.code for s in bundle.species) - set(codes))
        raise SinrError(f"The records name other species than the model {bundle.name!r}"
                        + (f" (none of {', '.join(missing[:5])})" if missing else "")
                        + ". Give the file the model was trained on.")
    bundle.species = with_record_footprints(bundle.species, lonlat, index)
    return bundle
