"""Wrappers that adapt the slate env for RL libraries.

* ``ScoreSlateAction``: the action is a score per candidate (``mode="scores"``, a Box of shape (M,)) or a
  query vector over the public item features (``mode="query"``, shape (F_item,), scores = features . query);
  the k best-scored candidates, best first, become the slate. Any real vector is a valid action, so policy
  gradients and Gaussian policies work unchanged.
* ``FlattenSlateObservation``: a flat float32 Box for SB3's ``MlpPolicy``: the shopper features followed by
  the public features of every candidate (gathered from the catalog by id). This copies M x F_item floats
  per step, so it is for convenience with off-the-shelf policies; fast agents gather features themselves.

Both have vector-env versions (``ScoreSlateActionVector``, ``FlattenSlateObservationVector``).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorActionWrapper, VectorWrapper
from gymnasium.vector.utils import batch_space

from stickyrec.envs.spaces import top_k

_MODES = ("scores", "query")


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"ScoreSlateAction mode {mode!r} is not supported; allowed: {', '.join(_MODES)}")


class _Scorer:
    """Turns score or query actions into slates, for one shopper or a batch."""

    def __init__(self, unwrapped, mode: str) -> None:
        _check_mode(mode)
        self.mode = mode
        self.slate_size = unwrapped.config.slate_size
        self.n_candidates = unwrapped.config.n_candidates
        self.features = unwrapped.catalog.public_features()
        self.unwrapped = unwrapped
        size = self.n_candidates if mode == "scores" else self.features.shape[1]
        self.single_space = spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)

    def slates(self, action: np.ndarray, candidate_ids: np.ndarray) -> np.ndarray:
        action = np.asarray(action, dtype=np.float32)
        expected = candidate_ids.shape[:-1] + self.single_space.shape
        if action.shape != expected:
            raise ValueError(f"{self.mode} action has shape {action.shape}; allowed: {expected}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"{self.mode} action holds NaN or inf; allowed: finite values")
        if self.mode == "scores":
            scores = action
        else:
            scores = np.einsum("...mf,...f->...m", self.features[candidate_ids], action)
        return top_k(scores, self.slate_size)


class ScoreSlateAction(gym.ActionWrapper):
    """Action: scores per candidate (or a query vector); the top-k candidates become the slate."""

    def __init__(self, env: gym.Env, mode: str = "scores") -> None:
        super().__init__(env)
        self._scorer = _Scorer(env.unwrapped, mode)
        self.action_space = self._scorer.single_space

    def action(self, action):
        return self._scorer.slates(action, self.env.unwrapped.simulator.candidate_ids[0])


class ScoreSlateActionVector(VectorActionWrapper):
    """``ScoreSlateAction`` for ``RetentionVectorEnv``: actions are (B, M) scores or (B, F_item) queries."""

    def __init__(self, env, mode: str = "scores") -> None:
        super().__init__(env)
        self._scorer = _Scorer(env.unwrapped, mode)
        self.single_action_space = self._scorer.single_space
        self.action_space = batch_space(self.single_action_space, env.num_envs)

    def actions(self, actions):
        return self._scorer.slates(actions, self.env.unwrapped.simulator.candidate_ids)


class _Flattener:
    def __init__(self, unwrapped) -> None:
        self.features = unwrapped.catalog.public_features()
        n_shopper = (
            unwrapped.single_observation_space["shopper"].shape[0]
            if hasattr(unwrapped, "single_observation_space")
            else unwrapped.observation_space["shopper"].shape[0]
        )
        size = n_shopper + unwrapped.config.n_candidates * self.features.shape[1]
        self.single_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

    def flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        ids = obs["candidate_ids"]
        items = self.features[ids].reshape(ids.shape[:-1] + (-1,))
        return np.concatenate([obs["shopper"], items], axis=-1)


class FlattenSlateObservation(gym.ObservationWrapper):
    """Observation: [shopper features, public features of candidate 0, ..., candidate M-1] (float32)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._flattener = _Flattener(env.unwrapped)
        self.observation_space = self._flattener.single_space

    def observation(self, observation):
        return self._flattener.flatten(observation)


class FlattenSlateObservationVector(VectorWrapper):
    """``FlattenSlateObservation`` for ``RetentionVectorEnv``: (B, F + M * F_item) float32.

    Also flattens ``infos["final_obs"]`` (SAME_STEP autoreset), which Gymnasium's own observation
    wrappers refuse to handle.
    """

    def __init__(self, env) -> None:
        super().__init__(env)
        self._flattener = _Flattener(env.unwrapped)
        self.single_observation_space = self._flattener.single_space
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._flattener.flatten(obs), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        if "final_obs" in info:
            info = {**info, "final_obs": self._flattener.flatten(info["final_obs"])}
        return self._flattener.flatten(obs), reward, terminated, truncated, info
