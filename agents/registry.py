"""The agent registry: every agent kind a config, the CLI or a checkpoint can name, and the class behind it.

Each agent class declares what the pipeline needs to know about it (``agents.base.Agent``: ``kind``, ``needs``,
``default_steps``, ``priority``, ``file_suffix``, ``from_spec``); this module maps kinds to classes::

    get_agent_class("ppo")            # -> PPOAgent (imported on first use: torch and SB3 load only then)
    kinds(needs=NEEDS_ENV)            # -> ("ppo", "slateq"), without importing anything heavy
    AGENTS["mlp"].from_spec({"epochs": 5}, seed=0)
    register(MyAgent)                 # a new kind, usable in configs (``kind: my_agent``) from then on
    load_agent("results/train/ppo/agent.pt")   # any saved torch checkpoint, as the agent it holds

The built-in kinds are listed with the module that defines them and what they need, so that listing kinds (the
CLI's choices, a config's validation) imports no agent; the class confirms both when it is first loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Iterator, Mapping

from stickyrec.agents.base import NEEDS, NEEDS_DATA, NEEDS_ENV, NEEDS_NOTHING, Agent


@dataclasses.dataclass
class _Entry:
    needs: str
    location: str | None = None  # "module:Class" of a built-in kind, imported on first use
    cls: type | None = None


_ENTRIES: dict[str, _Entry] = {
    "random": _Entry(NEEDS_NOTHING, "stickyrec.agents.heuristics:RandomPolicy"),
    "click_chaser": _Entry(NEEDS_NOTHING, "stickyrec.agents.heuristics:ClickChaserPolicy"),
    "relevance_quality": _Entry(NEEDS_NOTHING, "stickyrec.agents.heuristics:RelevanceQualityPolicy"),
    "ctr_rating": _Entry(NEEDS_NOTHING, "stickyrec.agents.heuristics:CtrRatingPolicy"),
    "myopic_oracle": _Entry(NEEDS_NOTHING, "stickyrec.agents.oracles:MyopicOracle"),
    "long_term_oracle": _Entry(NEEDS_NOTHING, "stickyrec.agents.oracles:LongTermOracle"),
    "popularity": _Entry(NEEDS_DATA, "stickyrec.agents.baselines:PopularityPolicy"),
    "item_cf": _Entry(NEEDS_DATA, "stickyrec.agents.baselines:ItemCFPolicy"),
    "mlp": _Entry(NEEDS_DATA, "stickyrec.agents.mlp:MLPClickModel"),
    "multi_objective": _Entry(NEEDS_DATA, "stickyrec.agents.long_term:MultiObjectiveRanker"),
    "retention_mlp": _Entry(NEEDS_DATA, "stickyrec.agents.long_term:RetentionAwareModel"),
    "ppo": _Entry(NEEDS_ENV, "stickyrec.agents.rl.ppo:PPOAgent"),
    "slateq": _Entry(NEEDS_ENV, "stickyrec.agents.rl.slateq:SlateQAgent"),
}


def kinds(needs: str | None = None) -> tuple[str, ...]:
    """Every registered kind, in registration order; with ``needs``, only those that need that."""
    if needs is not None and needs not in NEEDS:
        raise ValueError(f"needs={needs!r}; allowed: {', '.join(map(repr, NEEDS))}")
    return tuple(kind for kind, entry in _ENTRIES.items() if needs is None or entry.needs == needs)


def _entry(kind: str) -> _Entry:
    entry = _ENTRIES.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise ValueError(f"unknown agent kind {kind!r}; allowed: {', '.join(_ENTRIES)}")
    return entry


def needs(kind: str) -> str:
    """What agents of ``kind`` learn from (``NEEDS_NOTHING``, ``NEEDS_DATA``, ``NEEDS_ENV``), importing nothing."""
    return _entry(kind).needs


def get_agent_class(kind: str) -> type[Agent]:
    """The class of agent ``kind``; an unknown kind is a ``ValueError`` listing the known ones."""
    entry = _entry(kind)
    if entry.cls is None:
        module, _, name = entry.location.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if cls.kind != kind or cls.needs != entry.needs:
            raise TypeError(
                f"{entry.location} declares kind {cls.kind!r} needing {cls.needs!r}; the registry lists it as"
                f" {kind!r} needing {entry.needs!r}"
            )
        entry.cls = cls
    return entry.cls


def register(cls: type[Agent], replace: bool = False) -> type[Agent]:
    """Add an agent class under its ``kind`` (usable as a class decorator); a taken kind needs ``replace=True``."""
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ValueError(f"register takes an Agent subclass, got {cls!r}")
    kind = cls.kind
    if not isinstance(kind, str) or not kind or not all(c.isalnum() or c in "-_." for c in kind) or "__" in kind:
        raise ValueError(f"{cls.__name__}.kind = {kind!r}; allowed: a name of letters, digits, '-', '_', '.'")
    current = _ENTRIES.get(kind)
    if current is not None and not replace and current.cls is not cls:
        taken = current.location or current.cls.__qualname__
        raise ValueError(f"agent kind {kind!r} is taken by {taken}; pass replace=True to replace it")
    _ENTRIES[kind] = _Entry(cls.needs, None, cls)
    return cls


def unregister(kind: str) -> None:
    """Remove a kind added with ``register`` (the built-in kinds stay)."""
    entry = _entry(kind)
    if entry.location is not None:
        raise ValueError(f"agent kind {kind!r} is built-in; only kinds added with register can be removed")
    del _ENTRIES[kind]


class _Agents(Mapping):
    """Read-only view kind -> class over the registry (classes are imported on access)."""

    def __getitem__(self, kind: str) -> type[Agent]:
        if kind not in _ENTRIES:
            raise KeyError(kind)
        return get_agent_class(kind)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_ENTRIES))

    def __len__(self) -> int:
        return len(_ENTRIES)

    def __repr__(self) -> str:
        return f"AGENTS({', '.join(_ENTRIES)})"


AGENTS: Mapping[str, type[Agent]] = _Agents()


def load_agent(path) -> Agent:
    """Load a torch checkpoint (``.pt``: the MLP, PPO, SlateQ, or any registered kind saving one) as the agent it
    holds; a file of an unknown kind is a ``ValueError`` naming the kinds that save checkpoints."""
    from stickyrec.agents.checkpoint import CHECKPOINT_SUFFIX, read_checkpoint

    kind = read_checkpoint(path, None).get("name")
    allowed = [k for k in _ENTRIES if get_agent_class(k).file_suffix == CHECKPOINT_SUFFIX]
    if kind not in allowed:
        raise ValueError(f"checkpoint {os.fspath(path)!s} holds agent {kind!r}; allowed: {', '.join(allowed)}")
    return get_agent_class(kind).load(path)


__all__ = ["AGENTS", "get_agent_class", "kinds", "load_agent", "needs", "register", "unregister"]
