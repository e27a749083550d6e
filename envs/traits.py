"""Heterogeneous shoppers and latent dropout: the buy-till-you-die mixtures, opt-in through config fields.

Two population laws from BG/NBD (Fader, Hardie & Lee 2005), each off unless its field asks for it
(``docs/model.md`` sections 4 and 5):

* ``visit_rate_distribution = "gamma"``: the base visit rate is lambda_i ~ Gamma(r, alpha) (shape r =
  ``visit_rate_gamma_shape``, rate alpha = ``visit_rate_gamma_rate`` per day) instead of the log-normal draw;
* ``dropout_distribution = "beta"``: each shopper draws a dropout propensity p_i ~ Beta(a, b) at arrival and,
  after each session that qualifies (``dropout_after``: one with a purchase, or every session), leaves for good
  with probability p_i, independently of the satisfaction-driven churn hazard.

The default world draws neither: ``draw_traits`` consumes no uniforms there, so every default trajectory is the
one it was before these options existed. With either option on, each arrival takes two extra uniforms from her
own stream (after the arrival's other draws; one for lambda_i, one for p_i, both inverted through their CDFs),
and each session end one extra uniform (the dropout draw), so a shopper's trajectory still depends only on her
own stream and batched == single holds exactly.
"""

from __future__ import annotations

import numpy as np

from stickyrec.envs import dynamics
from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.rng import ShopperStreams

# The smallest visit rate a gamma draw may give (per day): a draw that underflows to 0 (a uniform of exactly 0, or
# a tiny shape r) would make the gap 0/0. At this rate the next visit is ~1e300 days away: she never returns.
_MIN_VISIT_RATE = float(np.finfo(np.float64).tiny)


def heterogeneous(config: RetentionConfig) -> bool:
    """Whether arrivals draw the optional traits (gamma visit rates or beta dropout propensities)."""
    return config.visit_rate_distribution != "lognormal" or config.dropout_distribution != "none"


def session_end_uniforms(config: RetentionConfig) -> int:
    """Uniforms each ended session draws: the gap and the churn hazard, plus the latent dropout when it is on."""
    return 3 if config.dropout_distribution != "none" else 2


def draw_traits(
    rows: np.ndarray, streams: ShopperStreams, config: RetentionConfig, lognormal_visit_rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The new shoppers' base visit rates lambda_i and dropout propensities p_i.

    ``lognormal_visit_rate`` is the log-normal draw the arrival already made; it is kept unless the visit rate is
    gamma-distributed. p_i is 0 without latent dropout.
    """
    if not heterogeneous(config):
        return lognormal_visit_rate, np.zeros(len(lognormal_visit_rate))
    from scipy import special  # only these options need it, so a default import stays as light as before

    u = streams.uniform(rows, 2)
    visit_rate = lognormal_visit_rate
    if config.visit_rate_distribution == "gamma":
        # Gamma(r, alpha) by inversion: P(r, alpha lambda) = u
        visit_rate = np.maximum(
            special.gammaincinv(config.visit_rate_gamma_shape, u[:, 0]) / config.visit_rate_gamma_rate,
            _MIN_VISIT_RATE,
        )
    dropout = np.zeros(len(lognormal_visit_rate))
    if config.dropout_distribution == "beta":
        dropout = special.betaincinv(config.dropout_beta_a, config.dropout_beta_b, u[:, 1])
    return visit_rate, dropout


def churn_events(
    uniform: np.ndarray,
    satisfaction: np.ndarray,
    gap_days: np.ndarray,
    dropout_probability: np.ndarray,
    purchase_session: np.ndarray,
    config: RetentionConfig,
    churn_shift: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(dropped_out, gap_churned) for shoppers whose session just ended.

    ``uniform`` holds each one's session-end draws (``session_end_uniforms`` columns: gap, churn, dropout).
    dropped_out, the latent event (she has left for good): the churn hazard sigmoid(c0 - c1 s) fires, or, with
    latent dropout on and a qualifying session, the dropout draw falls below p_i: 1 - (1 - p_i)(1 - hazard) in all.
    gap_churned, the observed rule: she did not drop out but her next visit is more than ``churn_window_days``
    away (never when the window is infinite). The two are exclusive. ``churn_shift`` is added to the churn hazard's
    logit (the coupon lever's effects, ``envs.offers``; 0 otherwise, which leaves every number as it was).
    """
    base = config.churn_base + churn_shift
    dropped_out = uniform[:, 1] < dynamics.churn_probability(satisfaction, base, config.churn_satisfaction)
    if config.dropout_distribution != "none":
        qualifies = purchase_session if config.dropout_after == "purchase_session" else True
        dropped_out |= qualifies & (uniform[:, 2] < dropout_probability)
    gap_churned = ~dropped_out & (gap_days > config.churn_window_days)
    return dropped_out, gap_churned
