"""Simple reference policies: random, a one-line public-feature ranker, and two latent-state heuristics.

``CtrRatingPolicy`` ranks by the product of two public catalog columns, ``ctr_estimate * rating``, with no
learning at all: the deployable no-learning baseline (it avoids clickbait, whose public rating is low).

``ClickChaserPolicy`` fills the slate with the most appealing candidates (what a click-optimising
recommender converges to); ``RelevanceQualityPolicy`` ranks by relevance to the shopper's interest plus
item quality. Both read latent state, so they are oracles of a kind: they exist to show the env's
short-term/long-term trade-off, not as deployable baselines.
"""

from __future__ import annotations

import numpy as np

from stickyrec.agents.base import Agent
from stickyrec.envs.spaces import top_k


class RandomPolicy(Agent):
    """k distinct candidates uniformly at random, from the policy's own seeded generator."""

    kind = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> RandomPolicy:
        """Seeded by the cell's seed."""
        if reward is not None:
            raise ValueError(f"{cls.kind} takes no reward; only agents that train in the env do")
        return cls(seed=seed, **params)

    def act(self, observation):
        ids = observation["candidate_ids"]
        keys = self.rng.random(ids.shape)
        return top_k(keys, self.config.slate_size)


class ClickChaserPolicy(Agent):
    """The k most appealing candidates (latent appeal): maximal clicks now, at any cost later."""

    kind = "click_chaser"
    uses_latent_state = True

    def act(self, observation):
        return top_k(self.catalog.appeal[observation["candidate_ids"]], self.config.slate_size)


class RelevanceQualityPolicy(Agent):
    """Rank by theta . e + quality_weight * quality (latent interest and quality)."""

    kind = "relevance_quality"
    uses_latent_state = True

    def __init__(self, quality_weight: float = 1.0) -> None:
        self.quality_weight = quality_weight

    def act(self, observation):
        ids = observation["candidate_ids"]
        relevance = np.einsum("bmd,bd->bm", self.catalog.embedding[ids], self.simulator.state.interest)
        return top_k(relevance + self.quality_weight * self.catalog.quality[ids], self.config.slate_size)


class CtrRatingPolicy(Agent):
    """Rank by ``ctr_estimate * rating``: two public catalog columns, no learning, no latent state."""

    kind = "ctr_rating"

    def act(self, observation):
        ids = observation["candidate_ids"]
        return top_k(self.catalog.ctr_estimate[ids] * self.catalog.rating[ids], self.config.slate_size)
