"""Evaluate agents on held-out shopper populations and tabulate the results with 95% confidence intervals.

Every agent meets the same shoppers: population seed ``s`` gives the same starting shoppers to every agent
(slot i is seeded ``s + i``), so differences between rows are differences between policies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from stickyrec.agents.base import Agent
from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.simulate import CohortResult, simulate_cohort

METRICS = (
    "click_rate_week1",
    "click_rate",
    "sessions_per_shopper",
    "purchases_per_shopper",
    "revenue_per_shopper",
    "retention_day1",
    "retention_day7",
    "retention_day30",
    "mean_lifetime_days",
)


def per_shopper_frame(result: CohortResult) -> pd.DataFrame:
    """One row per shopper: the quantities every summary metric is a mean or a ratio of means of."""
    lifetime = np.where(result.churned, result.last_day, result.horizon_days)
    return pd.DataFrame(
        {
            "impressions": result.impressions,
            "clicks": result.clicks,
            "week1_impressions": result.first_week_impressions,
            "week1_clicks": result.first_week_clicks,
            "sessions": result.sessions,
            "purchases": result.purchases,
            "revenue": result.revenue,
            "retained_day1": result.retained(1),
            "retained_day7": result.retained(7),
            "retained_day30": result.retained(30),
            "lifetime_days": lifetime,
        }
    )


def _metrics(frame: pd.DataFrame, weights: np.ndarray | None = None) -> dict[str, float]:
    """Summary metrics of a per-shopper frame; ``weights`` (resample counts) for the bootstrap."""
    w = np.ones(len(frame)) if weights is None else weights

    def mean(column):
        return float(np.dot(w, frame[column].to_numpy(dtype=float)) / w.sum())

    def ratio(numerator, denominator):
        return float(
            np.dot(w, frame[numerator].to_numpy(dtype=float))
            / max(np.dot(w, frame[denominator].to_numpy(dtype=float)), 1e-12)
        )

    return {
        "click_rate_week1": ratio("week1_clicks", "week1_impressions"),
        "click_rate": ratio("clicks", "impressions"),
        "sessions_per_shopper": mean("sessions"),
        "purchases_per_shopper": mean("purchases"),
        "revenue_per_shopper": mean("revenue"),
        "retention_day1": mean("retained_day1"),
        "retention_day7": mean("retained_day7"),
        "retention_day30": mean("retained_day30"),
        "mean_lifetime_days": mean("lifetime_days"),
    }


def bootstrap_summary(
    frame: pd.DataFrame, resamples: int = 300, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """metric -> (estimate, low, high): a 95% percentile bootstrap over shoppers (seeded, reproducible)."""
    rng = np.random.default_rng(seed)
    estimate = _metrics(frame)
    draws = {name: [] for name in estimate}
    counts = rng.multinomial(len(frame), np.full(len(frame), 1.0 / len(frame)), size=resamples)
    for weights in counts:
        for name, value in _metrics(frame, weights).items():
            draws[name].append(value)
    return {
        name: (estimate[name], float(np.percentile(draws[name], 2.5)), float(np.percentile(draws[name], 97.5)))
        for name in estimate
    }


def evaluate_agents(
    agents: Sequence[Agent], config: RetentionConfig, n_shoppers: int, seed: int, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Run each agent on the same held-out population; per-shopper frames by agent name."""
    names = [agent.name for agent in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique, got {names}")
    return {
        agent.name: per_shopper_frame(simulate_cohort(agent, config, n_shoppers, seed=seed, progress=progress))
        for agent in agents
    }


def results_table(frames: dict[str, pd.DataFrame], resamples: int = 300) -> pd.DataFrame:
    """One row per agent: each metric with its 95% CI (columns ``metric``, ``metric_low``, ``metric_high``)."""
    rows = []
    for name, frame in frames.items():
        row = {"agent": name, "shoppers": len(frame)}
        for metric, (value, low, high) in bootstrap_summary(frame, resamples).items():
            row.update({metric: value, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def format_markdown(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> str:
    """A Markdown table: ``estimate [low, high]`` per metric."""
    labels = {
        "click_rate_week1": "CTR week 1",
        "click_rate": "CTR",
        "sessions_per_shopper": "sessions",
        "purchases_per_shopper": "purchases",
        "revenue_per_shopper": "revenue",
        "retention_day1": "retained d1",
        "retention_day7": "retained d7",
        "retention_day30": "retained d30",
        "mean_lifetime_days": "lifetime (days)",
    }
    header = "| agent | " + " | ".join(labels[m] for m in metrics) + " |"
    lines = [header, "|" + "---|" * (len(metrics) + 1)]
    for _, row in table.iterrows():
        cells = []
        for m in metrics:
            digits = 1 if row[m] >= 10 else 3
            cells.append(f"{row[m]:.{digits}f} [{row[m + '_low']:.{digits}f}, {row[m + '_high']:.{digits}f}]")
        lines.append(f"| {row['agent']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
