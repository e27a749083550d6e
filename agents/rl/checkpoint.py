"""The RL agents' checkpoint format: ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts).

Loads with ``torch.load(weights_only=True)``, so a checkpoint can never run code. Files are written atomically
(temporary file, then rename). A checkpoint names its agent and the env spaces it was trained on (catalog size and
fingerprint, candidates, slate size, shopper features); loading it as another agent, or binding it to an env with
other spaces, is a ``ValueError`` that says which.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from stickyrec.agents.mlp import FORMAT, FORMAT_VERSION, catalog_fingerprint, read_agent_file

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


def check_spaces(saved: dict[str, Any], current: dict[str, Any], agent: str) -> None:
    """``ValueError`` naming every space that differs between a checkpoint and the env it is bound to."""
    diffs = [
        f"{key} {saved.get(key)!r} (trained) != {current[key]!r} (env)"
        for key in (*SPACE_KEYS, "catalog_fingerprint")
        if saved.get(key) != current[key]
    ]
    if diffs:
        raise ValueError(f"this {agent} agent was trained on another env: {'; '.join(diffs)}")


def save_checkpoint(path, name: str, payload: dict[str, Any]) -> None:
    payload = {"format": FORMAT, "version": FORMAT_VERSION, "name": name, **payload}
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_checkpoint(path, name: str | None) -> dict[str, Any]:
    """The payload of a checkpoint of agent ``name`` (any agent for None); ``ValueError`` for a missing, corrupt or
    foreign file."""
    payload = read_agent_file(path, name, "checkpoint")
    if name is None:
        return payload
    for key in ("hyperparameters", "spaces", "state"):
        if not isinstance(payload.get(key), dict):
            raise ValueError(f"checkpoint {os.fspath(path)!r} is a damaged {name!r} checkpoint: no {key!r} section")
    return payload


def load_state(module: torch.nn.Module, state: dict, path, name: str) -> None:
    """``load_state_dict`` (strict) with damage reported as ``ValueError``; refuses NaN or inf weights."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} is a damaged {name!r} checkpoint: {str(exc).splitlines()[0]}"
        ) from None
    for key, value in module.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"checkpoint {os.fspath(path)!r} is a damaged {name!r} checkpoint: {key} holds NaN or inf")
