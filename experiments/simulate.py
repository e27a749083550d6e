"""Follow one cohort of shoppers under a policy to the horizon and measure retention and engagement."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from stickyrec.agents.base import Agent
from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.rollout import RolloutObserver, rollout


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


class CohortStats(RolloutObserver):
    """Rollout observer: per-shopper outcomes and per-day cohort totals; ``finish()`` is the ``CohortResult``."""

    def __init__(self, policy_name: str, config: RetentionConfig, n_shoppers: int) -> None:
        self.policy_name, self.horizon_days = policy_name, config.horizon_days
        zeros_i = np.zeros(n_shoppers, dtype=np.int64)
        self.impressions, self.clicks = zeros_i.copy(), zeros_i.copy()
        self.week_impressions, self.week_clicks = zeros_i.copy(), zeros_i.copy()
        self.purchases, self.sessions = zeros_i.copy(), np.ones(n_shoppers, dtype=np.int64)
        self.revenue = np.zeros(n_shoppers)
        self.churned = np.zeros(n_shoppers, dtype=bool)
        self.last_day = np.zeros(n_shoppers, dtype=np.int64)
        self.n_days = int(np.ceil(config.horizon_days))
        names = ("sessions", "impressions", "clicks", "purchases", "revenue")
        self.daily = {name: np.zeros(self.n_days) for name in names}
        self.daily["sessions"][0] = n_shoppers  # every shopper opens a session on day 0
        self.session_opens = np.zeros(n_shoppers)  # 1 where the shopper's next impression opens a session

    def _by_day(self, day: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.bincount(np.clip(day, 0, self.n_days - 1), weights=weights, minlength=self.n_days)

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        clicked = info["clicked_position"] >= 0
        first_week = active & (info["day"] < 7)
        self.impressions += active
        self.clicks += clicked
        self.week_impressions += first_week
        self.week_clicks += clicked & first_week
        self.purchases += info["purchased"]
        self.revenue += info["revenue"]
        self.sessions += info["returned"]
        step_day = info["day"].astype(np.int64)
        daily = self.daily
        daily["sessions"] += self._by_day(step_day, self.session_opens * active)  # counted on the day they start
        self.session_opens = info["returned"].astype(float)  # these shoppers' next impression opens a session
        daily["impressions"] += self._by_day(step_day, active.astype(float))
        daily["clicks"] += self._by_day(step_day, (clicked & active).astype(float))
        daily["purchases"] += self._by_day(step_day, info["purchased"].astype(float))
        daily["revenue"] += self._by_day(step_day, info["revenue"].astype(float))
        self.last_day = np.where(active, info["day"], self.last_day)
        self.churned |= terminated

    def finish(self) -> CohortResult:
        return CohortResult(
            self.policy_name,
            self.horizon_days,
            self.impressions,
            self.clicks,
            self.week_impressions,
            self.week_clicks,
            self.purchases,
            self.revenue,
            self.sessions,
            self.churned,
            self.last_day,
            self.daily,
        )


def simulate_cohort(
    policy: Agent, config: RetentionConfig, n_shoppers: int, seed: int = 0, progress: bool = False
) -> CohortResult:
    """Run ``n_shoppers`` shoppers (slots seeded ``seed + i``) under ``policy`` until all finish."""
    stats = CohortStats(policy.name, config, n_shoppers)
    (result,) = rollout(policy, config, n_shoppers, seed, [stats], progress, desc=f"simulating {policy.name}")
    return result
