"""The one rollout loop: a cohort of shoppers followed under a policy to the horizon, with observers.

``rollout`` runs ``n_shoppers`` shoppers (slot ``i`` seeded ``seed + i``) in one ``RetentionVectorEnv`` with
autoreset disabled, so a slot is one shopper for the whole run: reset, then until no shopper is active, the policy
acts, the env steps, the policy's optional ``update(obs, slates, info)`` hook sees the step (what a platform records
about its own traffic, e.g. collaborative filtering's click history), and the observers see it too.

What a run produces is up to its observers (``RolloutObserver``): cohort statistics
(``experiments.simulate.simulate_cohort``), the impression log and serve-time features
(``experiments.platform_log.collect``), the click-model probe's table (``experiments.mlp_auc_probe``). Observers read
and never change the env or the policy, so adding one leaves every number as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from tqdm.auto import tqdm

from stickyrec.envs.vector import RetentionVectorEnv


class RolloutObserver:
    """What ``rollout`` calls; subclass and override the hooks you need (each is a no-op here).

    ``active`` is the (B,) mask of the shoppers live *before* the step (the ones the slates were shown to);
    ``info`` is the vector env's step infos (``info["active"]``: live after the step).
    """

    def on_reset(self, env: RetentionVectorEnv, obs: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        """After ``env.reset``: the env (its ``simulator``, for analysis observers), first observation and infos."""

    def before_step(self, obs: dict[str, np.ndarray], slates: np.ndarray, active: np.ndarray) -> None:
        """The policy chose ``slates`` on ``obs``; the env has not stepped yet (its state is the slates' context)."""

    def on_step(
        self,
        obs: dict[str, np.ndarray],
        slates: np.ndarray,
        next_obs: dict[str, np.ndarray],
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        info: dict[str, Any],
        active: np.ndarray,
    ) -> None:
        """The env stepped on ``slates`` (and the policy's ``update`` hook has seen it)."""

    def finish(self) -> Any:
        """Every shopper is done: return what the observer built (``rollout`` returns these in order)."""
        return None


def rollout(
    policy,
    config,
    n_shoppers: int,
    seed: int = 0,
    observers: Sequence[RolloutObserver] = (),
    progress: bool = False,
    desc: str | None = None,
    postfix: Callable[[], dict[str, Any]] | None = None,
) -> list[Any]:
    """Follow ``n_shoppers`` shoppers (seeds ``seed + i``) under ``policy`` until all finish; observers' results.

    ``policy`` needs ``bind(env)`` and ``act(obs) -> (B, k) slates`` (with offers on, or a mapping ``{"slate": ...,
    "offer": ..., "offer_between": ...}``: observers and ``update`` still get the slates); ``update(obs, slates,
    info)`` is called after each step when it has one. ``config``: a ``RetentionConfig``. ``progress`` shows a bar
    by simulated day (``desc``, and ``postfix()``'s fields on each new day). Returns ``[o.finish() for o in
    observers]``.
    """
    env = RetentionVectorEnv(int(n_shoppers), config=config, autoreset_mode=AutoresetMode.DISABLED)
    policy.bind(env)
    obs, reset_info = env.reset(seed=int(seed))
    for observer in observers:
        observer.on_reset(env, obs, reset_info)
    update = getattr(policy, "update", None)  # duck-typed policies need only bind() and act()
    active = np.ones(int(n_shoppers), dtype=bool)
    horizon = int(config.horizon_days)
    name = getattr(policy, "name", type(policy).__name__)
    bar = tqdm(total=horizon, desc=desc or f"simulating {name}", unit="day", disable=not progress)
    try:
        while active.any():
            action = policy.act(obs)  # a slate array, or with offers on a mapping holding one (envs.offers)
            slates = action["slate"] if isinstance(action, Mapping) else action
            for observer in observers:
                observer.before_step(obs, slates, active)
            next_obs, reward, terminated, truncated, info = env.step(action)
            if callable(update):
                update(obs, slates, info)
            for observer in observers:
                observer.on_step(obs, slates, next_obs, reward, terminated, truncated, info, active)
            active = info["active"]
            obs = next_obs
            if progress:
                day = int(np.min(info["day"][active])) if active.any() else horizon
                if day > bar.n:  # whole days only: no redraw on every step
                    if postfix is not None:
                        bar.set_postfix(postfix(), refresh=False)
                    bar.update(day - bar.n)
    finally:
        bar.close()
    return [observer.finish() for observer in observers]
