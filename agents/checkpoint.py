"""The torch checkpoint format every trained network agent saves (the MLP click model, PPO, SlateQ).

A checkpoint is one line of header, then ``torch.save`` of plain data (tensors, numbers, strings, lists, dicts)::

    stickyrec-checkpoint sha256=<64 hex digits of the sha256 of the bytes below>\n
    {"format": "stickyrec.agent", "version": 1, "name": KIND, ...the agent's own sections}

The content hash is checked before anything is unpickled: a file with any byte changed (a flipped bit, a truncation,
a foreign file, a checkpoint of an older stickyrec without the header) is a ``ValueError`` naming the file. The hash
finds damage, not forgery: sizes a crafted file names are bounded too (``check_sizes``, and every
hyperparameter's range), so no file can make an agent allocate more than the largest env allows.

``name`` is the agent's *kind* (its saved identity, ``agents.base.Agent.kind``), never its display label, so a
relabelled agent's file still loads with its own class. Files are written whole or not at all (``torch.save`` into
memory, then ``stickyrec.io.write_bytes_atomic``, header and payload in one write) and read with
``torch.load(weights_only=True)`` after the hash check, so a checkpoint can never run code. Reading a missing,
corrupt, foreign or other agent's file is a ``ValueError`` that says which.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from typing import Any

import numpy as np
import torch

from stickyrec.inputs import short_repr
from stickyrec.io import write_bytes_atomic

FORMAT = "stickyrec.agent"
FORMAT_VERSION = 1
CHECKPOINT_SUFFIX = ".pt"
HEADER = b"stickyrec-checkpoint sha256="
_HEADER_LENGTH = len(HEADER) + 64 + 1


def catalog_fingerprint(item_features) -> str:
    """A short hash of a public item feature table: tells one catalog from another of the same size."""
    array = np.ascontiguousarray(np.asarray(item_features, dtype=np.float32))
    return hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()[:16]


def write_checkpoint(path, kind: str, payload: dict[str, Any]) -> None:
    """Save ``payload`` (plain data) as a checkpoint of agent ``kind``, atomically (parent folders are created)."""
    write_bytes_atomic(path, encode_checkpoint({"format": FORMAT, "version": FORMAT_VERSION, "name": kind, **payload}))


def encode_checkpoint(obj: Any) -> bytes:
    """The bytes of a checkpoint file holding ``obj``: the header with the content hash, then ``torch.save(obj)``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    return HEADER + hashlib.sha256(data).hexdigest().encode() + b"\n" + data


def decode_checkpoint(path, what: str = "checkpoint") -> Any:
    """What a checkpoint file holds (hash checked, then ``torch.load(weights_only=True)``), unchecked otherwise."""
    return torch.load(io.BytesIO(checked_bytes(path, what)), weights_only=True, map_location="cpu")


def checked_bytes(path, what: str = "checkpoint") -> bytes:
    """The payload bytes of a checkpoint file after its header's content hash is checked; ``ValueError`` naming the
    file when it is missing, has no header, or any byte differs from what was written."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ValueError(f"{what} {path!r} does not exist") from None
    except OSError as exc:
        raise ValueError(f"{what} {path!r} cannot be read: {exc.strerror or exc}") from None
    header, payload = data[:_HEADER_LENGTH], data[_HEADER_LENGTH:]
    digest = header[len(HEADER) : -1]
    if not header.startswith(HEADER) or header[-1:] != b"\n" or not re.fullmatch(rb"[0-9a-f]{64}", digest):
        raise ValueError(
            f"{what} {path!r} is not a readable stickyrec {what}: no content hash header (damaged, foreign, or"
            " written by a stickyrec before content hashes: train or fit it again)"
        )
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError(
            f"{what} {path!r} is not a readable stickyrec {what}: damaged, its content does not match its sha256"
        )
    return payload


def read_checkpoint(path, kind: str | None, what: str = "checkpoint") -> dict[str, Any]:
    """The payload of a checkpoint holding agent ``kind`` (any agent for None); ``ValueError`` naming the problem,
    with ``what`` naming the file, for a missing, unreadable (corrupt, truncated, foreign), other agent's or other
    version's file."""
    path = os.fspath(path)
    try:
        payload = decode_checkpoint(path, what)
    except ValueError:
        raise
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


def space_bounds() -> dict[str, int]:
    """The largest value of each env space any valid config has (``envs.config`` ranges; ``shopper_dim`` the most
    shopper features): a checkpoint naming more is refused before its network is built."""
    from stickyrec.envs.config import FIELDS
    from stickyrec.envs.shoppers import n_shopper_features

    keys = ("n_items", "n_candidates", "slate_size", "n_categories", "embedding_dim")
    bounds = {key: int(FIELDS[key].metadata["hi"]) for key in keys}
    bounds["shopper_dim"] = int(n_shopper_features(bounds["n_categories"], bounds["embedding_dim"]))
    return bounds


def check_sizes(path, kind: str, sizes: dict[str, Any], bounds: dict[str, int]) -> None:
    """Each of ``sizes`` (what a checkpoint says its tensors' shapes are) an integer in [1, its bound], checked before
    any network is built; ``ValueError`` naming the file otherwise."""
    for key, bound in bounds.items():
        value = sizes.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
            raise ValueError(
                f"checkpoint {os.fspath(path)!r} is a damaged {kind!r} checkpoint: {key} = {short_repr(value)};"
                f" allowed: an integer in [1, {bound:,}]"
            )


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
    "HEADER",
    "catalog_fingerprint",
    "check_sizes",
    "space_bounds",
    "checked_bytes",
    "decode_checkpoint",
    "encode_checkpoint",
    "load_state",
    "read_checkpoint",
    "write_checkpoint",
]
