"""Convert a checkpoint of the official SINR code (elijahcole/sinr) into a ``.sinr`` bundle.

The official checkpoint is a torch-saved dict with ``state_dict`` and ``params``. Its encoder is
an ``nn.Sequential`` named ``feats``: index 0 = input Linear, index 1 = ReLU (no weights), indices
2 .. depth+1 = residual blocks with linears ``w1`` and ``w2``; the bias-free species head is
``class_emb.weight`` [C, width]. ``params`` holds ``class_to_taxa`` (head order), ``input_enc``,
``num_filts``, ``depth``, ``num_classes`` and ``input_dim``. The file is loaded with
``torch.load(weights_only=True)``, so no code stored in it can run.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from sinr_qgis.core.bundle import ModelBundle, Species, file_sha256
from sinr_qgis.core.errors import SinrError

from .export import export_bundle
from .model import SinrModel

OFFICIAL_LICENCE = ("Weights converted from the official SINR release (Cole et al. 2023). The licence of "
                    "the pretrained weights is not stated in the SINR repository; check the data record "
                    "they were downloaded from before redistributing them. The training data derive "
                    "from iNaturalist observations under their observers' licences.")


class OfficialCheckpointError(SinrError):
    """The file is not a usable official SINR checkpoint (or its taxa table does not fit)."""


def load_official_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, params) of an official checkpoint, loaded without running pickled code."""
    p = Path(path)
    if not p.is_file():
        raise OfficialCheckpointError(f"Checkpoint {p} does not exist.")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch reports damaged or code-carrying files in several ways
        raise OfficialCheckpointError(
            f"{p.name} cannot be loaded safely as a SINR checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}).") from None
    if not isinstance(ck, dict) or "state_dict" not in ck or "params" not in ck:
        raise OfficialCheckpointError(f"{p.name} is not an official SINR checkpoint "
                                      "(expected a dict with 'state_dict' and 'params').")
    return dict(ck["state_dict"]), dict(ck["params"])


def map_official_state(state: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Official ``feats.*``/``class_emb.*`` names -> ``SinrModel`` state-dict names."""
    out = {"encoder.input.weight": state["feats.0.weight"], "encoder.input.bias": state["feats.0.bias"],
           "head.weight": state["class_emb.weight"]}
    for i in range(depth):
        src = f"feats.{i + 2}."
        for lin in ("w1", "w2"):
            for kind in ("weight", "bias"):
                out[f"encoder.blocks.{i}.{lin}.{kind}"] = state[f"{src}{lin}.{kind}"]
    return out


def read_taxa_names(path: str | Path) -> dict[str, str]:
    """taxon id -> name from a CSV with a ``taxon_id`` column and a name column
    (``name``, ``latin_name``, ``scientific_name`` or ``species``); else the first two columns."""
    p = Path(path)
    if not p.is_file():
        raise OfficialCheckpointError(f"Taxa table {p} does not exist.")
    text = p.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise OfficialCheckpointError(f"Taxa table {p.name} has no rows.")
    header = [h.strip().lower() for h in rows[0]]
    id_col = header.index("taxon_id") if "taxon_id" in header else 0
    name_col = next((header.index(c) for c in ("name", "latin_name", "scientific_name", "species")
                     if c in header), 1 if len(header) > 1 else None)
    if name_col is None:
        raise OfficialCheckpointError(f"Taxa table {p.name} needs a taxon_id and a name column.")
    out = {}
    for r in rows[1:]:
        if len(r) > max(id_col, name_col) and r[id_col].strip():
            out[_taxon_key(r[id_col])] = r[name_col].strip()
    return out


def _taxon_key(value: Any) -> str:
    """Taxon ids as text without a trailing '.0' (ids may come as floats from a table)."""
    s = str(value).strip()
    return s[:-2] if s.endswith(".0") and s[:-2].isdigit() else s


def convert_official(checkpoint: str | Path, taxa: str | Path, out: str | Path,
                     name: str | None = None) -> ModelBundle:
    """Convert ``checkpoint`` (+ ``taxa`` names) into a bundle written atomically to ``out``."""
    cp = Path(checkpoint)
    state, params = load_official_checkpoint(cp)
    enc = params.get("input_enc")
    if enc != "sin_cos":
        raise OfficialCheckpointError(
            f"{cp.name} uses input encoding {enc!r}; only coordinate models ('sin_cos') can be "
            "imported (env models need the authors' standardised WorldClim stack).")
    try:
        depth = int(params["depth"])
        width = int(params["num_filts"])
        d_in = int(params["input_dim"])
        taxa_ids = [_taxon_key(t) for t in params["class_to_taxa"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise OfficialCheckpointError(f"{cp.name}: params lack or have a bad {exc}.") from None
    missing = [k for k in ("feats.0.weight", "feats.0.bias", "class_emb.weight") if k not in state]
    missing += [f"feats.{i + 2}.{lin}.{kind}" for i in range(depth) for lin in ("w1", "w2")
                for kind in ("weight", "bias") if f"feats.{i + 2}.{lin}.{kind}" not in state]
    if missing:
        raise OfficialCheckpointError(f"{cp.name}: state_dict lacks {', '.join(missing[:5])}"
                                      + (" ..." if len(missing) > 5 else "") + ".")
    extra_blocks = [k for k in state if k.startswith(f"feats.{depth + 2}.")]
    if extra_blocks or "class_emb.bias" in state:
        raise OfficialCheckpointError(f"{cp.name}: layout does not match depth {depth} with a bias-free "
                                      "head (unexpected weights such as "
                                      f"{(extra_blocks or ['class_emb.bias'])[0]}).")
    n_classes = int(state["class_emb.weight"].shape[0])
    if len(taxa_ids) != n_classes or int(params.get("num_classes", n_classes)) != n_classes:
        raise OfficialCheckpointError(f"{cp.name}: class_to_taxa has {len(taxa_ids)} entries but the "
                                      f"head has {n_classes} rows.")
    if d_in != 4:
        raise OfficialCheckpointError(f"{cp.name}: input_dim {d_in} does not fit the 4-d sin_cos encoding.")
    names = read_taxa_names(taxa)
    model = SinrModel(n_classes, "sin_cos", 0, width=width, depth=depth)
    mapped = {k: v.float() for k, v in map_official_state(state, depth).items()}
    try:
        model.load_state_dict(mapped | {"env_mean": model.env_mean, "env_std": model.env_std})
    except RuntimeError as exc:
        raise OfficialCheckpointError(f"{cp.name}: weight shapes do not fit the SINR network "
                                      f"({str(exc).splitlines()[-1].strip()}).") from None
    species = [Species(i, t, names.get(t, t), 0) for i, t in enumerate(taxa_ids)]
    kept = {k: params[k] for k in ("input_enc", "num_filts", "depth", "num_classes", "input_dim", "loss",
                                   "hard_cap_num_per_class", "num_epochs", "pos_weight", "lr")
            if k in params and isinstance(params[k], (int, float, str, bool))}
    return export_bundle(model, species, out, name=name or Path(out).stem,
                         training={"origin": "official SINR checkpoint", "params": kept},
                         data={"file": cp.name, "sha256": file_sha256(cp), "taxa_file": Path(taxa).name,
                               "n_taxa_named": sum(t in names for t in taxa_ids)},
                         licence=OFFICIAL_LICENCE)
