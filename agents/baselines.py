"""Baselines trained from the impression log: popularity and item-item collaborative filtering.

Both use only what a platform has (the logs and the observation), never latent state. They follow the one agent
interface (``agents.base.Agent``) plus:

* ``fit(impressions, catalog)``: learn from a log (a DataFrame with at least ``item_id``, ``clicked``,
  ``purchased``; collaborative filtering also needs ``shopper``, and keys shoppers by ``run_id`` too when the log
  has it). ``catalog``: a ``Catalog``, a ``RetentionConfig`` or a number of items.
* ``update(observation, slates, info)``: called by the evaluation loop after every env step with the observation
  the slates were chosen on, the slates, and the vector env's ``infos`` (``clicked_item``, ``active``, and
  ``_final_obs`` under same-step autoreset). Popularity ignores it; collaborative filtering keeps each shopper's
  recent clicks from it, since the observation does not carry her item history.
* ``save(path)`` / ``load(path)``: a numpy ``.npz`` (``np.savez``, read with ``allow_pickle=False``) holding the
  fitted arrays and a small metadata record (agent name, number of items, format version). Loading a file of
  another agent, or for a catalog of another size, is a ``ValueError`` naming both.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stickyrec.agents.base import NEEDS_DATA, Agent
from stickyrec.agents.errors import EmptyLogError, UnknownItemError
from stickyrec.envs.spaces import top_k
from stickyrec.io import write_bytes_atomic

FORMAT_VERSION = 1
_SHOPPER_BLOCK = 4096  # training shoppers per dense block when accumulating the item-item co-click matrix


def catalog_size(catalog: Any) -> int:
    """The number of items of a ``Catalog``, a ``RetentionConfig`` or a plain count."""
    if isinstance(catalog, (int, np.integer)) and not isinstance(catalog, bool):
        n_items = int(catalog)
    elif hasattr(catalog, "n_items"):
        n_items = int(catalog.n_items)
    else:
        raise ValueError(
            f"catalog must be a Catalog, a RetentionConfig or a number of items; got {type(catalog).__name__}"
        )
    if n_items < 1:
        raise ValueError(f"catalog has {n_items} items; allowed: at least 1")
    return n_items


def _checked_log(impressions: pd.DataFrame, n_items: int, columns: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(impressions, pd.DataFrame):
        raise ValueError(f"impressions must be a pandas DataFrame, got {type(impressions).__name__}")
    missing = [c for c in columns if c not in impressions.columns]
    if missing:
        raise ValueError(f"the impression log lacks column(s) {missing}; required: {list(columns)}")
    if len(impressions) == 0:
        raise EmptyLogError("the impression log is empty: nothing to fit")
    for name in columns:
        if impressions[name].isna().any():
            raise ValueError(f"column {name!r} has {int(impressions[name].isna().sum())} missing value(s)")
    items = impressions["item_id"].to_numpy()
    if items.dtype.kind not in "iu":
        raise ValueError(f"column 'item_id' must hold integer item ids, got dtype {items.dtype}")
    unknown = (items < 0) | (items >= n_items)
    if unknown.any():
        examples = sorted(set(items[unknown][:1000].tolist()))[:5]
        raise UnknownItemError(
            f"{int(unknown.sum())} impression(s) show item ids outside the catalog of {n_items}"
            f" items (allowed: 0..{n_items - 1}), e.g. {examples}"
        )
    return impressions


def _flag(impressions: pd.DataFrame, name: str) -> np.ndarray:
    values = impressions[name].to_numpy()
    if values.dtype.kind not in "biu" or (values.dtype.kind != "b" and not np.isin(values, (0, 1)).all()):
        raise ValueError(f"column {name!r} must be boolean (or 0/1), got dtype {values.dtype}")
    return values.astype(bool)


def _popularity_scores(impressions: pd.DataFrame, n_items: int, purchase_weight: float) -> np.ndarray:
    items = impressions["item_id"].to_numpy().astype(np.int64)
    clicks = np.bincount(items, weights=_flag(impressions, "clicked"), minlength=n_items)
    purchases = np.bincount(items, weights=_flag(impressions, "purchased"), minlength=n_items)
    return clicks + purchase_weight * purchases


def _check_weight(owner: str, name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
    ):
        raise ValueError(f"{owner} {name}={value!r}; allowed: a finite number")
    return float(value)


class _LogTrainedAgent(Agent):
    """Shared plumbing: the fitted-or-not check, the catalog check on ``bind``, and ``.npz`` save/load."""

    needs = NEEDS_DATA
    priority = 3  # quick to fit: after the RL agents, the logged data and the MLP
    file_suffix = ".npz"
    n_items: int | None = None

    def fit_log(self, train, validation, catalog, seed: int) -> dict:
        """``fit`` on the pipeline's training split (counting needs no validation split and no seed)."""
        self.fit(train, catalog)
        return {}

    def _require_fitted(self) -> None:
        if self.n_items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(impressions, catalog) or load(path)")

    def bind(self, env) -> Agent:
        super().bind(env)
        self._require_fitted()
        if self.catalog.n_items != self.n_items:
            raise ValueError(
                f"{self.name} was fitted for a catalog of n_items={self.n_items}; the env's catalog has"
                f" n_items={self.catalog.n_items}"
            )
        return self

    def update(self, observation: dict[str, np.ndarray], slates: np.ndarray, info: dict[str, Any]) -> None:
        """After each env step (see the module docstring). Nothing to do by default."""

    # --- persistence -------------------------------------------------------------------------------
    def fitted_arrays(self) -> dict[str, np.ndarray]:
        """What ``save`` writes: the fitted arrays (and settings) by name."""
        raise NotImplementedError

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """What ``load`` does with the saved arrays: set the fitted state from them."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (``.npz`` is appended when missing); returns the path written."""
        self._require_fitted()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        buffer = io.BytesIO()
        np.savez(
            buffer,
            agent=np.array(self.kind),  # the kind, not the display label: ``load`` reads it back
            n_items=np.array(self.n_items, dtype=np.int64),
            format_version=np.array(FORMAT_VERSION, dtype=np.int64),
            **self.fitted_arrays(),
        )
        write_bytes_atomic(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, catalog: Any = None):
        """A fitted agent read from ``path``; with ``catalog`` (or later at ``bind``) its size must match."""
        path = Path(path)
        if not path.is_file() and path.with_name(path.name + ".npz").is_file():
            path = path.with_name(path.name + ".npz")
        if not path.is_file():
            raise ValueError(f"agent file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise ValueError(f"{str(path)!r} is not a saved agent (.npz): {exc}") from None
        missing = [key for key in ("agent", "n_items", "format_version") if key not in arrays]
        if missing:
            raise ValueError(f"{str(path)!r} is not a saved stickyrec agent: it lacks {missing}")
        agent_name = str(arrays.pop("agent"))
        if agent_name != cls.kind:
            raise ValueError(
                f"{str(path)!r} holds a {agent_name!r} agent, not a {cls.kind!r} agent"
                f" ({cls.__name__}); load it with that agent's class"
            )
        version = int(arrays.pop("format_version"))
        if version != FORMAT_VERSION:
            raise ValueError(f"{str(path)!r} has format version {version}; this code reads {FORMAT_VERSION}")
        n_items = int(arrays.pop("n_items"))
        if catalog is not None and catalog_size(catalog) != n_items:
            raise ValueError(
                f"{str(path)!r} holds a {agent_name!r} agent for a catalog of n_items={n_items}; this"
                f" catalog has n_items={catalog_size(catalog)}"
            )
        agent = cls.__new__(cls)
        agent.n_items = n_items
        try:
            agent.restore_arrays(arrays)
        except KeyError as exc:
            raise ValueError(f"{str(path)!r} holds a {agent_name!r} agent without its array {exc}") from None
        return agent


class PopularityPolicy(_LogTrainedAgent):
    """The candidates most clicked and bought in the logs: score = clicks + purchase_weight * purchases.

    Arguments:
        purchase_weight: what one purchase counts for, in clicks (default 1.0: a purchase adds to its click).
    """

    kind = "popularity"

    def __init__(self, purchase_weight: float = 1.0) -> None:
        self.purchase_weight = _check_weight("PopularityPolicy", "purchase_weight", purchase_weight)
        self.n_items = None
        self.scores: np.ndarray | None = None

    def fit(self, impressions: pd.DataFrame, catalog: Any) -> PopularityPolicy:
        """Count clicks and purchases per item in the log (columns ``item_id``, ``clicked``, ``purchased``)."""
        n_items = catalog_size(catalog)
        log = _checked_log(impressions, n_items, ("item_id", "clicked", "purchased"))
        self.scores = _popularity_scores(log, n_items, self.purchase_weight)
        self.n_items = n_items
        return self

    def act(self, observation):
        self._require_fitted()
        return top_k(self.scores[observation["candidate_ids"]], self.config.slate_size)

    def fitted_arrays(self):
        return {"scores": self.scores, "purchase_weight": np.array(self.purchase_weight)}

    def restore_arrays(self, arrays):
        self.scores = arrays["scores"].astype(np.float64)
        self.purchase_weight = float(arrays["purchase_weight"])


class ItemCFPolicy(_LogTrainedAgent):
    """Item-item collaborative filtering from co-clicks: the founding brief's similarity-weighted formula.

    ``fit`` builds the shopper x item click-count matrix R of the training log and the cosine similarity of the
    items' click vectors, s(i, j) = R_i . R_j / (|R_i| |R_j|) (0 for an item nobody clicked). While acting, each
    batch row keeps its shopper's last ``history_length`` distinct clicked items with their click counts r(u, j)
    (fed by ``update``), and a candidate i is predicted

        r_hat(u, i) = sum_j s(i, j) r(u, j) / sum_j |s(i, j)|   over the items j in u's history.

    With ``ranking="r_hat"`` (the default: the brief's model) candidates are ranked by r_hat, best first; ties
    (equal r_hat, e.g. a shopper who clicked each item once has r_hat = 1 for every candidate similar to any of
    them) go to the larger similarity mass sum_j s(i, j) r(u, j), then to popularity. A candidate similar to
    nothing in the history (denominator 0) ranks below those that are, by popularity; a shopper with no history
    yet gets the popularity ranking (clicks + purchase_weight * purchases of the log).

    On click counts the normalised r_hat is a similarity-weighted *average* of the shopper's counts: it tells how
    often she clicked the items a candidate resembles, not how much it resembles them, so a faint likeness to an
    item clicked twice outranks a strong one to items clicked once (measured on the default config: click rate
    0.23, below random's 0.27). ``ranking="weighted_sum"`` ranks by the numerator sum_j s(i, j) r(u, j) alone,
    the usual item-based top-N score for implicit feedback (Deshpande and Karypis, 2004): click rate 0.44.

    Arguments:
        history_length: distinct clicked items remembered per shopper (L; the least recently clicked is dropped).
        purchase_weight: weight of purchases in the popularity fallback.
        ranking: ``"r_hat"`` (the brief's normalised formula) or ``"weighted_sum"`` (its numerator).
    """

    kind = "item_cf"
    RANKINGS = ("r_hat", "weighted_sum")

    def __init__(self, history_length: int = 20, purchase_weight: float = 1.0, ranking: str = "r_hat") -> None:
        if isinstance(history_length, bool) or not isinstance(history_length, (int, np.integer)) or history_length < 1:
            raise ValueError(f"ItemCFPolicy history_length={history_length!r}; allowed: an integer >= 1")
        self.history_length = int(history_length)
        self.purchase_weight = _check_weight("ItemCFPolicy", "purchase_weight", purchase_weight)
        if ranking not in self.RANKINGS:
            raise ValueError(f"ItemCFPolicy ranking={ranking!r}; allowed: {', '.join(self.RANKINGS)}")
        self.ranking = ranking
        self.n_items = None
        self.similarity: np.ndarray | None = None
        self.popularity: np.ndarray | None = None
        self._history_items: np.ndarray | None = None

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> ItemCFPolicy:
        """A config entry ranks by ``weighted_sum`` unless its params say otherwise (the better ranking; the
        constructor's default stays the brief's formula)."""
        return super().from_spec({"ranking": "weighted_sum", **params}, seed, reward)

    # --- training ----------------------------------------------------------------------------------
    def fit(self, impressions: pd.DataFrame, catalog: Any) -> ItemCFPolicy:
        """Item-item cosine similarity of click vectors over the log's shoppers (columns ``shopper``, ``item_id``,
        ``clicked``, ``purchased``; ``run_id`` too when present, since shopper numbers restart in each run)."""
        n_items = catalog_size(catalog)
        log = _checked_log(impressions, n_items, ("shopper", "item_id", "clicked", "purchased"))
        clicks = log[_flag(log, "clicked")]
        keys = ["run_id", "shopper"] if "run_id" in log.columns else ["shopper"]
        shopper = clicks.groupby(keys, sort=False).ngroup().to_numpy()
        items = clicks["item_id"].to_numpy().astype(np.int64)
        self.similarity = item_cosine_similarity(shopper, items, n_items)
        self.popularity = _popularity_scores(log, n_items, self.purchase_weight)
        self.n_items = n_items
        self._history_items = None
        return self

    # --- the shoppers' click histories -----------------------------------------------------------
    def bind(self, env) -> Agent:
        super().bind(env)
        self._history_items = None  # allocated for the batch size of the first observation
        return self

    def _ensure_history(self, batch_size: int) -> None:
        if self._history_items is None:
            shape = (batch_size, self.history_length)
            self._history_items = np.full(shape, -1, dtype=np.int64)
            self._history_counts = np.zeros(shape, dtype=np.float32)
            self._last_clicked = np.full(shape, -1, dtype=np.int64)  # clock of the last click; -1: empty slot
            self._clock = 0
        elif self._history_items.shape[0] != batch_size:
            raise ValueError(
                f"{self.name} tracks {self._history_items.shape[0]} shoppers but got a batch of"
                f" {batch_size}; bind it to the env again to start over"
            )

    def click_history(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the (B, L) remembered item ids (-1: empty slot) and their click counts (0 when empty)."""
        if self._history_items is None:
            raise RuntimeError(f"{self.name} has no click history yet: it starts with the first act or update")
        return self._history_items.copy(), self._history_counts.copy()

    def reset_rows(self, mask: np.ndarray | None = None) -> None:
        """Forget the click history of the rows in ``mask`` (all rows with None): new shoppers there."""
        if self._history_items is None:
            return
        rows = slice(None) if mask is None else np.asarray(mask, dtype=bool)
        self._history_items[rows] = -1
        self._history_counts[rows] = 0.0
        self._last_clicked[rows] = -1

    def update(self, observation, slates, info) -> None:
        """Add this step's clicks (``info["clicked_item"]``) to the rows' histories, then forget the rows whose
        shopper finished (``~info["active"]``, or ``info["_final_obs"]`` when the env replaced her this step)."""
        clicked_item = np.asarray(info["clicked_item"], dtype=np.int64).reshape(-1)
        self._ensure_history(clicked_item.shape[0])
        rows = np.flatnonzero(clicked_item >= 0)
        if rows.size:
            items = clicked_item[rows]
            history = self._history_items[rows]
            match = history == items[:, None]
            seen = match.any(axis=1)
            # a clicked item already remembered keeps its slot; a new one takes the least recently clicked slot
            # (empty slots first: their clock is -1)
            slot = np.where(seen, match.argmax(axis=1), self._last_clicked[rows].argmin(axis=1))
            self._history_counts[rows, slot] = np.where(seen, self._history_counts[rows, slot] + 1.0, 1.0)
            self._history_items[rows, slot] = items
            self._last_clicked[rows, slot] = self._clock
            self._clock += 1
        finished = ~np.asarray(info.get("active", True), dtype=bool)
        if "_final_obs" in info:
            finished = finished | np.asarray(info["_final_obs"], dtype=bool)
        if finished.any():
            self.reset_rows(np.broadcast_to(finished, clicked_item.shape))

    # --- acting ------------------------------------------------------------------------------------
    def predict(self, candidate_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(numerator, denominator, r_hat) of the brief's formula for (B, M) candidates, each (B, M) float32:
        sum_j s(i, j) r(u, j), sum_j |s(i, j)|, and their ratio (NaN where the denominator is 0)."""
        self._require_fitted()
        candidate_ids = np.asarray(candidate_ids, dtype=np.int64)
        self._ensure_history(candidate_ids.shape[0])
        remembered = self._history_counts > 0  # (B, L)
        history = np.where(remembered, self._history_items, 0)
        # s[candidates, history] as one (B, M, L) gather from the flat (N * N) matrix
        block = np.take(self.similarity.ravel(), candidate_ids[:, :, None] * self.n_items + history[:, None, :])
        block *= remembered[:, None, :]
        numerator = np.matmul(block, self._history_counts[:, :, None])[:, :, 0]
        denominator = np.abs(block).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            r_hat = numerator / denominator
        r_hat[denominator == 0] = np.nan
        return numerator, denominator, r_hat

    def act(self, observation):
        ids = np.asarray(observation["candidate_ids"])
        numerator, _, r_hat = self.predict(ids)
        k = self.config.slate_size
        columns = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        # np.lexsort: the last key sorts first; stable, so ties end at the lower candidate index
        keys = [columns, -self.popularity[ids], -numerator]
        if self.ranking == "r_hat":
            keys.append(-np.nan_to_num(r_hat, nan=-np.inf))
        return np.lexsort(keys, axis=1)[:, :k]

    # --- persistence -------------------------------------------------------------------------------
    def fitted_arrays(self):
        return {
            "similarity": self.similarity,
            "popularity": self.popularity,
            "history_length": np.array(self.history_length, dtype=np.int64),
            "purchase_weight": np.array(self.purchase_weight),
            "ranking": np.array(self.ranking),
        }

    def restore_arrays(self, arrays):
        self.similarity = arrays["similarity"].astype(np.float32)
        self.popularity = arrays["popularity"].astype(np.float64)
        self.history_length = int(arrays["history_length"])
        self.purchase_weight = float(arrays["purchase_weight"])
        self.ranking = str(arrays["ranking"])
        self._history_items = None


def item_cosine_similarity(shopper: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """(N, N) float32 cosine similarity of items' click-count vectors over shoppers.

    ``shopper`` (0..U-1) and ``items`` list one click each. R (U x N) is built densely ``_SHOPPER_BLOCK`` shoppers
    at a time and R^T R accumulated, so memory stays at O(N^2 + block x N) whatever the log's size.
    """
    co_clicks = np.zeros((n_items, n_items), dtype=np.float32)
    n_shoppers = int(shopper.max()) + 1 if shopper.size else 0
    order = np.argsort(shopper, kind="stable")
    shopper, items = shopper[order], items[order]
    bounds = np.searchsorted(shopper, np.arange(0, n_shoppers + _SHOPPER_BLOCK, _SHOPPER_BLOCK))
    for start in range(0, n_shoppers, _SHOPPER_BLOCK):
        lo, hi = bounds[start // _SHOPPER_BLOCK], bounds[start // _SHOPPER_BLOCK + 1]
        rows = min(_SHOPPER_BLOCK, n_shoppers - start)
        counts = (
            np.bincount((shopper[lo:hi] - start) * n_items + items[lo:hi], minlength=rows * n_items)
            .astype(np.float32)
            .reshape(rows, n_items)
        )
        co_clicks += counts.T @ counts
    norm = np.sqrt(np.diag(co_clicks))
    inverse = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    return co_clicks * inverse[:, None] * inverse[None, :]
