"""Small inline SVG charts (no JavaScript, no external files): line charts with tooltips."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Series", "line_chart"]

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")


@dataclass
class Series:
    """One line: ``xs``/``ys`` of equal length; ``labels`` are the point tooltips."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    labels: Sequence[str] | None = None
    bold: bool = False
    markers: bool = True


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def line_chart(series: Sequence[Series], *, title: str = "", x_label: str = "",
               y_label: str = "", width: int = 360, height: int = 220,
               x_range: tuple[float, float] | None = None,
               y_range: tuple[float, float] | None = None, legend: bool = True,
               x_ticks: Sequence[tuple[float, str]] | None = None) -> str:
    """An ``<svg>`` line chart; axes from the data unless ``x_range``/``y_range`` are given;
    every point carries a ``<title>`` tooltip; ``x_ticks`` replaces the numeric x ticks by
    ``(x, label)`` pairs. Non-finite points are skipped."""
    pts = [(x, y) for s in series for x, y in zip(s.xs, s.ys)
           if math.isfinite(x) and math.isfinite(y)]
    if not pts:
        return (
            f'<svg class="chart" width="{width}" height="40">'
            '<text x="4" y="20">no data</text></svg>'
        )
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = x_range or (min(xs), max(xs))
    y0, y1 = y_range or (min(ys), max(ys))
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 <= y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    elif y_range is None:
        pad = (y1 - y0) * 0.08
        y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 46, 10, 22 if title else 8, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img">']
    if title:
        out.append(f'<text x="{width / 2:.1f}" y="14" text-anchor="middle" class="ct">'
                   f'{html.escape(title)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#bbb"/>')
    for t in _ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" class="tk">'
                   f'{_fmt(t)}</text>')
    for t, text in (x_ticks if x_ticks is not None else [(t, _fmt(t)) for t in _ticks(x0, x1)]):
        x = sx(t)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 12}" text-anchor="middle" class="tk">'
                   f'{html.escape(text)}</text>')
    if x_label:
        out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" text-anchor="middle" '
                   f'class="al">{html.escape(x_label)}</text>')
    if y_label:
        out.append(f'<text x="10" y="{top + ph / 2:.1f}" text-anchor="middle" class="al" '
                   f'transform="rotate(-90 10 {top + ph / 2:.1f})">{html.escape(y_label)}</text>')
    for k, s in enumerate(series):
        colour = _COLOURS[k % len(_COLOURS)]
        xy = [(sx(x), sy(y), lab) for x, y, lab in zip(
            s.xs, s.ys, s.labels or [""] * len(s.xs)) if math.isfinite(x) and math.isfinite(y)]
        if not xy:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width='
                   f'"{2.4 if s.bold else 1.2}" points="{path}"><title>{html.escape(s.name)}'
                   '</title></polyline>')
        if s.markers:
            for x, y, lab in xy:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>'
                           f'{html.escape(s.name + (": " + lab if lab else ""))}</title></circle>')
    if legend and len(series) > 1:
        ly = top + 4
        for k, s in enumerate(series[:8]):
            colour = _COLOURS[k % len(_COLOURS)]
            out.append(f'<rect x="{left + pw - 120}" y="{ly + 12 * k}" width="8" height="8" '
                       f'fill="{colour}"/><text x="{left + pw - 108}" y="{ly + 8 + 12 * k}" '
                       f'class="tk">{html.escape(s.name[:22])}</text>')
    out.append("</svg>")
    return "".join(out)
