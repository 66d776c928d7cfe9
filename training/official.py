"""Convert a checkpoint of the official SINR code (elijahcole/sinr) into a ``.sinr`` bundle.

The official checkpoint is a torch-saved dict with ``state_dict`` and ``params``. ``params`` holds
``model`` (the architecture), ``class_to_taxa`` (taxon ids in head order), ``input_enc``
('sin_cos', 'env' or 'sin_cos_env'), ``num_filts``, ``depth``, ``num_classes`` and ``input_dim``.
The official code defines two architectures, both with a bias-free head ``class_emb.weight``:

- ``ResidualFCNet``: an ``nn.Sequential`` named ``feats``: index 0 = input Linear, index 1 = ReLU
  (no weights), indices 2 .. depth+1 = residual blocks with linears ``w1`` and ``w2``; the head is
  [C, num_filts]. It maps one to one onto the bundle's encoder.
- ``LinNet``: no hidden layer (``feats`` is the identity), the head [C, input_dim] is applied to
  the encoded input itself. The bundle's encoder always starts with Linear+ReLU, so the import
  writes the identity exactly as the embedding [ReLU(x), ReLU(-x)] with the head [W, -W]:
  W.ReLU(x) - W.ReLU(-x) = W.x, the same logits.

Environmental models (``input_enc`` 'env': the covariates alone; 'sin_cos_env': the 4 sin_cos
features then the covariates) read WorldClim 2.1 as the official code prepares it; the statistics
come from the user's rasters (:mod:`sinr_qgis.core.official_env`) and the bundle stores them with
the official sampling, so the plugin feeds the network the official input values. The bundle's
encoder then takes those values as they are (its own standardisation is the identity).

The file is loaded with ``torch.load(weights_only=True)``, so no code stored in it can run.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sinr_qgis.core.bundle import ModelBundle, Species, file_sha256
from sinr_qgis.core.encoding import COORD_DIM
from sinr_qgis.core.errors import SinrError
from sinr_qgis.core.official_env import WORLDCLIM_HELP, OfficialEnv, missing_worldclim

from .export import export_bundle
from .model import SinrModel
from .taxa_names import TaxaNaming, read_taxa_names, taxon_key

OFFICIAL_LICENCE = ("Weights converted from the official SINR release (Cole et al. 2023). The licence of "
                    "the pretrained weights is not stated in the SINR repository; check the data record "
                    "they were downloaded from before redistributing them. The training data derive "
                    "from iNaturalist observations under their observers' licences.")
ARCHITECTURES = ("ResidualFCNet", "LinNet")  # every model the official code defines
ENV_ENCODINGS = ("env", "sin_cos_env")
OFFICIAL_ENCODINGS = ("sin_cos", *ENV_ENCODINGS)  # every input the official code builds (utils.CoordEncoder)
LINNET_CONVERSION = ("LinNet's identity features written as the embedding [ReLU(x), ReLU(-x)] of its "
                     "input features x, head [W, -W]: the same logits")


class OfficialCheckpointError(SinrError):
    """The file is not an official SINR checkpoint that a bundle can reproduce."""


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
    state, params = ck["state_dict"], ck["params"]
    if not isinstance(state, dict) or not isinstance(params, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise OfficialCheckpointError(f"{p.name} is not an official SINR checkpoint ('state_dict' must map "
                                      "names to tensors and 'params' must be a dict).")
    return dict(state), dict(params)


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


def official_architecture(who: str, state: dict[str, torch.Tensor], params: dict[str, Any]) -> str:
    """'ResidualFCNet' or 'LinNet' from ``params['model']`` (the weights' names when it is absent);
    raise ``OfficialCheckpointError`` for any other architecture or input encoding."""
    enc = params.get("input_enc")
    if enc not in OFFICIAL_ENCODINGS:
        raise OfficialCheckpointError(f"{who} uses input encoding {enc!r}; the official code writes "
                                      f"{', '.join(map(repr, OFFICIAL_ENCODINGS))}, and only those can be imported.")
    arch = params.get("model") or ("ResidualFCNet" if "feats.0.weight" in state else "LinNet")
    if arch not in ARCHITECTURES:
        raise OfficialCheckpointError(
            f"{who} holds a {arch!r} network; the official SINR code defines {' and '.join(ARCHITECTURES)}, "
            "the only architectures whose forward pass a .sinr bundle (location encoder + bias-free linear "
            "head) is known to reproduce exactly, so it cannot be imported.")
    return str(arch)


def check_covariates(who: str, encoding: str, d_in: int, env: OfficialEnv | None) -> int:
    """The number of covariates a network of input width ``d_in`` reads with ``encoding``, checked
    against the rasters given (``env``); raises ``OfficialCheckpointError`` saying what to give."""
    n_cov = d_in - (COORD_DIM if encoding == "sin_cos_env" else 0) if encoding in ENV_ENCODINGS else 0
    if encoding not in ENV_ENCODINGS:
        if env is not None:
            raise OfficialCheckpointError(f"{who} reads the location only (input_enc 'sin_cos'), no covariate "
                                          "rasters: leave the covariates out.")
        return 0
    what = "besides the location" if encoding == "sin_cos_env" else "and not the location"
    if env is None:
        raise OfficialCheckpointError(
            f"{who} is an environmental model (input_enc {encoding!r}): it reads {n_cov} covariates {what}. "
            f"Give its covariate rasters: {WORLDCLIM_HELP}.")
    if len(env.names) != n_cov:
        lacking = missing_worldclim(env.names, n_cov)
        raise OfficialCheckpointError(
            f"{who} reads {n_cov} covariates (input_enc {encoding!r}), but {len(env.names)} raster bands were "
            f"given ({', '.join(env.names)})." + (f" Missing: {', '.join(lacking)}." if lacking else "")
            + f" Give {WORLDCLIM_HELP}.")
    return n_cov


def _check_keys(who: str, state: dict[str, torch.Tensor], expected: list[str], arch: str) -> None:
    """Refuse weights that are missing or that a bundle could not use (never drop them silently)."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise OfficialCheckpointError(f"{who}: state_dict lacks {', '.join(missing[:5])}"
                                      + (" ..." if len(missing) > 5 else "") + f" for a {arch}.")
    extra = [k for k in state if k not in expected]
    if "class_emb.bias" in extra:
        raise OfficialCheckpointError(f"{who}: the species head has a bias (class_emb.bias); the official "
                                      "code never writes one and a bundle's head is bias-free.")
    if extra:
        depth = sum(k.endswith(".w1.weight") for k in expected)
        raise OfficialCheckpointError(f"{who}: the weights do not match a {arch} as its params describe "
                                      f"it (depth {depth}): unexpected {extra[0]}.")


def _residual_model(who: str, state: dict[str, torch.Tensor], params: dict[str, Any], n_classes: int,
                    env: OfficialEnv | None) -> SinrModel:
    try:
        depth, width = int(params["depth"]), int(params["num_filts"])
    except (KeyError, TypeError, ValueError) as exc:
        raise OfficialCheckpointError(f"{who}: params lack or have a bad {exc}.") from None
    expected = ["feats.0.weight", "feats.0.bias", "class_emb.weight"]
    expected += [f"feats.{i + 2}.{lin}.{kind}" for i in range(depth) for lin in ("w1", "w2")
                 for kind in ("weight", "bias")]
    _check_keys(who, state, expected, "ResidualFCNet")
    encoding, n_cov = _inputs(who, state["feats.0.weight"], params, env)
    model = SinrModel(n_classes, encoding, n_cov, width=width, depth=depth)
    mapped = {k: v.float() for k, v in map_official_state(state, depth).items()}
    try:
        model.load_state_dict(mapped | {"env_mean": model.env_mean, "env_std": model.env_std})
    except RuntimeError as exc:
        raise OfficialCheckpointError(f"{who}: weight shapes do not fit the SINR network "
                                      f"({str(exc).splitlines()[-1].strip()}).") from None
    return model


def _linear_model(who: str, state: dict[str, torch.Tensor], params: dict[str, Any], n_classes: int,
                  env: OfficialEnv | None) -> SinrModel:
    """LinNet as a depth-0 encoder: input weights [I; -I], bias 0, head [W, -W] (see the module doc)."""
    _check_keys(who, state, ["class_emb.weight"], "LinNet")
    w = state["class_emb.weight"].float()
    encoding, n_cov = _inputs(who, w, params, env)
    d = w.shape[1]
    model = SinrModel(n_classes, encoding, n_cov, width=2 * d, depth=0)
    eye = torch.eye(d)
    model.load_state_dict({"encoder.input.weight": torch.cat([eye, -eye]), "encoder.input.bias": torch.zeros(2 * d),
                           "head.weight": torch.cat([w, -w], 1), "env_mean": model.env_mean,
                           "env_std": model.env_std})
    return model


def _inputs(who: str, first: torch.Tensor, params: dict[str, Any], env: OfficialEnv | None) -> tuple[str, int]:
    """(encoding, number of covariates) of a network whose first weight matrix is ``first``
    [out, d_in]: ``d_in`` must be ``input_dim`` and fit ``input_enc`` (sin_cos: 4; sin_cos_env: 4 and
    at least one covariate); the covariates must be those given (``check_covariates``)."""
    encoding = str(params["input_enc"])
    d_in = int(first.shape[1]) if first.ndim == 2 else -1
    fits = {"sin_cos": d_in == COORD_DIM, "env": d_in >= 1, "sin_cos_env": d_in > COORD_DIM}[encoding]
    try:
        fits &= int(params.get("input_dim", d_in)) == d_in
    except (TypeError, ValueError):
        fits = False
    if not fits:
        need = {"sin_cos": "the 4-d sin_cos encoding", "env": "input_enc 'env'",
                "sin_cos_env": "input_enc 'sin_cos_env' (4 sin_cos features and the covariates)"}[encoding]
        raise OfficialCheckpointError(f"{who}: input_dim {params.get('input_dim')} (weights "
                                      f"{tuple(first.shape)}) does not fit {need}.")
    return encoding, check_covariates(who, encoding, d_in, env)


def _class_taxa(who: str, state: dict[str, torch.Tensor], params: dict[str, Any]) -> list[str]:
    """Taxon ids in head order, checked against the head's rows."""
    head = state.get("class_emb.weight")
    try:
        taxa = [taxon_key(t) for t in params["class_to_taxa"]]
        n_classes = int(head.shape[0]) if head is not None and head.ndim == 2 else len(taxa)
        n_declared = int(params.get("num_classes", n_classes))
    except (KeyError, TypeError, ValueError) as exc:
        raise OfficialCheckpointError(f"{who}: params lack or have a bad {exc}.") from None
    if len(taxa) != n_classes or n_declared != n_classes:
        raise OfficialCheckpointError(f"{who}: class_to_taxa has {len(taxa)} entries but the "
                                      f"head has {n_classes} rows.")
    if len(set(taxa)) != len(taxa):
        dup = next(t for t in taxa if taxa.count(t) > 1)
        raise OfficialCheckpointError(f"{who}: class_to_taxa lists taxon {dup} more than once.")
    return taxa


def convert_official(checkpoint: str | Path, taxa: str | Path | None, out: str | Path,
                     name: str | None = None, env: OfficialEnv | None = None,
                     progress: Callable[[float, str], None] | None = None,
                     head_dtype: str = "float32") -> ModelBundle:
    """Convert ``checkpoint`` into a bundle written atomically to ``out``; returns it.

    ``taxa``: a names table in any layout of ``training.taxa_names`` (None: every class keeps its
    taxon id as name). What the table named, and what it left out, is in the bundle's
    ``meta['data']['taxa_names']`` (``summary``: one line for a person). ``env``: the covariate
    statistics of an environmental checkpoint (``input_enc`` 'env' or 'sin_cos_env';
    :func:`sinr_qgis.core.official_env.read_official_env`), required for those and refused for
    coordinate models. ``progress(fraction, what)`` is told each step. ``head_dtype="float16"``
    stores the species head in half precision (``training.export.build_bundle``; ``BundleError``
    when a probability would move by more than 0.001). Raises ``OfficialCheckpointError``
    (checkpoint, covariates) or ``TaxaTableError`` (names table); nothing is written then."""
    cp = Path(checkpoint)
    tell = progress or (lambda _f, _what: None)
    state, params = load_official_checkpoint(cp)
    tell(0.3, f"read {cp.name}")
    arch = official_architecture(cp.name, state, params)
    taxa_ids = _class_taxa(cp.name, state, params)
    build = _residual_model if arch == "ResidualFCNet" else _linear_model
    model = build(cp.name, state, params, len(taxa_ids), env)
    tell(0.5, f"{arch} with {len(taxa_ids)} classes, input {model.encoding}")
    if taxa is None:
        naming = TaxaNaming(list(taxa_ids), "no table", 0, len(taxa_ids), 0)
    else:
        naming = read_taxa_names(taxa, taxa_ids)
    tell(0.6, "named the classes")
    species = [Species(i, t, n, 0) for i, (t, n) in enumerate(zip(taxa_ids, naming.names))]
    kept = {k: params[k] for k in ("model", "input_enc", "num_filts", "depth", "num_classes", "input_dim",
                                   "loss", "hard_cap_num_per_class", "num_epochs", "pos_weight", "lr", "env_norm")
            if k in params and isinstance(params[k], (int, float, str, bool))}
    training: dict[str, Any] = {"origin": "official SINR checkpoint", "architecture": arch, "params": kept}
    if env is not None and "env_norm" in params:
        # only the official web app mentions this parameter (load_env(norm=...)), for a load_env the
        # public code does not have: say which preparation the bundle reproduces
        training["warnings"] = [f"{cp.name} names an environmental normalisation {params['env_norm']!r} (params "
                                "'env_norm') that the public SINR code does not define; the import reproduces the "
                                "public code's inputs (z-scores over the valid cells). Compare a few predictions "
                                "with the authors' maps before relying on them."]
    if arch == "LinNet":
        training["conversion"] = LINNET_CONVERSION
    taxa_file = Path(taxa).name if taxa is not None else None
    summary = (naming.summary(taxa_file) if taxa_file else
               f"names: no taxa table given; all {len(taxa_ids)} classes keep their taxon id as name.")
    report = {"file": taxa_file, "layout": naming.layout, "n_named": naming.n_named,
              "n_unnamed": naming.n_unnamed, "n_ignored": naming.n_ignored,
              "n_unreadable": naming.n_unreadable, "summary": summary}
    # an environmental model's encoder takes the official input values as they are (identity
    # standardisation); the statistics and the official sampling go to model.json for the samplers
    extra = {"encoding": env.encoding_meta(model.encoding)} if env is not None else None
    return export_bundle(model, species, out, name=name or Path(out).stem, training=training,
                         data={"file": cp.name, "sha256": file_sha256(cp), "taxa_names": report},
                         licence=OFFICIAL_LICENCE, extra=extra, head_dtype=head_dtype)
