"""Line charts as inline SVG, drawn by a few lines of our own (no plotting library, no namespace URL).

An inline ``<svg>`` inside an HTML5 page needs no ``xmlns`` attribute, so a chart adds no URL of any kind to
the page (matplotlib's SVG output would add ``http://www.w3.org/...``). Used for the loss and validation curves
of training runs (:mod:`mrisr.report.runs`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mrisr.report.page import esc

#: Line colours, in series order (matplotlib's "tab10").
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")

Series = Mapping[str, Sequence[tuple[float, float]]]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 x 10^k) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_chart(series: Series, *, title: str, xlabel: str, ylabel: str, width: int = 520, height: int = 280,
               markers: bool = False, dashed: Sequence[str] = ()) -> str:
    """One SVG chart with a line per series (``name -> [(x, y), ...]``, non-finite points dropped) and a legend.

    ``markers`` draws every point as a dot (for sparse series such as per-epoch means or validation scores;
    a series of one point always gets its dot); ``dashed`` names series drawn dashed (e.g. baselines beside a
    model). Axes span the data with round ticks. Returns ``<svg ...>...</svg>`` (or a short note when there is
    nothing to draw).
    """
    clean = {name: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
             for name, pts in series.items()}
    clean = {k: v for k, v in clean.items() if v}
    if not clean:
        return f"<p class='muted'>{esc(title)}: no values logged</p>"
    xs = [x for pts in clean.values() for x, _ in pts]
    ys = [y for pts in clean.values() for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 <= y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 58, 12, 24, 40
    legend_h = 16 * len(clean)
    pw, ph = width - left - right, height - top - bottom
    total_h = height + legend_h

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f"<svg class='chart' width='{width}' height='{total_h}' viewBox='0 0 {width} {total_h}' role='img' "
           f"aria-label='{esc(title)}'>",
           f"<text x='{left}' y='15' font-weight='bold'>{esc(title)}</text>"]
    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            out.append(f"<line class='grid' x1='{left}' x2='{left + pw}' y1='{py(t):.1f}' y2='{py(t):.1f}'/>"
                       f"<text x='{left - 4}' y='{py(t) + 4:.1f}' text-anchor='end'>{_fmt(t)}</text>")
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            out.append(f"<line class='grid' x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{top}' y2='{top + ph}'/>"
                       f"<text x='{px(t):.1f}' y='{top + ph + 14}' text-anchor='middle'>{_fmt(t)}</text>")
    out.append(f"<rect class='axis' x='{left}' y='{top}' width='{pw}' height='{ph}' fill='none'/>")
    out.append(f"<text x='{left + pw / 2:.1f}' y='{top + ph + 32}' text-anchor='middle'>{esc(xlabel)}</text>")
    out.append(f"<text transform='translate(13 {top + ph / 2:.1f}) rotate(-90)' text-anchor='middle'>"
               f"{esc(ylabel)}</text>")
    for i, (name, pts) in enumerate(clean.items()):
        colour = PALETTE[i % len(PALETTE)]
        dash = " stroke-dasharray='5 3'" if name in dashed else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        out.append(f"<polyline data-series='{esc(name)}' points='{coords}' fill='none' stroke='{colour}' "
                   f"stroke-width='1.5'{dash}/>")
        if markers or len(pts) == 1:
            out += [f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='2.5' fill='{colour}'/>" for x, y in pts]
        ly = height + 16 * i + 4
        out.append(f"<line x1='{left}' x2='{left + 22}' y1='{ly}' y2='{ly}' stroke='{colour}' stroke-width='2'{dash}/>"
                   f"<text x='{left + 28}' y='{ly + 4}'>{esc(name)}</text>")
    out.append("</svg>")
    return "".join(out)
