"""The evaluation report: a CSV table and a self-contained HTML page with, per species, its
precision-recall curve (inline SVG) and a map thumbnail (inline SVG: the prediction as an embedded
PNG under the outline of the reference cells). Pure Python + numpy (no matplotlib, no Qt), so it is the same
from Processing, the dock and scripts.
"""
from __future__ import annotations

import base64
import csv
import html
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .evaluation import TABLE_COLUMNS, SkippedSpecies, SpeciesEvaluation

# viridis at 0, .25, .5, .75, 1 (the plugin's probability ramp)
_VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
OUTLINE_COLOUR = "#e0115f"


# ---- images ------------------------------------------------------------------------------------
def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode uint8 [H, W, 4] RGBA as a PNG (zlib only)."""
    a = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def colour_ramp(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Viridis RGBA uint8 [H, W, 4] of ``values``; NaN is transparent."""
    v = np.asarray(values, dtype=np.float64)
    t = np.clip((v - vmin) / (vmax - vmin) if vmax > vmin else np.zeros_like(v), 0.0, 1.0)
    pos = np.nan_to_num(t) * (len(_VIRIDIS) - 1)
    i = np.minimum(pos.astype(np.int64), len(_VIRIDIS) - 2)
    f = (pos - i)[..., None]
    rgb = _VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f
    out = np.zeros((*v.shape, 4), dtype=np.uint8)
    out[..., :3] = np.round(rgb).astype(np.uint8)
    out[..., 3] = np.where(np.isfinite(v), 255, 0)
    return out


def _downsample(values: np.ndarray, max_side: int) -> np.ndarray:
    h, w = values.shape
    step = max(1, math.ceil(max(h, w) / max_side))
    return values[step // 2::step, step // 2::step]


# ---- SVG ---------------------------------------------------------------------------------------
def pr_curve_svg(precision: np.ndarray, recall: np.ndarray, *, title: str = "", prevalence: float | None = None,
                 width: int = 260, height: int = 220) -> str:
    """A step-wise precision-recall curve as inline SVG; the dashed line is the prevalence (a random
    ranking's precision)."""
    ml, mr, mt, mb = 40, 10, 28 if title else 10, 32
    pw, ph = width - ml - mr, height - mt - mb

    def xy(r: float, p: float) -> tuple[float, float]:
        return ml + r * pw, mt + (1.0 - p) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="pr-curve" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">',
             f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="white" stroke="#888"/>']
    for k in range(1, 5):
        gx, gy = ml + k * pw / 5, mt + k * ph / 5
        parts.append(f'<line x1="{gx:.1f}" y1="{mt}" x2="{gx:.1f}" y2="{mt + ph}" stroke="#eee"/>')
        parts.append(f'<line x1="{ml}" y1="{gy:.1f}" x2="{ml + pw}" y2="{gy:.1f}" stroke="#eee"/>')
    for k in range(6):
        v = k / 5
        parts.append(f'<text x="{ml + v * pw:.1f}" y="{mt + ph + 12}" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text x="{ml - 4}" y="{mt + (1 - v) * ph + 3:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{ml + pw / 2:.1f}" y="{height - 4}" text-anchor="middle">recall</text>')
    parts.append(f'<text x="10" y="{mt + ph / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 10 {mt + ph / 2:.1f})">precision</text>')
    if title:
        parts.append(f'<text x="{ml}" y="14" font-weight="bold">{html.escape(title)}</text>')
    if prevalence is not None and math.isfinite(prevalence):
        _, y = xy(0, prevalence)
        parts.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="#999" '
                     'stroke-dasharray="4 3"/>')
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(r)
    if ok.sum() >= 2:
        # sklearn order: recall decreasing; draw it as steps (precision holds until recall drops)
        rr, pp = r[ok], p[ok]
        pts = [xy(rr[0], pp[0])]
        for k in range(1, rr.size):
            pts.append(xy(rr[k], pp[k - 1]))  # recall in (r_k, r_k-1] holds precision p_k-1
            pts.append(xy(rr[k], pp[k]))
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<path d="{d}" fill="none" stroke="#1f5fa8" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def map_thumbnail_svg(values: np.ndarray, outline_mask: np.ndarray | None = None, *, max_side: int = 260,
                      title: str = "") -> str:
    """The prediction (values 0..1 [H, W], NaN = nodata) as an embedded PNG with the reference on top:
    the edges between the cells labelled presence and the others in ``outline_mask`` (bool [H, W]).

    The outline is drawn from the labelled cells, not from the reference polygons: the cells are what
    the scores were computed on, and they exist on the grid whatever CRS the polygons were drawn in
    (a polar range has no faithful outline on a lon/lat grid).
    """
    v = np.asarray(values, dtype=np.float64)
    h, w = v.shape
    shrink = max(h, w) > max_side
    scale = min(1.0, max_side / max(h, w)) if shrink else max(1.0, float(max_side // max(h, w)))
    small = _downsample(v, max_side) if shrink else v
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    png = base64.b64encode(png_bytes(colour_ramp(small))).decode("ascii")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
             f'class="map-thumbnail" width="{tw}" height="{th}" viewBox="0 0 {tw} {th}">']
    if title:
        parts.append(f"<title>{html.escape(title)}</title>")
    parts.append(f'<rect width="{tw}" height="{th}" fill="#dde6ee"/>')
    parts.append(f'<image width="{tw}" height="{th}" preserveAspectRatio="none" style="image-rendering:pixelated" '
                 f'xlink:href="data:image/png;base64,{png}"/>')  # xlink: also read by Qt's SVG renderer
    if outline_mask is not None:
        mask = np.asarray(outline_mask, dtype=bool)
        # edges of the thumbnail's own cells: bounded size however large the grid is
        d = _mask_edges(_downsample(mask, max_side), tw / small.shape[1], th / small.shape[0]) if shrink \
            else _mask_edges(mask, scale, scale)
        if d:
            parts.append(f'<path d="{d}" fill="none" stroke="{OUTLINE_COLOUR}" stroke-width="1.2" '
                         'stroke-linejoin="round"/>')
    parts.append("</svg>")
    return "".join(parts)


def _mask_edges(mask: np.ndarray, sx: float, sy: float) -> str:
    """Cell edges between presence and absence cells as short SVG segments (cells ``sx`` x ``sy`` px)."""
    m = np.pad(mask, 1)
    segs = []
    rows, cols = np.nonzero(m[1:-1, 1:] != m[1:-1, :-1])  # vertical edges at x = col
    segs += [f"M{c * sx:.1f},{r * sy:.1f}V{(r + 1) * sy:.1f}" for r, c in zip(rows, cols)]
    rows, cols = np.nonzero(m[1:, 1:-1] != m[:-1, 1:-1])  # horizontal edges at y = row
    segs += [f"M{c * sx:.1f},{r * sy:.1f}H{(c + 1) * sx:.1f}" for r, c in zip(rows, cols)]
    return "".join(segs)


# ---- table and page ----------------------------------------------------------------------------
def write_csv(path: str | Path, results: Sequence[SpeciesEvaluation | SkippedSpecies]) -> Path:
    """One row per species (``TABLE_COLUMNS``; AP in percent; a skipped species has an empty AP and
    its reason in ``skipped``), written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(TABLE_COLUMNS))
            w.writeheader()
            for r in results:
                w.writerow({k: ("" if v is None else v) for k, v in r.row().items()})
    return Path(path)


def _fmt(v: object, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{nd}f}" if isinstance(v, float) else html.escape(str(v))


def _text(name: str) -> str:
    """A species name or code as HTML text: escaped, and isolated (``<bdi>``) so that a name in a
    right-to-left script does not reorder the text around it."""
    return f"<bdi>{html.escape(name)}</bdi>"


def write_html_report(path: str | Path, results: Sequence[SpeciesEvaluation], *, title: str,
                      summary: Sequence[tuple[str, str]] = (), thumbnails: dict[str, str] | None = None,
                      notes: Sequence[str] = ()) -> Path:
    """A self-contained HTML page: summary, the table, then one section per species with its
    precision-recall curve and (if given in ``thumbnails``, keyed by code) its map thumbnail."""
    thumbnails = thumbnails or {}
    css = ("body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td.l,th.l{text-align:left}"
           ".sp{display:inline-block;vertical-align:top;margin:0 1em 1.5em 0}.legend{font-size:small;color:#555}")
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{css}</style></head><body><h1>{html.escape(title)}</h1>"]
    if summary:
        out.append("<table>" + "".join(f"<tr><th class='l'>{html.escape(k)}</th><td class='l'>{html.escape(v)}</td>"
                                       "</tr>" for k, v in summary) + "</table>")
    for n in notes:
        out.append(f"<p>{html.escape(n)}</p>")
    head = ("<tr><th class='l'>code</th><th class='l'>name</th><th>AP (%)</th><th>prevalence</th>"
            "<th>cells</th><th>presences</th><th>F1-optimal threshold</th><th>F1</th><th>IoU</th></tr>")
    rows = []
    # anchors by position: a code may hold spaces, quotes or '#', which an id or a link cannot
    for k, r in enumerate(results):
        rows.append(f"<tr><td class='l'><a href='#sp{k}'>{_text(r.code)}</a></td>"
                    f"<td class='l'>{_text(r.name)}</td><td>{_fmt(r.ap_percent)}</td>"
                    f"<td>{_fmt(r.prevalence, 4)}</td><td>{r.n_cells}</td><td>{r.n_presence}</td>"
                    f"<td>{_fmt(r.threshold, 4)}</td><td>{_fmt(r.f1, 3)}</td><td>{_fmt(r.iou, 3)}</td></tr>")
    out.append("<h2>Per species</h2><table>" + head + "".join(rows) + "</table>")
    out.append(f"<p class='legend'>Maps: the prediction (viridis, low to high) with the reference outline in "
               f"<span style='color:{OUTLINE_COLOUR}'>magenta</span>. Curves: precision against recall as "
               "the threshold falls; the dashed line is the prevalence (what a random map scores).</p>")
    for k, r in enumerate(results):
        curve = pr_curve_svg(r.curve_precision, r.curve_recall, title=f"AP {_fmt(r.ap_percent)} %",
                             prevalence=r.prevalence)
        out.append(f"<div class='sp' id='sp{k}'><h3>{_text(r.name or r.code)} "
                   f"({_text(r.code)})</h3>{thumbnails.get(r.code, '')} {curve}</div>")
    out.append("</body></html>")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(out), encoding="utf-8")
    return Path(path)
