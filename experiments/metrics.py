"""One source for what is measured: per-shopper columns, the summary metrics, their labels, the paired bootstrap.

Every summary metric is a mean over shoppers of one per-shopper column, or a ratio of two such means (a click
rate: clicks over impressions, pooled). So a metric is computed from the columns' (weighted) sums, and the same
function serves a cohort's summary, a bootstrap resample and a stack of resamples (``metrics_from_sums``).

The bootstrap is paired and two-level (``paired_resamples``): each resample picks seeds with replacement (the
same picks for every agent), then resamples the shoppers of each picked seed's held-out population (the same
draw for every agent: in seed s they met the same shoppers). With one seed it is the ordinary bootstrap over
shoppers: drawing a seed out of one consumes no random numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

RETENTION_DAYS = (1, 7, 30)

# The per-shopper columns every summary metric is a mean or a ratio of means of (evaluation cells store them).
COLUMNS = (
    "impressions",
    "clicks",
    "week1_impressions",
    "week1_clicks",
    "sessions",
    "purchases",
    "revenue",
    "retained_day1",
    "retained_day7",
    "retained_day30",
    "lifetime_days",
)


def metric_definitions(retention_days: Sequence[int] = RETENTION_DAYS) -> dict[str, tuple[str, str | None]]:
    """metric -> (numerator column, denominator column): a ratio of means, or a mean where the denominator is None."""
    return {
        "click_rate_week1": ("week1_clicks", "week1_impressions"),
        "click_rate": ("clicks", "impressions"),
        "sessions_per_shopper": ("sessions", None),
        "purchases_per_shopper": ("purchases", None),
        "revenue_per_shopper": ("revenue", None),
        **{f"retention_day{day}": (f"retained_day{day}", None) for day in retention_days},
        "mean_lifetime_days": ("lifetime_days", None),
    }


DEFINITIONS = metric_definitions()
METRICS = tuple(DEFINITIONS)  # the metrics every table reports with an interval


class Label(NamedTuple):
    """How a metric is shown: in reports (``long``), and as a terminal table's column (``short``, ``fmt``)."""

    long: str
    short: str
    fmt: str


LABELS = {
    "click_rate_week1": Label("CTR week 1", "CTR wk1", "{:.3f}"),
    "click_rate": Label("CTR", "CTR", "{:.3f}"),
    "sessions_per_shopper": Label("sessions", "sessions", "{:.1f}"),
    "impressions_per_session": Label("impressions per session", "imp/sess", "{:.1f}"),
    "purchases_per_shopper": Label("purchases", "buys", "{:.2f}"),
    "revenue_per_shopper": Label("revenue", "revenue", "{:.1f}"),
    "retention_day1": Label("retained d1", "ret d1", "{:.3f}"),
    "retention_day7": Label("retained d7", "ret d7", "{:.3f}"),
    "retention_day30": Label("retained d30", "ret d30", "{:.3f}"),
    "mean_lifetime_days": Label("lifetime (days)", "life d", "{:.1f}"),
}
METRIC_LABELS = {metric: label.long for metric, label in LABELS.items()}


def per_shopper_columns(result: Any, retention_days: Sequence[int] = RETENTION_DAYS) -> dict[str, np.ndarray]:
    """The per-shopper columns of a cohort (a ``simulate.CohortResult``), ``retained_dayN`` for each day asked."""
    return {
        "impressions": result.impressions,
        "clicks": result.clicks,
        "week1_impressions": result.first_week_impressions,
        "week1_clicks": result.first_week_clicks,
        "sessions": result.sessions,
        "purchases": result.purchases,
        "revenue": result.revenue,
        **{f"retained_day{day}": result.retained(day) for day in retention_days},
        "lifetime_days": np.where(result.churned, result.last_day, result.horizon_days),
    }


def per_shopper_frame(result: Any) -> pd.DataFrame:
    """One row per shopper: the ``COLUMNS`` of a cohort."""
    return pd.DataFrame(per_shopper_columns(result))


def metrics_from_sums(sums: Mapping[str, Any], weight: Any, definitions: Mapping | None = None) -> dict[str, Any]:
    """Metrics from the columns' weighted sums and the total weight; scalars, or stacked arrays of either."""
    out = {}
    for metric, (numerator, denominator) in (definitions or DEFINITIONS).items():
        if denominator is None:
            out[metric] = sums[numerator] / weight
        else:
            out[metric] = sums[numerator] / np.maximum(sums[denominator], 1e-12)
    return out


def frame_metrics(frame: pd.DataFrame, weights: np.ndarray | None = None) -> dict[str, float]:
    """Summary metrics of a per-shopper frame; ``weights`` (resample counts) for the bootstrap."""
    w = np.ones(len(frame)) if weights is None else weights
    sums = {column: np.dot(w, frame[column].to_numpy(dtype=float)) for column in COLUMNS}
    return {metric: float(value) for metric, value in metrics_from_sums(sums, w.sum()).items()}


def paired_resamples(
    rng: np.random.Generator, n_seeds: int, n_shoppers: int, resamples: int, shoppers: str = "counts"
) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Per resample: ``(seed index, shopper resample)`` for each seed picked (with replacement).

    ``shoppers="counts"``: each shopper's multinomial resample count (floats, summing to ``n_shoppers``);
    ``"indices"``: the picked shoppers' indices. Use the same resample for every agent: that pairs them.
    """
    if shoppers not in ("counts", "indices"):
        raise ValueError(f"shoppers must be 'counts' or 'indices', got {shoppers!r}")
    uniform = np.full(n_shoppers, 1.0 / n_shoppers)
    for _ in range(resamples):
        picks = rng.integers(0, n_seeds, size=n_seeds)  # one seed: no draw, a bootstrap over shoppers only
        if shoppers == "counts":
            yield [(int(s), rng.multinomial(n_shoppers, uniform).astype(float)) for s in picks]
        else:
            yield [(int(s), rng.integers(0, n_shoppers, n_shoppers)) for s in picks]


def interval(draws) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap draws."""
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_summary(
    frame: pd.DataFrame, resamples: int = 300, seed: int = 0
) -> dict[str, tuple[float, float, float]]:
    """metric -> (estimate, low, high): a 95% percentile bootstrap over one population's shoppers (seeded)."""
    rng = np.random.default_rng(seed)
    estimate = frame_metrics(frame)
    draws: dict[str, list[float]] = {name: [] for name in estimate}
    for [(_, weights)] in paired_resamples(rng, 1, len(frame), resamples):
        for name, value in frame_metrics(frame, weights).items():
            draws[name].append(value)
    return {name: (estimate[name], *interval(draws[name])) for name in estimate}


__all__ = [
    "COLUMNS",
    "DEFINITIONS",
    "LABELS",
    "METRICS",
    "METRIC_LABELS",
    "RETENTION_DAYS",
    "Label",
    "bootstrap_summary",
    "frame_metrics",
    "interval",
    "metric_definitions",
    "metrics_from_sums",
    "paired_resamples",
    "per_shopper_columns",
    "per_shopper_frame",
]
