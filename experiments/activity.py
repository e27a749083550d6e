"""Per-shopper, per-day activity and each shopper's starting traits: what the analyst report's stickiness measures
(DAU/MAU, WAU/MAU, sessions per active shopper per week, N-day retention, LTV by day, satisfaction, segments) are
computed from, with the same paired bootstrap over seeds and shoppers as the summary tables.

``ActivityStats`` is a rollout observer (it reads the env, never changes it, so adding it leaves every number as it
was). ``finish()`` returns ``(days, traits)``:

- ``days``: one row per (shopper, day) on which the shopper saw at least one slate: ``shopper``, ``day``,
  ``sessions`` (sessions started that day), ``impressions``, ``clicks``, ``purchases``, ``revenue``,
  ``rating_clicked`` (the sum of the public rating of the items she clicked), ``satisfaction`` (the sum over her
  impressions of her latent satisfaction after each one: simulator-only truth; divide by ``impressions``);
- ``traits``: one row per shopper, as she arrived: ``visit_rate`` (the latent activity level, visits per day),
  ``price_sensitivity``, ``satisfaction_start`` (latent), ``interest_category`` (the catalog category whose centre is
  nearest her latent interest).

A report keeps every cell's ``days`` rows in its run's ``activity.parquet``: ``packed`` stores the three sums in
hundredths (int32 columns ``revenue_x100``, ``rating_clicked_x100``, ``satisfaction_x100``) and the counts in the
narrowest integer types, zstd-compressed (under half the float form's size); ``unpacked`` reads either form back.
The report computes from ``quantised`` rows (sums rounded to 1/100) whether it reads cells or that file, so a
committed run re-renders to the same bytes as the run it came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from stickyrec.experiments.rollout import RolloutObserver

DAY_COLUMNS = (
    "shopper",
    "day",
    "sessions",
    "impressions",
    "clicks",
    "purchases",
    "revenue",
    "rating_clicked",
    "satisfaction",
)
TRAIT_COLUMNS = ("visit_rate", "price_sensitivity", "satisfaction_start", "interest_category")
_COUNTS = ("sessions", "impressions", "clicks", "purchases")
_SUMS = ("revenue", "rating_clicked", "satisfaction")
SCALE = 100  # activity.parquet keeps the sums in hundredths (cents of revenue)
_KEYS = ("scenario", "agent", "seed")


class ActivityStats(RolloutObserver):
    """Rollout observer: per-(shopper, day) activity and starting traits (module docstring)."""

    def __init__(self, config: Any, n_shoppers: int) -> None:
        self.n_days = max(1, int(np.ceil(config.horizon_days)))
        shape = (int(n_shoppers), self.n_days)
        self.counts = {name: np.zeros(shape, dtype=np.int32) for name in _COUNTS}
        self.sums = {name: np.zeros(shape, dtype=np.float64) for name in _SUMS}
        self.opens = np.ones(int(n_shoppers), dtype=np.int32)  # 1 where the next impression opens a session
        self.simulator = None
        self.traits: dict[str, np.ndarray] = {}

    def on_reset(self, env, obs, info) -> None:
        sim = env.simulator
        st, catalog = sim.state, sim.catalog
        self.simulator = sim
        nearest = np.argmax(np.asarray(st.interest, dtype=np.float64) @ catalog.centroids.T, axis=1)
        self.traits = {
            "visit_rate": st.visit_rate.astype(np.float64).copy(),
            "price_sensitivity": st.price_sensitivity.astype(np.float64).copy(),
            "satisfaction_start": st.satisfaction.astype(np.float64).copy(),
            "interest_category": nearest.astype(np.int64),
        }

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        rows = np.flatnonzero(active)
        if not rows.size:
            return
        days = np.clip(info["day"][rows].astype(np.int64), 0, self.n_days - 1)
        at = (rows, days)  # one entry per shopper: no repeated index within a step
        item = info["clicked_item"][rows]
        clicked = item >= 0
        counts, sums = self.counts, self.sums
        counts["sessions"][at] += self.opens[rows]
        counts["impressions"][at] += 1
        counts["clicks"][at] += clicked
        counts["purchases"][at] += info["purchased"][rows]
        sums["revenue"][at] += info["revenue"][rows]
        rating = np.take(self.simulator.catalog.rating, np.where(clicked, item, 0))
        sums["rating_clicked"][at] += np.where(clicked, rating, 0.0)
        sums["satisfaction"][at] += self.simulator.state.satisfaction[rows]
        self.opens = info["returned"].astype(np.int32)

    def finish(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        shopper, day = np.nonzero(self.counts["impressions"])
        days = {"shopper": shopper.astype(np.int32), "day": day.astype(np.int16)}
        days |= {name: self.counts[name][shopper, day].astype(np.int32) for name in _COUNTS}
        days["revenue"] = self.sums["revenue"][shopper, day]  # float64: sums to the shopper's revenue exactly
        days |= {name: self.sums[name][shopper, day].astype(np.float32) for name in ("rating_clicked", "satisfaction")}
        return pd.DataFrame(days, columns=list(DAY_COLUMNS)), pd.DataFrame(self.traits, columns=list(TRAIT_COLUMNS))


def quantised(days: pd.DataFrame) -> pd.DataFrame:
    """``days`` rows with each sum rounded to 1/``SCALE`` (float64): what the report computes from."""
    return days.assign(**{name: np.round(days[name].to_numpy(np.float64) * SCALE) / SCALE for name in _SUMS})


def packed(days: pd.DataFrame) -> pd.DataFrame:
    """Activity rows (``DAY_COLUMNS`` plus scenario, agent, seed) in activity.parquet's compact form, row order kept."""
    out = {key: days[key].astype("category") if key != "seed" else days[key].astype(np.uint16) for key in _KEYS}
    for name in ("shopper", "day", *_COUNTS):
        values = days[name].to_numpy()
        low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
        out[name] = values.astype(np.min_scalar_type(high) if low >= 0 else np.int32)
    for name in _SUMS:
        scaled = np.round(days[name].to_numpy(np.float64) * SCALE)
        if len(scaled) and np.abs(scaled).max() >= 2**31:
            raise ValueError(f"activity column {name} exceeds what activity.parquet stores ({np.abs(scaled).max()})")
        out[f"{name}_x{SCALE}"] = scaled.astype(np.int32)
    return pd.DataFrame(out)


def unpacked(frame: pd.DataFrame) -> pd.DataFrame:
    """Activity rows from activity.parquet, packed or in the float form of earlier reports, quantised as the report
    computes from them; a file lacking columns is a ``ValueError`` naming them."""
    sums = {name: f"{name}_x{SCALE}" if f"{name}_x{SCALE}" in frame else name for name in _SUMS}
    need = [*_KEYS, "shopper", "day", *_COUNTS, *sums.values()]
    absent = [c for c in need if c not in frame]
    if absent:
        raise ValueError(f"lacks columns {', '.join(absent)} (made by an older stickyrec?)")
    out = {key: frame[key].astype(str if key != "seed" else np.int64) for key in _KEYS}
    out |= {"shopper": frame["shopper"].astype(np.int32), "day": frame["day"].astype(np.int16)}
    out |= {name: frame[name].astype(np.int32) for name in _COUNTS}
    for name, column in sums.items():
        values = frame[column].to_numpy(np.float64)
        out[name] = values / SCALE if column != name else values
    return quantised(pd.DataFrame(out)[[*DAY_COLUMNS, *_KEYS]])


__all__ = ["DAY_COLUMNS", "SCALE", "TRAIT_COLUMNS", "ActivityStats", "packed", "quantised", "unpacked"]
