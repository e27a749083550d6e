"""The analyst's sections of a run report, as blocks (``report_html``): the executive summary, the summary and
stickiness tables (agents; oracles apart as reference bounds), RL against the best non-RL, cohort heatmaps, segments.

Every number comes from the frames ``report.build_report`` writes (``summary.csv`` and the ``stickiness`` tables);
nothing is recomputed here. Table cells carry the frames' exact values as ``data-*`` attributes (``number_cell``).
"""

from __future__ import annotations

import pandas as pd

from stickyrec.experiments.metrics import METRICS
from stickyrec.experiments.report_data import BEST_METRIC, ORACLE
from stickyrec.experiments.report_glossary import (
    glossary_key,
    header,
    metric_label,
    number_cell,
    with_interval,
)
from stickyrec.experiments.report_html import Cell

ACTIVITY = ("dau_mau", "wau_mau", "sessions_per_active_week", "click_rate_item")
SATISFACTION = ("satisfaction_latent", "rating_clicked_mean")
SEGMENT_WORDS = {"retention_day": "retained", "revenue_per_shopper": "revenue", "click_rate_item": "CTR/item"}


def of(frame: pd.DataFrame, **where) -> pd.DataFrame:
    """The rows of ``frame`` where each named column equals its value (an empty frame stays empty)."""
    if not len(frame):
        return frame
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        mask &= frame[column] == value
    return frame[mask]


def plainly(low: float, high: float) -> str:
    return "not distinguishable from zero at 95%" if low <= 0 <= high else "clear at 95%"


def size_word(value: float, scale: float) -> str:
    """How big a difference is, against ``scale`` (e.g. the winner's value)."""
    share = abs(value) / abs(scale) if scale else float("inf")
    return "small" if share < 0.03 else ("large" if share >= 0.10 else "modest")


# --------------------------------------------------------------------------------------------------------------
# Executive summary
# --------------------------------------------------------------------------------------------------------------
def executive_summary(ctx, scenario: str) -> list[str]:
    """Sentences: who wins each headline metric and by how much; RL vs RL; best non-RL and RL's margins; shares
    of the oracle."""
    sticky = ctx.sticky
    values = of(sticky.summary, scenario=scenario).set_index(["agent", "metric"])["estimate"]
    out = []
    for _, r in of(sticky.headline, scenario=scenario).iterrows():
        label = metric_label(r["metric"])
        scale = r["winner_estimate"] if "winner_estimate" in r else values.get((r["winner"], r["metric"]), r["margin"])
        out.append(
            f"**{label}**: `{r['winner']}` wins, {with_interval(r['margin'], r['low'], r['high'], True)} over"
            f" `{r['runner_up']}` (paired): {size_word(r['margin'], scale)}, {plainly(r['low'], r['high'])}."
        )
    pairs = of(sticky.rl_pairs, scenario=scenario)
    for (agent, other), part in pairs.groupby(["agent", "other"], sort=False):
        parts = [
            f"{metric_label(r['metric'])} {with_interval(r['diff'], r['low'], r['high'], True)}"
            for _, r in part.iterrows()
        ]
        out.append(f"**`{agent}` vs `{other}` directly** ({agent} minus {other}, paired): " + "; ".join(parts) + ".")
    out += best_non_rl_sentences(ctx, scenario)
    shares = of(sticky.oracle_share, scenario=scenario)
    if "basis" in shares:
        shares = shares[shares["basis"] == "oracle"]
    if len(shares):
        metric = shares["metric"].iloc[0]
        part = shares[(shares["metric"] == metric) & shares["agent"].isin(ctx.agents_shown)]
        out.append(
            f"**Share of the long-term oracle** ({metric_label(metric)}; [what this is](#g-oracle_share)): "
            + ", ".join(f"`{r['agent']}` {with_interval(r['share'], r['low'], r['high'])}" for _, r in part.iterrows())
            + "."
        )
    return out


def best_non_rl_sentences(ctx, scenario: str) -> list[str]:
    best = of(ctx.best, scenario=scenario)
    if not len(best):
        return []
    b = best.iloc[0]
    name = b["best_non_rl"]
    out = [
        f"**[Best non-RL](#g-best_non_rl): `{name}`**, day-30 retention"
        f" {with_interval(b[BEST_METRIC], b[BEST_METRIC + '_low'], b[BEST_METRIC + '_high'])}."
    ]
    for _, r in of(ctx.margins, scenario=scenario).iterrows():
        value, low, high = (r[f"{BEST_METRIC}_margin{s}"] for s in ("", "_low", "_high"))
        revenue = with_interval(*(r[f"revenue_per_shopper_margin{s}"] for s in ("", "_low", "_high")), True)
        words = "small (under 2 points)" if abs(value) < 0.02 else ("large" if abs(value) >= 0.05 else "modest")
        side = "not distinguishable from zero at 95%" if low <= 0 <= high else ("above" if value > 0 else "below")
        side = side if "zero" in side else f"{side} `{name}` at 95%"
        out.append(
            f"`{r['agent']}` minus `{name}`, day-30 retention: {with_interval(value, low, high, True)}: {words},"
            f" {side}; revenue {revenue}."
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------------
def summary_table(ctx, scenario: str, agents: list[str]) -> tuple:
    """summary.csv's metrics with intervals for ``agents``, plus CTR per item from the stickiness table."""
    t = of(ctx.table, scenario=scenario).set_index("agent")
    s = of(ctx.sticky.summary, scenario=scenario, metric="click_rate_item").set_index("agent")
    head = ["agent", *(header(metric_label(m), glossary_key(m)) for m in METRICS)]
    head.append(header("CTR per item", "ctr"))
    rows = []
    for agent in agents:
        r = t.loc[agent]
        key = {"scenario": scenario, "agent": agent}
        row = [agent]
        row += [number_cell("summary", key | {"metric": m}, r[m], r[m + "_low"], r[m + "_high"]) for m in METRICS]
        if agent in s.index:
            x = s.loc[agent]
            row.append(number_cell("stickiness", key | {"metric": "click_rate_item"}, x.estimate, x.low, x.high))
        else:
            row.append("")
        rows.append(row)
    return ("table", head, rows)


def sticky_table(ctx, scenario: str, agents: list[str], metrics: list[str]) -> tuple:
    """The stickiness metrics ``metrics`` (stickiness.csv) with intervals for ``agents``."""
    s = of(ctx.sticky.summary, scenario=scenario).set_index(["agent", "metric"])
    head = ["agent", *(header(metric_label(m), glossary_key(m)) for m in metrics)]
    rows = []
    for agent in agents:
        row: list = [agent]
        for m in metrics:
            if (agent, m) in s.index:
                x = s.loc[(agent, m)]
                key = {"scenario": scenario, "agent": agent, "metric": m}
                row.append(number_cell("stickiness", key, x["estimate"], x["low"], x["high"]))
            else:
                row.append("")
        rows.append(row)
    return ("table", head, rows)


def retention_metrics(ctx, scenario: str) -> list[str]:
    """The N-day and unbounded retention metrics of stickiness.csv, day by day (N-day first at each day)."""
    metrics = set(of(ctx.sticky.summary, scenario=scenario)["metric"])
    days = sorted({int(m.rsplit("day", 1)[1]) for m in metrics if m.startswith(("nday_retention", "unbounded_ret"))})
    return [m for d in days for m in (f"nday_retention_day{d}", f"unbounded_retention_day{d}") if m in metrics]


def stickiness_blocks(ctx, scenario: str, level: int) -> list[tuple]:
    metrics = list(dict.fromkeys(of(ctx.sticky.summary, scenario=scenario)["metric"]))
    agents = ctx.agents_shown
    value = [m for m in SATISFACTION if m in metrics] + [m for m in metrics if m.startswith("ltv")]
    return [
        ("h", level, "Stickiness: activity, retention, satisfaction"),
        (
            "p",
            "Stickiness as the founding brief defines it: how often shoppers come back (activity), how many stay"
            " (retention, in the N-day and the unbounded form), and how satisfied they are. Intervals: the same"
            " paired bootstrap as the summary table. Every number is in `stickiness.csv`.",
        ),
        ("h", level + 1, "Activity"),
        sticky_table(ctx, scenario, agents, [m for m in ACTIVITY if m in metrics]),
        ("h", level + 1, "Retention (N-day and unbounded)"),
        sticky_table(ctx, scenario, agents, retention_metrics(ctx, scenario)),
        ("h", level + 1, "Satisfaction and value"),
        (
            "p",
            "Latent satisfaction is **simulator-only truth** (no platform can observe it); the mean rating of clicked"
            " items beside it is the observable proxy.",
        ),
        sticky_table(ctx, scenario, agents, value),
    ]


def rl_pairs_table(ctx, scenario: str) -> list[tuple]:
    pairs = of(ctx.sticky.rl_pairs, scenario=scenario)
    if not len(pairs):
        return []
    head = ["RL agent", "minus", "metric", header("difference (paired)", "paired_margin")]
    rows = [
        [
            r["agent"],
            r["other"],
            metric_label(r["metric"]),
            number_cell(
                "rl_pairs",
                {"scenario": scenario, "agent": r["agent"], "other": r["other"], "metric": r["metric"]},
                r["diff"],
                r["low"],
                r["high"],
                True,
            ),
        ]
        for _, r in pairs.iterrows()
    ]
    return [("p", "The RL agents compared directly, on the same shoppers:"), ("table", head, rows)]


def reference_bounds(ctx, scenario: str, level: int) -> list[tuple]:
    """The oracles' own section: summary and stickiness rows, and every agent's share of the long-term oracle."""
    oracles = [a for a in ctx.agents if ctx.roles[a] == ORACLE]
    blocks: list[tuple] = [
        ("h", level, "Reference bounds: oracles (read hidden state)"),
        (
            "p",
            "These agents read the simulator's hidden state (latent satisfaction, true click probabilities), which"
            " no real recommender can: they bound what is possible and are **not baselines**. Charts draw them"
            " dashed. [What an oracle is](#g-oracle).",
        ),
    ]
    if oracles:
        blocks.append(summary_table(ctx, scenario, oracles))
        metrics = list(dict.fromkeys(of(ctx.sticky.summary, scenario=scenario)["metric"]))
        blocks.append(sticky_table(ctx, scenario, oracles, metrics))
    blocks += oracle_share_table(ctx, scenario)
    return blocks


def oracle_share_table(ctx, scenario: str) -> list[tuple]:
    """Every agent's share of the long-term oracle: one column per metric (and basis: of the oracle's value, or of
    the span from random to the oracle)."""
    shares = of(ctx.sticky.oracle_share, scenario=scenario)
    if not len(shares):
        return []
    shares = shares if "basis" in shares else shares.assign(basis="oracle")
    columns = list(dict.fromkeys(zip(shares["metric"], shares["basis"])))
    values = shares.set_index(["agent", "metric", "basis"])
    words = {"oracle": "share of oracle", "random_to_oracle": "share of random-to-oracle span"}
    head = ["agent"] + [f"{metric_label(m)}: {words.get(b, b)}" for m, b in columns]
    rows = []
    for agent in [a for a in ctx.agents if a in values.index.get_level_values(0)]:
        row: list = [agent]
        for m, b in columns:
            if (agent, m, b) not in values.index:
                row.append("")
                continue
            x = values.loc[(agent, m, b)]
            key = {"scenario": scenario, "agent": agent, "metric": m, "basis": b}
            row.append(number_cell("oracle_share", key, x["share"], x["low"], x["high"]))
        rows.append(row)
    return [
        ("p", "**[Share of the long-term oracle](#g-oracle_share)** (paired, 95% intervals; `oracle_share.csv`):"),
        ("table", head, rows),
    ]


def shaded(value: float, low: float, high: float) -> float:
    return 0.0 if high <= low else 0.08 + 0.8 * (value - low) / (high - low)


def cohort_blocks(ctx, scenario: str, level: int) -> list[tuple]:
    """Amplitude-style heatmaps: pooled cohorts by agent, shaded cells, an n column; N-day and unbounded."""
    c = of(ctx.sticky.cohorts, scenario=scenario)
    blocks: list[tuple] = [("h", level, "Cohort retention heatmaps")]
    if not len(c):
        return []
    for kind, title, key in (
        ("nday", "N-day: share active ON day N", "retention"),
        ("unbounded", "Unbounded: share active on day N or later", "retention"),
    ):
        part = c[(c["kind"] == kind) & (c["cohort"].astype(str) == "all")]
        if not len(part):
            continue
        days = sorted(part["day"].unique())
        grid = part.pivot_table(index="agent", columns="day", values="value", aggfunc="first")
        counts = part.groupby("agent")["n"].first()
        lo, hi = float(part["value"].min()), float(part["value"].max())
        rows, shades = [], []
        for agent in [a for a in ctx.agents if a in grid.index]:
            label = agent + (" (oracle)" if ctx.roles[agent] == ORACLE else "")
            cells = [Cell(f"{grid.loc[agent, d] * 100:.1f}%", {"value": repr(float(grid.loc[agent, d]))}) for d in days]
            rows.append([label, f"{int(counts[agent]):,}", *cells])
            shades.append([None, None, *(shaded(grid.loc[agent, d], lo, hi) for d in days)])
        note = "all seeds' held-out shoppers pooled; per seed in `cohorts.csv`"
        blocks.append(("p", f"**[{title}](#g-{key})** ({note})"))
        blocks.append(("grid", ["agent", "n", *(f"day {d}" for d in days)], rows, shades))
    return blocks


def segment_blocks(ctx, scenario: str, level: int) -> list[tuple]:
    """Per shopper segment: each metric by level (columns) and agent (rows), with intervals."""
    seg = of(ctx.sticky.segments, scenario=scenario)
    if not len(seg):
        return []
    blocks: list[tuple] = [
        ("h", level, "Segments"),
        (
            "p",
            "Shoppers split by a starting trait (terciles of visit rate, price sensitivity and starting"
            " satisfaction; each interest category); the same shoppers under every agent. All metrics in"
            " `segments.csv`.",
        ),
    ]
    for segment, part in seg.groupby("segment", sort=False):
        part = part.assign(level=part["level"].astype(str))
        levels = list(dict.fromkeys(part["level"]))
        counts = part.groupby("level")["n"].first()
        metrics = list(dict.fromkeys(part["metric"]))
        values = part.set_index(["agent", "metric", "level"])
        head = ["agent"]
        for metric in metrics:
            short = SEGMENT_WORDS.get(metric.rstrip("0123456789"), metric_label(metric))
            head += [f"{short}: {lv} (n {int(counts[lv]):,})" for lv in levels]
        rows = []
        for agent in [a for a in ctx.agents_shown if a in values.index.get_level_values(0)]:
            row: list = [agent]
            for metric in metrics:
                for lv in levels:
                    if (agent, metric, lv) not in values.index:
                        row.append("")
                        continue
                    x = values.loc[(agent, metric, lv)]
                    key = {"scenario": scenario, "segment": segment, "level": lv, "agent": agent, "metric": metric}
                    row.append(number_cell("segments", key, x["estimate"], x["low"], x["high"]))
            rows.append(row)
        links = ", ".join(header(metric_label(m), glossary_key(m)) for m in metrics)
        blocks.append(("p", f"**By {segment.replace('_', ' ')}**: {links}"))
        blocks.append(("table", head, rows))
    return blocks


__all__ = [
    "cohort_blocks",
    "executive_summary",
    "of",
    "reference_bounds",
    "rl_pairs_table",
    "segment_blocks",
    "stickiness_blocks",
    "summary_table",
]
