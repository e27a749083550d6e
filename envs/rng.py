"""Counter-based random streams, one per shopper.

Every shopper in a batch owns a 64-bit key and a draw counter. The i-th uniform of a shopper's stream is
``splitmix64(key + (i + 1) * GOLDEN)``: the same function SplitMix64 uses to walk its own state, so a
shopper's stream *is* the SplitMix64 stream seeded with its key (a generator that passes BigCrush).

Why not one ``np.random.Generator`` per shopper? Because a batch of B shoppers must evolve exactly as
B separate single-shopper envs, and looping over B generators each step would cost more than the whole
simulation. Here a draw for any subset of shoppers is one vectorised expression, and what a shopper draws
depends only on its own key and counter, never on which other shoppers share the batch.

Keys come from ``np.random.SeedSequence(seed)``, so streams are reproducible from the seed alone.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
_MASK64 = (1 << 64) - 1
_GOLDEN_INT, _MIX1_INT, _MIX2_INT = int(_GOLDEN), int(_MIX1), int(_MIX2)


def key_from_seed(seed: int) -> np.uint64:
    """The stream key of a shopper slot seeded with ``seed`` (any non-negative int)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.uint64(np.random.SeedSequence(int(seed)).generate_state(1, np.uint64)[0])


def keys_from_seeds(seeds: np.ndarray | list[int]) -> np.ndarray:
    """Keys for many slots at once (seed i -> key i); slot keys equal those of single envs."""
    return np.array([key_from_seed(int(s)) for s in seeds], dtype=np.uint64)


class ShopperStreams:
    """Per-shopper random streams for a batch: ``keys`` and ``counters`` are arrays over the batch.

    ``uniform(rows, n)`` returns an ``(len(rows), n)`` array of floats in [0, 1) and advances those
    shoppers' counters by ``n``. ``rows`` is an integer index array or ``slice(None)`` for all shoppers.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64).copy()
        self.counters = np.zeros(self.keys.shape, dtype=np.uint64)
        self._lanes: dict[int, np.ndarray] = {}

    def _lane_offsets(self, n: int) -> np.ndarray:
        lanes = self._lanes.get(n)
        if lanes is None:
            lanes = (np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)[:, None]  # a column: (n, 1)
            self._lanes[n] = lanes
        return lanes

    def uniform(self, rows: np.ndarray | slice, n: int) -> np.ndarray:
        if self.keys.shape[0] == 1 and (isinstance(rows, slice) or np.size(rows) == 1):
            return self._uniform_one(n)  # one shopper: exact same numbers with Python ints, ~10x less overhead
        if isinstance(rows, slice):
            keys, counters = self.keys[rows], self.counters[rows]
        else:  # np.take: a faster gather than fancy indexing
            keys, counters = np.take(self.keys, rows), np.take(self.counters, rows)
        with np.errstate(over="ignore"):
            # (n, E), draws along the long axis: numpy broadcasts a row to n rows much faster than it broadcasts
            # a column across n (a short last axis); the caller gets the (E, n) transpose, so each draw's column
            # is contiguous
            x = self._lane_offsets(n) + (keys + counters * _GOLDEN)
            x ^= x >> _S30
            x *= _MIX1
            x ^= x >> _S27
            x *= _MIX2
            x ^= x >> _S31
        self.counters[rows] = counters + np.uint64(n)
        return ((x >> _S11).astype(np.float64) * _TO_UNIT).T

    def _uniform_one(self, n: int) -> np.ndarray:
        return np.array([self.uniform_one(n)])

    def uniform_one(self, n: int) -> list[float]:
        """For a batch of one: the next ``n`` uniforms as a list, computed with Python ints (same numbers)."""
        counter = int(self.counters[0])
        state = int(self.keys[0]) + counter * _GOLDEN_INT
        out = []
        for _ in range(n):
            state += _GOLDEN_INT
            x = state & _MASK64
            x = ((x ^ (x >> 30)) * _MIX1_INT) & _MASK64
            x = ((x ^ (x >> 27)) * _MIX2_INT) & _MASK64
            out.append(((x ^ (x >> 31)) >> 11) * _TO_UNIT)
        self.counters[0] = counter + n
        return out

    def normal(self, rows: np.ndarray | slice, n: int) -> np.ndarray:
        """Standard normals by Box-Muller; uses ``2 * ceil(n / 2)`` uniforms per shopper."""
        half = (n + 1) // 2
        u = self.uniform(rows, 2 * half)
        radius = np.sqrt(-2.0 * np.log1p(-u[:, :half]))
        angle = 2.0 * np.pi * u[:, half:]
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)[:, :n]
