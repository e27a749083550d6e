"""Train one RL agent: ``stickyrec train`` and every cell of the RL comparison grid run through here.

``train_agent`` writes into ``out_dir``::

    agent.pt          the trained agent (safe checkpoint: ``torch.load(weights_only=True)``)
    train.json        agent, reward, hyperparameters, steps, seconds, steps/s, the resolved config
    config.yaml       the resolved env config
    tb/               TensorBoard event files and progress.csv (losses, episode return, steps/s, click rate,
                      returns per 1k steps, churn share)
    checkpoints/      intermediate checkpoints every ``checkpoint_every`` steps
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stickyrec.envs.config import RetentionConfig
from stickyrec.inputs import load_yaml, short_repr


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings (values parsed as YAML scalars) -> hyperparameter dict."""
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects key=value, got {short_repr(pair)}")
        params[key] = load_yaml(value, source=f"--param {key[:80]}: value {short_repr(value)}")
    return params


def parse_reward(text: str) -> str | dict[str, Any]:
    """``--reward``: a reward name, or weights ``TERM=W,TERM=W`` (each weight a YAML number; ``make_reward`` checks
    the terms and that the weights are finite numbers)."""
    if "=" not in text:
        return text
    weights: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--reward expects a name or TERM=WEIGHT,TERM=WEIGHT, got {short_repr(item)}")
        if key in weights:
            raise ValueError(f"--reward: term {short_repr(key)} given twice")
        weight = load_yaml(value, source=f"--reward {key[:80]}: value {short_repr(value)}")
        weights[key] = float(weight) if isinstance(weight, int) and not isinstance(weight, bool) else weight
    return weights


def train_agent(
    agent_name: str,
    config: RetentionConfig,
    out_dir,
    reward=None,
    steps: int | None = None,
    seed: int = 0,
    hyperparameters: dict | None = None,
    max_seconds: float | None = None,
    checkpoint_every: int = 500_000,
    progress: bool = True,
    threads: int = 1,
):
    """Train, save and describe one agent of a kind that trains in the env (``ppo``, ``slateq``: the registry's
    ``NEEDS_ENV`` kinds); ``steps`` None is the agent's default budget. Returns the trained agent (all inputs
    checked before training)."""
    from stickyrec.agents.base import NEEDS_ENV
    from stickyrec.agents.registry import get_agent_class, kinds
    from stickyrec.io import write_bytes_atomic, write_json_atomic

    if agent_name not in kinds(needs=NEEDS_ENV):
        raise ValueError(f"unknown RL agent {agent_name!r}; allowed: {', '.join(kinds(needs=NEEDS_ENV))}")
    params = dict(hyperparameters or {})
    for key in ("reward", "seed"):
        if key in params:
            raise ValueError(f"set {key} with its own option, not as a hyperparameter")
    cls = get_agent_class(agent_name)
    agent = cls.from_spec(params, seed, reward)
    steps = cls.default_steps if steps is None else steps
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "config.yaml", config.to_yaml().encode())
    t0 = time.perf_counter()
    agent.train(
        config,
        steps,
        log_dir=out / "tb",
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=checkpoint_every,
        max_seconds=max_seconds,
        progress=progress,
        threads=threads,
    )
    agent.save(out / "agent.pt")
    write_json_atomic(
        out / "train.json",
        {
            "agent": agent.kind,
            "reward": agent.reward.describe(),
            "seed": seed,
            "steps_requested": steps,
            "hyperparameters": agent.hyperparameters,
            "history": agent.history,
            "wall_seconds": round(time.perf_counter() - t0, 2),
            "config": config.to_dict(),
        },
    )
    return agent
