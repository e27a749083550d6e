"""``RandomOfferPolicy``: a randomised coupon campaign on top of any slate policy (the world's ``offers: on``).

A marketing team learns what offers do from a randomised campaign: each shopper, at the start of each session, is
sent a visit offer with probability ``p`` and, independently, is chosen with probability ``p_between`` to get a
between-visits offer when that session ends. The policy's own seeded generator draws both; ``offer_propensity()``
gives the probability of the decision it took for each shopper (``p`` or ``1 - p``; NaN where it took none), which
the platform's log records beside each offer (``experiments.platform_log.offers``).
"""

from __future__ import annotations

import numpy as np

from stickyrec.envs.shoppers import SHOPPER_FEATURES
from stickyrec.inputs import short_repr

_SESSION_STEP = SHOPPER_FEATURES.index("session_step")
_ELAPSED = SHOPPER_FEATURES.index("horizon_elapsed")


def _probability(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        raise ValueError(f"{name} = {short_repr(value)}; allowed: a probability in [0, 1]")
    return float(value)


def campaign_deciding(shopper, active, decided, decision_day: int, horizon_days: float) -> np.ndarray:
    """A one-shot campaign's decision points: the rows of a batch of shopper vectors that start a session on or after
    day ``decision_day`` and have not decided yet (her first session from that day: her history before it is
    complete). ``experiments.campaigns`` and the PPO that learns offers (``agents.rl.ppo_offers``) share this rule."""
    starts = shopper[:, _SESSION_STEP] == 0
    day = np.floor(shopper[:, _ELAPSED].astype(np.float64) * horizon_days + 1e-6)
    return starts & active & ~decided & (day >= decision_day)


def campaign_coupons(shopper, contacted, sent, between, coupons: int, discount: float) -> None:
    """In place: a contacted shopper's between-visits coupon of ``discount`` in each of her first ``coupons`` sessions
    from her decision (``between``: the action's ``offer_between``, NaN for none; ``sent``: coupons so far)."""
    starts = shopper[:, _SESSION_STEP] == 0
    between[starts] = np.nan
    running = starts & contacted & (sent < coupons)
    between[running] = discount
    sent += running


class RandomOfferPolicy:
    """Wraps a slate policy: its slates, plus random offers decided once per session with known propensities.

    Args:
        policy: any slate policy (``bind``, ``act``; ``update`` and ``slate_propensity`` are passed through).
        p: probability of a visit offer at the start of each session.
        discount: that offer's discount in [0, 1] (0: a reminder).
        p_between: probability of a between-visits offer at the end of each session (default 0: none).
        discount_between: its discount (default: ``discount``).
        seed: the policy's own generator.
    """

    def __init__(
        self, policy, p: float = 0.5, discount: float = 0.1, p_between: float = 0.0, discount_between=None, seed=0
    ) -> None:
        self.policy = policy
        self.p, self.p_between = _probability(p, "p"), _probability(p_between, "p_between")
        self.discount = _probability(discount, "discount")
        between = discount if discount_between is None else discount_between
        self.discount_between = _probability(between, "discount_between")
        self.rng = np.random.default_rng(seed)
        self.name = f"{getattr(policy, 'name', type(policy).__name__)}+offers"
        self._between = self._between_propensity = self._visit_propensity = np.zeros(0)

    def bind(self, env) -> RandomOfferPolicy:
        config = getattr(env, "unwrapped", env).config
        if not config.offers_on:
            raise ValueError("RandomOfferPolicy needs an env whose config has offers: on; allowed: offers: on")
        self.policy.bind(env)
        return self

    def act(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        slates = self.policy.act(observation)
        starts = observation["shopper"][:, _SESSION_STEP] == 0  # a session's first step: decide its offers
        n = starts.shape[0]
        if self._between.shape[0] != n:
            self._between, self._between_propensity = np.full(n, np.nan), np.full(n, np.nan)
        u = self.rng.random((n, 2))
        visit = starts & (u[:, 0] < self.p)
        between = u[:, 1] < self.p_between
        self._visit_propensity = np.where(starts, np.where(visit, self.p, 1.0 - self.p), np.nan)
        self._between = np.where(starts, np.where(between, self.discount_between, np.nan), self._between)
        self._between_propensity = np.where(
            starts, np.where(between, self.p_between, 1.0 - self.p_between), self._between_propensity
        )
        offer = np.where(visit, self.discount, np.nan)
        return {"slate": slates, "offer": offer, "offer_between": self._between.copy()}

    def offer_propensity(self) -> tuple[np.ndarray, np.ndarray]:
        """(visit, between) probabilities of the decisions the last ``act`` stands for, per shopper: ``p`` where it
        sent a visit offer, ``1 - p`` where it decided not to, NaN on steps where it decided nothing; likewise for
        the between-visits offer decided at the session's start."""
        return self._visit_propensity.copy(), self._between_propensity.copy()

    def update(self, observation, slates, info) -> None:
        update = getattr(self.policy, "update", None)
        if callable(update):
            update(observation, slates, info)

    def __getattr__(self, name: str):
        if name == "slate_propensity":  # the wrapped policy's, when it has one
            return getattr(self.policy, name)
        raise AttributeError(name)
