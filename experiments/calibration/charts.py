"""Small self-contained SVG charts for the calibration report: a line chart with a marked split, grouped bars.

Each function returns the text of one ``<svg>`` element (with ``xmlns``, a ``viewBox`` and a fixed size, so that
it renders as a standalone file, in a README, and inlined in HTML, where CSS lets it shrink to the page). No
scripts, no external fonts, no links.
"""

from __future__ import annotations

import html
import math

import numpy as np

COLOURS = {"real": "#222222", "stickyrec": "#1f77b4", "bgnbd": "#d62728"}
FONT = 'font-family="Helvetica, Arial, sans-serif"'
MARGIN = {"left": 68, "right": 16, "top": 40, "bottom": 58}


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if not np.isfinite(high - low) or high <= low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    return np.arange(math.floor(low / step) * step, high + step * 0.999, step)


def tick_label(value: float, percent: bool = False) -> str:
    if percent:
        return f"{round(value * 100, 1):g}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def _open(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{html.escape(title)}" {FONT} font-size="12">',
        f"<title>{html.escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2:.1f}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
        f"{html.escape(title)}</text>",
    ]


def _axes(parts: list[str], box: tuple, ticks: np.ndarray, y_of, y_label: str, percent: bool) -> None:
    left, top, right, bottom = box
    for tick in ticks:
        y = y_of(tick)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">{tick_label(tick, percent)}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#888"/>')
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888"/>')
    middle = (top + bottom) / 2
    parts.append(
        f'<text x="16" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 16 {middle:.1f})" fill="#444">'
        f"{html.escape(y_label)}</text>"
    )


def _legend(parts: list[str], names: list[str], colours: list[str], dashes: list[str], x: float, y: float) -> None:
    for i, (name, colour, dash) in enumerate(zip(names, colours, dashes, strict=True)):
        top = y + 18 * i
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 26}" y1="{top:.1f}" y2="{top:.1f}" stroke="{colour}" stroke-width="2.5"{dashed}/>'
        )
        parts.append(f'<text x="{x + 32}" y="{top + 4:.1f}">{html.escape(name)}</text>')


def _x_title(parts: list[str], x: float, y: float, text: str) -> None:
    parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" fill="#444">{html.escape(text)}</text>')


def line_chart(
    labels: list[str],
    series: list[dict],
    *,
    title: str,
    y_label: str,
    mark: int | None = None,
    mark_label: str = "",
    width: int = 900,
    height: int = 420,
) -> str:
    """Lines over the positions of ``labels`` (x tick labels, thinned to fit). Each series: ``{"name", "values",
    "colour", "dash"}`` (values may hold None). ``mark``: index of a vertical dashed line (e.g. the split)."""
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = width - MARGIN["right"], height - MARGIN["bottom"]
    values = [v for s in series for v in s["values"] if v is not None and np.isfinite(v)]
    ticks = nice_ticks(min(0.0, min(values, default=0.0)), max(values, default=1.0))
    span = max(len(labels) - 1, 1)

    def x_of(i: float) -> float:
        return left + (right - left) * i / span

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (v - ticks[0]) / (ticks[-1] - ticks[0])

    parts = _open(width, height, title)
    _axes(parts, (left, top, right, bottom), ticks, y_of, y_label, False)
    every = max(1, math.ceil(len(labels) / 10))
    for i in range(0, len(labels), every):
        parts.append(f'<text x="{x_of(i):.1f}" y="{bottom + 18}" text-anchor="middle" fill="#444">{labels[i]}</text>')
    if mark is not None:
        x = x_of(mark)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}" stroke="#555" stroke-dasharray="5 4"/>')
        parts.append(
            f'<text x="{x - 6:.1f}" y="{top + 14}" text-anchor="end" fill="#333">{html.escape(mark_label)}</text>'
        )
    for s in series:
        points = [f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(s["values"]) if v is not None and np.isfinite(v)]
        dashed = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
        parts.append(
            f'<polyline fill="none" stroke="{s["colour"]}" stroke-width="2.2"{dashed} points="{" ".join(points)}"/>'
        )
    _legend(
        parts, [s["name"] for s in series], [s["colour"] for s in series], [s.get("dash", "") for s in series],
        left + 14, top + 14,
    )  # fmt: skip
    parts.append(
        f'<text x="{(left + right) / 2:.1f}" y="{height - 14}" text-anchor="middle" fill="#444">week ending</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def bar_chart(
    labels: list[str],
    series: list[dict],
    *,
    title: str,
    y_label: str,
    x_label: str,
    width: int = 900,
    height: int = 360,
) -> str:
    """Grouped bars of shares (0..1, drawn as percent), one group per label. Each series: ``{"name", "values",
    "colour"}``."""
    left, top = MARGIN["left"], MARGIN["top"]
    right, bottom = width - MARGIN["right"], height - MARGIN["bottom"]
    values = [v for s in series for v in s["values"] if v is not None and np.isfinite(v)]
    ticks = nice_ticks(0.0, max(values, default=1.0))
    group = (right - left) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    tilt = max((len(label) for label in labels), default=0) * 7 > group  # labels wider than their group
    bottom -= 16 if tilt else 0  # room for the tilted labels

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * (v - ticks[0]) / (ticks[-1] - ticks[0])

    parts = _open(width, height, title)
    _axes(parts, (left, top, right, bottom), ticks, y_of, y_label, True)
    for i, label in enumerate(labels):
        centre = left + group * (i + 0.5)
        if tilt:
            parts.append(
                f'<text x="{centre:.1f}" y="{bottom + 14}" text-anchor="end" fill="#444" font-size="11"'
                f' transform="rotate(-35 {centre:.1f} {bottom + 14})">{html.escape(label)}</text>'
            )
        else:
            parts.append(f'<text x="{centre:.1f}" y="{bottom + 18}" text-anchor="middle" fill="#444">{label}</text>')
        for j, s in enumerate(series):
            v = s["values"][i]
            if v is None or not np.isfinite(v):
                continue
            x = left + group * i + group * 0.1 + bar * j
            parts.append(
                f'<rect x="{x:.1f}" y="{y_of(v):.1f}" width="{bar:.1f}" height="{bottom - y_of(v):.1f}"'
                f' fill="{s["colour"]}"/>'
            )
    names, colours = [s["name"] for s in series], [s["colour"] for s in series]
    _legend(parts, names, colours, [""] * len(series), right - 150, top + 14)
    _x_title(parts, (left + right) / 2, height - 8, x_label)
    parts.append("</svg>")
    return "\n".join(parts)
