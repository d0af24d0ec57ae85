"""Inline SVG line charts for the bench page: no JavaScript, no external files.

One function, :func:`line_chart`, draws any number of named series on shared linear or
logarithmic axes with tick labels; everything it writes is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    markers: bool = False


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            ticks.append(round(v, 10))
        v += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def line_chart(series: Sequence[Series], *, x_label: str, y_label: str, title: str,
               log_x: bool = False, x_ticks: Sequence[float] | None = None) -> str:
    """An ``<svg>`` element with one polyline per series, axes, ticks and a legend."""
    pts = [p for s in series for p in s.points if not log_x or p[0] > 0]
    if not pts:
        return (f'<svg width="{WIDTH}" height="60" role="img"><text x="10" y="30">'
                f"{escape(title)}: no data</text></svg>")
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = 0.0, max(ys) * 1.05 or 1.0
    if log_x:
        x_lo, x_hi = 10 ** math.floor(math.log10(x_lo)), 10 ** math.ceil(math.log10(x_hi))
    elif x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        if log_x:
            return LEFT + (math.log10(x) - math.log10(x_lo)) / (
                math.log10(x_hi) - math.log10(x_lo)) * plot_w
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
           'font-family="sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
           'stroke="#ccc"/>']
    if x_ticks is None:
        x_ticks = _log_ticks(x_lo, x_hi) if log_x else _nice_ticks(x_lo, x_hi)
    for t in x_ticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">'
                   f"{escape(_label(t))}</text>")
    for t in _nice_ticks(y_lo, y_hi):
        y = sy(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{escape(_label(t))}</text>")
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">'
               f"{escape(x_label)}</text>")
    out.append(f'<text transform="translate(12 {TOP + plot_h / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points
                          if not log_x or x > 0)
        if coords:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
                       f'points="{coords}"><title>{escape(s.name)}</title></polyline>')
        if s.markers:
            for x, y in s.points:
                out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                           f"<title>{escape(s.name)}: {escape(_label(x))}, "
                           f"{escape(_label(y))}</title></circle>")
        ly = TOP + 12 + 14 * i
        out.append(f'<rect x="{LEFT + 8}" y="{ly - 8}" width="10" height="3" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{LEFT + 22}" y="{ly - 3}">{escape(s.name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
