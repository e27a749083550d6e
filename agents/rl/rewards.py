"""Rewards for RL training: functions of a step's response, injected into the training adapters.

The env's own ``reward_*`` config fields give one weighted mix; RL training instead takes the reward as a function
of the step's ``info`` arrays (what the platform observes after the step), so one scenario can be trained under
several reward designs without touching its config. ``RewardMix`` is the weighted mix; the named designs are:

* ``stickiness`` (the default RL reward): +1 per return visit and +1 per purchase. Retention-aware: return visits
  are the retention signal, and purchases are what moves a shopper's satisfaction most (and so her return rate and
  churn); the purchase term gives the agent that signal on the step that earns it instead of sessions later.
* ``retention``: +1 per return visit only (a session that ends with the shopper coming back).
* ``return_gap``: minus the return gap in days on each return, and -30 on churn (RLUR's return-time signal).
* ``click``: +1 per click (the myopic click-through objective).
* ``revenue``: the revenue of each purchase, in currency units.
* ``mixed``: retention plus a little engagement: +1 per return visit, +0.1 per click, +0.01 per unit revenue.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

# The info fields each term reads (see ``envs.env.INFO_KEYS``).
_TERMS = {
    "click": lambda info: info["clicked_position"] >= 0,
    "purchase": lambda info: info["purchased"],
    "revenue": lambda info: info["revenue"],
    "return_visit": lambda info: info["returned"],
    "return_gap": lambda info: info["return_gap_days"],
    "churn": lambda info: info["churned"],
}


@dataclasses.dataclass(frozen=True)
class RewardMix:
    """reward = sum of weight * term over the step's response, per shopper (float32 array over the batch)."""

    click: float = 0.0
    purchase: float = 0.0
    revenue: float = 0.0
    return_visit: float = 0.0
    return_gap: float = 0.0
    churn: float = 0.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value):
                raise ValueError(f"reward weight {field.name}={value!r}; allowed: a finite number")
        if not any(getattr(self, f.name) for f in dataclasses.fields(self)):
            raise ValueError("every reward weight is zero; allowed: at least one non-zero weight among"
                             f" {', '.join(_TERMS)}")

    def __call__(self, info: Mapping[str, np.ndarray]) -> np.ndarray:
        reward = None
        for name, term in _TERMS.items():
            weight = getattr(self, name)
            if weight:
                value = weight * np.asarray(term(info), dtype=np.float32)
                reward = value if reward is None else reward + value
        return reward

    def describe(self) -> str:
        return " + ".join(f"{getattr(self, f.name):g} * {f.name}" for f in dataclasses.fields(self)
                          if getattr(self, f.name))


REWARDS: dict[str, RewardMix] = {
    "stickiness": RewardMix(return_visit=1.0, purchase=1.0),
    "retention": RewardMix(return_visit=1.0),
    "return_gap": RewardMix(return_gap=-1.0, churn=-30.0),
    "click": RewardMix(click=1.0),
    "revenue": RewardMix(revenue=1.0),
    "mixed": RewardMix(return_visit=1.0, click=0.1, revenue=0.01),
}
DEFAULT_REWARD = "stickiness"


def make_reward(spec: str | Mapping[str, float] | RewardMix | None = None) -> RewardMix:
    """A reward by name (``retention``, ``click``...), from a mapping of weights, or a ``RewardMix`` as is."""
    if spec is None:
        spec = DEFAULT_REWARD
    if isinstance(spec, RewardMix):
        return spec
    if isinstance(spec, str):
        if spec not in REWARDS:
            raise ValueError(f"unknown reward {spec!r}; allowed: {', '.join(REWARDS)} or a mapping of weights over"
                             f" {', '.join(_TERMS)}")
        return REWARDS[spec]
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(_TERMS))
        if unknown:
            raise ValueError(f"unknown reward term(s) {unknown}; allowed: {', '.join(_TERMS)}")
        return RewardMix(**spec)
    raise ValueError(f"reward {spec!r}; allowed: a name ({', '.join(REWARDS)}), a mapping of weights or a RewardMix")
