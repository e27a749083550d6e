"""The batched env: B shoppers in one set of arrays, stepped with numpy (the fast path)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from stickyrec.envs.config import RetentionConfig, make_config
from stickyrec.envs.env import LATENT_SATISFACTION_KEY, action_space, observation_space, response_info
from stickyrec.envs.offers import UPLIFT_TYPE_KEY, split_action
from stickyrec.envs.rng import keys_from_seeds
from stickyrec.envs.simulator import RetentionSimulator

_MODES = {AutoresetMode.SAME_STEP, AutoresetMode.DISABLED}


class RetentionVectorEnv(VectorEnv):
    """``num_envs`` shoppers of ``stickyrec/Retention-v0`` at once.

    Shopper slot i seeded with ``seed + i`` follows exactly the trajectory of a single
    ``RetentionEnv`` reset with that seed (and reset again, without a seed, after each episode).

    Autoreset (``metadata["autoreset_mode"]``):

    * ``SAME_STEP`` (default): a shopper who churns or reaches the horizon is replaced within the same
      step; the returned observation is the new shopper's, and ``infos["final_obs"]`` /
      ``infos["final_info"]`` hold the finished one's (valid where ``infos["_final_obs"]``).
    * ``DISABLED``: finished shoppers stay finished (their rows are frozen: no clicks, no reward) until
      ``reset(options={"reset_mask": mask})``; evaluation uses this to follow one cohort to the horizon.
      ``infos["active"]`` tells which rows are still live.

    ``infos`` holds every step's response for every row (the keys of ``envs.env.INFO_KEYS`` plus
    ``latent_satisfaction``, analysis only, and ``envs.env.CHURN_CAUSE_KEYS`` where the config reports churn
    causes), including rows that finished on this step.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        config: RetentionConfig | str | dict | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in _MODES:
            raise ValueError(
                f"autoreset_mode {autoreset_mode!r} is not supported; allowed: {sorted(m.value for m in _MODES)}"
            )
        self.config = make_config(config, **overrides)
        self.num_envs = num_envs  # validated by the simulator
        self.simulator = RetentionSimulator(self.config, num_envs)
        self.catalog = self.simulator.catalog
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.single_action_space = action_space(self.config)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = observation_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._all_rows = np.arange(num_envs)
        self._seeded = False
        self._needs_reset = True

    @property
    def autoreset_mode(self) -> AutoresetMode:
        return self.metadata["autoreset_mode"]

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        """Seeds: an int (slot i gets seed + i), a list of B ints, or None. ``options["reset_mask"]``
        resets only the masked rows (their streams continue unless seeds are given)."""
        super().reset(seed=seed if isinstance(seed, int) else None)
        rows = self._all_rows
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != bool:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            rows = np.flatnonzero(mask)
        unknown = set(options or {}) - {"reset_mask"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; allowed: ['reset_mask']")
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(2**62))
        if seed is None:
            self.simulator.reset_rows(rows)
        else:
            seeds = self._seeds(seed)
            self.simulator.reset_rows(rows, keys_from_seeds(np.asarray(seeds)[rows]))
        self._seeded = True
        self._needs_reset = False
        info = {
            "day": np.zeros(self.num_envs, dtype=np.int64),
            LATENT_SATISFACTION_KEY: self.simulator.state.satisfaction.copy(),
        }
        offers = self.simulator.offers
        if offers is not None:  # the budget is per full reset (not per masked reset or autoreset)
            if rows is self._all_rows:
                offers.reset_budget()
            info[UPLIFT_TYPE_KEY] = offers.uplift_type.copy()
        return self.simulator.observe(), info

    def _seeds(self, seed: int | list[int]) -> list[int]:
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"reset got {len(seeds)} seeds for {self.num_envs} shoppers; allowed: one int"
                f" (slot i gets seed + i) or a list of {self.num_envs}"
            )
        return seeds

    def step(self, actions):
        if self._needs_reset:
            raise RuntimeError("step() called before reset(); call reset() first")
        response = self.simulator.step(*split_action(actions, self.config))
        terminations, truncations = response.churned, response.horizon_reached
        infos: dict[str, Any] = response_info(
            response, self.simulator.state.satisfaction, self.config.reports_churn_causes, self.simulator.offers
        )
        done = terminations | truncations
        sim = self.simulator
        sim.update_features()
        if self.autoreset_mode is AutoresetMode.SAME_STEP and done.any():
            finished = np.flatnonzero(done)
            # Only finished rows matter in final_obs: zeros elsewhere (calloc'd, nearly free).
            infos["final_obs"] = {
                "candidate_ids": np.zeros(sim.candidate_ids.shape, sim.candidate_ids.dtype),
                "shopper": np.zeros(sim.features.shape, sim.features.dtype),
            }
            infos["final_obs"]["candidate_ids"][finished] = np.take(sim.candidate_ids, finished, axis=0)
            infos["final_obs"]["shopper"][finished] = np.take(sim.features, finished, axis=0)
            infos["_final_obs"] = done
            # the step's info arrays are fresh and never written again: share them, no copies
            infos["final_info"] = {
                key: value for key, value in infos.items() if not key.startswith(("final", "_final"))
            }
            infos["_final_info"] = done
            sim.reset_rows(finished)
            sim.update_features(finished)
        obs = {"candidate_ids": sim.candidate_ids.copy(), "shopper": sim.features.copy()}
        infos["active"] = self.simulator.state.alive.copy()
        return obs, response.reward, terminations, truncations, infos
