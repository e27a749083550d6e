"""The per-shopper matrices behind ``stickiness`` and the bootstrap's sums of them (its docstring says how).

Each (agent, seed) cell becomes named (shoppers x width) blocks (``cell_blocks``); a scenario's sums are, per agent,
``sum_s 1 @ X_s`` (the point estimate) and ``sum_s W_s @ X_s`` (every resample at once; ``resample_weights``).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from stickyrec.experiments.metrics import paired_resamples
from stickyrec.experiments.report_data import scenario_horizon

MONTH, WEEK = 30, 7  # trailing windows of MAU and WAU, days
TERCILES = ("low", "mid", "high")
SEGMENT_TRAITS = (("activity", "visit_rate"), ("price_sensitivity", "price_sensitivity"))
SEGMENT_TRAITS += (("satisfaction_start", "satisfaction_start"),)
DAILY = ("sessions", "impressions", "clicks", "rating_clicked", "satisfaction")
SEGMENT_PARTS = ("one", "retained", "revenue", "clicks", "impressions")


# --------------------------------------------------------------------------------------------------------------
# Per-shopper matrices
# --------------------------------------------------------------------------------------------------------------
def headline_day(config: dict, scenario: str) -> int:
    """The retention day of the headline and segments: 30, or the largest cohort day within a shorter horizon."""
    horizon = scenario_horizon(config, scenario)
    if horizon >= 30:
        return 30
    return max([d for d in config["report"]["cohort_days"] if d <= horizon] or [int(horizon)])


def trailing(active: np.ndarray, window: int) -> np.ndarray:
    """1 where the shopper was active at least once in the ``window`` days ending on each day (cut at day 0)."""
    c = np.cumsum(active, axis=1)
    before = np.zeros_like(c)
    before[:, window:] = c[:, :-window]
    return (c - before > 0).astype(float)


def dense_days(rows: dict[str, np.ndarray], n: int, n_days: int) -> dict[str, np.ndarray]:
    """(shoppers x days) matrices of one cell's ``days`` rows (``rows``: column -> array)."""
    out = {}
    shopper, day = rows["shopper"].astype(np.int64), rows["day"].astype(np.int64)
    if len(day) and (day.max() >= n_days or shopper.max() >= n):
        raise ValueError(f"days rows beyond {n} shoppers x {n_days} days (shopper {shopper.max()}, day {day.max()})")
    for name in (*DAILY, "revenue"):
        m = np.zeros((n, n_days))
        m[shopper, day] = rows[name]
        out[name] = m
    out["active"] = (out["impressions"] > 0).astype(float)
    return out


def cell_blocks(shop: pd.DataFrame, rows: dict[str, np.ndarray], n_days: int, day_n: int) -> dict[str, np.ndarray]:
    """Named (shoppers x width) blocks of one (agent, seed) cell: what every measure is a ratio of sums of."""
    n = len(shop)
    m = dense_days(rows, n, n_days)
    churn = shop["churn_day"].to_numpy(dtype=float)
    alive = ~shop["churned"].to_numpy(dtype=bool)
    weeks = n_days // WEEK
    weekly = {name: m[name][:, : weeks * WEEK].reshape(n, weeks, WEEK).sum(axis=2) for name in ("sessions", "clicks")}
    weekly["impressions"] = m["impressions"][:, : weeks * WEEK].reshape(n, weeks, WEEK).sum(axis=2)
    unbounded = (alive[:, None] | (churn[:, None] > np.arange(n_days + 1)[None, :])).astype(float)
    blocks = {
        "one": np.ones((n, 1)),
        "unbounded": unbounded,
        "active": m["active"],
        "mau": trailing(m["active"], MONTH),
        "wau": trailing(m["active"], WEEK),
        **{name: m[name] for name in DAILY if name != "sessions"},  # sessions: weekly only
        "ltv": np.cumsum(m["revenue"], axis=1),
        "week_sessions": weekly["sessions"],
        "week_active": (weekly["sessions"] > 0).astype(float),
        "week_clicks": weekly["clicks"],
        "week_impressions": weekly["impressions"],
    }
    blocks["segment_base"] = np.column_stack(
        [blocks["one"][:, 0], unbounded[:, day_n], blocks["ltv"][:, -1], m["clicks"].sum(1), m["impressions"].sum(1)]
    )
    return blocks


def cells_of(config: dict, shoppers: pd.DataFrame, days: pd.DataFrame, scenarios: list[str] | None = None):
    """Yield ((scenario, agent, seed), the cell's shoppers in order, its days rows as arrays) in config order
    (``scenarios``: only these)."""
    shop_index = shoppers.groupby(["scenario", "agent", "seed"], sort=False).indices
    day_index = days.groupby(["scenario", "agent", "seed"], sort=False).indices
    columns = {name: days[name].to_numpy() for name in ("shopper", "day", *DAILY, "revenue")}
    for scenario in scenarios or [s["name"] for s in config["scenarios"]]:
        for agent in config["agents"]:
            for seed in range(int(config["seeds"])):
                key = (scenario, agent, seed)
                if key not in shop_index:
                    raise ValueError(f"no shoppers of cell {key}")
                shop = shoppers.iloc[shop_index[key]].sort_values("shopper")
                if not np.array_equal(shop["shopper"].to_numpy(), np.arange(len(shop))):
                    raise ValueError(f"cell {key}: shoppers are not numbered 0..{len(shop) - 1}")
                at = day_index.get(key, np.zeros(0, dtype=np.int64))
                yield key, shop, {name: values[at] for name, values in columns.items()}


# --------------------------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------------------------
def segment_levels(config: dict, shoppers: pd.DataFrame, scenario: str) -> tuple[list[tuple[str, str]], list]:
    """([(segment, level)], per seed a (shoppers x levels) 0/1 matrix). Terciles are cut on each seed's population
    (the same shoppers meet every agent in a seed, so membership is the same for every agent)."""
    first = next(iter(config["agents"]))
    frame = shoppers[(shoppers["scenario"] == scenario) & (shoppers["agent"] == first)]
    per_seed = [frame[frame["seed"] == s].sort_values("shopper") for s in range(int(config["seeds"]))]
    levels: list[tuple[str, str]] = []
    codes: list[list[np.ndarray]] = [[] for _ in per_seed]
    for segment, column in SEGMENT_TRAITS:
        if column not in frame:
            continue
        cut = []
        for part in per_seed:
            v = part[column].to_numpy(dtype=float)
            low, high = np.quantile(v, [1 / 3, 2 / 3])
            cut.append((v > low).astype(int) + (v > high).astype(int))
        if max(c.max() for c in cut) == 0:  # one value for everyone: no segments
            continue
        for k, name in enumerate(TERCILES):
            levels.append((segment, name))
            for s, c in enumerate(cut):
                codes[s].append(c == k)
    if "interest_category" in frame:
        for category in sorted(set(frame["interest_category"])):
            levels.append(("interest_category", f"category {int(category)}"))
            for s, part in enumerate(per_seed):
                codes[s].append(part["interest_category"].to_numpy() == category)
    return levels, [np.column_stack(c).astype(float) if c else np.zeros((len(p), 0)) for c, p in zip(codes, per_seed)]


# --------------------------------------------------------------------------------------------------------------
# The bootstrap: sums of every block, point estimate and resamples
# --------------------------------------------------------------------------------------------------------------
def resample_weights(rng: np.random.Generator, n_seeds: int, n: int, resamples: int) -> np.ndarray:
    """W[s, r]: shopper weights that seed s gets in resample r (the sum over its picks; paired_tables' draws)."""
    weights = np.zeros((n_seeds, resamples, n))
    for r, picks in enumerate(paired_resamples(rng, n_seeds, n, resamples)):
        for s, counts in picks:
            weights[s, r] += counts
    return weights


class Sums(NamedTuple):
    """Per agent: block name -> column sums, point estimate (width,) and resamples (resamples, width);
    per agent and seed: the seed's own column sums (cohorts)."""

    estimate: list[dict[str, np.ndarray]]
    draws: list[dict[str, np.ndarray]]
    per_seed: list[list[dict[str, np.ndarray]]]


def scenario_sums(config, shoppers, days, scenario, weights, masks) -> Sums:
    """Every block's sums for every agent of one scenario (matrix products, no loop over shoppers)."""
    n_days = int(np.ceil(scenario_horizon(config, scenario)))
    day_n = headline_day(config, scenario)
    agents = list(config["agents"])
    estimate, draws, per_seed = [], [], []
    cells = {key: (shop, rows) for key, shop, rows in cells_of(config, shoppers, days, [scenario])}
    for agent in agents:
        names, widths, seed_sums, total = None, None, [], None
        for s in range(int(config["seeds"])):
            blocks = cell_blocks(*cells[(scenario, agent, s)], n_days, day_n)
            base = blocks.pop("segment_base")
            blocks["segments"] = (masks[s][:, :, None] * base[:, None, :]).reshape(len(base), -1)
            names, widths = list(blocks), [b.shape[1] for b in blocks.values()]
            x = np.concatenate(list(blocks.values()), axis=1)
            seed_sums.append(x.sum(axis=0))
            total = np.zeros((weights.shape[1], x.shape[1])) if total is None else total
            picked = np.flatnonzero(weights[s].any(axis=1))  # resamples that drew seed s (about 2 in 3 of 5 seeds)
            total[picked] += weights[s][picked] @ x
        split = np.cumsum(widths)[:-1]
        estimate.append(dict(zip(names, np.split(np.sum(seed_sums, axis=0), split))))
        draws.append(dict(zip(names, np.split(total, split, axis=-1))))
        per_seed.append([dict(zip(names, np.split(v, split))) for v in seed_sums])
    return Sums(estimate, draws, per_seed)


def ratio(num, den):
    """num / den, NaN where den is 0 (a day nobody was active on)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def band(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile interval along the resample axis (0), as ``metrics.interval``; NaN draws ignored."""
    if not np.isnan(draws).any():
        low, high = np.percentile(draws, [2.5, 97.5], axis=0)
        return low, high
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    return low, high


__all__ = [
    "DAILY",
    "MONTH",
    "SEGMENT_PARTS",
    "SEGMENT_TRAITS",
    "TERCILES",
    "WEEK",
    "Sums",
    "band",
    "cell_blocks",
    "cells_of",
    "dense_days",
    "headline_day",
    "ratio",
    "resample_weights",
    "scenario_sums",
    "segment_levels",
    "trailing",
]
