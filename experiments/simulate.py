"""Follow one cohort of shoppers under a policy to the horizon and measure retention and engagement."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from gymnasium.vector import AutoresetMode
from tqdm.auto import tqdm

from stickyrec.agents.base import Agent
from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.vector import RetentionVectorEnv


@dataclasses.dataclass(frozen=True)
class CohortResult:
    """Per-shopper outcomes of one cohort (arrays of length n_shoppers)."""

    policy: str
    horizon_days: float
    impressions: np.ndarray
    clicks: np.ndarray
    first_week_impressions: np.ndarray
    first_week_clicks: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    sessions: np.ndarray
    churned: np.ndarray  # bool
    last_day: np.ndarray  # day of the last session (the churn day for churned shoppers)
    # Cohort totals by simulated day (length horizon_days): sessions started, impressions, clicks, purchases,
    # revenue. Divide by the shoppers still active that day for per-active-shopper engagement.
    daily: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def retained(self, day: float) -> np.ndarray:
        """Still a customer at ``day``: not churned, or churned on or after that day."""
        return ~self.churned | (self.last_day >= day)

    def summary(self, retention_days: Sequence[int] = (1, 7, 30)) -> dict[str, float]:
        """The cohort's summary metrics (``experiments.metrics``), with its size and impressions per shopper."""
        from stickyrec.experiments.metrics import metric_definitions, metrics_from_sums, per_shopper_columns

        n = self.clicks.size
        sums = {name: column.sum() for name, column in per_shopper_columns(self, retention_days).items()}
        metrics = metrics_from_sums(sums, n, metric_definitions(retention_days))
        out = {
            "shoppers": float(n),
            "click_rate": metrics["click_rate"],
            "click_rate_week1": metrics["click_rate_week1"],
        }
        out["impressions_per_shopper"] = sums["impressions"] / n
        out |= {name: value for name, value in metrics.items() if name not in out}
        return {name: float(value) for name, value in out.items()}


def simulate_cohort(
    policy: Agent, config: RetentionConfig, n_shoppers: int, seed: int = 0, progress: bool = False
) -> CohortResult:
    """Run ``n_shoppers`` shoppers (slots seeded ``seed + i``) under ``policy`` until all finish."""
    env = RetentionVectorEnv(n_shoppers, config=config, autoreset_mode=AutoresetMode.DISABLED)
    policy.bind(env)
    obs, _ = env.reset(seed=seed)
    zeros_i = np.zeros(n_shoppers, dtype=np.int64)
    impressions, clicks, week_imp, week_clicks = zeros_i.copy(), zeros_i.copy(), zeros_i.copy(), zeros_i.copy()
    purchases, sessions = zeros_i.copy(), np.ones(n_shoppers, dtype=np.int64)
    revenue = np.zeros(n_shoppers)
    churned = np.zeros(n_shoppers, dtype=bool)
    last_day = np.zeros(n_shoppers, dtype=np.int64)
    active = np.ones(n_shoppers, dtype=bool)
    n_days = int(np.ceil(config.horizon_days))
    daily = {name: np.zeros(n_days) for name in ("sessions", "impressions", "clicks", "purchases", "revenue")}
    daily["sessions"][0] = n_shoppers  # every shopper opens a session on day 0

    def by_day(day, weights):
        return np.bincount(np.clip(day, 0, n_days - 1), weights=weights, minlength=n_days)

    session_opens = np.zeros(n_shoppers)
    bar = tqdm(total=int(config.horizon_days), desc=f"simulating {policy.name}", unit="day", disable=not progress)
    update = getattr(policy, "update", None)  # duck-typed policies need only bind() and act()
    while active.any():
        slates = policy.act(obs)
        next_obs, _, terminated, truncated, info = env.step(slates)
        if update is not None:
            update(obs, slates, info)
        obs = next_obs
        clicked = info["clicked_position"] >= 0
        first_week = active & (info["day"] < 7)
        impressions += active
        clicks += clicked
        week_imp += first_week
        week_clicks += clicked & first_week
        purchases += info["purchased"]
        revenue += info["revenue"]
        sessions += info["returned"]
        step_day = info["day"].astype(np.int64)
        daily["sessions"] += by_day(step_day, session_opens * active)  # sessions counted on the day they start
        session_opens = info["returned"].astype(float)  # these shoppers' next impression opens a session
        daily["impressions"] += by_day(step_day, active.astype(float))
        daily["clicks"] += by_day(step_day, (clicked & active).astype(float))
        daily["purchases"] += by_day(step_day, info["purchased"].astype(float))
        daily["revenue"] += by_day(step_day, info["revenue"].astype(float))
        last_day = np.where(active, info["day"], last_day)
        churned |= terminated
        active = info["active"]
        day = int(np.min(info["day"][active])) if active.any() else int(config.horizon_days)
        if day > bar.n:  # advance by whole days only: no redraw on every step
            bar.update(day - bar.n)
    bar.close()
    return CohortResult(
        policy.name,
        config.horizon_days,
        impressions,
        clicks,
        week_imp,
        week_clicks,
        purchases,
        revenue,
        sessions,
        churned,
        last_day,
        daily,
    )
