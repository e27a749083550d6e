"""Torch building blocks shared by the RL agents: the candidate featuriser and the candidate scorer.

The observation carries candidate *ids* and a shopper vector; item features live in the static catalog. A network
that scores candidates from (shopper, item) features generalises across candidate sets: the same weights rank any
M candidates of any session. ``CandidateFeatures`` holds the catalog's *public* feature table as buffers;
``CandidateScorer`` is a two-tower scorer with cross terms::

    score(s, i) = u(s) . v(i) + g(s) . x(s, i) + b(i)

* u(s), g(s): a shopper MLP over s~, the shopper vector with its count columns log1p-compressed (counts, days,
  per-category histories) and the click direction kept as is;
* v(i), b(i): an item MLP over the item's public features (embedding, log relative price, rating, CTR estimate,
  category one-hot), standardised with the catalog's own column moments;
* x(s, i): three (shopper, item) crosses a platform computes from its own logs: the shopper's recent clicks on the
  item's category, this session's impressions of that category (both log1p), and the direction of her recent
  clicks dotted with the item's embedding. Their weights g(s) depend on the shopper (fatigue can matter more
  early in a session, relevance more for a loyal shopper).

Cost is what makes PPO's update affordable: the item tower runs once per forward pass over the whole catalog
(N_items rows, not B x M), and a candidate costs a dot product (``dot_rows``: one matrix product over the catalog
and a gather of scalars while the catalog is small next to the candidate set, else a gather of item vectors); no
hidden layer runs per (shopper, candidate) pair. A first version with a split-first-layer MLP per pair spent 0.4 s
per PPO minibatch of 2,048 x 100 pairs, almost all of it moving (B, M, 64) activations; gathering (H + 1)-vectors
brought that to about 0.05 s; the catalog-wide product then cut the item dot products' forward and backward at
2,048 x 100 from 73 to 30 ms (2,000 items, one thread), and PPO's 300k training steps from 35.0 to 26.8 s.
Nothing here reads latent state (quality, appeal, interest): agents may use all of it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from stickyrec.envs.shoppers import SHOPPER_FEATURES

N_CROSS = 3
DENSE_RATIO = 40  # score the whole catalog, then gather, when it holds at most this many items per candidate


def dot_rows(left: torch.Tensor, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``(left[n] . table[ids[n, m]])`` as an (N, M) tensor, for ``left`` (N, H), ``table`` (n_items, H), ``ids``
    (N, M).

    Two ways to the same numbers (up to float rounding): gather the (N, M, H) rows and contract them, or score
    every item with one matrix product (N, n_items) and gather M scalars per row. The second wins while the
    catalog is small next to the candidate set (here, 2,000 items and 100 candidates: 2.5x faster forward, 2.4x
    faster backward, since a gather's backward is a slow scatter-add of (N, M, H) rows); the first wins for a few
    ids per row (the k shown items) or a large catalog, and never builds an (N, n_items) matrix.
    """
    if table.shape[0] <= DENSE_RATIO * ids.shape[1]:
        return torch.gather(left @ table.T, 1, ids)
    return torch.einsum("nmh,nh->nm", table[ids], left)


def catalog_tables(catalog) -> dict[str, np.ndarray]:
    """The public arrays the networks need, from an ``envs.catalog.Catalog`` (saved with every checkpoint)."""
    features = catalog.public_features().astype(np.float32)
    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    return {
        "item_features": (features - mean) / std,
        "category": catalog.category.astype(np.int64),
        "embedding": catalog.embedding.astype(np.float32),
    }


def empty_tables(spaces: dict) -> dict[str, np.ndarray]:
    """Zero tables of the right shapes (a checkpoint's state fills them)."""
    n, d = spaces["n_items"], spaces["embedding_dim"]
    return {
        "item_features": np.zeros((n, d + 3 + spaces["n_categories"]), np.float32),
        "category": np.zeros(n, np.int64),
        "embedding": np.zeros((n, d), np.float32),
    }


class CandidateFeatures(nn.Module):
    """Shopper inputs and (shopper, candidate) crosses from ids; holds the catalog table as buffers."""

    def __init__(self, tables: dict[str, np.ndarray], n_categories: int, embedding_dim: int) -> None:
        super().__init__()
        self.register_buffer("item_features", torch.as_tensor(tables["item_features"], dtype=torch.float32))
        self.register_buffer("category", torch.as_tensor(tables["category"], dtype=torch.int64))
        self.register_buffer("embedding", torch.as_tensor(tables["embedding"], dtype=torch.float32))
        self.n_categories = n_categories
        self.embedding_dim = embedding_dim
        self.n_counts = len(SHOPPER_FEATURES) + 2 * n_categories  # non-negative columns, log1p-compressed

    @property
    def item_dim(self) -> int:
        return self.item_features.shape[1]

    def shopper(self, shopper: torch.Tensor) -> torch.Tensor:
        """(N, F) raw shopper vectors -> (N, F) network inputs."""
        counts = torch.log1p(shopper[:, : self.n_counts].clamp_min(0.0))
        return torch.cat([counts, shopper[:, self.n_counts :]], dim=1)

    def cross(self, shopper: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """(N, F) raw shopper vectors and (N, M) int64 ids -> (N, M, N_CROSS) cross features."""
        n, c = len(SHOPPER_FEATURES), self.n_categories
        category = self.category[ids]
        recent = torch.gather(shopper[:, n : n + c], 1, category)
        session = torch.gather(shopper[:, n + c : n + 2 * c], 1, category)
        relevance = dot_rows(shopper[:, n + 2 * c :], self.embedding, ids)
        return torch.stack([torch.log1p(recent.clamp_min(0.0)), torch.log1p(session.clamp_min(0.0)), relevance], dim=2)


class CandidateScorer(nn.Module):
    """One score per candidate (N, M): the two-tower-plus-crosses scorer of the module docstring."""

    def __init__(self, shopper_dim: int, item_dim: int, hidden: int = 64, embed: int = 32) -> None:
        super().__init__()
        self.embed = embed
        self.shopper_tower = nn.Sequential(
            nn.Linear(shopper_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed + N_CROSS)
        )
        self.item_tower = nn.Sequential(nn.Linear(item_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed + 1))

    def forward(
        self, features: CandidateFeatures, shopper_in: torch.Tensor, cross: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """Scores (N, M) of candidates ``ids`` from ``features.shopper(s)`` and ``features.cross(s, ids)``."""
        user = self.shopper_tower(shopper_in)  # (N, H + N_CROSS)
        items = self.item_tower(features.item_features)  # the catalog once: (n_items, H + 1)
        return (
            dot_rows(user[:, : self.embed], items[:, : self.embed], ids)
            + items[:, self.embed][ids]
            + (cross * user[:, None, self.embed :]).sum(dim=2)
        )


def shopper_mlp(shopper_dim: int, hidden: int = 64, out: int = 1) -> nn.Sequential:
    """A small MLP over the shopper vector (value heads, the no-click head)."""
    return nn.Sequential(
        nn.Linear(shopper_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out)
    )


def split_observation(flat: torch.Tensor, n_candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat (N, M + F) training observation -> (int64 ids (N, M), shopper (N, F))."""
    return flat[:, :n_candidates].long(), flat[:, n_candidates:]
