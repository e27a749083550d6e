"""Slate policies behind one interface (``agents.base.Agent``): baselines, oracles, the supervised click model.

Every agent kind is in the registry (``agents.registry``: ``get_agent_class(kind)``, ``register``). Heavy agents
(the torch MLP, the RL agents) are imported from their modules, or through the registry on first use:
``from stickyrec.agents.mlp import MLPClickModel``.
"""

from stickyrec.agents.base import NEEDS_DATA, NEEDS_ENV, NEEDS_NOTHING, Agent
from stickyrec.agents.baselines import ItemCFPolicy, PopularityPolicy
from stickyrec.agents.heuristics import ClickChaserPolicy, RandomPolicy, RelevanceQualityPolicy
from stickyrec.agents.oracles import LongTermOracle, MyopicOracle
from stickyrec.agents.registry import AGENTS, get_agent_class, kinds, register


def make_policy(name: str, **kwargs) -> Agent:
    """A policy that needs no training, by kind (``random``, ``click_chaser``, ``relevance_quality``, oracles)."""
    allowed = kinds(needs=NEEDS_NOTHING)
    if name not in allowed:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(sorted(allowed))}")
    return get_agent_class(name)(**kwargs)


__all__ = [
    "AGENTS",
    "NEEDS_DATA",
    "NEEDS_ENV",
    "NEEDS_NOTHING",
    "Agent",
    "ClickChaserPolicy",
    "ItemCFPolicy",
    "LongTermOracle",
    "MyopicOracle",
    "PopularityPolicy",
    "RandomPolicy",
    "RelevanceQualityPolicy",
    "get_agent_class",
    "kinds",
    "make_policy",
    "register",
]
