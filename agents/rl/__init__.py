"""Reinforcement-learning agents on the batched env: PPO with a Plackett-Luce slate policy, and SlateQ.

``make_rl_agent(kind, **hyperparameters)`` builds an untrained agent; ``load_agent(path)`` loads any checkpoint
(RL agents and the supervised MLP) as the agent it holds. Both read the agent registry (``agents.registry``);
torch and SB3 load on first use of an agent, not on importing this package.
"""

from __future__ import annotations

from stickyrec.agents.base import NEEDS_ENV
from stickyrec.agents.registry import get_agent_class, kinds, load_agent
from stickyrec.envs.rewards import DEFAULT_REWARD, REWARDS, RewardMix, make_reward

RL_AGENT_NAMES = kinds(needs=NEEDS_ENV)  # the registry's kinds that train in the env (the CLI's choices)


def make_rl_agent(name: str, **hyperparameters):
    """An untrained RL agent by kind; unknown kinds and hyperparameters raise ``ValueError``."""
    allowed = kinds(needs=NEEDS_ENV)
    if name not in allowed:
        raise ValueError(f"unknown RL agent {name!r}; allowed: {', '.join(allowed)}")
    return get_agent_class(name)(**hyperparameters)


__all__ = ["DEFAULT_REWARD", "REWARDS", "RL_AGENT_NAMES", "RewardMix", "load_agent", "make_reward", "make_rl_agent"]
