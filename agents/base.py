"""The one interface every policy implements: baselines, oracles, supervised models and RL agents.

An agent acts on a *batch* of observations (the vector env's dict of arrays) and returns a ``(B, k)``
array of distinct candidate indices per shopper. ``bind(env)`` hands it the env before acting: every
agent may read the catalog's public item features; only oracles (``uses_latent_state = True``) read the
latent state (item quality and appeal, shopper interest and fatigue) — they are reference policies.

Each agent class also declares what the experiment pipeline needs to know about it (``agents.registry`` reads it):
``kind``, its saved identity (what its files record and its ``load`` accepts); ``needs``, what it learns from
(nothing, the logged data, or the simulator); ``default_steps``, its training budget when a config gives none;
``priority``, where its cells go in the run queue (lower first: long ones early); ``file_suffix``, how its saved
file ends; and ``from_spec``, how it is built from a config entry. ``name`` is only the display label (what reports
show): a config may relabel an agent, and it still saves as its ``kind``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

NEEDS_NOTHING = "none"  # plays as it is (heuristics, oracles)
NEEDS_DATA = "data"  # learns from the logged impressions (popularity, item CF, the MLP)
NEEDS_ENV = "rl"  # trains in the simulator (the RL agents)
NEEDS = (NEEDS_NOTHING, NEEDS_DATA, NEEDS_ENV)


@dataclasses.dataclass(frozen=True)
class TuningPlan:
    """Weight settings to choose among by short rollouts on the training population (``experiments.tuning``)."""

    candidates: tuple[Mapping[str, float], ...]  # tried in order; a tie goes to the first
    shoppers: int  # training-population shoppers per rollout (at most the logged population's size)
    days: int  # the rollout's horizon: the objective is the share of shoppers retained at this day


class Agent(ABC):
    """A slate policy over a batch of shoppers."""

    kind: ClassVar[str] = "agent"  # saved identity; a subclass declaring only one of kind and name gets both
    name: str = "agent"  # display label: the class's kind unless relabelled (``agent.name = "..."``)
    needs: ClassVar[str] = NEEDS_NOTHING
    default_steps: ClassVar[int | None] = None  # training budget in env steps, for agents that train in the env
    priority: ClassVar[int] = 4  # run-queue order of its cells, lower first (the logged data is 1)
    file_suffix: ClassVar[str | None] = None  # the saved file's suffix; None: nothing to save
    uses_latent_state: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__ and "name" not in cls.__dict__:
            cls.name = cls.kind
        elif "name" in cls.__dict__ and "kind" not in cls.__dict__:
            cls.kind = cls.name
        if cls.needs not in NEEDS:
            raise TypeError(f"{cls.__name__}.needs = {cls.needs!r}; allowed: {', '.join(map(repr, NEEDS))}")

    @classmethod
    def from_spec(cls, params: Mapping[str, Any], seed: int, reward=None) -> Agent:
        """An untrained agent from a config entry: its ``params``, the cell's ``seed`` and (RL agents) ``reward``.

        The default passes ``params`` to the constructor and has no use for a seed or a reward."""
        if reward is not None:
            raise ValueError(f"{cls.kind} takes no reward; only agents that train in the env do")
        return cls(**params)

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

    def fit_log(self, train, validation, catalog, seed: int) -> dict[str, Any]:
        """Learn from a logged training split (and its validation split) as the experiment pipeline does; returns
        a small summary of the training for the results. Agents that learn from the log implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not learn from logged data")

    def tuning_plan(self) -> TuningPlan | None:
        """The weight settings to tune after training (``None``, the default: nothing to tune)."""
        return None

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Adopt one of the ``tuning_plan`` candidates (agents with a plan implement it)."""
        raise NotImplementedError(f"{type(self).__name__} has no weights to tune")

    def save(self, path) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no parameters to save")

    @classmethod
    def load(cls, path) -> Agent:
        raise NotImplementedError(f"{cls.__name__} has no parameters to load")
