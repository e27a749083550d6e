"""Reinforcement-learning agents on the batched env: PPO with a Plackett-Luce slate policy, and SlateQ.

``make_rl_agent(name, **hyperparameters)`` builds an untrained agent; ``load_agent(path)`` loads any checkpoint
(RL agents and the supervised MLP) as the agent it holds. torch and SB3 load on first use of this package. The reward
designs (``RewardMix``, ``REWARDS``, ``make_reward``) live with the world in ``envs.rewards`` and are re-exported here.
"""

from __future__ import annotations

from stickyrec.envs.rewards import DEFAULT_REWARD, REWARDS, RewardMix, make_reward


def _registry() -> dict:
    from stickyrec.agents.rl.ppo import PPOAgent
    from stickyrec.agents.rl.slateq import SlateQAgent

    return {PPOAgent.name: PPOAgent, SlateQAgent.name: SlateQAgent}


RL_AGENT_NAMES = ("ppo", "slateq")


def make_rl_agent(name: str, **hyperparameters):
    """An untrained RL agent by name; unknown names and hyperparameters raise ``ValueError``."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown RL agent {name!r}; allowed: {', '.join(registry)}")
    try:
        return registry[name](**hyperparameters)
    except TypeError as exc:
        raise ValueError(f"{name}: {exc}; see help({registry[name].__name__})") from None


def load_agent(path):
    """Load a checkpoint as the agent it holds (``ppo``, ``slateq`` or ``mlp``)."""
    from stickyrec.agents.mlp import MLPClickModel
    from stickyrec.agents.rl.checkpoint import load_checkpoint

    name = load_checkpoint(path, None).get("name")
    registry = {**_registry(), MLPClickModel.name: MLPClickModel}
    if name not in registry:
        raise ValueError(f"checkpoint {path!s} holds agent {name!r}; allowed: {', '.join(registry)}")
    return registry[name].load(path)


__all__ = ["DEFAULT_REWARD", "REWARDS", "RL_AGENT_NAMES", "RewardMix", "load_agent", "make_reward", "make_rl_agent"]
