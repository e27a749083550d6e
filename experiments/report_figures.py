"""The run report's charts, as ``("svg", ...)`` blocks (``report_html``) drawn by ``report_charts`` from the curve
frames of ``stickiness.curves``/``diff_curves`` and ``summary.csv``; no number is recomputed here.

Agents keep one colour across charts; oracles are drawn dashed (reference bounds). Each chart's legend toggles its
lines; hovering shows a point's value, 95% interval and n.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stickyrec.experiments.report_charts import DASH, line_chart, scatter_chart, value_text
from stickyrec.experiments.report_data import ORACLE
from stickyrec.experiments.report_sections import of

# measure -> (title, y label, percent axis, glossary key)
MEASURES = {
    "retention_unbounded": ("Retention (unbounded): not yet churned", "shoppers still customers", True),
    "retention_nday": ("N-day retention: active on day d", "shoppers active that day", True),
    "dau_mau": ("DAU/MAU", "DAU/MAU", False),
    "wau_mau": ("WAU/MAU", "WAU/MAU", False),
    "sessions_per_active_week": ("Sessions per active shopper per week", "sessions / active shopper", False),
    "satisfaction_latent": ("Latent satisfaction (simulator-only truth)", "mean latent satisfaction", False),
    "rating_clicked_mean": ("Mean rating of clicked items (observable proxy)", "mean public rating", False),
    "ltv": ("Cumulative revenue (LTV) per starting shopper", "revenue (margin) per shopper", False),
    "ctr_item": ("CTR per item, by week", "clicks / items shown", True),
}


def curve_series(ctx, frame: pd.DataFrame, agents: list[str]) -> list[dict]:
    """One series per agent of a curve frame (columns day, estimate, low, high and maybe n)."""
    series = []
    for agent in agents:
        part = frame[frame["agent"] == agent].sort_values("day")
        if not len(part):
            continue
        series.append(
            {
                "name": agent,
                "colour": ctx.colours[agent],
                "dash": DASH if ctx.roles[agent] == ORACLE else "",
                "x": part["day"].to_numpy(dtype=float),
                "y": part["estimate"].to_numpy(dtype=float),
                "low": part["low"].to_numpy(dtype=float),
                "high": part["high"].to_numpy(dtype=float),
                "n": part["n"].to_numpy(dtype=float) if "n" in part else None,
            }
        )
    return series


def legend(ctx, series: list[dict]) -> list[tuple]:
    return [(s["name"], s["colour"], s["dash"]) for s in series]


def measure_chart(ctx, scenario: str, measure: str, caption: str = "") -> tuple | None:
    frame = of(ctx.sticky.curves, scenario=scenario, measure=measure)
    if not len(frame):
        return None
    title, y_label, percent = MEASURES.get(measure, (measure, measure, False))
    weekly = measure in ("sessions_per_active_week", "ctr_item")
    series = curve_series(ctx, frame, ctx.agents)
    svg = line_chart(
        series,
        title=title,
        y_label=y_label,
        x_label="week starting on day" if weekly else "days since the shopper's first visit",
        percent=percent,
    )
    caption = caption or f"{title}, by agent, with 95% bands (the tables' bootstrap); `curves.csv`, `{measure}`."
    return ("svg", f"{measure}_{scenario}.svg", svg, caption, legend(ctx, series), curve_table(series, percent))


def curve_table(series: list[dict], percent: bool) -> tuple:
    """A chart's lines at about weekly days, for the Markdown report (which has no charts to hover)."""
    days = sorted({float(d) for s in series for d in s["x"]})
    last = days[-1] if days else 0.0
    picked = [d for d in days if d % 7 == 0 and d < last] + [last]

    def text(s: dict, d: float) -> str:
        where = np.flatnonzero(np.asarray(s["x"], dtype=float) == d)
        if not len(where):
            return ""
        i = where[0]
        value = value_text(s["y"][i], percent)
        if s.get("low") is None:
            return value
        return f"{value} [{value_text(s['low'][i], percent)}, {value_text(s['high'][i], percent)}]"

    rows = [[s["name"], *(text(s, d) for d in picked)] for s in series]
    return ("table", ["agent", *(f"day {d:g}" for d in picked)], rows)


def at_risk_table(ctx, scenario: str) -> list[tuple]:
    """Numbers at risk (shoppers not yet churned) under the retention chart, at about weekly days."""
    frame = of(ctx.sticky.curves, scenario=scenario, measure="retention_unbounded")
    if not len(frame) or "n" not in frame:
        return []
    last = int(frame["day"].max())
    days = sorted({d for d in (0, 7, 14, 21, 28, 30, 60, 90) if d < last} | {last})
    rows = []
    for agent in ctx.agents:
        part = frame[frame["agent"] == agent].set_index("day")["n"]
        rows.append([agent, *(f"{int(part[d]):,}" if d in part.index else "" for d in days)])
    return [
        ("p", "**Numbers at risk** (shoppers not yet churned, all seeds):"),
        ("table", ["agent", *(f"day {d}" for d in days)], rows),
    ]


def difference_chart(ctx, scenario: str, measure: str) -> tuple | None:
    frame = of(ctx.sticky.diff_curves, scenario=scenario, measure=measure)
    if not len(frame):
        return None
    baseline = str(frame["baseline"].iloc[0])
    agents = [a for a in ctx.agents if a != baseline]
    series = curve_series(ctx, frame, agents)
    title, _, percent = MEASURES.get(measure, (measure, measure, False))
    svg = line_chart(
        series,
        title=f"{title}: difference from {baseline}",
        y_label=f"minus {baseline} (paired)",
        percent=percent,
        zero=True,
    )
    caption = (
        f"Each agent minus `{baseline}` on the same shoppers, day by day, with paired 95% bands; above 0: better"
        f" than {baseline}. `diff_curves.csv`."
    )
    return ("svg", f"diff_{measure}_{scenario}.svg", svg, caption, legend(ctx, series), curve_table(series, percent))


def ctr_retention_scatter(ctx, scenario: str) -> tuple | None:
    """Week-1 CTR per slate against day-30 retention (summary.csv): clickbait wins the first, loses the second."""
    t = of(ctx.table, scenario=scenario).set_index("agent")
    if "retention_day30" not in t or not len(t):
        return None
    points = []
    for agent in [a for a in ctx.agents if a in t.index]:
        r = t.loc[agent]
        points.append(
            {
                "name": agent,
                "colour": ctx.colours[agent],
                "dash": DASH if ctx.roles[agent] == ORACLE else "",
                "x": r["click_rate_week1"],
                "x_low": r["click_rate_week1_low"],
                "x_high": r["click_rate_week1_high"],
                "y": r["retention_day30"],
                "y_low": r["retention_day30_low"],
                "y_high": r["retention_day30_high"],
                "n": r["shoppers"],
            }
        )
    svg = scatter_chart(
        points,
        title="Week-1 CTR vs day-30 retention",
        x_label="CTR per slate in week 1",
        y_label="retained d30 (unbounded)",
    )
    caption = (
        "The project's story in one chart: each agent's week-1 CTR per slate against its day-30 retention, with 95%"
        " intervals both ways (`summary.csv`). Clicks now and customers later are different goals. Hollow: oracles."
    )
    keys = [(p["name"], p["colour"], p["dash"]) for p in points]
    return ("svg", f"ctr_vs_retention_{scenario}.svg", svg, caption, keys)


def chart_blocks(ctx, scenario: str, level: int) -> list[tuple]:
    """Every chart section of one scenario."""

    def row(*charts) -> list[tuple]:
        shown = [c for c in charts if c is not None]
        return [("row", shown)] if shown else []

    blocks: list[tuple] = [("h", level, "Retention over time")]
    blocks += row(measure_chart(ctx, scenario, "retention_unbounded"), measure_chart(ctx, scenario, "retention_nday"))
    blocks += at_risk_table(ctx, scenario)
    blocks += [("h", level, f"Difference from {ctx.reference} over time")]
    blocks += row(difference_chart(ctx, scenario, "retention_unbounded"), difference_chart(ctx, scenario, "ltv"))
    blocks += [("h", level, "Activity over time")]
    blocks += row(*(measure_chart(ctx, scenario, m) for m in ("dau_mau", "wau_mau", "sessions_per_active_week")))
    blocks += [("h", level, "Satisfaction over time: latent truth and observable proxy")]
    blocks += row(*(measure_chart(ctx, scenario, m) for m in ("satisfaction_latent", "rating_clicked_mean")))
    blocks += [("h", level, "Revenue and clicks")]
    blocks += row(measure_chart(ctx, scenario, "ltv"), measure_chart(ctx, scenario, "ctr_item"))
    blocks += row(ctr_retention_scatter(ctx, scenario))
    return [b for i, b in enumerate(blocks) if b[0] != "h" or (i + 1 < len(blocks) and blocks[i + 1][0] != "h")]


__all__ = ["MEASURES", "chart_blocks", "ctr_retention_scatter", "difference_chart", "measure_chart"]
