"""How a shopper's latent state responds: purchase, satisfaction, interest, fatigue, sessions and churn.

Pure, batched functions of arrays (one entry per shopper unless noted); the simulator composes them. Each
is unit-tested with hand-derived values in ``tests/test_dynamics.py``.
"""

from __future__ import annotations

import numpy as np

from stickyrec.envs.catalog import normalise_rows


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)) without overflow


def purchase_probability(relevance, quality, log_relative_price, price_sensitivity, bias, w_relevance, w_quality):
    """sigmoid(g0 + g1 theta.e + g2 q - beta log p) for a clicked item."""
    return sigmoid(bias + w_relevance * relevance + w_quality * quality - price_sensitivity * log_relative_price)


def update_satisfaction(satisfaction, clicked, purchased, quality, click_rate, purchase_rate, no_click_drop):
    """Move toward the consumed item's quality (further on a purchase); shrink on a slate with no click.

    Every update is a convex combination of values in [0, 1], so satisfaction stays in [0, 1]. Written as
    arithmetic on 0/1 flags (no branches) so it runs unchanged on Python scalars and on arrays.
    """
    s = satisfaction + (click_rate * clicked) * (quality - satisfaction)
    s = s + (purchase_rate * purchased) * (quality - s)
    return s * (1.0 - no_click_drop * (1 - clicked))


def drift_interest(interest, item_embedding, rate):
    """theta <- normalise((1 - rho) theta + rho e) (rows)."""
    return normalise_rows((1.0 - rate) * interest + rate * item_embedding)


def decay_factor(days, half_life_days):
    """Share of something with this half-life left after ``days``."""
    return np.exp2(-np.asarray(days) / half_life_days)


def leave_probability(mean_slate_fatigue, satisfaction, clicked, patience, base, w_fatigue, w_satisfaction, w_no_click):
    """Within-session leave hazard: rises with fatigue and on a slate with no click, falls with satisfaction."""
    return sigmoid(
        base + w_fatigue * mean_slate_fatigue - w_satisfaction * satisfaction + w_no_click * (1.0 - clicked) - patience
    )


def return_rate(visit_rate, satisfaction, w_satisfaction):
    """Rate (per day) of the next visit: lambda * exp(psi * s)."""
    return visit_rate * np.exp(w_satisfaction * satisfaction)


def return_gap_days(rate, uniform, min_gap_days):
    """Exponential gap with that rate, by inversion of one uniform, plus the minimum gap."""
    return min_gap_days - np.log1p(-uniform) / rate


def churn_probability(satisfaction, base, w_satisfaction):
    """Per-session churn hazard sigmoid(c0 - c1 s)."""
    return sigmoid(base - w_satisfaction * satisfaction)


def revert_satisfaction(satisfaction, gap_days, baseline, memory_days):
    """Between sessions satisfaction relaxes toward its baseline."""
    return baseline + (satisfaction - baseline) * np.exp(-gap_days / memory_days)
