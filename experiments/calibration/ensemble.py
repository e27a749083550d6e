"""Simulated purchase-day logs: the batched env run as a store's customer base, for the calibration's fit.

``simulate_purchase_days`` drives ``RetentionVectorEnv`` (autoreset disabled) with a pool of slots that it refills
as shoppers finish, so that a two-year cohort costs what its shoppers' impressions cost rather than what its
heaviest shopper's impressions times the cohort's size would (docs/calibration-plan.md section 1: 36 s -> 7 s for
2,000 shoppers). Shopper ``j`` is always seeded ``seed + j`` and sees slates drawn from her own keyed stream
(``KeyedRandomPolicy``), so the same shopper lives the same life at every parameter value except where the
parameters change it: common random numbers, which make the fit's objective smooth enough to search.

A shopper becomes a customer at her first purchase; her clock then runs for ``spans[j]`` days (a real customer's
age at the end of the log), and ends early when she leaves for good (the latent dropout or the churn hazard).
Shoppers who buy nothing within ``wait_days`` of arriving never enter the log, as in a real store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from gymnasium.vector import AutoresetMode

from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.rng import ShopperStreams, keys_from_seeds
from stickyrec.envs.spaces import top_k
from stickyrec.envs.vector import RetentionVectorEnv

# The policy stream's key is the shopper's own seed offset by this constant, so slates never reuse the draws of
# the shopper's behaviour stream (seed + j) nor those of any other shopper in a realistic ensemble.
POLICY_SEED_OFFSET = 1 << 40
STATUS_QUO_POLICIES = ("random",)
TRAIT_CHUNK = 4096  # rows per throw-away env when reading the shoppers' traits ahead of the run


class KeyedRandomPolicy:
    """Random slates drawn from each slot's own counter-based stream, re-keyed when the slot takes a new shopper.

    Unlike ``RandomPolicy`` (one generator for the whole batch), a shopper's slates depend only on her seed and on
    how many impressions she has had, never on who shares the batch with her.
    """

    def __init__(self, slate_size: int, n_slots: int) -> None:
        self.slate_size = slate_size
        self.streams = ShopperStreams(np.zeros(n_slots, dtype=np.uint64))

    def assign(self, rows: np.ndarray, seeds: np.ndarray) -> None:
        self.streams.keys[rows] = keys_from_seeds(np.asarray(seeds, dtype=np.int64) + POLICY_SEED_OFFSET)
        self.streams.counters[rows] = 0

    def act(self, observation) -> np.ndarray:
        n_candidates = observation["candidate_ids"].shape[1]
        return top_k(self.streams.uniform(slice(None), n_candidates), self.slate_size)


@dataclass(frozen=True)
class PurchaseDays:
    """What one simulated customer base did.

    ``shopper``/``day`` list purchase days (one row per shopper and day, ``day`` counted from her first purchase,
    0 included, at most her span). Per shopper (index j, seeded ``seed + j``): ``first_day`` (the simulated day of
    her first purchase, NaN if she never bought), ``visit_rate`` (lambda_j, per day), ``dropout_probability``
    (p_j), ``dropped_out`` (she left for good before her span ended) and ``span`` (days she was followed).
    """

    shopper: np.ndarray
    day: np.ndarray
    first_day: np.ndarray
    visit_rate: np.ndarray
    dropout_probability: np.ndarray
    dropped_out: np.ndarray
    span: np.ndarray
    steps: int

    @property
    def customers(self) -> np.ndarray:
        """Indices of the shoppers who bought at least once (the ones a real log would hold)."""
        return np.flatnonzero(~np.isnan(self.first_day))

    def days_frame(self, first_dates) -> pd.DataFrame:
        """Purchase days as a log (``customer``, ``day`` Timestamp), shopper j's first purchase on ``first_dates[j]``.

        The frame is what ``transactions.split`` takes, so every view of a real log applies to a simulated one.
        """
        dates = pd.DatetimeIndex(first_dates)
        if len(dates) != len(self.first_day):
            raise ValueError(f"first_dates has {len(dates)} dates for {len(self.first_day)} shoppers")
        day = dates[self.shopper] + pd.to_timedelta(self.day, unit="D")
        return pd.DataFrame({"customer": self.shopper.astype(np.int64), "day": day.normalize()})


def calibration_config(config: RetentionConfig, longest_span: float, wait_days: float) -> RetentionConfig:
    """The config a simulated customer base runs under: no observed-gap churn (a customer leaves only for good),
    and a horizon long enough for the longest wait plus span."""
    return config.replace(churn_window_days=math.inf, horizon_days=float(wait_days + longest_span + 2.0))


def read_traits(config: RetentionConfig, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's visit rate and dropout propensity, read from throw-away resets (no step is taken)."""
    visit_rate, dropout = np.empty(len(seeds)), np.empty(len(seeds))
    for start in range(0, len(seeds), TRAIT_CHUNK):
        chunk = seeds[start : start + TRAIT_CHUNK]
        env = RetentionVectorEnv(len(chunk), config, autoreset_mode=AutoresetMode.DISABLED)
        env.reset(seed=[int(s) for s in chunk])
        visit_rate[start : start + len(chunk)] = env.simulator.state.visit_rate
        dropout[start : start + len(chunk)] = env.simulator.state.dropout_probability
    return visit_rate, dropout


class _Pool:
    """Slot bookkeeping of the refill driver: which shopper each slot holds and when her observation stops."""

    def __init__(self, n_slots: int, order: np.ndarray, spans: np.ndarray, wait_days: float) -> None:
        self.order, self.spans, self.wait_days = order, spans, wait_days
        self.shopper = np.full(n_slots, -1, dtype=np.int64)
        self.stop = np.full(n_slots, np.inf)
        self.next = 0

    def fill(self, rows: np.ndarray) -> np.ndarray:
        """Give ``rows`` the next shoppers in the schedule; rows left without one get -1. Returns the filled rows."""
        take = min(len(rows), len(self.order) - self.next)
        self.shopper[rows] = -1
        self.stop[rows] = np.inf
        filled = rows[:take]
        self.shopper[filled] = self.order[self.next : self.next + take]
        self.stop[filled] = self.wait_days  # until she buys: give up at wait_days after arrival
        self.next += take
        return filled


def simulate_purchase_days(
    config: RetentionConfig,
    spans,
    *,
    seed: int,
    pool: int = 500,
    wait_days: float = 365.0,
    refill_every: int = 10,
    progress=None,
) -> PurchaseDays:
    """Run ``len(spans)`` shoppers (seeds ``seed + j``) as a customer base; see the module docstring.

    ``config`` should draw heterogeneous traits (gamma visit rates, beta dropout); ``progress`` is an optional
    callable taking the number of shoppers finished so far.
    """
    spans = np.asarray(spans, dtype=float)
    n = len(spans)
    if n == 0 or not np.all(np.isfinite(spans)) or np.any(spans < 0):
        raise ValueError("spans must be a non-empty array of finite, non-negative numbers of days")
    if pool < 1 or refill_every < 1 or not wait_days > 0:
        raise ValueError(
            f"pool and refill_every must be >= 1 and wait_days > 0; got {pool}, {refill_every}, {wait_days}"
        )
    cfg = calibration_config(config, float(spans.max()), wait_days)
    seeds = seed + np.arange(n, dtype=np.int64)
    visit_rate, dropout = read_traits(cfg, seeds)
    order = np.argsort(-(visit_rate * np.minimum(spans, 730.0) + visit_rate * 1e-9), kind="stable")  # longest first
    n_slots = min(pool, n)
    env = RetentionVectorEnv(n_slots, cfg, autoreset_mode=AutoresetMode.DISABLED)
    policy = KeyedRandomPolicy(cfg.slate_size, n_slots)
    slots = _Pool(n_slots, order, spans, wait_days)
    rows = slots.fill(np.arange(n_slots))
    obs, _ = env.reset(seed=[int(seeds[j]) for j in slots.shopper])
    policy.assign(rows, seeds[slots.shopper[rows]])
    result = _drive(env, policy, slots, seeds, refill_every, progress)
    first_day, events, dropped, steps = result
    return _collect(first_day, events, dropped, steps, visit_rate, dropout, spans)


def _drive(env, policy, slots: _Pool, seeds, refill_every: int, progress):
    state = env.simulator.state
    n = len(slots.order)
    first_day = np.full(n, np.nan)
    dropped = np.zeros(n, dtype=bool)
    events: list[np.ndarray] = []
    finished, steps = 0, 0
    obs = env.simulator.observe()
    while (slots.shopper >= 0).any():
        obs, _, _, _, info = env.step(policy.act(obs))
        steps += 1
        bought = np.flatnonzero(info["purchased"] & (slots.shopper >= 0))
        if bought.size:
            who, day = slots.shopper[bought], info["day"][bought]
            new = np.isnan(first_day[who]) & (day <= slots.wait_days)  # a later first purchase: never a customer
            first_day[who[new]] = day[new]
            slots.stop[bought[new]] = day[new] + slots.spans[who[new]]
            known = ~np.isnan(first_day[who])
            events.append(np.stack([who[known], day[known]]))
        if steps % refill_every:
            continue
        done = (slots.shopper >= 0) & (~state.alive | (state.day > slots.stop))
        if not done.any():
            continue
        rows = np.flatnonzero(done)
        dropped[slots.shopper[rows]] = ~state.alive[rows] & (state.day[rows] <= slots.stop[rows])
        finished += rows.size
        filled = slots.fill(rows)
        if filled.size:
            mask = np.zeros(env.num_envs, dtype=bool)
            mask[filled] = True
            all_seeds = np.where(slots.shopper >= 0, seeds[np.maximum(slots.shopper, 0)], 0)
            obs, _ = env.reset(seed=[int(s) for s in all_seeds], options={"reset_mask": mask})
            policy.assign(filled, seeds[slots.shopper[filled]])
        if progress is not None:
            progress(finished)
    return first_day, events, dropped, steps


def _collect(first_day, events, dropped, steps, visit_rate, dropout, spans) -> PurchaseDays:
    pairs = np.concatenate(events, axis=1) if events else np.zeros((2, 0), dtype=np.int64)
    who, day = pairs[0].astype(np.int64), pairs[1].astype(np.int64)
    relative = day - first_day[who].astype(np.int64)
    keep = relative <= spans[who]
    unique = np.unique(np.stack([who[keep], relative[keep]], axis=1), axis=0)
    return PurchaseDays(
        shopper=unique[:, 0],
        day=unique[:, 1],
        first_day=first_day,
        visit_rate=visit_rate,
        dropout_probability=dropout,
        dropped_out=dropped & ~np.isnan(first_day),
        span=spans,
        steps=steps,
    )
