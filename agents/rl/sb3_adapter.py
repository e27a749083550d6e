"""The batched numpy env as a stable-baselines3 ``VecEnv``: thousands of shoppers per step, no per-shopper envs.

``SB3VecEnv`` drives one ``envs.vector.RetentionVectorEnv`` (same-step autoreset) and speaks SB3's protocol:

* observations are flat float32 rows ``[candidate ids (M) ; shopper vector (F)]`` (ids below 2**24 are exact in
  float32), so SB3 stores them in its buffers as they are; the agents' networks split the row and gather the
  catalog's item features by id. (SB3 would one-hot a ``MultiDiscrete`` observation: M x N_items floats per row.)
* actions are ``MultiDiscrete([M] * k)`` slates of candidate indices, checked by the env;
* rewards come from an injected function of the step's ``info`` arrays (``envs.rewards``; a ``RewardMix`` is
  bound to this env's catalog);
* a finished shopper's row carries ``terminal_observation`` and ``TimeLimit.truncated`` (the horizon, not churn)
  in its info dict, plus SB3's ``episode`` record (return, length, seconds) so ``ep_rew_mean`` is logged; the
  returned observation is already the next shopper's, as SB3 expects.

Running totals of clicks, purchases, return visits and churns (``stats()``) feed the training logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.vector import RetentionVectorEnv

RewardFn = Callable[[dict[str, np.ndarray]], np.ndarray]


def flat_observation_space(config: RetentionConfig, shopper_space: spaces.Box) -> spaces.Box:
    low = np.concatenate([np.zeros(config.n_candidates, np.float32), shopper_space.low]).astype(np.float32)
    high = np.concatenate([np.full(config.n_candidates, config.n_items - 1, np.float32), shopper_space.high]).astype(
        np.float32
    )
    return spaces.Box(low, high, dtype=np.float32)


def flatten_observation(observation: dict[str, np.ndarray]) -> np.ndarray:
    """Dict observation (batched) -> (B, M + F) float32 rows."""
    return np.concatenate([observation["candidate_ids"].astype(np.float32), observation["shopper"]], axis=-1)


class SB3VecEnv(VecEnv):
    """``num_envs`` shoppers of ``stickyrec/Retention-v0`` behind SB3's ``VecEnv`` interface."""

    def __init__(self, config: RetentionConfig, num_envs: int, reward_fn: RewardFn, seed: int = 0) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r}; allowed: an integer >= 1")
        self.venv = RetentionVectorEnv(int(num_envs), config=config)
        self.config = self.venv.config
        bind = getattr(reward_fn, "bind", None)  # a RewardMix reads item arrays (ratings) from this env's catalog
        self.reward_fn = bind(self.venv.catalog) if bind is not None else reward_fn
        observation_space = flat_observation_space(self.config, self.venv.single_observation_space["shopper"])
        action_space = spaces.MultiDiscrete(np.full(self.config.slate_size, self.config.n_candidates))
        super().__init__(int(num_envs), observation_space, action_space)
        self._next_seed: int | None = int(seed)
        self._actions: np.ndarray | None = None
        self._episode_return = np.zeros(self.num_envs)
        self._episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self._t0 = time.perf_counter()
        self.seconds_in_env = 0.0  # wall time spent inside step_wait and reset (the env's share of training)
        # days from each shopper's impression on the last step to her next one (0 within a session): for
        # discounting by simulated time (``agents.rl.ppo.TimeDiscountedRolloutBuffer``)
        self.last_gap_days = np.zeros(self.num_envs)
        self._totals = dict.fromkeys(
            ("steps", "reward", "clicks", "purchases", "revenue", "returns", "churns", "episodes"), 0.0
        )

    @property
    def catalog(self):
        return self.venv.catalog

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._next_seed = None if seed is None else int(seed)
        return [None if seed is None else int(seed) + i for i in range(self.num_envs)]

    def reset(self) -> np.ndarray:
        t0 = time.perf_counter()
        obs, _ = self.venv.reset(seed=self._next_seed)
        self.seconds_in_env += time.perf_counter() - t0
        self._next_seed = None
        self._episode_return[:] = 0.0
        self._episode_length[:] = 0
        return flatten_observation(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).astype(np.int64, copy=False)

    def step_wait(self):
        t0 = time.perf_counter()
        try:
            return self._step()
        finally:
            self.seconds_in_env += time.perf_counter() - t0

    def _step(self):
        obs, _, terminated, truncated, info = self.venv.step(self._actions)
        reward = np.asarray(self.reward_fn(info), dtype=np.float32)
        if reward.shape != (self.num_envs,) or not np.isfinite(reward).all():
            raise ValueError(
                f"the reward function returned shape {reward.shape} or non-finite values; allowed: a"
                f" finite array of shape ({self.num_envs},)"
            )
        done = terminated | truncated
        self.last_gap_days = np.where(info["returned"], info["return_gap_days"], 0.0)
        self._episode_return += reward
        self._episode_length += 1
        totals = self._totals
        totals["steps"] += self.num_envs
        totals["reward"] += float(reward.sum(dtype=np.float64))
        totals["clicks"] += int(np.count_nonzero(info["clicked_position"] >= 0))
        totals["purchases"] += int(np.count_nonzero(info["purchased"]))
        totals["revenue"] += float(info["revenue"].sum())
        totals["returns"] += int(np.count_nonzero(info["returned"]))
        totals["churns"] += int(np.count_nonzero(terminated))
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(done)
        if finished.size:
            final = flatten_observation({key: value[finished] for key, value in info["final_obs"].items()})
            elapsed = round(time.perf_counter() - self._t0, 6)
            for j, row in enumerate(finished.tolist()):  # only the few rows that finished on this step
                infos[row] = {
                    "terminal_observation": final[j],
                    "TimeLimit.truncated": bool(truncated[row] and not terminated[row]),
                    "episode": {
                        "r": float(self._episode_return[row]),
                        "l": int(self._episode_length[row]),
                        "t": elapsed,
                    },
                }
            self._episode_return[finished] = 0.0
            self._episode_length[finished] = 0
            totals["episodes"] += finished.size
        return flatten_observation(obs), reward, done, infos

    def stats(self) -> dict[str, float]:
        """Running totals since construction (steps, reward, clicks, purchases, revenue, returns, churns, episodes)."""
        return dict(self._totals)

    # --- the rest of SB3's VecEnv protocol: one underlying env, so attributes come from it --------------------
    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = None if attr_name == "render_mode" else getattr(self.venv, attr_name)  # no rendering
        return [value] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(f"SB3VecEnv shares one batched env; cannot set {attr_name!r} per shopper")

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"SB3VecEnv has no per-shopper envs to call {method_name!r} on")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self):
        return [None] * self.num_envs
