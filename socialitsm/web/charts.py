"""Server-rendered SVG charts: no script, no CDN. Every label is escaped, every chart has a title
and a description for screen readers, and every mark carries its number (the page's tables
repeat them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 48
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    css: str = ""


def _nice_max(top: float) -> float:
    """A round axis maximum at or above `top`: 1, 2, 2.5 or 5 times a power of ten."""
    if top <= 0:
        return 1
    magnitude = 10 ** len(str(int(top))) / 10 if top >= 1 else 0.1
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= top:
            return step * magnitude
    return 10 * magnitude


def _anchor(i: int, count: int) -> str:
    """Edge labels align inwards so they are not cut off."""
    if count > 1 and i == 0:
        return "start"
    return "end" if count > 1 and i == count - 1 else "middle"


def _join(parts: Sequence[SafeString]) -> SafeString:
    return format_html_join("", "{}", ((part,) for part in parts))


def _number(value: float) -> str:
    return f"{value:g}"


def _frame(chart_id: str, title: str, desc: str, body: SafeString, legend: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}{legend}</svg>',
        id=chart_id,
        w=WIDTH,
        h=HEIGHT,
        title=title,
        desc=desc,
        body=body,
        legend=legend,
    )


def _axis(top: float) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    rows = []
    for i in range(5):
        tick = top * i / 4
        y = round(TOP + plot_h - plot_h * tick / top, 1)
        rows.append((LEFT, WIDTH - RIGHT, y, y, LEFT - 6, y, _number(round(tick, 2))))
    return format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
        rows,
    )


def _legend(series: Sequence[Series]) -> SafeString:
    return format_html_join(
        "",
        '<g class="legend"><rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
        '<text x="{}" y="{}" dominant-baseline="hanging">{}</text></g>',
        (
            (LEFT + i * 130, HEIGHT - 14, PALETTE[i % len(PALETTE)], LEFT + i * 130 + 14, HEIGHT - 14, s.name)
            for i, s in enumerate(series)
        ),
    )


def bar_chart(
    *, chart_id: str, title: str, desc: str, categories: Sequence[str], series: Sequence[Series]
) -> SafeString:
    """Grouped bars of counts: one group per category, one bar per series."""
    # At least 4 so that the axis ticks of small counts are whole numbers.
    top = max(4, _nice_max(max((v or 0 for s in series for v in s.values), default=0)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(1, len(categories))
    bar_w = group_w * 0.8 / max(1, len(series))
    bars = []
    for c, category in enumerate(categories):
        for s_index, s in enumerate(series):
            value = s.values[c] or 0
            h = plot_h * value / top
            bars.append(
                format_html(
                    '<rect class="bar {css}" data-series="{series}" data-category="{category}" data-value="{value}" '
                    'x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"><title>{category} {series}: {value}</title>'
                    "</rect>",
                    css=s.css,
                    series=s.name,
                    category=category,
                    value=_number(value),
                    x=round(LEFT + c * group_w + group_w * 0.1 + s_index * bar_w, 1),
                    y=round(TOP + plot_h - h, 1),
                    w=round(bar_w, 1),
                    h=round(h, 1),
                    fill=PALETTE[s_index % len(PALETTE)],
                )
            )
    labels = format_html_join(
        "",
        '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((round(LEFT + (c + 0.5) * group_w, 1), HEIGHT - BOTTOM + 16, cat) for c, cat in enumerate(categories)),
    )
    body = format_html("{}{}{}", _axis(top), _join(bars), labels)
    return _frame(chart_id, title, desc, body, _legend(series))


def line_chart(*, chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """One line per series over `labels`; a missing value breaks the line. An infinite value (a
    ratio over zero) is drawn as a marker on the top edge, also breaking the line."""
    top = _nice_max(max((v for s in series for v in s.values if v is not None and not math.isinf(v)), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return round(LEFT + i * step, 1), round(TOP + plot_h - plot_h * value / top, 1)

    marks = []
    for s_index, s in enumerate(series):
        colour = PALETTE[s_index % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            if math.isinf(value):
                runs.append([])
                x = point(i, 0)[0]
                marks.append(
                    format_html(
                        '<path class="dot infinite" data-series="{s}" data-category="{label}" data-value="inf" '
                        'd="M{x0},{y1} L{x},{y0} L{x2},{y1} Z" fill="{c}"><title>{label} {s}: only negative posts'
                        "</title></path>",
                        s=s.name,
                        label=labels[i],
                        x=x,
                        x0=round(x - 5, 1),
                        x2=round(x + 5, 1),
                        y0=TOP - 2,
                        y1=TOP + 7,
                        c=colour,
                    )
                )
                continue
            runs[-1].append(point(i, value))
            x, y = point(i, value)
            marks.append(
                format_html(
                    '<circle class="dot" data-series="{s}" data-category="{label}" data-value="{v}" cx="{x}" cy="{y}" '
                    'r="3" fill="{c}"><title>{label} {s}: {v}</title></circle>',
                    s=s.name,
                    label=labels[i],
                    v=_number(value),
                    x=x,
                    y=y,
                    c=colour,
                )
            )
        for run in runs:
            if len(run) > 1:
                marks.append(
                    format_html(
                        '<polyline class="line" fill="none" stroke="{}" stroke-width="2" points="{}"/>',
                        colour,
                        " ".join(f"{x},{y}" for x, y in run),
                    )
                )
    every = max(1, len(labels) // 7)
    ticks = format_html_join(
        "",
        '<text class="label" x="{}" y="{}" text-anchor="{}">{}</text>',
        (
            (point(i, 0)[0], HEIGHT - BOTTOM + 16, _anchor(i, len(labels)), label[5:])
            for i, label in enumerate(labels)
            if i % every == 0 or i == len(labels) - 1
        ),
    )
    body = format_html("{}{}{}", _axis(top), _join(marks), ticks)
    return _frame(chart_id, title, desc, body, _legend(series))
