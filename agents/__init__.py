"""Slate policies behind one interface (``agents.base.Agent``): baselines, oracles, the supervised click model.

Heavy agents (the torch MLP) are imported from their modules: ``from agents.mlp import MLPClickModel``.
"""

from stickyrec.agents.base import Agent
from stickyrec.agents.baselines import ItemCFPolicy, PopularityPolicy
from stickyrec.agents.heuristics import ClickChaserPolicy, RandomPolicy, RelevanceQualityPolicy
from stickyrec.agents.oracles import LongTermOracle, MyopicOracle

POLICIES = {
    cls.name: cls for cls in (RandomPolicy, ClickChaserPolicy, RelevanceQualityPolicy, MyopicOracle, LongTermOracle)
}


def make_policy(name: str, **kwargs) -> Agent:
    """A policy that needs no training, by name (``random``, ``click_chaser``, ``relevance_quality``, oracles)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; allowed: {', '.join(sorted(POLICIES))}")
    return POLICIES[name](**kwargs)


__all__ = [
    "POLICIES",
    "Agent",
    "ClickChaserPolicy",
    "ItemCFPolicy",
    "LongTermOracle",
    "MyopicOracle",
    "PopularityPolicy",
    "RandomPolicy",
    "RelevanceQualityPolicy",
    "make_policy",
]
