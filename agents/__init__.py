"""Slate policies behind one interface (``agents.base.Agent``)."""

from agents.base import Agent, top_k_slate
from agents.heuristics import POLICIES, ClickChaserPolicy, RandomPolicy, RelevanceQualityPolicy, make_policy

__all__ = ["POLICIES", "Agent", "ClickChaserPolicy", "RandomPolicy", "RelevanceQualityPolicy", "make_policy",
           "top_k_slate"]
