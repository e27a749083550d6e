"""The torch checkpoint format every trained network agent saves (the MLP click model, PPO, SlateQ).

A checkpoint is ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts)::

    {"format": "stickyrec.agent", "version": 1, "name": KIND, ...the agent's own sections}

``name`` is the agent's *kind* (its saved identity, ``agents.base.Agent.kind``), never its display label, so a
relabelled agent's file still loads with its own class. Files are written whole or not at all (``torch.save`` into
memory, then ``stickyrec.io.write_bytes_atomic``) and read with ``torch.load(weights_only=True)``, so a checkpoint
can never run code. Reading a missing, corrupt, foreign or other agent's file is a ``ValueError`` that says which.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import numpy as np
import torch

from stickyrec.io import write_bytes_atomic

FORMAT = "stickyrec.agent"
FORMAT_VERSION = 1
CHECKPOINT_SUFFIX = ".pt"


def catalog_fingerprint(item_features) -> str:
    """A short hash of a public item feature table: tells one catalog from another of the same size."""
    array = np.ascontiguousarray(np.asarray(item_features, dtype=np.float32))
    return hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()[:16]


def write_checkpoint(path, kind: str, payload: dict[str, Any]) -> None:
    """Save ``payload`` (plain data) as a checkpoint of agent ``kind``, atomically (parent folders are created)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, "name": kind, **payload}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def read_checkpoint(path, kind: str | None, what: str = "checkpoint") -> dict[str, Any]:
    """The payload of a checkpoint holding agent ``kind`` (any agent for None); ``ValueError`` naming the problem,
    with ``what`` naming the file, for a missing, unreadable (corrupt, truncated, foreign), other agent's or other
    version's file."""
    path = os.fspath(path)
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise ValueError(f"{what} {path!r} does not exist") from None
    except Exception as exc:  # unpickling errors, truncated archives, foreign formats: all "not our file"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(
            f"{what} {path!r} is not a readable stickyrec {what} ({type(exc).__name__}: {first})"
        ) from None
    if not isinstance(payload, dict):
        raise ValueError(f"{what} {path!r} holds a {type(payload).__name__}, not a stickyrec agent")
    if payload.get("format") != FORMAT:
        raise ValueError(f"{what} {path!r} is not a stickyrec agent file (format {payload.get('format')!r})")
    if kind is not None and payload.get("name") != kind:
        raise ValueError(f"{what} {path!r} holds agent {payload.get('name')!r}, not {kind!r}")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{what} {path!r} has format version {payload.get('version')!r}; this code reads version {FORMAT_VERSION}"
        )
    return payload


def load_state(module: torch.nn.Module, state: dict, path, kind: str) -> None:
    """``load_state_dict`` (strict) with damage reported as ``ValueError``; refuses NaN or inf weights."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} is a damaged {kind!r} checkpoint: {str(exc).splitlines()[0]}"
        ) from None
    for key, value in module.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"checkpoint {os.fspath(path)!r} is a damaged {kind!r} checkpoint: {key} holds NaN or inf")


__all__ = [
    "CHECKPOINT_SUFFIX",
    "FORMAT",
    "FORMAT_VERSION",
    "catalog_fingerprint",
    "load_state",
    "read_checkpoint",
    "write_checkpoint",
]
