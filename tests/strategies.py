"""Hypothesis strategies for the whole suite, in one place.

* ``config_overrides()``: keyword overrides that build a small, valid ``RetentionConfig`` (sizes kept small,
  retrieval pools consistent with ``RetentionConfig._check_cross_fields``, dynamics weights inside their
  allowed ranges but sane), and ``configs()`` the configs themselves;
* ``slates(M, k)`` / ``batched_slates(B, M, k)``: valid slates (k distinct indices in 0..M-1);
* ``utilities(...)``: utility matrices for the choice model, extreme values included.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from stickyrec.envs.config import RetentionConfig


def _sane(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# Dynamics, choice and population weights: inside each field's allowed range, away from silly corners.
SANE_FLOATS: dict[str, tuple[float, float]] = {
    "category_spread": (0.0, 2.0),
    "price_log_mean": (0.0, 6.0),
    "price_category_sd": (0.0, 1.5),
    "price_item_sd": (0.0, 1.0),
    "clickbait_share": (0.0, 1.0),
    "popularity_sd": (0.0, 2.0),
    "rating_noise": (0.0, 0.5),
    "ctr_estimate_noise": (0.0, 0.5),
    "interest_focus": (0.0, 5.0),
    "satisfaction_initial_mean": (0.0, 1.0),
    "satisfaction_initial_sd": (0.0, 0.3),
    "price_sensitivity_median": (0.0, 2.0),
    "price_sensitivity_sd": (0.0, 1.0),
    "visit_rate_median": (0.05, 2.0),
    "visit_rate_sd": (0.0, 1.0),
    "patience_sd": (0.0, 1.0),
    "temperature": (0.05, 2.0),
    "no_click_utility": (-3.0, 5.0),
    "appeal_weight": (0.0, 3.0),
    "fatigue_weight": (0.0, 2.0),
    "position_decay": (0.1, 1.0),
    "purchase_bias": (-8.0, 2.0),
    "purchase_relevance": (-3.0, 3.0),
    "purchase_quality": (-3.0, 5.0),
    "margin": (0.0, 1.0),
    "interest_drift": (0.0, 1.0),
    "fatigue_per_impression": (0.0, 0.5),
    "fatigue_per_click": (0.0, 2.0),
    "fatigue_half_life_days": (0.1, 10.0),
    "satisfaction_click_rate": (0.0, 1.0),
    "satisfaction_purchase_rate": (0.0, 1.0),
    "satisfaction_no_click_drop": (0.0, 0.5),
    "satisfaction_baseline": (0.0, 1.0),
    "satisfaction_memory_days": (0.5, 100.0),
    "leave_base": (-5.0, 2.0),
    "leave_fatigue": (0.0, 3.0),
    "leave_satisfaction": (0.0, 3.0),
    "leave_no_click": (0.0, 2.0),
    "return_satisfaction_weight": (0.0, 5.0),
    "min_return_gap_days": (0.0, 2.0),
    "visit_rate_gamma_shape": (0.1, 5.0),
    "visit_rate_gamma_rate": (0.5, 50.0),
    "dropout_beta_a": (0.1, 5.0),
    "dropout_beta_b": (0.1, 10.0),
    "churn_base": (-8.0, 2.0),
    "churn_satisfaction": (0.0, 10.0),
    "horizon_days": (1.0, 20.0),
    "reward_click": (-2.0, 2.0),
    "reward_purchase": (-2.0, 2.0),
    "reward_revenue": (-0.1, 0.1),
    "reward_return_visit": (-2.0, 2.0),
    "reward_return_gap": (-1.0, 1.0),
    "reward_churn": (-5.0, 5.0),
}


# The named-choice fields: each drawn among all its allowed names (the optional traits and churn rules included).
CHOICE_FIELDS: dict[str, tuple[str, ...]] = {
    "visit_rate_distribution": ("lognormal", "gamma"),
    "dropout_distribution": ("none", "beta"),
    "dropout_after": ("purchase_session", "session"),
}


def n_nearest_popular(n_candidates: int, nearest_share: float, popular_share: float) -> tuple[int, int]:
    """The retrieval split exactly as ``RetentionConfig.n_nearest`` / ``n_popular`` compute it."""
    n_nearest = int(round(n_candidates * nearest_share))
    n_popular = min(int(round(n_candidates * popular_share)), n_candidates - n_nearest)
    return n_nearest, n_popular


@st.composite
def config_overrides(draw: st.DrawFn, max_candidates: int = 50, max_slate: int = 8) -> dict:
    """Keyword overrides of a small, valid config: every size and pool consistent with the cross-field checks."""
    n_items = draw(st.integers(60, 400))
    n_candidates = draw(st.integers(1, min(n_items, max_candidates)))
    nearest_share = draw(_sane(0.0, 1.0))
    popular_share = draw(_sane(0.0, 1.0)) * (1.0 - nearest_share)
    n_nearest, n_popular = n_nearest_popular(n_candidates, nearest_share, popular_share)
    n_random = n_candidates - n_nearest - n_popular
    # n_popular <= popular_pool_size <= n_items - n_nearest - n_random (the pools must fit in the catalog)
    max_pool = n_items - n_nearest - n_random
    popular_pool_size = draw(st.integers(n_popular, min(max_pool, n_popular + 60)))
    overrides = {
        "n_items": n_items,
        "n_categories": draw(st.integers(2, 12)),
        "embedding_dim": draw(st.integers(2, 8)),
        "catalog_seed": draw(st.integers(0, 2**32)),
        "n_candidates": n_candidates,
        "slate_size": draw(st.integers(1, min(n_candidates, max_slate))),
        "nearest_share": nearest_share,
        "popular_share": popular_share,
        "n_interest_clusters": draw(st.integers(1, 12)),
        "popular_pool_size": popular_pool_size,
        "max_session_steps": draw(st.integers(1, 30)),
    }
    for name, (lo, hi) in SANE_FLOATS.items():
        overrides[name] = draw(_sane(lo, hi))
    for name, names in CHOICE_FIELDS.items():
        overrides[name] = draw(st.sampled_from(names))
    # the observed churn rule: a finite window, or switched off
    overrides["churn_window_days"] = draw(st.one_of(_sane(0.5, 30.0), st.just(math.inf)))
    return overrides


def configs(**kwargs) -> st.SearchStrategy[RetentionConfig]:
    """Valid small configs (``RetentionConfig`` built from ``config_overrides``)."""
    return config_overrides(**kwargs).map(lambda overrides: RetentionConfig(**overrides))


def slates(n_candidates: int, slate_size: int) -> st.SearchStrategy[np.ndarray]:
    """One valid slate: ``slate_size`` distinct int64 indices into ``n_candidates`` candidates."""
    return st.lists(st.integers(0, n_candidates - 1), min_size=slate_size, max_size=slate_size, unique=True).map(
        lambda picks: np.array(picks, dtype=np.int64)
    )


def batched_slates(batch_size: int, n_candidates: int, slate_size: int) -> st.SearchStrategy[np.ndarray]:
    """A ``(batch_size, slate_size)`` array whose rows are valid slates."""
    return st.lists(slates(n_candidates, slate_size), min_size=batch_size, max_size=batch_size).map(np.stack)


def utilities(max_batch: int = 6, max_slate: int = 12, bound: float = 1e6) -> st.SearchStrategy[np.ndarray]:
    """(B, k) finite utilities, extremes (up to +-bound) included."""
    shapes = st.tuples(st.integers(1, max_batch), st.integers(1, max_slate))
    elements = st.one_of(
        st.floats(-bound, bound, allow_nan=False, allow_infinity=False),
        st.sampled_from([-bound, -700.0, -1e-300, 0.0, 1e-300, 700.0, bound]),
    )
    return shapes.flatmap(lambda shape: hnp.arrays(np.float64, shape, elements=elements))
