"""A finished run's numbers: load its cells, and compute the tables the report shows (no figures, no documents).

Intervals. Seeds pair the agents: in seed s every agent meets the same held-out population. The bootstrap
(``metrics.paired_resamples``) resamples seeds (the same picks for every agent), then shoppers within each picked
population (the same weights for every agent), so an interval holds both the seed-to-seed spread of training and
the population's noise, and a difference between two agents is paired. Kaplan-Meier curves and the log-rank test
pool the seeds' shoppers (lifelines; Greenwood's exponential bands); the log-rank test treats the two agents'
shoppers as independent, which they are not (same starting shoppers), so its p-value is conservative for the
paired comparison.

The best non-RL agent of a scenario is the one with the highest day-30 retention among the agents that neither
train in the simulator (RL) nor read hidden state (oracles and latent-state heuristics: reference bounds, not
baselines); each RL agent's margin over it comes from the same paired draws as the other differences.

"Still active at day d" is ``churn_day > d``: a churned shopper's ``churn_day`` is the day after their last
session, so day-d retention in the table equals the Kaplan-Meier curve at d for every d below the horizon.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from stickyrec.experiments.activity import TRAIT_COLUMNS, quantised, unpacked
from stickyrec.experiments.campaigns import OFFER_COLUMNS, SHOPPER_COLUMNS
from stickyrec.experiments.cells import CELL_MARKER, cell_name, config_hash, read_marker
from stickyrec.experiments.metrics import COLUMNS, METRICS, interval, metrics_from_sums, paired_resamples
from stickyrec.inputs import load_yaml, short_repr

DIFF_METRICS = ("retention_day30", "click_rate_week1", "revenue_per_shopper")
RL, NON_RL, ORACLE = "RL", "non-RL", "oracle"  # agent roles (``agent_roles``)
ROLE_NOTES = {
    RL: "trains in the simulator",
    NON_RL: "learns from the log or not at all; public features only",
    ORACLE: "reads hidden state: a reference bound, not a baseline",
}
BEST_METRIC = "retention_day30"  # what "best non-RL" is best at


class RunNotFinishedError(ValueError):
    """The run directory is missing cells; ``stickyrec run`` the same config again to finish it."""


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
KEYS = ("scenario", "agent", "seed")
# lifetimes.parquet: every held-out shopper of every cell (what a committed run re-renders from, with
# activity.parquet and cells.json); the trait columns are absent in runs made before cells recorded them
LIFETIME_COLUMNS = (*KEYS, "shopper", "churn_day", "churned", "lifetime_days", "sessions", "clicks", "impressions")
LIFETIME_COLUMNS += ("purchases", "revenue", *(c for c in COLUMNS if c not in ("lifetime_days", "sessions", "clicks")))
LIFETIME_REQUIRED = tuple(dict.fromkeys(LIFETIME_COLUMNS))
# optional: shoppers' traits (cells since activity rows), and with the coupon lever the offer and campaign columns
LIFETIME_COLUMNS = tuple(dict.fromkeys(LIFETIME_REQUIRED + TRAIT_COLUMNS + OFFER_COLUMNS + SHOPPER_COLUMNS))
COMMITTED_FILES = ("lifetimes.parquet", "activity.parquet", "cells.json")  # a run without cells/ re-renders from


class RunData(NamedTuple):
    """A finished run: resolved config, per-shopper rows of every cell, daily totals of every cell, the cell
    records, and every cell's per-(shopper, day) activity rows (None for cells made before they were recorded)."""

    config: dict
    shoppers: pd.DataFrame
    daily: pd.DataFrame
    cells: list[dict]
    days: pd.DataFrame | None


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[dict]]:
    """(resolved config, per-shopper frame of every cell, daily frame of every cell, cell records)."""
    return tuple(read_run(run_dir, activity=False)[:4])


def read_config(run_dir: str | Path) -> tuple[dict, list[tuple[str, str, int]]]:
    """(a run directory's resolved config, its (scenario, agent, seed) cells), checked enough to use."""
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a stickyrec run directory (no config.yaml)")
    config = load_yaml(config_path, source=str(config_path))
    seeds = config.get("seeds") if isinstance(config, dict) else None
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 1000:
        raise ValueError(f"{config_path} is not a stickyrec run config (seeds {short_repr(seeds)}; allowed: 1 to 1000)")
    try:
        grid = [
            (s["name"], label, seed)
            for s in config["scenarios"]
            for label in config["agents"]
            for seed in range(config["seeds"])
        ]
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{config_path} is not a stickyrec run config ({type(exc).__name__}: {short_repr(exc)})"
        ) from None
    return config, grid


def read_run(run_dir: str | Path, activity: bool = True) -> RunData:
    """A finished run from its cells, or, where it has none (a committed run: cells/ not kept), from
    ``COMMITTED_FILES``; ``activity=False`` skips the per-day activity rows (``days`` None). Some cells but not all:
    ``RunNotFinishedError`` (the committed files of an earlier report would be stale)."""
    run_dir = Path(run_dir)
    config, grid = read_config(run_dir)
    sealed_with = config_hash(config)
    shoppers, daily, days, cells, missing = [], [], [], [], []
    for scenario, label, seed in grid:
        cell = run_dir / "cells" / cell_name(scenario, label, seed)
        if not (cell / CELL_MARKER).exists():
            missing.append(cell.name)
            continue
        record = read_marker(cell / CELL_MARKER, sealed_with)  # a changed byte in any file: refused, named
        keys = {"scenario": scenario, "agent": label, "seed": seed}
        shoppers.append(read_parquet(cell / "shoppers.parquet").assign(**keys))
        daily.append(read_parquet(cell / "daily.parquet").assign(**keys))
        if activity and "days.parquet" in record["files_sha256"]:
            days.append(read_parquet(cell / "days.parquet").assign(**keys))
        cells.append(record)
    if missing:  # no cell at all (a committed run): the committed files; some cells: finish the run
        absent = [name for name in COMMITTED_FILES if not (run_dir / name).is_file()]
        if not absent and len(missing) == len(grid):
            return read_committed(run_dir, config, grid, activity)
        if len(missing) == len(grid) and len(absent) < len(COMMITTED_FILES):
            raise ValueError(
                f"{run_dir} has none of its {len(grid)} cells and no {', '.join(absent)}: a run re-renders from"
                f" its cells/, or without them from {', '.join(COMMITTED_FILES)}"
            )
        raise RunNotFinishedError(
            f"{run_dir}: {len(missing)} cells are not finished (e.g. {missing[0]}); run"
            f" `stickyrec run` with the same config and --out to finish them"
        )
    if not (activity and len(days) == len(grid)):
        return RunData(config, pd.concat(shoppers, ignore_index=True), pd.concat(daily, ignore_index=True), cells, None)
    frame = quantised(pd.concat(days, ignore_index=True))  # as read_committed reads it back: the same numbers
    return RunData(config, pd.concat(shoppers, ignore_index=True), daily_from_days(config, frame), cells, frame)


def read_committed(run_dir: Path, config: dict, grid: list, activity: bool) -> RunData:
    """A run without its cells: ``lifetimes.parquet``, ``activity.parquet`` and ``cells.json`` (build_report's)."""
    shoppers = read_parquet(run_dir / "lifetimes.parquet")
    absent = [c for c in LIFETIME_REQUIRED if c not in shoppers]
    if absent:
        lacks = ", ".join(absent)
        raise ValueError(f"{run_dir / 'lifetimes.parquet'} lacks columns {lacks} (made by an older stickyrec?)")
    try:
        days = unpacked(read_parquet(run_dir / "activity.parquet"))
    except ValueError as exc:
        raise ValueError(f"{run_dir / 'activity.parquet'} {exc}") from None
    have = set(shoppers.groupby(list(KEYS), sort=False).groups)
    lacking = [key for key in grid if key not in have]
    if lacking:
        raise ValueError(f"{run_dir / 'lifetimes.parquet'} has no shoppers of cell {lacking[0]} ({len(lacking)} cells)")
    try:
        cells = json.loads((run_dir / "cells.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{run_dir / 'cells.json'} is not readable JSON ({short_repr(str(exc))})") from None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ValueError(f"{run_dir / 'cells.json'} is not a list of cell records")
    return RunData(config, shoppers, daily_from_days(config, days), cells, days if activity else None)


def daily_from_days(config: dict, days: pd.DataFrame) -> pd.DataFrame:
    """Each cell's daily totals (as its daily.parquet: a row per day of the horizon) from its activity rows. The
    report uses these wherever a run has activity rows, cells or not; revenue comes from the quantised rows (cents),
    so it can differ from daily.parquet by up to half a cent per shopper-day."""
    totals = ["sessions", "impressions", "clicks", "purchases", "revenue"]
    out = []
    for key, part in days.groupby(list(KEYS), sort=False):
        horizon = int(np.ceil(scenario_horizon(config, key[0])))
        sums = part.groupby("day")[totals].sum().astype(float).reindex(range(horizon), fill_value=0.0)
        out.append(sums.rename_axis("day").reset_index().assign(**dict(zip(KEYS, key))))
    return pd.concat(out, ignore_index=True)


def read_parquet(path: Path) -> pd.DataFrame:
    """A result file as a DataFrame; an unreadable one is a one-line ``ValueError`` naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors have no common base
        raise ValueError(
            f"{path} is not a readable Parquet file ({type(exc).__name__}: {short_repr(str(exc))})"
        ) from None


def _by_column(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted column sums (last axis: ``metrics.COLUMNS``) by column name."""
    return {name: sums[..., i] for i, name in enumerate(COLUMNS)}


def _stack(frame: pd.DataFrame, agents: list[str], n_seeds: int) -> np.ndarray:
    """x[a, s]: the (shoppers, columns) matrix of agent a in seed s, shoppers in order."""
    return np.stack(
        [
            np.stack(
                [
                    frame[(frame["agent"] == a) & (frame["seed"] == s)]
                    .sort_values("shopper")[list(COLUMNS)]
                    .to_numpy(dtype=float)
                    for s in range(n_seeds)
                ]
            )
            for a in agents
        ]
    )


class PairedTables(NamedTuple):
    """The paired bootstrap's tables: metrics with intervals, differences against the reference agent, the best
    non-RL agent per scenario, and each RL agent's margin over it."""

    table: pd.DataFrame
    diffs: pd.DataFrame
    best: pd.DataFrame
    margins: pd.DataFrame


def agent_roles(config: dict) -> dict[str, str]:
    """Agent label -> ``RL`` (trains in the simulator), ``ORACLE`` (reads hidden state) or ``NON_RL``."""
    from stickyrec.agents.base import NEEDS_ENV
    from stickyrec.agents.registry import get_agent_class, needs

    roles = {}
    for label, spec in config["agents"].items():
        kind = spec.get("kind", label)
        if needs(kind) == NEEDS_ENV or getattr(get_agent_class(kind), "trains_in_simulator", False):
            roles[label] = RL
        else:
            roles[label] = ORACLE if get_agent_class(kind).uses_latent_state else NON_RL
    return roles


def best_and_margins(scenario: str, agents: list[str], roles: dict, estimate: dict, draws: dict):
    """(the best non-RL agent's row or None, one row per RL agent: its paired margin over it, with 95% intervals).

    ``estimate``: metric -> (agents,) estimates; ``draws``: metric -> (resamples, agents) paired bootstrap draws.
    Ties go to the agent listed first."""
    candidates = [a for a, agent in enumerate(agents) if roles[agent] == NON_RL]
    if not candidates:
        return None, []
    b = max(candidates, key=lambda a: (estimate[BEST_METRIC][a], -a))
    best = {"scenario": scenario, "best_non_rl": agents[b], BEST_METRIC: float(estimate[BEST_METRIC][b])}
    best[f"{BEST_METRIC}_low"], best[f"{BEST_METRIC}_high"] = interval(draws[BEST_METRIC][:, b])
    margins = []
    for a, agent in enumerate(agents):
        if roles[agent] != RL:
            continue
        row = {"scenario": scenario, "agent": agent, "best_non_rl": agents[b]}
        for m in DIFF_METRICS:
            row[f"{m}_margin"] = float(estimate[m][a] - estimate[m][b])
            row[f"{m}_margin_low"], row[f"{m}_margin_high"] = interval(draws[m][:, a] - draws[m][:, b])
        margins.append(row)
    return best, margins


def summary_tables(config: dict, shoppers: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metric table with 95% intervals, paired differences against the reference agent), per scenario."""
    tables = paired_tables(config, shoppers, seed)
    return tables.table, tables.diffs


def paired_tables(config: dict, shoppers: pd.DataFrame, seed: int = 0) -> PairedTables:
    """Every table of the paired bootstrap (``PairedTables``), per scenario, from one set of draws."""
    resamples = int(config["report"]["resamples"])
    reference = config["report"]["reference"]
    agents = list(config["agents"])
    roles = agent_roles(config)
    n_seeds = int(config["seeds"])
    rows, diffs, bests, margins = [], [], [], []
    rng = np.random.default_rng(seed)
    for scenario in [s["name"] for s in config["scenarios"]]:
        x = _stack(shoppers[shoppers["scenario"] == scenario], agents, n_seeds)
        n = x.shape[2]
        estimate = metrics_from_sums(_by_column(x.sum(axis=(1, 2))), np.full(len(agents), float(n_seeds * n)))
        sums = np.zeros((resamples, len(agents), len(COLUMNS)))
        for r, picks in enumerate(paired_resamples(rng, n_seeds, n, resamples)):
            for s, weights in picks:
                sums[r] += np.einsum("n,anc->ac", weights, x[:, s])
        draws = metrics_from_sums(_by_column(sums), float(n_seeds * n))  # (resamples, agents) per metric
        ref = agents.index(reference)
        for a, agent in enumerate(agents):
            row: dict[str, Any] = {"scenario": scenario, "agent": agent, "seeds": n_seeds, "shoppers": n * n_seeds}
            for m in METRICS:
                row[m] = float(estimate[m][a])
                row[f"{m}_low"], row[f"{m}_high"] = interval(draws[m][:, a])
            rows.append(row)
            if a == ref:
                continue
            diff = {"scenario": scenario, "agent": agent, "reference": reference}
            for m in DIFF_METRICS:
                diff[f"{m}_diff"] = float(estimate[m][a] - estimate[m][ref])
                diff[f"{m}_diff_low"], diff[f"{m}_diff_high"] = interval(draws[m][:, a] - draws[m][:, ref])
            diffs.append(diff)
        best, rl_margins = best_and_margins(scenario, agents, roles, estimate, draws)
        bests += [best] if best is not None else []
        margins += rl_margins
    return PairedTables(pd.DataFrame(rows), pd.DataFrame(diffs), pd.DataFrame(bests), pd.DataFrame(margins))


def logrank(durations_a, durations_b, events_a, events_b):
    """lifelines' log-rank test, without its pandas-4 deprecation chatter (not ours to fix)."""
    from lifelines.statistics import logrank_test

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*arguments of sum will be keyword-only")
        return logrank_test(durations_a, durations_b, events_a, events_b)


def kaplan_meier(config: dict, shoppers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(KM curves with 95% bands by scenario/agent/day, log-rank tests against the reference agent)."""
    from lifelines import KaplanMeierFitter

    reference = config["report"]["reference"]
    curves, tests = [], []
    for scenario in config["scenarios"]:
        horizon = int(np.ceil(scenario_horizon(config, scenario["name"])))
        days = np.arange(horizon + 1, dtype=float)
        frame = shoppers[shoppers["scenario"] == scenario["name"]]
        for agent in config["agents"]:
            part = frame[frame["agent"] == agent]
            fitter = KaplanMeierFitter().fit(part["churn_day"], part["churned"], label=agent)
            survival = fitter.survival_function_at_times(days).to_numpy()
            bands = fitter.confidence_interval_survival_function_
            # the bands are step functions on the event times: read them at each day like the curve
            idx = np.searchsorted(bands.index.to_numpy(), days, side="right") - 1
            low = np.where(idx >= 0, bands.iloc[np.maximum(idx, 0), 0].to_numpy(), 1.0)
            high = np.where(idx >= 0, bands.iloc[np.maximum(idx, 0), 1].to_numpy(), 1.0)
            curves.append(
                pd.DataFrame(
                    {
                        "scenario": scenario["name"],
                        "agent": agent,
                        "day": days.astype(int),
                        "survival": survival,
                        "low": low,
                        "high": high,
                    }
                )
            )
            if agent == reference:
                continue
            ref = frame[frame["agent"] == reference]
            test = logrank(part["churn_day"], ref["churn_day"], part["churned"], ref["churned"])
            tests.append(
                {
                    "scenario": scenario["name"],
                    "agent": agent,
                    "reference": reference,
                    "logrank_statistic": float(test.test_statistic),
                    "logrank_p": float(test.p_value),
                }
            )
    return pd.concat(curves, ignore_index=True), pd.DataFrame(tests)


def scenario_horizon(config: dict, scenario: str) -> float:
    return float(config["resolved_env"][scenario]["horizon_days"])


def engagement(config: dict, shoppers: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, agent and day: shoppers still active, sessions and revenue per active shopper (seeds pooled)."""
    out = []
    for (scenario, agent), frame in daily.groupby(["scenario", "agent"], sort=False):
        totals = frame.groupby("day")[["sessions", "impressions", "clicks", "purchases", "revenue"]].sum()
        days = totals.index.to_numpy()
        churn = shoppers.loc[(shoppers["scenario"] == scenario) & (shoppers["agent"] == agent), "churn_day"]
        active = (churn.to_numpy()[None, :] > days[:, None]).sum(axis=1).astype(float)
        per = np.maximum(active, 1.0)
        out.append(
            pd.DataFrame(
                {
                    "scenario": scenario,
                    "agent": agent,
                    "day": days,
                    "active_shoppers": active,
                    "sessions_per_active": totals["sessions"].to_numpy() / per,
                    "revenue_per_active": totals["revenue"].to_numpy() / per,
                    "clicks_per_active": totals["clicks"].to_numpy() / per,
                    "click_rate": totals["clicks"].to_numpy() / np.maximum(totals["impressions"].to_numpy(), 1.0),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def cohorts(config: dict, shoppers: pd.DataFrame) -> pd.DataFrame:
    """Day-N retention per evaluation cohort (the population of each seed) and pooled (cohort ``all``)."""
    days = config["report"]["cohort_days"]
    rows = []
    for (scenario, agent), frame in shoppers.groupby(["scenario", "agent"], sort=False):
        groups = [(f"seed {s}", f) for s, f in frame.groupby("seed")] + [("all", frame)]
        for cohort, part in groups:
            churn = part["churn_day"].to_numpy()
            rows.append(
                {
                    "scenario": scenario,
                    "agent": agent,
                    "cohort": cohort,
                    "shoppers": len(part),
                    **{f"day_{d}": float((churn > d).mean()) for d in days},
                }
            )
    return pd.DataFrame(rows)


def training_frame(cells: list[dict]) -> pd.DataFrame:
    """Per cell: training and cell wall time, and env steps of training (RL agents)."""
    return pd.DataFrame(
        [
            {
                "scenario": c["scenario"],
                "agent": c["agent"],
                "seed": c["seed"],
                "train_seconds": c["train_seconds"],
                "cell_seconds": c["seconds"],
                "steps": c["training"].get("steps"),
            }
            for c in cells
        ]
    )


def click_auc_frame(cells: list[dict]) -> pd.DataFrame:
    """Per click-model cell (the MLP): its click AUC on the held-out shoppers' logged impressions, and the AUC of
    the simulator's true click probabilities on the same impressions (the ceiling); empty without such cells."""
    return pd.DataFrame(
        [
            {
                "scenario": c["scenario"],
                "agent": c["agent"],
                "seed": c["seed"],
                "impressions": c["click_auc"]["impressions"],
                "auc": c["click_auc"]["model"],
                "auc_true_click_probability": c["click_auc"]["true_click_probability"],
            }
            for c in cells
            if "click_auc" in c
        ]
    )


__all__ = [
    "COMMITTED_FILES",
    "KEYS",
    "LIFETIME_COLUMNS",
    "RunData",
    "daily_from_days",
    "read_committed",
    "read_config",
    "read_run",
    "BEST_METRIC",
    "NON_RL",
    "ORACLE",
    "RL",
    "ROLE_NOTES",
    "PairedTables",
    "agent_roles",
    "best_and_margins",
    "click_auc_frame",
    "paired_tables",
    "training_frame",
    "DIFF_METRICS",
    "RunNotFinishedError",
    "cohorts",
    "engagement",
    "kaplan_meier",
    "load_run",
    "logrank",
    "scenario_horizon",
    "summary_tables",
]
