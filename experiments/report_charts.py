"""The run report's inline SVG charts: lines with interval bands and direct labels, and a scatter with error bars.

Each chart is the text of one ``<svg class="plot">`` (``viewBox``, no fixed size: CSS sizes it to the page). Every
line (band, line, end label) or point is one ``<g class="series" data-series=NAME data-pts=...>``: ``data-pts`` is
JSON ``[[x, y, day, value, low, high, n], ...]`` (x, y in the svg's own units; the group's ``data-fmt``: pct or
num), or ``[[x, y, tooltip text]]`` (a scatter's point), which ``report_assets/report.js`` reads for the hover
tooltip (value, 95% interval, n); the legend toggles the groups. Ticks come from ``calibration.charts`` (the one
tick rule). No scripts, fonts or links inside the SVG.
"""

from __future__ import annotations

import html
import json

import numpy as np

from stickyrec.experiments.calibration.charts import nice_ticks, tick_label

# matplotlib's tab10 then tab20's light shades, without their greys (the oracles' colours): one colour per agent
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)  # fmt: skip
DASH = "6 4"  # oracles (reference bounds: they read hidden state)
FONT = 'font-family="Helvetica, Arial, sans-serif"'


REFERENCE_COLOURS = ("#222222", "#777777", "#aaaaaa")  # oracles: dark and grey, drawn dashed


def hex_colours(agents: list[str], references: tuple[str, ...] = ()) -> dict[str, str]:
    """One colour per agent: the palette in order, the ``references`` (oracles) in greys."""
    others = [a for a in agents if a not in references]
    colours = {agent: PALETTE[i % len(PALETTE)] for i, agent in enumerate(others)}
    return colours | {a: REFERENCE_COLOURS[i % len(REFERENCE_COLOURS)] for i, a in enumerate(references)}


def value_text(value: float, percent: bool = False) -> str:
    if percent:
        return f"{value * 100:.1f}%"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"


def short(value: float) -> float | None:
    """A number for a tooltip: 6 significant digits, None where not finite."""
    return float(f"{value:.6g}") if np.isfinite(value) else None


def points_json(points: list) -> str:
    """Tooltip points as JSON for a single-quoted attribute (only &, < and ' need escaping there)."""
    text = json.dumps(points, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&#39;")


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and np.isfinite(v)]


def opening(width: int, height: int, title: str) -> list[str]:
    return [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{html.escape(title)}" {FONT} font-size="12">',
        f"<title>{html.escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]


class Frame:
    """A plot area: scales from data to svg units, axes with ticks and titles."""

    def __init__(self, box, x_range, y_range, percent=(False, False)):
        self.left, self.top, self.right, self.bottom = box
        self.x_ticks = nice_ticks(*x_range, count=6)
        self.y_ticks = nice_ticks(*y_range, count=5)
        self.percent = percent

    def x(self, v: float) -> float:
        t = self.x_ticks
        return self.left + (self.right - self.left) * (v - t[0]) / (t[-1] - t[0])

    def y(self, v: float) -> float:
        t = self.y_ticks
        return self.bottom - (self.bottom - self.top) * (v - t[0]) / (t[-1] - t[0])

    def axes(self, parts: list[str], x_label: str, y_label: str, zero: bool = False) -> None:
        left, top, right, bottom = self.left, self.top, self.right, self.bottom
        for t in self.y_ticks:
            y = self.y(t)
            parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ececec"/>')
            parts.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                f"{tick_label(t, self.percent[1])}</text>"
            )
        for t in self.x_ticks:
            x = self.x(t)
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="#444">'
                f"{tick_label(t, self.percent[0])}</text>"
            )
        if zero and self.y_ticks[0] < 0 < self.y_ticks[-1]:
            parts.append(f'<line x1="{left}" x2="{right}" y1="{self.y(0):.1f}" y2="{self.y(0):.1f}" stroke="#555"/>')
        parts.append(f'<path d="M{left},{top}V{bottom}H{right}" fill="none" stroke="#888"/>')
        middle = (top + bottom) / 2
        parts.append(
            f'<text x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})" fill="#444">'
            f"{html.escape(y_label)}</text>"
        )
        parts.append(
            f'<text x="{(left + right) / 2:.1f}" y="{bottom + 34}" text-anchor="middle" fill="#444">'
            f"{html.escape(x_label)}</text>"
        )


def spread(targets: list[float], gap: float, low: float, high: float) -> list[float]:
    """Label positions near ``targets`` (svg y) at least ``gap`` apart, within [low, high], order kept."""
    order = np.argsort(targets, kind="stable")
    placed = np.array(targets, dtype=float)[order]
    for i in range(1, len(placed)):  # push down (svg y grows downwards) ...
        placed[i] = max(placed[i], placed[i - 1] + gap)
    if len(placed) and placed[-1] > high:  # ... back up from the bottom edge ...
        placed[-1] = high
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    if len(placed) and placed[0] < low:  # ... and, too many to fit, from the top edge (the last ones overflow)
        placed[0] = low
        for i in range(1, len(placed)):
            placed[i] = max(placed[i], placed[i - 1] + gap)
    out = np.empty(len(targets))
    out[order] = placed
    return list(out)


def line_chart(
    series: list[dict],
    *,
    title: str,
    y_label: str,
    x_label: str = "days since the shopper's first visit",
    percent: bool = False,
    zero: bool = False,
    end_labels: bool = True,
    width: int = 760,
    height: int = 380,
) -> str:
    """Lines over days with 95% bands. Each series: ``{"name", "colour", "dash", "x", "y", "low", "high", "n"}``
    (``low``/``high``/``n`` may be None). ``percent``: the y axis in percent; ``zero``: a line at y = 0;
    ``end_labels``: each line's name at its end (direct labels, moved apart where they would overlap)."""
    ys = [v for s in series for key in ("y", "low", "high") if s.get(key) is not None for v in finite(s[key])]
    xs = [v for s in series for v in finite(s["x"])]
    low, high = min(ys, default=0.0), max(ys, default=1.0)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
    pad = (high - low) * 0.04 or 0.01
    low, high = low - pad, high + pad
    if percent:  # a share's axis stays within 0% and 100%
        low, high = (max(low, 0.0) if low + pad >= 0 else low), (min(high, 1.0) if high - pad <= 1 else high)
    right = width - (128 if end_labels else 16)
    frame = Frame((62, 30, right, height - 44), (min(xs, default=0.0), max(xs, default=1.0)), (low, high))
    frame.percent = (False, percent)
    parts = opening(width, height, title)
    frame.axes(parts, x_label, y_label, zero)
    ends = []
    for s in series:
        parts.append(series_group(frame, s, percent))
        ends.append((s, frame.y(s["y"][-1]) if len(s["y"]) else None))
    if end_labels:
        shown = [(s, y) for s, y in ends if y is not None and np.isfinite(y)]
        for (s, _), y in zip(shown, spread([y for _, y in shown], 12.5, frame.top, frame.bottom)):
            parts.append(
                f'<g class="series" data-series="{html.escape(s["name"])}"><text x="{right + 5}" y="{y + 4:.1f}"'
                f' fill="{s["colour"]}" font-size="11">{html.escape(s["name"])} {value_text(s["y"][-1], percent)}'
                "</text></g>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def series_group(frame: Frame, s: dict, percent: bool) -> str:
    """One line: its band (where given), the line, and its points for the tooltip."""
    x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)
    low = np.asarray(s["low"], dtype=float) if s.get("low") is not None else None
    high = np.asarray(s["high"], dtype=float) if s.get("high") is not None else None
    n = np.asarray(s["n"], dtype=float) if s.get("n") is not None else None
    points = []
    for i in range(len(x)):
        if not np.isfinite(y[i]):
            continue
        extra = [short(v[i]) if v is not None else None for v in (low, high, n)]
        points.append([round(frame.x(x[i]), 1), round(frame.y(y[i]), 1), short(x[i]), short(y[i]), *extra])
    fmt = "pct" if percent else "num"
    name = html.escape(s["name"])
    out = [f'<g class="series" data-series="{name}" data-fmt="{fmt}" data-pts=\'{points_json(points)}\'>']
    if low is not None and high is not None:
        ok = np.isfinite(low) & np.isfinite(high)
        top = [f"{frame.x(a):.1f},{frame.y(b):.1f}" for a, b in zip(x[ok], high[ok])]
        bottom = [f"{frame.x(a):.1f},{frame.y(b):.1f}" for a, b in zip(x[ok][::-1], low[ok][::-1])]
        out.append(f'<polygon points="{" ".join(top + bottom)}" fill="{s["colour"]}" fill-opacity="0.13"/>')
    line = " ".join(f"{frame.x(a):.1f},{frame.y(b):.1f}" for a, b in zip(x, y) if np.isfinite(b))
    dash = f' stroke-dasharray="{s["dash"]}"' if s.get("dash") else ""
    out.append(f'<polyline points="{line}" fill="none" stroke="{s["colour"]}" stroke-width="2"{dash}/>')
    out.append("</g>")
    return "".join(out)


def scatter_chart(
    points: list[dict],
    *,
    title: str,
    x_label: str,
    y_label: str,
    percent: tuple[bool, bool] = (True, True),
    width: int = 760,
    height: int = 420,
) -> str:
    """One point per agent with 95% error bars both ways, labelled. Each point: ``{"name", "colour", "dash", "x",
    "x_low", "x_high", "y", "y_low", "y_high", "n"}``; a dashed one (an oracle) is drawn hollow."""
    xs = [v for p in points for v in finite([p["x_low"], p["x_high"], p["x"]])]
    ys = [v for p in points for v in finite([p["y_low"], p["y_high"], p["y"]])]
    xpad = (max(xs) - min(xs)) * 0.06 or 0.01
    ypad = (max(ys) - min(ys)) * 0.06 or 0.01
    frame = Frame((62, 30, width - 16, height - 44), (min(xs) - xpad, max(xs) + xpad), (min(ys) - ypad, max(ys) + ypad))
    frame.percent = percent
    parts = opening(width, height, title)
    frame.axes(parts, x_label, y_label)
    for p in points:
        cx, cy = frame.x(p["x"]), frame.y(p["y"])
        text = (
            f"{p['name']}: x {value_text(p['x'], percent[0])} [{value_text(p['x_low'], percent[0])},"
            f" {value_text(p['x_high'], percent[0])}], y {value_text(p['y'], percent[1])}"
            f" [{value_text(p['y_low'], percent[1])}, {value_text(p['y_high'], percent[1])}] · n {int(p['n']):,}"
        )
        data = points_json([[round(cx, 1), round(cy, 1), text]])
        fill = "#fff" if p.get("dash") else p["colour"]
        parts.append(
            f'<g class="series" data-series="{html.escape(p["name"])}" data-pts=\'{data}\' stroke="{p["colour"]}">'
            f'<line x1="{frame.x(p["x_low"]):.1f}" x2="{frame.x(p["x_high"]):.1f}" y1="{cy:.1f}" y2="{cy:.1f}"/>'
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{frame.y(p["y_low"]):.1f}" y2="{frame.y(p["y_high"]):.1f}"/>'
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" stroke-width="2"/>'
            f'<text x="{cx + 7:.1f}" y="{cy - 7:.1f}" fill="{p["colour"]}" stroke="none" font-size="11">'
            f"{html.escape(p['name'])}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


__all__ = ["DASH", "PALETTE", "hex_colours", "line_chart", "scatter_chart", "spread", "value_text"]
