"""Altered copies of a model bundle: members dropped or replaced, checksums removed, a bit flipped."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from sinr_qgis.core.bundle import SUMS_KEY


def rewrite(src: Path, dst: Path, drop: str | None = None, replace: dict[str, bytes] | None = None,
            resum: bool = True) -> Path:
    """A copy of bundle ``src`` without ``drop`` and with ``replace``d members. ``resum``: record the
    replaced members' SHA-256 in model.json, as a (faulty) exporter would, so that the checks after
    the sums are reached; False: a member altered behind the bundle's back."""
    with zipfile.ZipFile(src) as zin:
        members = {name: (replace or {}).get(name, zin.read(name)) for name in zin.namelist() if name != drop}
    if resum and "model.json" in members and not (replace and "model.json" in replace):
        meta = json.loads(members["model.json"])
        meta[SUMS_KEY].update({n: hashlib.sha256(members[n]).hexdigest() for n in (replace or {}) if n in members})
        members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return dst


def copy_bundle(src, dst, *, drop_sums: bool = False, flip_onnx: bool = False):
    """A copy of ``src`` without member checksums, or with one bit of encoder.onnx flipped."""
    with zipfile.ZipFile(src) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    meta = json.loads(members["model.json"])
    if drop_sums:
        del meta[SUMS_KEY]
    if flip_onnx:
        onnx = bytearray(members["encoder.onnx"])
        onnx[-10] ^= 0x01
        members["encoder.onnx"] = bytes(onnx)
        assert hashlib.sha256(members["encoder.onnx"]).hexdigest() != meta[SUMS_KEY]["encoder.onnx"]
    members["model.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    return dst
