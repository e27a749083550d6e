"""Stickiness as the founding brief defines it (activity, retention, satisfaction), per agent, with the same paired
bootstrap as the summary tables, as tables, curves over time, segments, cohorts and the report's headline.

Every number here is a ratio of two sums over shoppers of per-shopper values (a mean is a ratio over a column of
ones). Each (agent, seed) cell's ``days.parquet`` rows become, once, a dense (shoppers x columns) matrix ``X`` of
per-shopper values: day-by-day activity, trailing-window activity, cumulative revenue, weekly totals and
segment-masked totals. A point estimate is ``sum_s 1 @ X_s``; a bootstrap resample's sums are ``sum_s W_s @ X_s``
with ``W_s`` the (resamples x shoppers) weights that seed s receives in each resample (``metrics.paired_resamples``:
seeds with replacement, then shoppers within each picked seed; the same weights for every agent, so differences are
paired). The generator is ``np.random.default_rng(seed)``, drawn scenario by scenario exactly as
``report_data.paired_tables`` draws it, so with the same seed and ``report.resamples`` the draws are the summary
table's draws: ``retention_unbounded`` at day N is the table's ``retention_dayN`` with the same interval.

Definitions (docs/report.md, "How the report measures stickiness"; ``d`` a day since the shopper's first visit,
``a_i(d)`` 1 when shopper i saw at least one slate on day d):

- DAU(d) = sum_i a_i(d); MAU(d) = shoppers active at least once in the 30 days ending on d (WAU(d): 7 days); early
  windows are cut at day 0. ``dau_mau`` = sum_d DAU(d) / sum_d MAU(d) over the horizon = sum_i active_days_i /
  sum_i monthly_active_days_i (monthly_active_days_i: days on which shopper i counts in MAU); ``wau_mau`` likewise.
  Since DAU(d) <= WAU(d) <= MAU(d): dau_mau <= wau_mau <= 1.
- ``sessions_per_active_week``: sessions in complete weeks (days 0-6, 7-13, ...) over the shopper-weeks with at least
  one session.
- ``nday_retention_dayN``: share of starting shoppers active ON day N. ``unbounded_retention_dayN``: share not
  churned by day N (churn_day > N, or never churned): the shopper came back on day N or later, or was still a
  customer at the horizon (the simulator knows who churned). It equals the summary's ``retention_dayN``.
- ``click_rate_item``: clicks / (slates shown x slate size) (a slate gets at most one click; ``click_rate`` in the
  summary is clicks per slate).
- ``satisfaction_latent``: the mean over impressions of the shopper's latent satisfaction after each (simulator-only
  truth); ``rating_clicked_mean``: the mean public rating of clicked items (what a platform can observe).
- ``ltv_dayH``: cumulative revenue (price x margin, the simulator's currency units) per starting shopper by day H.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import numpy as np
import pandas as pd

from stickyrec.experiments.report_data import ORACLE, RL, agent_roles, scenario_horizon
from stickyrec.experiments.stickiness_blocks import (
    SEGMENT_PARTS,
    WEEK,
    band,
    cell_blocks,
    cells_of,
    headline_day,
    ratio,
    resample_weights,
    scenario_sums,
    segment_levels,
)

STICKINESS_METRICS = {  # metric -> (label, glossary key); ``*_dayN`` metrics: ``metric_label``
    "click_rate_item": ("CTR per item", "ctr"),
    "dau_mau": ("DAU/MAU", "dau_mau"),
    "wau_mau": ("WAU/MAU", "wau_mau"),
    "sessions_per_active_week": ("sessions per active shopper per week", "sessions_per_active_week"),
    "satisfaction_latent": ("latent satisfaction (simulator only)", "satisfaction"),
    "rating_clicked_mean": ("mean rating of clicked items", "satisfaction"),
}
DAY_METRICS = {  # prefix -> (label template, glossary key)
    "nday_retention_day": ("day-{} retention (N-day)", "retention"),
    "unbounded_retention_day": ("day-{} retention (unbounded)", "retention"),
    "ltv_day": ("LTV by day {}", "ltv"),
    "retention_day": ("retained d{} (unbounded)", "retention"),
}
CURVE_MEASURES = (
    "retention_unbounded",
    "retention_nday",
    "dau_mau",
    "wau_mau",
    "sessions_per_active_week",
    "satisfaction_latent",
    "rating_clicked_mean",
    "ltv",
    "ctr_item",
)
WEEKLY_MEASURES = ("sessions_per_active_week", "ctr_item")
SEGMENT_METRICS = ("retention", "revenue_per_shopper", "click_rate_item")  # rows: retention_dayN (``headline_day``)


def metric_label(metric: str) -> tuple[str, str]:
    """(label, glossary key) of a stickiness or headline metric, ``*_dayN`` ones included."""
    if metric in STICKINESS_METRICS:
        return STICKINESS_METRICS[metric]
    for prefix, (template, key) in DAY_METRICS.items():
        if metric.startswith(prefix) and metric[len(prefix) :].isdigit():
            return template.format(metric[len(prefix) :]), key
    fixed = {"revenue_per_shopper": ("revenue per shopper", "revenue")}
    if metric in fixed:
        return fixed[metric]
    raise ValueError(f"no stickiness metric {metric!r}")


class StickinessTables(NamedTuple):
    """``stickiness_tables``'s frames, long format (docs/report.md):

    summary: scenario, agent, metric, estimate, low, high; curves: scenario, agent, measure, day, estimate, low, high,
    n; diff_curves: scenario, agent, baseline, measure, day, estimate, low, high; segments: scenario, segment, level,
    agent, metric, estimate, low, high, n; cohorts: scenario, agent, cohort, kind, day, value, n; headline: scenario,
    metric, winner, winner_estimate, runner_up, runner_up_estimate, margin, low, high; rl_pairs: scenario, metric,
    agent, other, diff, low, high; oracle_share: scenario, agent, metric, oracle, basis, share, low, high."""

    summary: pd.DataFrame
    curves: pd.DataFrame
    diff_curves: pd.DataFrame
    segments: pd.DataFrame
    cohorts: pd.DataFrame
    headline: pd.DataFrame
    rl_pairs: pd.DataFrame
    oracle_share: pd.DataFrame


def shopper_measures(config: dict, shoppers: pd.DataFrame, days: pd.DataFrame) -> pd.DataFrame:
    """One row per (scenario, agent, seed, shopper): the per-shopper values the stickiness measures are sums of."""
    out = []
    for (scenario, agent, seed), shop, rows in cells_of(config, shoppers, days):
        n_days = int(np.ceil(scenario_horizon(config, scenario)))
        b = cell_blocks(shop, rows, n_days, headline_day(config, scenario))
        frame = {"scenario": scenario, "agent": agent, "seed": seed, "shopper": shop["shopper"].to_numpy()}
        frame |= {
            "active_days": b["active"].sum(1),
            "monthly_active_days": b["mau"].sum(1),
            "weekly_active_days": b["wau"].sum(1),
            "complete_week_sessions": b["week_sessions"].sum(1),
            "active_weeks": b["week_active"].sum(1),
            "impressions": b["impressions"].sum(1),
            "clicks": b["clicks"].sum(1),
            "rating_clicked": b["rating_clicked"].sum(1),
            "satisfaction_sum": b["satisfaction"].sum(1),
            "ltv": b["ltv"][:, -1],
            "last_active_day": np.where(b["active"].any(1), n_days - 1 - np.argmax(b["active"][:, ::-1], 1), -1),
        }
        out.append(pd.DataFrame(frame))
    return pd.concat(out, ignore_index=True)


# --------------------------------------------------------------------------------------------------------------
# Measures from sums (the same function for a point estimate, shape (width,), and resamples, (resamples, width))
# --------------------------------------------------------------------------------------------------------------
def summary_values(b: dict, slate_size: int, cohort_days, n_days: int, day_n: int) -> dict[str, np.ndarray]:
    """Summary metric -> value(s) from one agent's block sums; ``retention_dayN`` and ``revenue_per_shopper`` (the
    headline's names) included."""
    one = b["one"][..., 0]
    out = {
        "click_rate_item": ratio(b["clicks"].sum(-1), b["impressions"].sum(-1) * slate_size),
        "dau_mau": ratio(b["active"].sum(-1), b["mau"].sum(-1)),
        "wau_mau": ratio(b["wau"].sum(-1), b["mau"].sum(-1)),
        "sessions_per_active_week": ratio(b["week_sessions"].sum(-1), b["week_active"].sum(-1)),
    }
    for day in cohort_days:
        if day < n_days:
            out[f"nday_retention_day{day}"] = b["active"][..., day] / one
    for day in cohort_days:
        if day <= n_days:
            out[f"unbounded_retention_day{day}"] = b["unbounded"][..., day] / one
    out["satisfaction_latent"] = ratio(b["satisfaction"].sum(-1), b["impressions"].sum(-1))
    out["rating_clicked_mean"] = ratio(b["rating_clicked"].sum(-1), b["clicks"].sum(-1))
    out[f"ltv_day{n_days}"] = b["ltv"][..., -1] / one
    out[f"retention_day{day_n}"] = b["unbounded"][..., day_n] / one
    out["revenue_per_shopper"] = out[f"ltv_day{n_days}"]
    return out


def curve_values(b: dict, slate_size: int) -> dict[str, np.ndarray]:
    """Curve measure -> values by day (weekly measures: by complete week) from one agent's block sums."""
    one = b["one"][..., :1]
    return {
        "retention_unbounded": b["unbounded"] / one,
        "retention_nday": b["active"] / one,
        "dau_mau": ratio(b["active"], b["mau"]),
        "wau_mau": ratio(b["wau"], b["mau"]),
        "sessions_per_active_week": ratio(b["week_sessions"], b["week_active"]),
        "satisfaction_latent": ratio(b["satisfaction"], b["impressions"]),
        "rating_clicked_mean": ratio(b["rating_clicked"], b["clicks"]),
        "ltv": b["ltv"] / one,
        "ctr_item": ratio(b["week_clicks"], b["week_impressions"] * slate_size),
    }


def curve_counts(b: dict) -> dict[str, np.ndarray]:
    """Curve measure -> shoppers each point is over (unweighted): at risk, active, MAU, active in the week."""
    return {
        "retention_unbounded": b["unbounded"],
        "retention_nday": np.broadcast_to(b["one"], b["active"].shape),
        "dau_mau": b["mau"],
        "wau_mau": b["mau"],
        "sessions_per_active_week": b["week_active"],
        "satisfaction_latent": b["active"],
        "rating_clicked_mean": b["active"],
        "ltv": np.broadcast_to(b["one"], b["ltv"].shape),
        "ctr_item": b["week_active"],
    }


def segment_values(b: dict, slate_size: int) -> dict[str, np.ndarray]:
    """Segment metric -> values per level (last axis) from one agent's segment sums."""
    s = b["segments"].reshape(*b["segments"].shape[:-1], -1, len(SEGMENT_PARTS))
    part = {name: s[..., i] for i, name in enumerate(SEGMENT_PARTS)}
    return {
        "retention": ratio(part["retained"], part["one"]),
        "revenue_per_shopper": ratio(part["revenue"], part["one"]),
        "click_rate_item": ratio(part["clicks"], part["impressions"] * slate_size),
    }


def curve_days(measure: str, width: int) -> np.ndarray:
    return np.arange(width) * (WEEK if measure in WEEKLY_MEASURES else 1)


# --------------------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------------------
def headline_metrics(config: dict, scenario: str) -> list[str]:
    return [f"retention_day{headline_day(config, scenario)}", "revenue_per_shopper", "click_rate_item"] + [
        "dau_mau",
        "satisfaction_latent",
    ]


def labels_of_kind(config: dict, kind: str) -> list[str]:
    return [label for label, spec in config["agents"].items() if (spec or {}).get("kind", label) == kind]


class Scenario(NamedTuple):
    """One scenario's values: agent -> measure -> point estimate / resamples, and what the rows need."""

    name: str
    agents: list[str]
    day_n: int  # the headline's retention day
    summary: tuple[list[dict], list[dict]]  # per agent: (estimates, draws) of summary_values
    curves: tuple[list[dict], list[dict], list[dict]]  # per agent: estimates, draws, counts
    segments: tuple[list[dict], list[dict], list[tuple[str, str]], np.ndarray]  # + levels, counts per level
    per_seed: list[list[dict]]


def scenario_values(config: dict, shoppers: pd.DataFrame, days: pd.DataFrame, scenario: str, rng) -> Scenario:
    agents, n_seeds = list(config["agents"]), int(config["seeds"])
    part = shoppers[shoppers["scenario"] == scenario]
    n = int(((part["agent"] == agents[0]) & (part["seed"] == 0)).sum())
    weights = resample_weights(rng, n_seeds, n, int(config["report"]["resamples"]))
    levels, masks = segment_levels(config, shoppers, scenario)
    sums = scenario_sums(config, part, days[days["scenario"] == scenario], scenario, weights, masks)
    k = int(config["resolved_env"][scenario]["slate_size"])
    n_days, day_n = int(np.ceil(scenario_horizon(config, scenario))), headline_day(config, scenario)
    days_asked = config["report"]["cohort_days"]
    return Scenario(
        scenario,
        agents,
        day_n,
        tuple([summary_values(b, k, days_asked, n_days, day_n) for b in s] for s in sums[:2]),
        (*([curve_values(b, k) for b in s] for s in sums[:2]), [curve_counts(b) for b in sums.estimate]),
        (*([segment_values(b, k) for b in s] for s in sums[:2]), levels, sum(m.sum(0) for m in masks)),
        sums.per_seed,
    )


def summary_rows(v: Scenario) -> list[pd.DataFrame]:
    aliases = {"revenue_per_shopper"} | {m for m in v.summary[0][0] if m.startswith("retention_day")}
    out = []
    for a, agent in enumerate(v.agents):
        est, draws = v.summary[0][a], v.summary[1][a]
        metrics = [m for m in est if m not in aliases]
        low, high = zip(*(band(draws[m]) for m in metrics))
        values = {"metric": metrics, "estimate": [float(est[m]) for m in metrics], "low": low, "high": high}
        out.append(pd.DataFrame({"scenario": v.name, "agent": agent, **values}))
    return out


def curve_rows(v: Scenario, baseline: str) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """(curves, diff_curves against ``baseline``) of one scenario."""
    curves, diffs = [], []
    base = v.agents.index(baseline)
    for a, agent in enumerate(v.agents):
        est, draws, counts = v.curves[0][a], v.curves[1][a], v.curves[2][a]
        for measure in CURVE_MEASURES:
            day = curve_days(measure, est[measure].shape[-1])
            low, high = band(draws[measure])
            curves.append(
                pd.DataFrame(
                    {"scenario": v.name, "agent": agent, "measure": measure, "day": day, "estimate": est[measure]}
                    | {"low": low, "high": high, "n": counts[measure].astype(np.int64)}
                )
            )
            if a == base:
                continue
            low, high = band(draws[measure] - v.curves[1][base][measure])
            diff = est[measure] - v.curves[0][base][measure]
            diffs.append(
                pd.DataFrame(
                    {"scenario": v.name, "agent": agent, "baseline": baseline, "measure": measure, "day": day}
                    | {"estimate": diff, "low": low, "high": high}
                )
            )
    return curves, diffs


def segment_rows(v: Scenario) -> list[pd.DataFrame]:
    est, draws, levels, counts = v.segments
    if not levels:
        return []
    out = []
    for a, agent in enumerate(v.agents):
        for metric in SEGMENT_METRICS:
            low, high = band(draws[a][metric])
            out.append(
                pd.DataFrame(
                    {
                        "scenario": v.name,
                        "segment": [s for s, _ in levels],
                        "level": [level for _, level in levels],
                        "agent": agent,
                        "metric": f"retention_day{v.day_n}" if metric == "retention" else metric,
                        "estimate": est[a][metric],
                        "low": low,
                        "high": high,
                        "n": counts.astype(np.int64),
                    }
                )
            )
    return out


def cohort_rows(v: Scenario, cohort_days) -> list[dict]:
    """Per agent, seed (``seed s``) and pooled (``all``): N-day and unbounded retention at each cohort day."""
    rows = []
    for a, agent in enumerate(v.agents):
        seeds = v.per_seed[a]
        pooled = {name: sum(s[name] for s in seeds) for name in ("one", "active", "unbounded")}
        for cohort, b in [*((f"seed {s}", b) for s, b in enumerate(seeds)), ("all", pooled)]:
            n = float(b["one"][0])
            for kind, block in (("nday", "active"), ("unbounded", "unbounded")):
                for day in cohort_days:
                    if day < b[block].shape[0]:
                        value = float(b[block][day] / n)
                        row = {"scenario": v.name, "agent": agent, "cohort": cohort, "kind": kind, "day": day}
                        rows.append(row | {"value": value, "n": int(n)})
    return rows


def paired(v: Scenario, metric: str, a: int, b: int) -> tuple[float, float, float]:
    """(estimate of agent a minus agent b, 95% interval of the paired difference)."""
    est, draws = v.summary[0], v.summary[1]
    low, high = band(draws[a][metric] - draws[b][metric])
    return float(est[a][metric] - est[b][metric]), float(low), float(high)


def headline_rows(config: dict, v: Scenario, roles: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """(winner and runner-up per headline metric among non-oracle agents, RL-vs-RL pairs, shares of the oracle)."""
    metrics = headline_metrics(config, v.name)
    est, draws = v.summary
    index = {agent: a for a, agent in enumerate(v.agents)}
    contenders = [a for a, agent in enumerate(v.agents) if roles[agent] != ORACLE]
    heads, pairs, shares = [], [], []
    for metric in metrics:
        ranked = sorted(contenders, key=lambda a: (-float(est[a][metric]), a))  # ties: the agent listed first
        if not ranked:
            continue
        row = {"scenario": v.name, "metric": metric, "winner": v.agents[ranked[0]]}
        row["winner_estimate"] = float(est[ranked[0]][metric])
        if len(ranked) > 1:
            row |= {"runner_up": v.agents[ranked[1]], "runner_up_estimate": float(est[ranked[1]][metric])}
            row |= dict(zip(("margin", "low", "high"), paired(v, metric, ranked[0], ranked[1])))
        heads.append(row)
        rl = [agent for agent in v.agents if roles[agent] == RL]
        for agent, other in combinations(rl, 2):
            diff = dict(zip(("diff", "low", "high"), paired(v, metric, index[agent], index[other])))
            pairs.append({"scenario": v.name, "metric": metric, "agent": agent, "other": other} | diff)
    oracles, randoms = labels_of_kind(config, "long_term_oracle"), labels_of_kind(config, "random")
    if not oracles:
        return heads, pairs, shares
    o = index[oracles[0]]
    r = index[randoms[0]] if randoms else None
    for a, agent in enumerate(v.agents):
        if a == o:
            continue
        for metric in metrics:
            base = {"scenario": v.name, "agent": agent, "metric": metric, "oracle": v.agents[o]}
            share = ratio(est[a][metric], est[o][metric])
            low, high = band(ratio(draws[a][metric], draws[o][metric]))
            shares.append(base | {"basis": "oracle", "share": float(share), "low": float(low), "high": float(high)})
            if r is None or a == r:
                continue
            span = ratio(est[a][metric] - est[r][metric], est[o][metric] - est[r][metric])
            span_draws = ratio(draws[a][metric] - draws[r][metric], draws[o][metric] - draws[r][metric])
            low, high = band(span_draws)
            shares.append(
                base | {"basis": "random_to_oracle", "share": float(span), "low": float(low), "high": float(high)}
            )
    return heads, pairs, shares


def stickiness_tables(
    config: dict, shoppers: pd.DataFrame, days: pd.DataFrame, seed: int = 0, reference: str | None = None
) -> StickinessTables:
    """Every stickiness table of a run (``StickinessTables``), per scenario, from the summary tables' draws.

    ``shoppers``: every cell's per-shopper rows (``report_data.load_run``; with ``scenario``, ``agent``, ``seed``,
    ``churn_day``, ``churned`` and the trait columns); ``days``: every cell's ``days.parquet`` rows with
    ``scenario``, ``agent``, ``seed``. ``reference``: the baseline of ``diff_curves`` (default: the config's)."""
    baseline = reference or config["report"]["reference"]
    if baseline not in config["agents"]:
        raise ValueError(f"no agent {baseline!r} to compare against; agents: {', '.join(config['agents'])}")
    roles = agent_roles(config)
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {name: [] for name in StickinessTables._fields}
    for scenario in [s["name"] for s in config["scenarios"]]:
        v = scenario_values(config, shoppers, days, scenario, rng)
        parts["summary"] += summary_rows(v)
        curves, diffs = curve_rows(v, baseline)
        parts["curves"] += curves
        parts["diff_curves"] += diffs
        parts["segments"] += segment_rows(v)
        parts["cohorts"].append(pd.DataFrame(cohort_rows(v, config["report"]["cohort_days"])))
        for name, rows in zip(("headline", "rl_pairs", "oracle_share"), headline_rows(config, v, roles)):
            parts[name].append(pd.DataFrame(rows))
    columns = {
        "segments": ["scenario", "segment", "level", "agent", "metric", "estimate", "low", "high", "n"],
        "diff_curves": ["scenario", "agent", "baseline", "measure", "day", "estimate", "low", "high"],
        "headline": ["scenario", "metric", "winner", "winner_estimate", "runner_up", "runner_up_estimate"]
        + ["margin", "low", "high"],
        "rl_pairs": ["scenario", "metric", "agent", "other", "diff", "low", "high"],
        "oracle_share": ["scenario", "agent", "metric", "oracle", "basis", "share", "low", "high"],
    }
    frames = {}
    for name, chunks in parts.items():
        chunks = [c for c in chunks if len(c)]
        frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
        frames[name] = frame.reindex(columns=columns[name]) if name in columns else frame
    return StickinessTables(**frames)


__all__ = [
    "CURVE_MEASURES",
    "DAY_METRICS",
    "SEGMENT_METRICS",
    "STICKINESS_METRICS",
    "StickinessTables",
    "headline_day",
    "headline_metrics",
    "metric_label",
    "shopper_measures",
    "stickiness_tables",
]
