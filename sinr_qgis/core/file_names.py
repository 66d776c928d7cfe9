"""File names made from species codes (and layer names): readable, distinct and valid on every desktop file system.

A species code may hold any character. In a file name the plugin keeps letters of every script
(Cyrillic, accents, CJK), combining marks, digits, the hybrid sign '×', '-', '.' and '_', and
turns every other run of characters into one '_': spaces, the characters Windows refuses
(``<>:"/\\|?*``), control and invisible format characters (bidi overrides, zero-width spaces),
emoji and punctuation, including ',' and ';', which would split the lists of paths QGIS and
``qgis_process`` print. Names never start or end with '.', '_' or a space (hidden files,
Windows' trailing-dot rule), never are a Windows device name (``CON``, ``NUL``, ``COM1``...: a
'_' is added) and are NFC-normalised.

Two codes are given the same file when their names compare equal on a case-insensitive,
normalisation-insensitive file system (Windows, macOS): :func:`file_key`. Such codes are told
apart by a tag derived from the code itself (8 hex digits of its SHA-1), so a species gets the
same file name whichever other species are written with it.

Whole file names are kept within :data:`MAX_NAME_BYTES` UTF-8 bytes: file systems allow 255,
and the plugin's temporary names (``.<stem>.XXXXXXXX.part.tif``) and GDAL's ``.aux.xml`` sidecar
need the rest.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

MAX_NAME_BYTES = 200
FALLBACK = "species"
_KEEP = frozenset("-._×")
_RUNS = re.compile(r"_+")
_DIGITS = "0123456789¹²³"
_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{d}" for d in _DIGITS), *(f"LPT{d}" for d in _DIGITS)})


def file_key(name: str) -> str:
    """``name`` as a case- and normalisation-insensitive file system compares it."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _trim(text: str) -> str:
    text = text.strip("._ ")
    while text and unicodedata.category(text[0]).startswith("M"):  # a mark with nothing to sit on
        text = text[1:].lstrip("._ ")
    return text


def _fit(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes at a character boundary, without a
    dangling combining mark or trailing separator."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    cut = raw[:max(0, max_bytes)].decode("utf-8", errors="ignore")  # a prefix of ``text``
    if unicodedata.category(text[len(cut)]).startswith("M"):
        # the cut falls inside a letter + combining marks: drop that whole letter
        while cut and unicodedata.category(cut[-1]).startswith("M"):
            cut = cut[:-1]
        cut = cut[:-1]
    return _trim(cut)


def safe_file_stem(text: str, max_bytes: int = MAX_NAME_BYTES, fallback: str = FALLBACK) -> str:
    """A readable file-name stem (no extension) for ``text``, at most ``max_bytes`` UTF-8 bytes;
    ``fallback`` when nothing readable is left. Rules in the module docstring."""
    t = unicodedata.normalize("NFC", str(text))
    kept = "".join(ch if unicodedata.category(ch)[0] in "LMN" or ch in _KEEP else "_" for ch in t)
    stem = _fit(_trim(_RUNS.sub("_", kept)), max_bytes)
    head, dot, tail = stem.partition(".")
    if head.upper() in _RESERVED:
        stem = _fit(f"{head}_{dot}{tail}", max_bytes)
    return stem or fallback


def unique_file_stems(codes: Sequence[str], max_bytes: int = MAX_NAME_BYTES) -> list[str]:
    """One stem per code (same order), pairwise distinct under :func:`file_key`.

    A code whose :func:`safe_file_stem` collides with another code's gets ``_<8 hex>`` of its own
    SHA-1; a remaining clash (equal codes) gets ``_2``, ``_3``... in order.
    """
    base = [safe_file_stem(c, max_bytes) for c in codes]
    counts = Counter(file_key(b) for b in base)
    taken: set[str] = set()
    out = []
    for code, stem in zip(codes, base):
        if counts[file_key(stem)] > 1:
            stem = _tagged(stem, "_" + hashlib.sha1(str(code).encode()).hexdigest()[:8], max_bytes)
        unique, n = stem, 1
        while file_key(unique) in taken:
            n += 1
            unique = _tagged(stem, f"_{n}", max_bytes)
        taken.add(file_key(unique))
        out.append(unique)
    return out


def _tagged(stem: str, tag: str, max_bytes: int) -> str:
    return (_fit(stem, max_bytes - len(tag.encode("utf-8"))) or FALLBACK) + tag
