"""The model bundle: one ``.sinr`` zip holding a trained SINR model (the contract every part uses).

Members:
- ``model.json``: format name/version, architecture, encoding (covariate names, means, stds;
  ``covariate_sampling`` when the covariates are read as the official SINR code did, see
  :mod:`~sinr_qgis.core.official_env`: format version 2; ``classes`` and ``class_names`` of a
  categorical covariate, read at the nearest cell and one-hot encoded, see
  :mod:`~sinr_qgis.core.categories`: format version 3), number of species, training
  configuration, data provenance, licence and citation.
- ``species.csv``: ``index,code,name,n_train[,threshold][,common_name][,lon_min,lat_min,lon_max,lat_max,
  n_cells]`` in head order (the last five: where the training records are, see
  :mod:`~sinr_qgis.core.reliability`); readers ignore columns they do not know, so optional
  columns can be added without a format change.
- ``encoder.onnx``: ``lonlat`` float32 [N, 2] (+ ``env`` float32 [N, k] raw values) -> ``embedding``.
- ``weights.npz``: ``head`` [n_species, D] plus encoder weights (names in ``network.py``), stored
  in the zip uncompressed (float weights barely deflate, and inflating a paper-scale head took
  0.3 s of its load). The head is float32, or float16 when ``model.json`` ``head_dtype`` says so
  (half the size; :mod:`~sinr_qgis.core.head_precision` checks that its probabilities stay within
  1e-3); it is float32 in memory either way, so every reader and backend takes it unchanged.
- ``footprint.npz`` (optional): the distance grid of the model's data footprint, described by
  ``model.json`` ``footprint`` (:mod:`~sinr_qgis.core.footprint`); older readers ignore both.
- ``local_evidence.npz`` (optional): the per-species offsets of the local-evidence component,
  described by ``model.json`` ``local_evidence`` (:mod:`~sinr_qgis.core.local_evidence`); older
  readers ignore both and give pure SINR.
A species' logit at a location is ``embedding . head[i]``; its probability is the sigmoid.

``model.json`` ``member_sha256`` holds the SHA-256 (hex) of every other member (the optional one
when present: a sum without its member, or the member without its sum, is refused), written by
:meth:`ModelBundle.write`; :meth:`ModelBundle.load` refuses a bundle whose member does not match
(the zip's CRC only catches damage made after zipping, not a member altered or replaced).
Bundles from before the sums load with a warning in ``ModelBundle.warnings``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import network
from .atomic import atomic_path
from .categories import classes_problem, covariate_classes
from .encoding import ENCODINGS, check_frequencies, check_sh_degree, covariate_features, input_dim, uses_covariates
from .errors import BundleError
from .footprint import FOOTPRINT_KEY, Footprint, footprint_status, read_footprint
from .footprint import MEMBER as FOOTPRINT_MEMBER
from .local_evidence import LOCAL_EVIDENCE_KEY, LocalEvidence, read_local_evidence
from .local_evidence import MEMBER as LOCAL_EVIDENCE_MEMBER
from .official_env import sampling_problem
from .reliability import ranges_reference, reliability_lines
from .species_list import species_list_line
from .species_names import SpeciesIndex, index_for

FORMAT_NAME = "sinr-qgis-model"
FORMAT_VERSION = 3  # the newest format this plugin reads; each bundle is written as format_version_needed
MEMBERS = ("model.json", "species.csv", "encoder.onnx", "weights.npz")
SPECIES_COLUMNS = ("index", "code", "name", "n_train")
EXTENT_COLUMNS = ("lon_min", "lat_min", "lon_max", "lat_max")  # optional: the records' bulk (degrees)
EXTENSION = ".sinr"
SUMS_KEY = "member_sha256"  # model.json: {member: SHA-256 hex} of every member but model.json
HEAD_DTYPE_KEY = "head_dtype"  # model.json: how weights.npz stores the head (absent = float32)
HEAD_DTYPES = ("float32", "float16")
SUMMED_MEMBERS = tuple(m for m in MEMBERS if m != "model.json")
OPTIONAL_MEMBERS = (FOOTPRINT_MEMBER, LOCAL_EVIDENCE_MEMBER)
# stored as they are in the zip: float weights barely deflate, the footprint grid is compressed already
STORED_MEMBERS = ("weights.npz", FOOTPRINT_MEMBER)
LOG = logging.getLogger("sinr_qgis")


@dataclass
class Species:
    """One species of the model's head, in head order."""

    index: int
    code: str
    name: str
    n_train: int
    threshold: float | None = None  # LPT-R probability threshold, if computed at export
    common_name: str = ""  # vernacular name (optional species.csv column), found by lookups too
    # where the training records are (core.reliability.record_footprints); None in older bundles
    record_extent: tuple[float, float, float, float] | None = None  # lon_min, lat_min, lon_max, lat_max
    n_cells: int | None = None  # distinct 1-degree cells holding the records

    @property
    def label(self) -> str:
        """Human label: 'Scientific name (code)'."""
        return f"{self.name} ({self.code})" if self.name and self.name != self.code else self.code


@dataclass
class ModelBundle:
    """A loaded, validated model bundle."""

    meta: dict[str, Any]
    species: list[Species]
    weights: dict[str, np.ndarray]
    onnx_bytes: bytes
    path: Path | None = None
    sha256: str = ""
    # what a user should know about a bundle that loaded (e.g. no member checksums); shown where loaded
    warnings: list[str] = field(default_factory=list, compare=False)
    # where the model has data (model.json footprint + footprint.npz); None: no footprint stored
    footprint: Footprint | None = field(default=None, compare=False)
    # offsets added to the logits from the training records (model.json local_evidence +
    # local_evidence.npz); None: pure SINR only
    local_evidence: LocalEvidence | None = field(default=None, compare=False)
    _index: SpeciesIndex | None = field(default=None, init=False, repr=False, compare=False)

    # ---- identity and shape -------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.meta.get("name") or (self.path.stem if self.path else "model"))

    @property
    def encoding(self) -> str:
        return self.meta["encoding"]["name"]

    @property
    def frequencies(self) -> tuple[int, ...] | None:
        """The ``sin_cos_multi`` frequencies (``model.json`` ``encoding.frequencies``); else None."""
        f = self.meta["encoding"].get("frequencies")
        return None if f is None else tuple(int(k) for k in f)

    @property
    def sh_degree(self) -> int | None:
        """The ``spherical_harmonics`` degree L (``model.json`` ``encoding.degree``: degrees
        0..L-1, L**2 features); else None."""
        d = self.meta["encoding"].get("degree") if self.encoding == "spherical_harmonics" else None
        return None if d is None else int(d)

    def encoding_label(self) -> str:
        """The encoding with its settings, as the card shows it: "sin_cos_multi (frequencies 1, 2, 4)",
        "spherical_harmonics (degree 10: 100 features)", or just the name."""
        if self.frequencies is not None:
            return f"{self.encoding} (frequencies {', '.join(map(str, self.frequencies))})"
        if self.sh_degree is not None:
            return f"{self.encoding} (degree {self.sh_degree}: {self.sh_degree ** 2} features)"
        return self.encoding

    @property
    def covariates(self) -> list[dict[str, Any]]:
        """Covariate descriptions (name, mean, std) in input order; empty for coords-only."""
        return list(self.meta["encoding"].get("covariates", []))

    @property
    def covariate_names(self) -> list[str]:
        return [c["name"] for c in self.covariates]

    @property
    def covariate_classes(self) -> list[tuple[float, ...] | None] | None:
        """Per covariate, the class codes of a categorical one (``model.json`` covariate
        ``classes``, one-hot encoded in this order) or None for a continuous one; None when no
        covariate is categorical (every bundle before format version 3)."""
        return covariate_classes(self.covariates)

    @property
    def head(self) -> np.ndarray:
        return self.weights[network.HEAD]

    @property
    def head_dtype(self) -> str:
        """How ``weights.npz`` stores the head: "float32" or "float16" (``model.json`` ``head_dtype``)."""
        return str(self.meta.get(HEAD_DTYPE_KEY, "float32"))

    @property
    def n_species(self) -> int:
        return len(self.species)

    @property
    def embedding_dim(self) -> int:
        return int(self.head.shape[1])

    # ---- species lookup -----------------------------------------------------------------
    def species_index(self) -> SpeciesIndex:
        """The lookup table of the species (rebuilt when the species, their codes or names change),
        built on the first lookup, not at load (0.7 s for 47,375 species), and shared with
        ``species_names.index_for`` (range layers matched against this model's species)."""
        index = self._index
        if index is None or index.fingerprint != SpeciesIndex.fingerprint_of(self.species):
            index = self._index = index_for(self.species, self.name)
        return index

    def find_species(self, query: str) -> Species:
        """A species by code, scientific name (with or without authorship) or "Name (code)" label.

        Case, Unicode form, spacing and the hybrid sign's spelling are ignored
        (:mod:`~sinr_qgis.core.species_names`). Raises ``SpeciesNotFoundError``, or
        ``AmbiguousSpeciesError`` when the text fits several species.
        """
        return self.species_index().find(query)

    def find_species_list(self, queries: str | list[str]) -> list[Species]:
        """Several species from a list's text (comma-separated and/or one per line; a name holding a
        comma stays whole; "double quotes" for an item taken as it is) or from a list of single
        items; in the given order, duplicates removed. Errors as :meth:`find_species`, and
        ``AmbiguousSpeciesError`` for text that reads as two different lists."""
        return self.species_index().parse_list(queries)

    # ---- I/O ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """Read and validate a bundle; raise ``BundleError`` saying what is wrong.

        A member whose SHA-256 differs from ``model.json``'s ``member_sha256`` is refused; a bundle
        without those sums (written before them) loads with a message in ``warnings``."""
        p = Path(path)
        if not p.is_file():
            raise BundleError(f"Model file {p} does not exist. Choose a .sinr model bundle.")
        data = p.read_bytes()
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise BundleError(f"{p.name} is not a SINR model bundle (not a zip file). "
                              "Choose a .sinr file made by the plugin or its training CLI.") from None
        with zf:
            missing = [m for m in MEMBERS if m not in zf.namelist()]
            if missing:
                raise BundleError(f"{p.name} is not a complete SINR model bundle: missing {', '.join(missing)}.")
            try:
                meta = json.loads(zf.read("model.json").decode("utf-8"))
                if not isinstance(meta, dict):
                    raise BundleError("model.json is not a JSON object. Re-export or re-download the model.")
                members = {m: zf.read(m) for m in (*SUMMED_MEMBERS, *OPTIONAL_MEMBERS) if m in zf.namelist()}
                warnings = _check_member_sums(p.name, meta, members)
                species = _parse_species(members["species.csv"].decode("utf-8"))
                with np.load(io.BytesIO(members["weights.npz"]), allow_pickle=False) as npz:
                    weights = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
                onnx_bytes = members["encoder.onnx"]
            except BundleError as exc:
                raise BundleError(f"{p.name}: {exc}") from None
            except (ValueError, KeyError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
                raise BundleError(f"{p.name} is damaged and cannot be read ({exc}). "
                                  "Re-export or re-download the model.") from None
        bundle = cls(meta=meta, species=species, weights=weights, onnx_bytes=onnx_bytes,
                     path=p, sha256=hashlib.sha256(data).hexdigest(), warnings=warnings)
        bundle.validate()
        bundle.footprint = bundle._read_footprint(members.get(FOOTPRINT_MEMBER))
        try:
            bundle.local_evidence = read_local_evidence(meta.get(LOCAL_EVIDENCE_KEY),
                                                        members.get(LOCAL_EVIDENCE_MEMBER), bundle.n_species)
        except BundleError as exc:
            raise BundleError(f"{p.name}: {exc}") from None
        for w in warnings:
            LOG.warning(w)
        return bundle

    def _read_footprint(self, npz: bytes | None) -> Footprint | None:
        """The footprint of a validated bundle's ``model.json`` and ``footprint.npz`` (None when
        absent); ``BundleError`` naming the file when they are wrong."""
        try:
            return read_footprint(self.meta.get(FOOTPRINT_KEY), npz, self.covariates, self.covariate_classes)
        except BundleError as exc:
            raise BundleError(f"{self.path.name if self.path else 'model bundle'}: {exc}") from None

    def validate(self) -> None:
        """Check the schema and that all shapes agree; raise ``BundleError`` if not."""
        who = self.path.name if self.path else "model bundle"
        # the order of the checks decides which fault a broken file reports first
        enc = self._check_schema(who)
        self._check_head_and_species(who)
        self._check_encoding(who, enc)
        self._check_layers(who, enc)

    def _check_schema(self, who: str) -> str:
        """model.json's format, version, required keys, head dtype and encoding; returns the encoding."""
        m = self.meta
        if m.get("format") != FORMAT_NAME:
            raise BundleError(f"{who}: model.json format is {m.get('format')!r}, expected {FORMAT_NAME!r}.")
        if int(m.get("format_version", -1)) > FORMAT_VERSION:
            raise BundleError(f"{who}: format version {m.get('format_version')} is newer than this plugin "
                              f"understands ({FORMAT_VERSION}). Update the plugin.")
        for key in ("architecture", "encoding", "n_species"):
            if key not in m:
                raise BundleError(f"{who}: model.json lacks {key!r}.")
        if self.head_dtype not in HEAD_DTYPES:
            raise BundleError(f"{who}: model.json head_dtype {self.head_dtype!r} is not one of {HEAD_DTYPES}. "
                              "Update the plugin, or re-export the model.")
        enc = m["encoding"].get("name")
        if enc not in ENCODINGS:
            raise BundleError(f"{who}: unknown encoding {enc!r}; expected one of {ENCODINGS}. "
                              "A model made by a newer version of the plugin needs that version: update the plugin.")
        return enc

    def _check_head_and_species(self, who: str) -> None:
        """The head and input layer exist, and the species list matches the head rows in order."""
        for key in (network.HEAD, network.INPUT_W, network.INPUT_B):
            if key not in self.weights:
                raise BundleError(f"{who}: weights.npz lacks {key!r}.")
        n = len(self.species)
        if int(self.meta["n_species"]) != n or self.head.shape[0] != n:
            raise BundleError(f"{who}: species count disagrees: model.json {self.meta['n_species']}, "
                              f"species.csv {n}, head rows {self.head.shape[0]}.")
        if [s.index for s in self.species] != list(range(n)):
            raise BundleError(f"{who}: species.csv indices must be 0..{n - 1} in head order.")

    def _check_encoding(self, who: str, enc: str) -> None:
        """The encoding's settings are valid and give as many features as the input layer takes."""
        encoding = self.meta["encoding"]
        n_cov = len(self.covariates)
        freqs = None
        degree = self._checked_sh_degree(who, enc)
        if enc == "sin_cos_multi":
            if "frequencies" not in encoding:
                raise BundleError(f"{who}: encoding 'sin_cos_multi' needs encoding.frequencies in model.json.")
            try:
                freqs = check_frequencies(encoding["frequencies"])
            except ValueError as exc:
                raise BundleError(f"{who}: model.json encoding.{exc}.") from None
        problem = classes_problem(encoding)
        if problem:
            raise BundleError(f"{who}: model.json encoding: {problem}")
        d_in = input_dim(enc, covariate_features(n_cov, self.covariate_classes), freqs, degree)
        if self.weights[network.INPUT_W].shape[1] != d_in:
            n_cat = sum(c is not None for c in self.covariate_classes or [])
            raise BundleError(f"{who}: input layer takes {self.weights[network.INPUT_W].shape[1]} "
                              f"features but encoding {enc!r} with {n_cov} covariates"
                              + (f" ({n_cat} of them categorical)" if n_cat else "")
                              + (f" and {len(freqs)} frequencies" if freqs else "")
                              + (f" and degree {degree}" if degree else "") + f" gives {d_in}.")
        problem = sampling_problem(encoding)
        if problem:
            raise BundleError(f"{who}: model.json encoding: {problem}")

    def _checked_sh_degree(self, who: str, enc: str) -> int | None:
        """``encoding.degree`` of a ``spherical_harmonics`` bundle, validated; None for other encodings."""
        if enc != "spherical_harmonics":
            return None
        if "degree" not in self.meta["encoding"]:
            raise BundleError(f"{who}: encoding 'spherical_harmonics' needs encoding.degree in model.json "
                              "(the number L of degrees 0..L-1). Re-export the model.")
        try:
            return check_sh_degree(self.meta["encoding"]["degree"])
        except ValueError as exc:
            raise BundleError(f"{who}: model.json encoding.degree: {exc}. Re-export the model.") from None

    def _check_layers(self, who: str, enc: str) -> None:
        """Covariate scaling, every residual block, the head width and the ONNX encoder are present."""
        n_cov = len(self.covariates)
        if uses_covariates(enc):
            for key in (network.ENV_MEAN, network.ENV_STD):
                if key not in self.weights or self.weights[key].shape != (n_cov,):
                    raise BundleError(f"{who}: weights.npz lacks {key!r} of length {n_cov}.")
        dim = self.weights[network.INPUT_W].shape[0]
        for i in range(network.count_blocks(self.weights)):
            for key in network.block_keys(i):
                if key not in self.weights:
                    raise BundleError(f"{who}: weights.npz lacks {key!r}.")
        if self.head.shape[1] != dim:
            raise BundleError(f"{who}: head width {self.head.shape[1]} != embedding width {dim}.")
        if not self.onnx_bytes:
            raise BundleError(f"{who}: encoder.onnx is empty.")

    def write(self, path: str | Path) -> Path:
        """Write the bundle atomically to ``path`` (a temporary name, then a rename), with the
        SHA-256 of each member in ``model.json`` (``meta`` gets the new sums). The head is stored
        as ``head_dtype`` says, and kept in memory as stored (float16 rounds it: choose that through
        ``training.export``, which checks the probabilities first)."""
        self.validate()
        final = Path(path)
        stored = self.head.astype(self.head_dtype, copy=False)
        buf = io.BytesIO()
        np.savez(buf, **{**self.weights, network.HEAD: stored})
        members = {"species.csv": species_csv(self.species).encode("utf-8"), "encoder.onnx": self.onnx_bytes,
                   "weights.npz": buf.getvalue()}
        fp = self.footprint
        if fp is not None and fp.distance is not None:
            members[FOOTPRINT_MEMBER] = fp.distance.to_npz()
        le = self.local_evidence
        if le is not None:
            members[LOCAL_EVIDENCE_MEMBER] = le.to_npz()
        # the optional components' own entries below
        meta = {k: v for k, v in self.meta.items() if k not in (FOOTPRINT_KEY, LOCAL_EVIDENCE_KEY)}
        meta.update({"format_version": format_version_needed(self.meta),
                     SUMS_KEY: {m: hashlib.sha256(b).hexdigest() for m, b in members.items()}})
        if fp is not None:
            meta[FOOTPRINT_KEY] = fp.meta()
        if le is not None:
            meta[LOCAL_EVIDENCE_KEY] = le.meta()
        with atomic_path(final) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("model.json", json.dumps(meta, indent=2, sort_keys=False))
                for name in members:
                    zf.writestr(name, members[name],
                                compress_type=zipfile.ZIP_STORED if name in STORED_MEMBERS else None)
        self.meta = meta
        self.path = final
        self.weights[network.HEAD] = stored.astype(np.float32, copy=False)
        self.sha256 = hashlib.sha256(final.read_bytes()).hexdigest()
        self.warnings = []
        return final

    def _covariate_labels(self) -> list[str]:
        """Covariate names for the card, a categorical one with its number of classes."""
        classes = self.covariate_classes or [None] * len(self.covariates)
        return [n if c is None else f"{n}: categorical, {len(c)} classes"
                for n, c in zip(self.covariate_names, classes)]

    def card(self) -> str:
        """A short human-readable summary (model card) of the bundle, ending with how reliable its
        species' maps are (:mod:`~sinr_qgis.core.reliability`) and the poor ones, one line each."""
        m = self.meta
        data = m.get("data", {})
        train = m.get("training", {})
        lines = [f"Model: {self.name}", f"Species: {self.n_species}",
                 f"Encoding: {self.encoding_label()}"
                 + (f" ({', '.join(self._covariate_labels())})" if self.covariates else ""),
                 f"Loss: {train.get('loss', '?')}, epochs {train.get('epochs', '?')}, "
                 f"cap {train.get('cap', '?')}",
                 *_distillation_lines(train),
                 f"Trained on: {data.get('file', '?')} ({data.get('n_records_used', '?')} records)",
                 f"Created: {m.get('created', '?')}"]
        if data.get("n_removed_no_covariates"):  # a covariate model learns only where its covariates exist
            lines.insert(-1, f"Left out: {data['n_removed_no_covariates']:,} records without a value in every "
                             f"covariate ({data.get('n_species_no_covariates', 0):,} species lost all their records)")
        if self.head_dtype != "float32":
            lines.append(f"Species head stored as {self.head_dtype} (smaller file; probabilities within 0.001)")
        if m.get("evaluation"):
            lines.append(f"Evaluation: {_evaluation_text(m['evaluation'])}")
        lines.append(f"Footprint: {footprint_status(self.footprint, m)}")
        if self.local_evidence is not None:
            lines.append("Local evidence (on unless switched off; pure SINR without it): "
                         f"{self.local_evidence.describe()}")
        if m.get("licence"):
            lines.append(f"Licence: {m['licence']}")
        if m.get("citation"):
            lines.append(f"Cite: {m['citation']}")
        return "\n".join([*lines, species_list_line(self), *reliability_lines(self)])


def _distillation_lines(training: dict[str, Any]) -> list[str]:
    """The card's line about the teacher models a model was distilled from (``training.distill_from``:
    file names and SHA-256, ``distill_weight``); none for a model trained without teachers."""
    teachers = training.get("distill_from") or []
    if not teachers:
        return []
    files = ", ".join(f"{t.get('file', '?')} (SHA-256 {str(t.get('sha256', '?'))[:12]})" for t in teachers)
    return [f"Distilled from: {files}, weight {training.get('distill_weight', '?')}"]


def format_version_needed(meta: dict[str, Any]) -> int:
    """The format version a bundle with ``meta`` is written as: 3 when a covariate is categorical
    (``classes``: an older reader would sample its class codes bilinearly, giving codes between
    classes, so it must refuse the file), 2 when its covariates are read as the official SINR code
    did (``encoding.covariate_sampling``; a version-1 reader would ignore that and feed raw values),
    else 1, which every version of the plugin reads."""
    if covariate_classes(meta.get("encoding", {}).get("covariates") or []):
        return 3
    return 2 if meta.get("encoding", {}).get("covariate_sampling") else 1


def _evaluation_text(ev: Any) -> str:
    """model.json ``evaluation`` in one line: ``<task>_map`` values as "task MAP x.xx %", the
    per-species ``ranges_ap`` only counted, other plain values as they are."""
    if not isinstance(ev, dict):
        return str(ev)
    parts = []
    for k, v in ev.items():
        if k.endswith("_map") and isinstance(v, (int, float)):
            parts.append(f"{k[:-4]} MAP {v:.2f} %")
        elif k == "ranges_ap" and isinstance(v, dict):
            parts.append(f"AP per species against {ranges_reference({'evaluation': ev})} for {len(v)}")
        elif k != "ranges_reference" and not isinstance(v, (dict, list)):
            parts.append(f"{k} {v}")
    return ", ".join(parts)


def _check_member_sums(who: str, meta: dict[str, Any], members: dict[str, bytes]) -> list[str]:
    """Compare each member with ``meta[SUMS_KEY]``: BundleError (without the file name, which the
    caller adds) on a mismatch or a malformed entry; without the key (an older bundle) returns a
    warning naming ``who`` that damage goes undetected."""
    sums = meta.get(SUMS_KEY)
    if sums is None:
        return [f"{who} has no SHA-256 checksums of its files (it was written by an older version), so "
                "damage to them cannot be detected. Export or save it again with this version to add them."]
    if not isinstance(sums, dict):
        raise BundleError(f"model.json {SUMS_KEY} must map member names to SHA-256 sums. "
                          "Re-export or re-download the model.")
    for optional in OPTIONAL_MEMBERS:
        if optional in sums and optional not in members:
            raise BundleError(f"{optional} is missing although model.json records its SHA-256. "
                              "Re-export or re-download the model.")
    for name in members:
        got = hashlib.sha256(members[name]).hexdigest()
        if sums.get(name) != got:
            raise BundleError(f"{name} is damaged or was altered: its SHA-256 {got[:12]}… does not "
                              f"match {str(sums.get(name))[:12]}… recorded in model.json. "
                              "Re-export or re-download the model.")
    return []


def _parse_species(text: str) -> list[Species]:
    """``species.csv`` text -> species in file order. Read as plain rows with the columns looked up
    once (a dict per row took half of a 47,375-species model's load); blank lines are skipped and
    a short row's missing cells are empty, as ``csv.DictReader`` reads them."""
    reader = csv.reader(io.StringIO(text))
    cols = next(reader, [])
    missing = [c for c in SPECIES_COLUMNS if c not in cols]
    if missing:
        raise BundleError(f"species.csv lacks column(s) {', '.join(missing)}")
    at = {c: i for i, c in enumerate(cols)}  # a name twice: the last one, as DictReader reads it
    index, code, name, n_train = (at[c] for c in SPECIES_COLUMNS)
    thr, common, cells = (at.get(c) for c in ("threshold", "common_name", "n_cells"))
    box = [at.get(c) for c in EXTENT_COLUMNS]
    box = None if None in box else box
    out = []
    for row in reader:
        if not row:
            continue
        if len(row) < len(cols):
            row += [""] * (len(cols) - len(row))
        out.append(Species(index=int(row[index]), code=row[code], name=row[name], n_train=int(row[n_train] or 0),
                           threshold=float(row[thr]) if thr is not None and row[thr] != "" else None,
                           common_name=row[common].strip() if common is not None else "",
                           record_extent=_extent([row[i] for i in box]) if box else None,
                           n_cells=_int_or_none(row[cells]) if cells is not None else None))
    return out


def _extent(vals: list[str]) -> tuple[float, float, float, float] | None:
    """The record extent from a species.csv row's four extent cells; None when any is empty."""
    if "" in vals:
        return None
    x0, y0, x1, y1 = (float(v) for v in vals)
    return (x0, y0, x1, y1)


def _int_or_none(text: str | None) -> int | None:
    return None if text in (None, "") else int(text)


def species_csv(species: list[Species]) -> str:
    """``species.csv`` text; the ``threshold``, ``common_name`` and record-extent columns are
    written when any species has one (older readers ignore them)."""
    buf = io.StringIO()
    with_thr = any(s.threshold is not None for s in species)
    with_common = any(s.common_name for s in species)
    with_extent = any(s.record_extent is not None or s.n_cells is not None for s in species)
    cols = list(SPECIES_COLUMNS) + (["threshold"] if with_thr else []) + (["common_name"] if with_common else [])
    cols += [*EXTENT_COLUMNS, "n_cells"] if with_extent else []
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for s in species:
        row = [s.index, s.code, s.name, s.n_train]
        if with_thr:
            row.append("" if s.threshold is None or math.isnan(s.threshold) else f"{s.threshold:.6g}")
        if with_common:
            row.append(s.common_name)
        if with_extent:
            row += [f"{v:.4f}" for v in s.record_extent] if s.record_extent is not None else [""] * 4
            row.append("" if s.n_cells is None else s.n_cells)
        w.writerow(row)
    return buf.getvalue()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
