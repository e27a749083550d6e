"""The shopper's choice among a slate: the click utility, position examination and a multinomial logit with a
no-click option.

The click utility of item i for shopper b (``click_utility``, the one definition used by the batched step, the
one-shopper kernel and the oracles) is

    u_bi = theta_b . e_i + w_a a_i - beta_b log(p_i / median p) - w_f f_{b, c_i},

relevance to her latent interest, plus the session-constant appeal-and-price part (``session_utility``, computed
once per session for the candidates), minus the fatigue of the item's category. For an impression of items at
slate positions j = 0..k-1 with utilities u_j,

    P(click j) = eta_j exp(u_j / tau) / (exp(v0 / tau) + sum_l eta_l exp(u_l / tau)),
    P(no click) = exp(v0 / tau) / (same denominator),

where eta_j = position_decay ** j is the chance position j is examined. The choice model is stateless and
batched: ``slate_logits`` gives ``(B, k + 1)`` logits with the no-click option in the last column, and
``choose`` samples from them with one uniform per shopper (the plain inverse-CDF reference). The step's hot path
is ``sample_choice``, which takes the (B, k) item logits and the no-click logit and picks exactly what ``choose``
picks for the same uniforms (``tests/test_choice.py``).
"""

from __future__ import annotations

import numpy as np


def session_utility(weighted_appeal, log_relative_price, price_sensitivity):
    """The session-constant part of the click utility: w_a a - beta log(p / median p).

    ``weighted_appeal`` is w_a a (the catalog's appeal times ``appeal_weight``), ``price_sensitivity`` beta
    broadcast against ``log_relative_price``.
    """
    price_term = log_relative_price * price_sensitivity
    return weighted_appeal - price_term


def click_utility(relevance, session_part, category_fatigue, fatigue_weight):
    """The click utility u = theta . e + (w_a a - beta log(p / median p)) - w_f f_c.

    ``relevance`` is theta . e, ``session_part`` the value of ``session_utility`` and ``category_fatigue`` the
    shopper's fatigue for the item's category. Arrays (any matching shapes) or Python floats: the one-shopper
    kernel calls it per item on floats, with the same operations in the same order, so both give the same numbers.
    """
    utility = relevance + session_part
    utility -= fatigue_weight * category_fatigue
    return utility


def examination_log_weights(slate_size: int, position_decay: float) -> np.ndarray:
    """log eta_j for j = 0..k-1."""
    return np.arange(slate_size) * np.log(position_decay)


def slate_logits(
    utility: np.ndarray, temperature: float, no_click_utility: float, log_examination: np.ndarray
) -> np.ndarray:
    """(B, k) utilities -> (B, k + 1) logits; the last column is the no-click option."""
    logits = np.empty((utility.shape[0], utility.shape[1] + 1))
    np.divide(utility, temperature, out=logits[:, :-1])
    logits[:, :-1] += log_examination
    logits[:, -1] = no_click_utility / temperature
    return logits


def choice_weights(logits: np.ndarray) -> np.ndarray:
    """exp(logits - row max): unnormalised choice probabilities, safe from overflow."""
    return np.exp(logits - logits.max(axis=-1, keepdims=True))


def choice_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (numerically stable); rows sum to 1."""
    weights = choice_weights(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def sample_choice(
    item_logits: np.ndarray, no_click_logit: float, uniform: np.ndarray, logit_bound: np.ndarray | None = None
) -> np.ndarray:
    """The hot-path sampler: (B, k) item logits (examination included) and the no-click logit -> index in
    0..k (k = no click). Same distribution as ``choose(choice_probabilities(...))`` without building the
    (B, k + 1) array: the no-click option enters only through the normaliser.

    ``logit_bound`` (B,), an upper bound on each row's logits, replaces the row max as the shift that keeps
    ``exp`` from overflowing (the probabilities do not depend on the shift).
    """
    top = np.maximum(item_logits.max(axis=1), no_click_logit) if logit_bound is None else logit_bound
    if item_logits.shape[0] < 64:  # few shoppers: a handful of whole-array calls beats k row operations
        cdf = np.cumsum(np.exp(item_logits - top[:, None]), axis=1)
        threshold = uniform * (cdf[:, -1] + np.exp(no_click_logit - top))
        return np.count_nonzero(cdf <= threshold[:, None], axis=1)
    # Many shoppers: work on the (k, B) transpose: every row operation then runs along the batch, where numpy is fast,
    # instead of along k (about 10) items, where per-row overhead dominates. The running sum is the same
    # sequential sum as np.cumsum and as the one-shopper path, so the numbers do not change.
    cdf = np.subtract(item_logits.T, top, order="C")
    np.exp(cdf, out=cdf)
    for j in range(1, cdf.shape[0]):
        cdf[j] += cdf[j - 1]
    threshold = uniform * (cdf[-1] + np.exp(no_click_logit - top))
    return np.count_nonzero(cdf <= threshold, axis=0)  # <=: a zero-weight option is never picked


def choose(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse-CDF sample per row from (possibly unnormalised) weights: index in 0..k, k = no click."""
    cdf = np.cumsum(weights, axis=-1)
    index = (cdf <= (uniform * cdf[:, -1])[:, None]).sum(axis=-1)
    return np.minimum(index, weights.shape[-1] - 1)
