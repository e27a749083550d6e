"""The action space: ``SlateSpace`` (k distinct indices into M candidates) and ``top_k`` (scores -> a slate).

A ``MultiDiscrete`` (so every RL library understands it) whose ``sample`` draws without replacement and
whose ``contains`` requires distinct entries along the last axis. Batched, it is a ``(B, k)`` space whose
rows are independent slates. ``top_k`` is how every score-based policy (agents, the score wrappers) turns
candidate scores into a slate, best first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import MultiDiscrete
from gymnasium.vector.utils import batch_space


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(..., M) scores -> (..., k) indices of the k best, best first; ties go to the lower index."""
    scores = np.asarray(scores)
    if k < scores.shape[-1]:
        top = np.argpartition(-scores, k - 1, axis=-1)[..., :k]
        top.sort(axis=-1)  # so that ties between equal scores resolve by index, deterministically
    else:
        top = np.broadcast_to(np.arange(scores.shape[-1]), scores.shape).copy()
    order = np.argsort(-np.take_along_axis(scores, top, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(top, order, axis=-1)


class SlateSpace(MultiDiscrete):
    def __init__(
        self,
        n_candidates: int,
        slate_size: int,
        batch_shape: tuple[int, ...] = (),
        seed: int | np.random.Generator | None = None,
    ) -> None:
        if slate_size > n_candidates:
            raise ValueError(f"slate_size={slate_size} exceeds n_candidates={n_candidates}")
        self.n_candidates = int(n_candidates)
        self.slate_size = int(slate_size)
        super().__init__(
            np.full(tuple(batch_shape) + (slate_size,), n_candidates, dtype=np.int64), dtype=np.int64, seed=seed
        )

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        if mask is not None or probability is not None:
            raise NotImplementedError("SlateSpace.sample does not take a mask or probability")
        keys = self.np_random.random(self.shape[:-1] + (self.n_candidates,))
        return np.argpartition(keys, self.slate_size - 1, axis=-1)[..., : self.slate_size].astype(np.int64)

    def contains(self, x: Any) -> bool:
        if not super().contains(x):
            return False
        ordered = np.sort(np.asarray(x), axis=-1)
        return not bool(np.any(ordered[..., 1:] == ordered[..., :-1]))

    def __repr__(self) -> str:
        return f"SlateSpace(n_candidates={self.n_candidates}, slate_size={self.slate_size}, shape={self.shape})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SlateSpace) and self.shape == other.shape and self.n_candidates == other.n_candidates

    def __hash__(self) -> int:
        return hash((SlateSpace, self.shape, self.n_candidates))


@batch_space.register(SlateSpace)
def _batch_slate_space(space: SlateSpace, n: int = 1) -> SlateSpace:
    return SlateSpace(
        space.n_candidates,
        space.slate_size,
        batch_shape=(n,) + space.shape[:-1],
        seed=np.random.default_rng(space.np_random.integers(2**63)),
    )
