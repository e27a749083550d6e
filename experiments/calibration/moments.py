"""The moments a calibration matches: what a store's calibration weeks say about visits, purchases, gaps, dropout.

A log enters as purchase days relative to each customer's first one (``Histories``: customer index, day since the
first purchase, age ``T`` at the calibration end, all in days), built from a real ``Split`` (``histories``) or
from a simulated customer base. Only calibration days count (day <= T). Every moment is a ratio of per-customer
sums, so the same code gives a log's moments (weight 1 per customer), a bootstrap of them (multinomial weights),
and a simulated ensemble's. The moments (docs/calibration-plan.md section 3):

- the repeat-purchase histogram: mean x, P(x = 0), P(x = 1), P(2 <= x <= 4), P(x >= 10);
- recency: mean (T - t_x) / T among repeaters, and P(T - t_x > 26 weeks) among repeaters older than 39 weeks;
- the repeat rate by age (repeat days per customer-week at ages 0-13, 13-26, 26-52 and 52+ weeks), which carries
  the dropout signal: a population that thins out buys less per surviving week as it ages;
- gaps between purchase days: mean log gap and P(gap > 90 days).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stickyrec.experiments.calibration.transactions import Split

WEEK = 7.0
AGE_BINS_WEEKS = (0.0, 13.0, 26.0, 52.0, np.inf)
LONG_GAP_DAYS = 90.0
NAMES = (
    "mean_repeats",
    "share_x0",
    "share_x1",
    "share_x2_4",
    "share_x10_plus",
    "mean_recency_share",
    "share_lapsed_26w",
    *(
        f"rate_age_{int(lo)}_{'plus' if np.isinf(hi) else int(hi)}w"
        for lo, hi in zip(AGE_BINS_WEEKS, AGE_BINS_WEEKS[1:])
    ),
    "mean_log_gap",
    "share_gap_over_90d",
)


@dataclass(frozen=True)
class Histories:
    """Purchase days of ``n`` customers: ``customer`` (0..n-1) and ``day`` (days since her first purchase, >= 0)
    per purchase day, and ``T`` (each customer's age at the calibration end, days)."""

    customer: np.ndarray
    day: np.ndarray
    T: np.ndarray

    @property
    def n(self) -> int:
        return len(self.T)


def histories(split_log: Split) -> Histories:
    """The calibration weeks of a real split, as ``Histories``."""
    summary = split_log.summary
    position = summary.index.get_indexer(split_log.calibration["customer"])
    keep = position >= 0
    first = summary["first_day"].to_numpy()[position[keep]]
    day = (split_log.calibration["day"].to_numpy()[keep] - first) // np.timedelta64(1, "D")
    T = ((split_log.calibration_end - summary["first_day"]) // np.timedelta64(1, "D")).to_numpy(dtype=float)
    return Histories(position[keep].astype(np.int64), day.astype(np.int64), T)


@dataclass(frozen=True)
class _Parts:
    """Per-customer sums every moment is built from, and the gaps with their customers."""

    x: np.ndarray
    recency_share: np.ndarray
    repeater: np.ndarray
    old_repeater: np.ndarray
    lapsed: np.ndarray
    repeats_by_age: np.ndarray  # (n, bins)
    weeks_by_age: np.ndarray  # (n, bins)
    gap_customer: np.ndarray
    log_gap: np.ndarray
    long_gap: np.ndarray


def _parts(h: Histories) -> _Parts:
    calibration = h.day <= h.T[h.customer]
    customer, day = h.customer[calibration], h.day[calibration].astype(float)
    order = np.lexsort((day, customer))
    customer, day = customer[order], day[order]
    repeat = day >= 1
    x = np.bincount(customer[repeat], minlength=h.n).astype(float)
    t_x = np.zeros(h.n)
    np.maximum.at(t_x, customer, day)
    T = h.T
    with np.errstate(invalid="ignore", divide="ignore"):
        recency_share = np.where(T > 0, (T - t_x) / T, 0.0)
    repeater = (x > 0) & (T > 0)
    edges = np.asarray(AGE_BINS_WEEKS) * WEEK
    bins = len(edges) - 1
    which = np.clip(np.searchsorted(edges, day[repeat], side="right") - 1, 0, bins - 1)
    repeats_by_age = np.zeros((h.n, bins))
    np.add.at(repeats_by_age, (customer[repeat], which), 1.0)
    weeks_by_age = (np.clip(T[:, None], edges[None, :-1], edges[None, 1:]) - edges[None, :-1]) / WEEK
    same = customer[1:] == customer[:-1]
    gaps = np.diff(day)[same]
    return _Parts(
        x=x,
        recency_share=recency_share,
        repeater=repeater,
        old_repeater=repeater & (T > 39 * WEEK),
        lapsed=(T - t_x) > 26 * WEEK,
        repeats_by_age=repeats_by_age,
        weeks_by_age=weeks_by_age,
        gap_customer=customer[1:][same],
        log_gap=np.log(gaps),
        long_gap=gaps > LONG_GAP_DAYS,
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def _weighted(parts: _Parts, w: np.ndarray) -> np.ndarray:
    """Moments (columns) under customer weights ``w`` (rows: one weighting each, shape (R, n))."""
    total = w.sum(axis=1)
    x = parts.x
    cols = [
        _ratio(w @ x, total),
        _ratio(w @ (x == 0), total),
        _ratio(w @ (x == 1), total),
        _ratio(w @ ((x >= 2) & (x <= 4)), total),
        _ratio(w @ (x >= 10), total),
        _ratio(w @ (parts.recency_share * parts.repeater), w @ parts.repeater),
        _ratio(w @ (parts.lapsed & parts.old_repeater), w @ parts.old_repeater),
    ]
    repeats, weeks = w @ parts.repeats_by_age, w @ parts.weeks_by_age
    cols.extend(_ratio(repeats[:, k], weeks[:, k]) for k in range(repeats.shape[1]))
    gap_w = w[:, parts.gap_customer]
    cols.append(_ratio(gap_w @ parts.log_gap, gap_w.sum(axis=1)))
    cols.append(_ratio(gap_w @ parts.long_gap, gap_w.sum(axis=1)))
    return np.stack(cols, axis=1)


def moment_vector(h: Histories) -> np.ndarray:
    """The log's moments (``NAMES``), each customer counted once."""
    if h.n == 0:
        raise ValueError("no customers: the calibration weeks hold no first purchase")
    return _weighted(_parts(h), np.ones((1, h.n)))[0]


def bootstrap_moments(h: Histories, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` customer-bootstrap replicates of the moments, shape (reps, len(NAMES))."""
    parts = _parts(h)
    weights = rng.multinomial(h.n, np.full(h.n, 1.0 / h.n), size=reps).astype(float)
    return _weighted(parts, weights)
