"""Tune an agent's ranking weights on the training population: short rollouts, common random numbers, a grid.

An agent with weights to choose returns a ``TuningPlan`` (``agents.base``): candidate weight settings, a number of
shoppers and a number of days. ``tune_weights`` rolls each candidate out on the same shoppers of the *training*
population (slots seeded ``seed + i``: the runner passes the logged population's seed, so these are shoppers the
agent's log came from, never evaluation shoppers), with the same random streams for every candidate (common random
numbers: the candidates' differences are not noise of the draw), over ``days + 1`` days or the world's horizon if
shorter, and keeps the candidate with the highest share of shoppers retained at the last full day (a tie: the
first).
"""

from __future__ import annotations

import math

import numpy as np

from stickyrec.agents.base import Agent
from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.simulate import simulate_cohort


def tune_weights(agent: Agent, config: RetentionConfig, seed: int, max_shoppers: int | None = None) -> dict | None:
    """Choose ``agent``'s weights by its ``tuning_plan`` on shoppers ``seed .. seed + n - 1``, where ``n`` is the
    plan's shoppers capped at ``max_shoppers`` (the training population's size); sets them and returns what was
    tried (``None`` when the agent has nothing to tune)."""
    plan = agent.tuning_plan()
    if plan is None:
        return None
    if not plan.candidates:
        raise ValueError(f"{agent.name}: a tuning plan needs at least one candidate")
    shoppers = plan.shoppers if max_shoppers is None else min(plan.shoppers, max_shoppers)
    day = min(plan.days, math.ceil(config.horizon_days) - 1)
    short = config.replace(horizon_days=float(min(config.horizon_days, day + 1)))
    objective = []
    for weights in plan.candidates:
        agent.set_weights(weights)
        result = simulate_cohort(agent, short, shoppers, seed=seed)
        objective.append(float(result.retained(day).mean()))
    best = int(np.argmax(objective))  # the first of equal ones
    agent.set_weights(plan.candidates[best])
    return {
        "weights": dict(plan.candidates[best]),
        "objective": f"retention_day{day}",
        "shoppers": shoppers,
        "population_seed": seed,
        "grid": [{**dict(w), "value": v} for w, v in zip(plan.candidates, objective)],
    }


__all__ = ["tune_weights"]
