"""Small, dependency-free SVG charts for the HTML report: lines, grouped bars, histograms.

Each function returns one ``<svg>`` element as a string that the report inlines, so the
page needs no script, font or file beside it. Colours come from one fixed palette and
every chart carries a legend and axis labels; values are escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

__all__ = ["bar_chart", "histogram", "line_chart"]

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_W, _H = 560, 300
_L, _R, _T, _B = 56, 16, 16, 56  # margins: left (y labels), right, top, bottom (x labels, legend)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag * 10)
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int(math.ceil((hi - start) / step)) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _frame(
    title: str,
    xlabel: str,
    ylabel: str,
    y_ticks: list[float],
    y_of,
    body: list[str],
    legend: Sequence[str],
) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        '<rect x="0" y="0" width="100%" height="100%" fill="#fff"/>',
    ]
    for t in y_ticks:
        y = y_of(t)
        parts.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_fmt(t)}</text>'
        )
    parts.append(f'<line x1="{_L}" x2="{_L}" y1="{_T}" y2="{_H - _B}" stroke="#333"/>')
    parts.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{_H - _B}" y2="{_H - _B}" stroke="#333"/>')
    parts += body
    parts.append(
        f'<text x="{(_L + _W - _R) / 2}" y="{_H - _B + 34}" text-anchor="middle" '
        f'font-size="12">{escape(xlabel)}</text>'
    )
    parts.append(
        f'<text transform="translate(14,{(_T + _H - _B) / 2}) rotate(-90)" '
        f'text-anchor="middle" font-size="12">{escape(ylabel)}</text>'
    )
    x = _L
    for i, name in enumerate(legend):
        parts.append(f'<rect x="{x}" y="{_H - 14}" width="10" height="10" fill="{_color(i)}"/>')
        parts.append(f'<text x="{x + 14}" y="{_H - 5}" font-size="11">{escape(str(name))}</text>')
        x += 22 + 7 * len(str(name))
    parts.append("</svg>")
    return "\n".join(parts)


def _y_scale(values: Sequence[float], zero: bool = True):
    finite = [v for v in values if math.isfinite(v)]
    lo = min([0.0] if zero else []) if zero else min(finite, default=0.0)
    if zero:
        lo = min([0.0, *finite])
    hi = max(finite, default=1.0)
    ticks = _ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return _H - _B - (v - lo) / (hi - lo) * (_H - _B - _T)

    return ticks, y_of


def line_chart(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
) -> str:
    """One line with markers per series: ``{name: (x values, y values)}``."""
    xs = [x for xv, _ in series.values() for x in xv]
    ys = [y for _, yv in series.values() for y in yv]
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    x_lo, x_hi = min(map(tx, xs), default=0.0), max(map(tx, xs), default=1.0)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1.0
    ticks, y_of = _y_scale(ys)

    def x_of(v: float) -> float:
        return _L + 10 + (tx(v) - x_lo) / (x_hi - x_lo) * (_W - _R - _L - 20)

    body = []
    for x in sorted(set(xs)):
        body.append(
            f'<text x="{x_of(x):.1f}" y="{_H - _B + 16}" text-anchor="middle" '
            f'font-size="11">{_fmt(x)}</text>'
        )
    for i, (xv, yv) in enumerate(series.values()):
        pts = [(x_of(x), y_of(y)) for x, y in zip(xv, yv, strict=True) if math.isfinite(y)]
        if pts:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{_color(i)}" stroke-width="2"/>'
            )
            body += [
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_color(i)}"/>' for x, y in pts
            ]
    return _frame(title, xlabel, ylabel, ticks, y_of, body, list(series))


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    errors: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    reference: float | None = None,
) -> str:
    """Grouped bars: one group per category, one bar per series; optional error bars
    ``{series: (lows, highs)}`` and a dashed reference line (e.g. an exposure ratio of 1)."""
    values = [v for vs in series.values() for v in vs]
    if errors:
        values += [v for lo, hi in errors.values() for v in (*lo, *hi)]
    if reference is not None:
        values.append(reference)
    ticks, y_of = _y_scale(values)
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    group_w = (_W - _L - _R) / n_cat
    bar_w = group_w * 0.8 / n_ser
    body = []
    for c, cat in enumerate(categories):
        x0 = _L + c * group_w + group_w * 0.1
        label = str(cat) if len(str(cat)) <= 12 else str(cat)[:11] + "…"
        body.append(
            f'<text x="{_L + (c + 0.5) * group_w:.1f}" y="{_H - _B + 16}" text-anchor="middle" '
            f'font-size="11">{escape(label)}</text>'
        )
        for s, (name, vs) in enumerate(series.items()):
            v = vs[c]
            if not math.isfinite(v):
                continue
            top, base = y_of(max(v, 0.0)), y_of(min(v, 0.0))
            x = x0 + s * bar_w
            body.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar_w * 0.92:.1f}" '
                f'height="{max(base - top, 0.5):.1f}" fill="{_color(s)}">'
                f"<title>{escape(str(name))} {escape(str(cat))}: {_fmt(v)}</title></rect>"
            )
            if errors and name in errors:
                lo, hi = errors[name][0][c], errors[name][1][c]
                if math.isfinite(lo) and math.isfinite(hi):
                    cx = x + bar_w * 0.46
                    body.append(
                        f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y_of(lo):.1f}" '
                        f'y2="{y_of(hi):.1f}" stroke="#222" stroke-width="1.5"/>'
                    )
    if reference is not None:
        y = y_of(reference)
        body.append(
            f'<line x1="{_L}" x2="{_W - _R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#222" '
            'stroke-dasharray="5,4"/>'
        )
    return _frame(title, xlabel, ylabel, ticks, y_of, body, list(series))


def histogram(
    series: Mapping[str, Sequence[float] | np.ndarray],
    *,
    title: str,
    xlabel: str,
    bins: int = 20,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Overlaid step histograms (share of users per bin) of each series' finite values."""
    clean = {
        k: np.asarray([v for v in vs if math.isfinite(v)], dtype=np.float64)
        for k, vs in series.items()
    }
    allv = np.concatenate([v for v in clean.values()] or [np.zeros(1)])
    lo, hi = value_range or (float(allv.min(initial=0.0)), float(allv.max(initial=1.0)))
    hi = hi if hi > lo else lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    shares = {k: (np.histogram(v, bins=edges)[0] / max(len(v), 1)) for k, v in clean.items()}
    ticks, y_of = _y_scale([s for v in shares.values() for s in v])

    def x_of(v: float) -> float:
        return _L + (v - lo) / (hi - lo) * (_W - _L - _R)

    body = [
        f'<text x="{x_of(t):.1f}" y="{_H - _B + 16}" text-anchor="middle" font-size="11">'
        f"{_fmt(t)}</text>"
        for t in np.linspace(lo, hi, 6)
    ]
    for i, share in enumerate(shares.values()):
        pts = [f"{x_of(edges[0]):.1f},{y_of(0):.1f}"]
        for b, s in enumerate(share):
            pts += [
                f"{x_of(edges[b]):.1f},{y_of(s):.1f}",
                f"{x_of(edges[b + 1]):.1f},{y_of(s):.1f}",
            ]
        pts.append(f"{x_of(edges[-1]):.1f},{y_of(0):.1f}")
        body.append(
            f'<polyline points="{" ".join(pts)}" fill="{_color(i)}" fill-opacity="0.15" '
            f'stroke="{_color(i)}" stroke-width="2"/>'
        )
    return _frame(title, xlabel, "share of users", ticks, y_of, body, list(series))
