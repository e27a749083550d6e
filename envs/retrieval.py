"""Candidate retrieval: M distinct items per shopper, refreshed when a session starts.

The retrieval stage of a production recommender, in its cluster-based form: shopper interests are assigned
to the nearest of K interest clusters (spherical k-means over interests drawn like arriving shoppers'),
and each cluster has three disjoint, precomputed pools:

* **nearest**: the ``n_nearest`` items closest to the cluster's centre (all of them are offered);
* **trending**: the ``popular_pool_size`` most popular items outside the nearest pool; a shopper is
  offered ``n_popular`` of them (a random cyclic block of the pool's fixed random order);
* **random**: every other item, in a fixed random order; a random cyclic block fills the rest.

Candidates are listed in that order (nearest, trending, random), and are distinct by construction, so a
retrieval is one small matmul and three gathers — well under a microsecond per shopper. A cyclic block is one
row of a sliding-window view over the pool extended by its own first columns, so the gather copies contiguous
blocks and needs no (E, M) index arithmetic (a modulo per candidate cost as much as the rest together). It runs
per session, not per step: the candidate set of a visit is the page the platform built when she arrived (what
real systems cache); an exact search of the whole catalog every step would cost ~50x the step itself.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stickyrec.envs.catalog import Catalog, normalise_rows
from stickyrec.envs.config import RetentionConfig


def interest_clusters(
    config: RetentionConfig, catalog: Catalog, rng: np.random.Generator, iterations: int = 8
) -> np.ndarray:
    """(K, d) unit cluster centres from spherical k-means over sampled arrival interests."""
    k, d = config.n_interest_clusters, config.embedding_dim
    n = 16 * k
    favourite = rng.integers(catalog.n_categories, size=n)
    sample = normalise_rows(
        config.interest_focus * catalog.centroids[favourite] + rng.standard_normal((n, d)) / np.sqrt(d)
    )
    centres = sample[rng.choice(n, size=k, replace=False)]
    for _ in range(iterations):
        assign = np.argmax(sample @ centres.T, axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, sample)  # build time only, not the hot path
        used = np.bincount(assign, minlength=k) > 0
        centres[used] = normalise_rows(sums[used])
    return centres


class CandidateRetriever:
    """Per-cluster candidate pools, built once per catalog; ``retrieve`` is the per-session call."""

    uniforms_per_call = 2  # offsets of the trending and random blocks

    def __init__(self, config: RetentionConfig, catalog: Catalog) -> None:
        rng = np.random.default_rng(np.random.SeedSequence([config.catalog_seed, 0x2E7_21E7]))
        self.n_candidates = config.n_candidates
        self.n_nearest, self.n_popular = config.n_nearest, config.n_popular
        self.n_random = config.n_candidates - self.n_nearest - self.n_popular
        self.centres = interest_clusters(config, catalog, rng)
        self._centres32 = self.centres.astype(np.float32)

        k = self.centres.shape[0]
        similarity = self.centres @ catalog.embedding.T  # (K, N)
        order = np.argsort(-similarity, axis=1, kind="stable")
        self.nearest = order[:, : self.n_nearest].astype(np.int32)  # int32: the simulator's candidate dtype
        rest = order[:, self.n_nearest :]  # (K, N - n_nearest), each row the cluster's complement
        by_popularity = np.argsort(-catalog.popularity[rest], axis=1, kind="stable")
        rest = np.take_along_axis(rest, by_popularity, axis=1)
        pool = config.popular_pool_size
        self.trending = rng.permuted(rest[:, :pool], axis=1).astype(np.int32)
        self.random = rng.permuted(rest[:, pool:], axis=1).astype(np.int32)
        assert self.trending.shape == (k, pool) and self.random.shape[1] >= self.n_random
        self._trending_blocks = _cyclic_blocks(self.trending, self.n_popular)  # (K, pool, n_popular) view
        self._random_blocks = _cyclic_blocks(self.random, self.n_random)

    def assign(self, interest: np.ndarray) -> np.ndarray:
        """The interest cluster of each row of ``interest`` (E, d)."""
        return np.argmax(interest.astype(np.float32) @ self._centres32.T, axis=1)

    def retrieve(self, interest: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """(E, d) interests and (E, 2) uniforms -> (E, M) distinct item ids (int32)."""
        cluster = self.assign(interest)
        out = np.empty((interest.shape[0], self.n_candidates), dtype=self.nearest.dtype)
        a, b = self.n_nearest, self.n_nearest + self.n_popular
        out[:, :a] = self.nearest[cluster]
        # block start = floor(u * pool size); the block runs on cyclically from there
        out[:, a:b] = self._trending_blocks[cluster, (uniform[:, 0] * self.trending.shape[1]).astype(np.int64)]
        out[:, b:] = self._random_blocks[cluster, (uniform[:, 1] * self.random.shape[1]).astype(np.int64)]
        return out


def _cyclic_blocks(table: np.ndarray, width: int) -> np.ndarray:
    """A read-only (K, P, width) view whose [c, s] row is ``table[c, (s + arange(width)) % P]``."""
    extended = np.take(table, np.arange(table.shape[1] + width - 1) % table.shape[1], axis=1)
    return sliding_window_view(extended, width, axis=1)
