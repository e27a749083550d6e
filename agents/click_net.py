"""The MLP click model's network and its data contract (``agents.mlp.MLPClickModel`` trains and serves it).

``ClickNet``: the shopper tower, the item tower with an id embedding, the first hidden layer split into a shopper
part and an item part, the two heads (click, purchase given click), the shopper-weighted cross terms and the
position bias (see ``agents.mlp``'s docstring for the model). ``log_tensors`` checks a logged-impression frame
against the data contract and turns it into tensors.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

CROSS_FEATURES = (
    "recent_category_clicks",
    "session_category_impressions",
    "click_direction_relevance",
    "log_relative_price",
)
REQUIRED_COLUMNS = ("item_id", "position", "clicked", "purchased")


def shopper_columns(frame: pd.DataFrame) -> list[str]:
    columns = [c for c in frame.columns if isinstance(c, str) and c.startswith("s") and c[1:].isdigit()]
    return sorted(columns, key=lambda c: int(c[1:]))


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing a contiguous, writable array's memory; read-only arrays (pandas copy-on-write, env buffers
    handed out read-only) are copied first, as torch does not support read-only memory."""
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations (1 where a column is constant), for standardisation."""
    std, mean = torch.std_mean(x, dim=0, correction=0)
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


class ClickNet(nn.Module):
    """Shopper tower, item tower (+ id embedding), the split first hidden layer, the two heads, the cross weights."""

    def __init__(
        self, f_user: int, f_item: int, n_items: int, n_positions: int, n_cross: int, embed_dim: int, hidden_dim: int
    ) -> None:
        super().__init__()
        self.n_cross = n_cross
        self.shopper_tower = nn.Linear(f_user, embed_dim)
        self.item_tower = nn.Linear(f_item, embed_dim)
        self.item_embedding = nn.Embedding(n_items, embed_dim)
        self.hidden_shopper = nn.Linear(embed_dim, hidden_dim)  # W_u and b1
        self.hidden_item = nn.Linear(embed_dim, hidden_dim, bias=False)  # W_i
        self.head = nn.Linear(hidden_dim, 2)  # W2, b2: [click logit, purchase-given-click logit]
        self.cross_weights = nn.Linear(embed_dim, 2 * n_cross) if n_cross else None  # g(x_u), per head
        self.position_bias = nn.Parameter(torch.zeros(n_positions))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise every parameter from ``generator`` (PyTorch's default init draws from the global one)."""
        layers = [self.shopper_tower, self.item_tower, self.hidden_shopper, self.hidden_item, self.head]
        for layer in layers + ([self.cross_weights] if self.cross_weights is not None else []):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)  # PyTorch's default scheme
            if layer.bias is not None:
                bound = 1.0 / math.sqrt(layer.weight.shape[1])
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
        nn.init.normal_(self.item_embedding.weight, 0.0, 0.01, generator=generator)
        nn.init.zeros_(self.position_bias)

    def shopper_part(self, shopper: torch.Tensor) -> torch.Tensor:
        """(B, F_user) standardised features -> (B, H + 2K): [W_u x_u + b1, cross weights g(x_u)]."""
        tower = F.relu(self.shopper_tower(shopper))
        if self.cross_weights is None:
            return self.hidden_shopper(tower)
        return torch.cat([self.hidden_shopper(tower), self.cross_weights(tower)], dim=-1)

    def item_part(self, features: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """(N, F_item) standardised features and their ids -> (N, H): W_i x_i."""
        return self.hidden_item(F.relu(self.item_tower(features)) + self.item_embedding(item_ids))

    def logits(self, shopper_part: torch.Tensor, item_part: torch.Tensor, cross: torch.Tensor | None) -> torch.Tensor:
        """Matching rows of shopper part, item part and (standardised) cross features -> (n, 2) logits
        [click, purchase given click], position bias excluded."""
        h = self.head.in_features
        out = self.head(F.relu(shopper_part[:, :h] + item_part))
        if self.n_cross:
            weights = shopper_part[:, h:].unflatten(-1, (2, self.n_cross))
            out = out + (weights * cross[:, None, :]).sum(dim=-1)
        return out


def log_tensors(frame: pd.DataFrame, label: str, labels: bool, f_user: int, n_items: int) -> dict[str, torch.Tensor]:
    """Check a log frame against the data contract (``f_user`` shopper features, item ids below ``n_items``; with
    ``labels``, the clicked and purchased columns too) and turn it into tensors (shopper features raw)."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{label} must be a pandas DataFrame, got {type(frame).__name__}")
    required = REQUIRED_COLUMNS if labels else REQUIRED_COLUMNS[:2]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"{label} lacks column(s) {missing}; a log needs {list(required)} and s0 .. s{{F-1}}")
    columns = shopper_columns(frame)
    if columns != [f"s{j}" for j in range(f_user)]:
        raise ValueError(
            f"{label} has {len(columns)} shopper feature columns; allowed: exactly s0 .. s{f_user - 1}, as in training"
        )
    if labels and frame.empty:
        raise ValueError(f"{label} is empty: nothing to learn from")
    ids = frame["item_id"].to_numpy()
    positions = frame["position"].to_numpy()
    for name, values in (("item_id", ids), ("position", positions)):
        if values.dtype.kind not in "iu":
            raise ValueError(f"{label}['{name}'] must hold integers, got dtype {values.dtype}")
    check_item_ids(ids, f"{label}['item_id']", n_items)
    if positions.size and positions.min() < 0:
        raise ValueError(f"{label} has a negative position {int(positions.min())}")
    shopper = frame[columns].to_numpy(dtype=np.float32)
    if not np.isfinite(shopper).all():
        raise ValueError(f"{label}'s shopper features hold NaN or inf")
    out = {
        "shopper": as_tensor(shopper),
        "item_id": torch.from_numpy(ids.astype(np.int64)),
        "position": torch.from_numpy(positions.astype(np.int64)),
    }
    if labels:
        for name in ("clicked", "purchased"):
            values = frame[name].to_numpy()
            if values.dtype != bool and not np.isin(values, (0, 1)).all():
                raise ValueError(f"{label}['{name}'] must be bool or 0/1")
            out[name] = torch.from_numpy(values.astype(np.float32))
    return out


def check_item_ids(ids: np.ndarray, label: str, n_items: int) -> None:
    """``ValueError`` unless ``ids`` are integer ids of a catalog of ``n_items`` items."""
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{label} must hold integer item ids, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= n_items):
        bad = int(ids.min() if ids.min() < 0 else ids.max())
        raise ValueError(f"{label} has item id {bad}; the model's catalog holds ids 0..{n_items - 1}")
