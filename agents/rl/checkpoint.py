"""What an RL checkpoint adds to the shared format (``agents.checkpoint``): the env spaces it was trained on.

A checkpoint names its agent and the env spaces it was trained on (catalog size and fingerprint, candidates, slate
size, shopper features); loading it as another agent, or binding it to an env with other spaces, is a
``ValueError`` that says which.
"""

from __future__ import annotations

import os
from typing import Any

from stickyrec.agents.checkpoint import catalog_fingerprint, check_sizes, read_checkpoint, space_bounds

SPACE_KEYS = ("n_items", "n_candidates", "slate_size", "shopper_dim", "n_categories", "embedding_dim")


def env_spaces(config, catalog) -> dict[str, Any]:
    """What a trained network depends on: the sizes of its inputs and the identity of the catalog."""
    from stickyrec.envs.shoppers import n_shopper_features

    return {
        "n_items": int(config.n_items),
        "n_candidates": int(config.n_candidates),
        "slate_size": int(config.slate_size),
        "shopper_dim": int(n_shopper_features(config.n_categories, config.embedding_dim)),
        "n_categories": int(config.n_categories),
        "embedding_dim": int(config.embedding_dim),
        "catalog_fingerprint": catalog_fingerprint(catalog.public_features()),
    }


def check_saved_spaces(path, kind: str, spaces: dict[str, Any]) -> None:
    """A checkpoint's spaces bounded by ``space_bounds`` and consistent (its shopper features fit its categories and
    embedding size); ``ValueError`` naming the file otherwise."""
    from stickyrec.envs.shoppers import n_shopper_features

    check_sizes(path, kind, spaces, space_bounds())
    if spaces["shopper_dim"] != n_shopper_features(spaces["n_categories"], spaces["embedding_dim"]):
        raise ValueError(f"checkpoint {os.fspath(path)!r} is a damaged {kind!r} checkpoint: shopper_dim does not fit")


def check_spaces(saved: dict[str, Any], current: dict[str, Any], agent: str) -> None:
    """``ValueError`` naming every space that differs between a checkpoint and the env it is bound to."""
    diffs = [
        f"{key} {saved.get(key)!r} (trained) != {current[key]!r} (env)"
        for key in (*SPACE_KEYS, "catalog_fingerprint")
        if saved.get(key) != current[key]
    ]
    if diffs:
        raise ValueError(f"this {agent} agent was trained on another env: {'; '.join(diffs)}")


def load_checkpoint(path, kind: str | None) -> dict[str, Any]:
    """The payload of an RL checkpoint of agent ``kind`` (any agent for None); ``ValueError`` for a missing,
    corrupt or foreign file, or one without its sections."""
    payload = read_checkpoint(path, kind, "checkpoint")
    if kind is None:
        return payload
    for key in ("hyperparameters", "spaces", "state"):
        if not isinstance(payload.get(key), dict):
            raise ValueError(f"checkpoint {os.fspath(path)!r} is a damaged {kind!r} checkpoint: no {key!r} section")
    return payload
