"""Small helpers shared by the test modules (not fixtures: plain functions)."""

from __future__ import annotations

import signal
from typing import Any

import numpy as np


def random_slate(rng: np.random.Generator, n_candidates: int, slate_size: int) -> np.ndarray:
    """k distinct candidate indices, uniformly at random."""
    return rng.permutation(n_candidates)[:slate_size].astype(np.int64)


def random_slates(rng: np.random.Generator, batch_size: int, n_candidates: int, slate_size: int) -> np.ndarray:
    """(B, k) rows of distinct candidate indices."""
    return np.stack([random_slate(rng, n_candidates, slate_size) for _ in range(batch_size)])


def assert_obs_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), f"observation[{key!r}] differs"
        assert np.asarray(a[key]).dtype == np.asarray(b[key]).dtype, f"observation[{key!r}] dtype differs"


def assert_info_equal(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Equal keys and exactly equal values (nested dicts such as ``final_obs`` compared recursively)."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_info_equal(a[key], b[key])
        else:
            assert np.array_equal(a[key], b[key]), f"info[{key!r}] differs: {a[key]!r} != {b[key]!r}"


def assert_step_equal(a: tuple, b: tuple) -> None:
    """Two ``step`` results (obs, reward, terminated, truncated, info) are exactly equal."""
    assert_obs_equal(a[0], b[0])
    for name, x, y in zip(("reward", "terminated", "truncated"), a[1:4], b[1:4]):
        assert np.array_equal(x, y), f"{name} differs: {x!r} != {y!r}"
    assert_info_equal(a[4], b[4])


def float_leaves(tree: Any) -> list[np.ndarray]:
    """Every float array or scalar in a nested dict/tuple of results."""
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in float_leaves(value)]
    if isinstance(tree, (tuple, list)):
        return [leaf for value in tree for leaf in float_leaves(value)]
    array = np.asarray(tree)
    return [array] if array.dtype.kind == "f" else []


def interactive_sigint() -> None:
    """In the child before exec: SIGINT delivered and handled as in a terminal. Earlier tests' libraries can leave
    the pytest process with SIGINT ignored or blocked, and a child inherits both (a Python started with SIGINT
    ignored never raises KeyboardInterrupt)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def proc_stats():
    """(pid, state, parent pid, process group) of every process, from /proc (Linux); vanished ones are skipped."""
    from pathlib import Path

    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the name: state, ppid, pgrp, ...
        except OSError:
            continue
        yield int(stat.parent.name), fields[0], int(fields[1]), int(fields[2])
