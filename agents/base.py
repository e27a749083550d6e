"""The one interface every policy implements: baselines, oracles, supervised models and RL agents.

An agent acts on a *batch* of observations (the vector env's dict of arrays) and returns a ``(B, k)``
array of distinct candidate indices per shopper. ``bind(env)`` hands it the env before acting: every
agent may read the catalog's public item features; only oracles (``uses_latent_state = True``) read the
latent state (item quality and appeal, shopper interest and fatigue) — they are reference policies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Agent(ABC):
    """A slate policy over a batch of shoppers."""

    name: str = "agent"
    uses_latent_state: bool = False

    def bind(self, env) -> Agent:
        """Attach to an env (``RetentionVectorEnv`` or anything with ``.config``, ``.catalog``)."""
        unwrapped = getattr(env, "unwrapped", env)
        self.config = unwrapped.config
        self.catalog = unwrapped.catalog
        self.simulator = unwrapped.simulator if self.uses_latent_state else None
        return self

    @abstractmethod
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, k) distinct candidate indices for a batch of observations."""

    def update(self, observation: dict[str, np.ndarray], slates: np.ndarray, info: dict[str, np.ndarray]) -> None:
        """Called after every env step with the observation acted on, the slates shown and the step's ``info``
        (``clicked_item``, ``purchased``, ``active``, ...): what a platform records about its own traffic.
        Stateless agents ignore it; item-based CF keeps each shopper's recent clicks from it."""
        return None  # deliberately a no-op by default, not abstract

    def fit(self, *args, **kwargs) -> Agent:
        """Learn from logged data, where the agent learns; the default has nothing to learn."""
        return self

    def save(self, path) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no parameters to save")

    @classmethod
    def load(cls, path) -> Agent:
        raise NotImplementedError(f"{cls.__name__} has no parameters to load")
