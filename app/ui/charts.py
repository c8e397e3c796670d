"""Server-rendered SVG charts (pure: no I/O, no framework imports beyond markupsafe).

:func:`stacked_bars` draws one bar per time bucket, stacked by series; each bar's ``<title>`` holds
its values, so they show on hover and reach screen readers. :func:`share_bar` draws one horizontal
bar split into parts (provider share). Every text goes through ``markupsafe.escape``; the returned
``Markup`` is safe to put in a Jinja template as is. Colours come from CSS classes (``s0``..``s3``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


EDGE_LABEL_ROOM = 80  # viewBox units: an x label centred closer than this to an edge is anchored to it


@dataclass(frozen=True)
class Bar:
    """One bucket: its axis ``label`` and one value per series (same order as the series names)."""

    label: str
    values: tuple[float, ...]


def nice_max(value: float) -> float:
    """The smallest 1/2/2.5/5 x 10^n that is >= ``value`` (1 for 0), for a readable y axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def compact(value: float) -> str:
    """A short axis label: 950, 2.5, 12k, 1.5M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def stacked_bars(bars: Sequence[Bar], series: Sequence[str], *, title: str,
                 fmt: Callable[[float], str] = lambda v: f"{v:,.0f}", axis_prefix: str = "",
                 width: int = 760, height: int = 220, max_labels: int = 8) -> Markup:
    """An SVG bar chart of ``bars`` stacked by ``series`` (names, in stacking order from the axis up).

    ``fmt`` formats values in the hover titles; the y axis uses :func:`compact` (``axis_prefix``
    before it, e.g. "$"). Shape: ``<svg role="img">`` with a ``<title>``, y gridlines at 0, 1/2
    and the max, at most ``max_labels`` x labels (``class="axis x"``, every other one also
    ``minor``), and "no data" when every value is 0.
    """
    left, right, top, bottom = 60, 36, 10, 26  # room for the larger axis text on phones
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = nice_max(max((sum(b.values) for b in bars), default=0))
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.8, 1.0)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>"]
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" y2="{_num(y)}"/>'
                     f'<text class="axis" x="{left - 6}" y="{_num(y + 4)}" text-anchor="end">'
                     f"{escape(axis_prefix + compact(peak * fraction))}</text>")
    if not any(v > 0 for b in bars for v in b.values):
        parts.append(f'<text class="axis nodata" x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h / 2)}" '
                     'text-anchor="middle">no data in this range</text>')
    every = max(1, math.ceil(len(bars) / max_labels))
    for i, bar in enumerate(bars):
        x = left + i * slot + (slot - bar_w) / 2
        detail = ", ".join(f"{name} {fmt(v)}" for name, v in zip(series, bar.values, strict=True))
        parts.append(f'<g class="bar"><title>{escape(bar.label)}: {escape(fmt(sum(bar.values)))}'
                     f"{escape(' (' + detail + ')') if len(series) > 1 else ''}</title>")
        parts.append(f'<rect class="hit" x="{_num(left + i * slot)}" y="{top}" width="{_num(slot)}" '
                     f'height="{plot_h}"/>')
        base: float = top + plot_h
        for k, value in enumerate(bar.values):
            if value <= 0:
                continue
            h = plot_h * value / peak
            base -= h
            parts.append(f'<rect class="s{k % 4}" x="{_num(x)}" y="{_num(base)}" width="{_num(bar_w)}" '
                         f'height="{_num(h)}"/>')
        parts.append("</g>")
        if i % every == 0:
            # Every other label is "minor": narrow screens hide those and draw the rest larger.
            # Labels near an edge are anchored to it, so that larger text is not cut off.
            minor = " minor" if (i // every) % 2 else ""
            center = x + bar_w / 2
            if center > width - right - EDGE_LABEL_ROOM:
                anchor, at = "end", float(width - 2)
            elif center < left + EDGE_LABEL_ROOM / 2:
                anchor, at = "start", float(left - 10)
            else:
                anchor, at = "middle", center
            parts.append(f'<text class="axis x{minor}" x="{_num(at)}" y="{height - 8}" '
                         f'text-anchor="{anchor}">{escape(bar.label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(parts: Sequence[tuple[str, float]], *, title: str, width: int = 760, height: int = 18) -> Markup:
    """A horizontal bar split into ``parts`` (``(name, value)``) in proportion; hover titles give
    each part's value and percent. An empty bar when every value is 0."""
    total = sum(v for _, v in parts)
    out = [f'<svg class="share" viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="none" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
           f'<rect class="empty" x="0" y="0" width="{width}" height="{height}"/>']
    x = 0.0
    for k, (name, value) in enumerate(parts):
        if total <= 0 or value <= 0:
            continue
        w = width * value / total
        out.append(f'<g><title>{escape(name)}: {value:,.0f} ({100 * value / total:.1f}%)</title>'
                   f'<rect class="s{k % 4}" x="{_num(x)}" y="0" width="{_num(w)}" height="{height}"/></g>')
        x += w
    out.append("</svg>")
    return Markup("".join(out))
