"""The supervised MLP click model: the founding brief's deep model, trained on logged impressions.

    h = ReLU(W1 [x_u ; x_i] + b1),   r_hat = sigmoid(W2 h + b2 + cross terms)   (BCE, Adam)

* x_u = ReLU(A s + a): the shopper tower over the observation's ``shopper`` vector s, standardised with statistics
  fitted on the training rows and saved with the model.
* x_i = ReLU(C f_i + c) + E[i]: the item tower over the catalog's public features plus a learned item-id embedding.
* Two heads: the click logit and the purchase-given-click logit.
* Cross terms (``cross_features=True``, the default): sum_k g_k(x_u) z_k(s, i), where z are four (shopper, item)
  features a platform computes from what it already has — the shopper's recent clicks on the item's category, this
  session's impressions of the item's category, the direction of her recent clicks . the item's embedding, and the
  item's log relative price — and the weights g(x_u) are a linear map of the shopper tower (so the price term can
  be shopper-specific price sensitivity, the category terms can decay with the gap since her last visit). An MLP
  whose first layer only *adds* a shopper and an item part has to approximate these products with many ReLUs;
  given them it learns the click model's fatigue, interest and price effects directly (held-out AUC about +0.01
  on the default preset, see ``experiments/mlp_auc_probe.py``). ``cross_features=False`` is the brief's model alone.
* Position enters only as a learned additive bias on the click logit: the log is position-biased (examination falls
  with rank), the bias absorbs it in training, and ranking ignores it (it shifts every candidate equally).

Splitting W1 = [W_u  W_i] makes W1 [x_u ; x_i] = W_u x_u + W_i x_i: at act time the shopper part (B, H) is computed
once per shopper and the item part (N, H) once for the whole catalog (cached), so scoring a (shopper, candidate)
pair is a gather, an add, a ReLU and a dot product. The cross term folds its standardisation into the shopper's
weights and costs a (B, C) table gathered at the candidates' categories plus a (B, d + 1) x (d + 1, N) product
gathered at the candidates. B = 2000 shoppers x M = 100 candidates: about 8 ms on one CPU thread, top-k included.

Data contract of ``fit`` / ``predict_click``: a DataFrame of logged impressions, one row per slate position shown,
with ``item_id`` (int), ``position`` (int, 0..k-1), ``clicked`` (bool), ``purchased`` (bool) and the serve-time
shopper features ``s0 .. s{F_user - 1}`` (feature logging); other columns (``shopper``, ``day``, ``step``...) are
ignored. Item features come from ``catalog.public_features()[item_id]``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from stickyrec.agents.base import Agent
from stickyrec.envs.shoppers import SHOPPER_FEATURES, n_shopper_features
from stickyrec.envs.spaces import top_k

FORMAT = "stickyrec.agent"
FORMAT_VERSION = 1
CROSS_FEATURES = (
    "recent_category_clicks",
    "session_category_impressions",
    "click_direction_relevance",
    "log_relative_price",
)
_REQUIRED_COLUMNS = ("item_id", "position", "clicked", "purchased")
_ACT_CHUNK = 64  # shoppers per block at act time: a (64 * M, H) block stays in cache


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve from ranks (the Mann-Whitney statistic), tied scores sharing their average rank.

    ``labels``: 0/1 or bool; ``scores``: real numbers, higher meaning more likely positive. Both classes must occur.
    """
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and scores ({s.size}) differ in length")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            raise ValueError("labels must be 0/1 or bool")
        y = y.astype(bool)
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or inf")
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} positive and {n_neg} negative labels")
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    ends = np.concatenate((starts[1:], [s.size]))
    ranks = np.empty(s.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based ranks, ties averaged
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def catalog_fingerprint(item_features) -> str:
    """A short hash of a public item feature table: tells one catalog from another of the same size."""
    array = np.ascontiguousarray(np.asarray(item_features, dtype=np.float32))
    return hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()[:16]


def _shopper_columns(frame: pd.DataFrame) -> list[str]:
    columns = [c for c in frame.columns if isinstance(c, str) and c.startswith("s") and c[1:].isdigit()]
    return sorted(columns, key=lambda c: int(c[1:]))


def _check_int(label: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(label: str, value, low: float, open_low: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < low
        or (open_low and value == low)
    ):
        raise ValueError(f"{label} must be a finite number {'>' if open_low else '>='} {low}, got {value!r}")
    return float(value)


class _ClickNet(nn.Module):
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


class MLPClickModel(Agent):
    """Supervised click (and purchase) model over shopper and item features; ranks candidates by click probability.

    ``embed_dim`` E: width of both towers and of the id embedding; ``hidden_dim`` H: the hidden layer;
    ``cross_features``: add the shopper-weighted (shopper, item) cross terms (see the module docstring);
    ``purchase_weight``: weight of the purchase BCE (on clicked rows) beside the click BCE.

    ``fit`` trains it, ``predict_click`` scores logged rows, ``act`` ranks candidates, ``save`` / ``load`` round-trip
    it exactly. A loaded model checks at ``bind(env)`` that the env's catalog is the one it was trained on.
    """

    name = "mlp"

    def __init__(
        self, embed_dim: int = 64, hidden_dim: int = 32, cross_features: bool = True, purchase_weight: float = 0.5
    ) -> None:
        self.embed_dim = _check_int("embed_dim", embed_dim, 1)
        self.hidden_dim = _check_int("hidden_dim", hidden_dim, 1)
        if not isinstance(cross_features, (bool, np.bool_)):
            raise ValueError(f"cross_features must be True or False, got {cross_features!r}")
        self.cross_features = bool(cross_features)
        self.purchase_weight = _check_float("purchase_weight", purchase_weight, 0.0)
        self.net: _ClickNet | None = None
        self.train_settings: dict = {}
        self.history: dict = {}
        self._item_rows: torch.Tensor | None = None  # (N, H) item parts for act; reset whenever the weights change

    @property
    def hyperparameters(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "hidden_dim": self.hidden_dim,
            "cross_features": self.cross_features,
            "purchase_weight": self.purchase_weight,
        }

    # --- the agent interface ------------------------------------------------------------------------------------
    def bind(self, env) -> MLPClickModel:
        """Attach to an env; a trained model checks that the env's catalog is the one it was trained on."""
        super().bind(env)
        if self.net is not None:
            self._check_catalog(self.catalog.public_features(), "the env's catalog")
        return self

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, k) candidate indices ranked by predicted click probability (no position bias), best first."""
        self._require_trained("act")
        if getattr(self, "config", None) is None:
            raise ValueError("bind(env) the model before act: the slate size comes from the env's config")
        return top_k(
            self.score_candidates(observation["shopper"], observation["candidate_ids"]), self.config.slate_size
        )

    def score_candidates(self, shopper, candidate_ids) -> np.ndarray:
        """(B, F_user) shopper features and (B, M) catalog ids -> (B, M) click logits without position bias
        (the order of predicted click probabilities)."""
        self._require_trained("score candidates")
        shopper = np.asarray(shopper, dtype=np.float32)
        ids = np.asarray(candidate_ids)
        if shopper.ndim != 2 or shopper.shape[1] != self.f_user or ids.ndim != 2 or ids.shape[0] != shopper.shape[0]:
            raise ValueError(
                f"observation has shopper features of shape {shopper.shape} and candidate_ids of shape"
                f" {ids.shape}; allowed: (B, {self.f_user}) and (B, M)"
            )
        self._check_ids(ids, "candidate_ids")
        b, m = ids.shape
        h, k = self.hidden_dim, self.net.n_cross
        with torch.inference_mode():
            rows = self._cached_item_rows()
            raw = _as_tensor(shopper)
            users = self.net.shopper_part(self._standardise(raw))
            weight, bias = self.net.head.weight[0], self.net.head.bias[0]
            ids_t = _as_tensor(ids.astype(np.int64, copy=False))
            flat = ids_t.reshape(-1)
            scores = torch.empty(b * m)
            block = torch.empty(min(b, _ACT_CHUNK) * m, h)
            if k:
                base, query = self._cross_parts(raw, users[:, h : h + k], ids_t)
                via_product = self.n_items <= 64 * m  # else gather the (n, M, d + 1) item rows
            for start in range(0, b, _ACT_CHUNK):  # blocks of shoppers: the (n * M, H) block stays in cache
                n = min(_ACT_CHUNK, b - start)
                out = scores[start * m : (start + n) * m]
                hidden = torch.index_select(rows, 0, flat[start * m : (start + n) * m], out=block[: n * m])
                hidden.view(n, m, h).add_(users[start : start + n, None, :h]).relu_()
                torch.mv(hidden, weight, out=out)
                if k:  # relevance and price cross terms: a (n, d + 1) x (d + 1, N) product, gathered at the ids
                    if via_product:
                        part = torch.gather(query[start : start + n] @ self._item_table_t, 1, ids_t[start : start + n])
                    else:
                        part = (self._item_table_t.T[ids_t[start : start + n]] * query[start : start + n, None]).sum(-1)
                    out.view(n, m).add_(part)
            scores = scores.view(b, m)
            scores += bias
            if k:
                scores += base
            return scores.numpy()

    def _cross_parts(self, shopper: torch.Tensor, weights: torch.Tensor, ids: torch.Tensor):
        """The cross term sum_k weights[b, k] * standardised cross feature k of (b, ids[b, m]), without building
        the (B, M, K) features: the standardisation folds into the weights, and the two category features into one
        (B, C) table gathered by category. Returns that part with the offset, (B, M), and the (B, d + 1) query
        whose product with the items' [embedding, log relative price] is the relevance and price part."""
        n, c, d = len(SHOPPER_FEATURES), self.n_categories, self.embedding_dim
        scale = weights / self._cross_std  # (B, K): the weight of each raw feature
        by_category = scale[:, :1] * shopper[:, n : n + c] + scale[:, 1:2] * shopper[:, n + c : n + 2 * c]
        category = torch.index_select(self._item_category, 0, ids.reshape(-1)).view(ids.shape)
        base = torch.gather(by_category, 1, category)
        base += (scale @ -self._cross_mean)[:, None]
        query = torch.cat([scale[:, 2:3] * shopper[:, n + 2 * c : n + 2 * c + d], scale[:, 3:4]], dim=1)
        return base, query

    def predict_click(self, frame: pd.DataFrame) -> np.ndarray:
        """Click probabilities of logged rows, their positions' bias included (float32, one per row)."""
        return self._predict(frame)[0]

    def predict_purchase(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities that logged rows were clicked and bought: P(click) * P(purchase | click)."""
        click, purchase_given_click = self._predict(frame)
        return click * purchase_given_click

    # --- training -----------------------------------------------------------------------------------------------
    def fit(
        self,
        train_df: pd.DataFrame,
        val_df: pd.DataFrame,
        catalog,
        epochs: int = 30,
        batch_size: int = 2048,
        lr: float = 5e-4,
        patience: int = 3,
        seed: int = 0,
        weight_decay: float = 0.0,
        progress: bool = True,
    ) -> dict:
        """Train on ``train_df``, early-stopping on ``val_df``'s click log-loss and keeping the best epoch's weights.

        Loss: click BCE on every row (position bias added to the click logit) plus ``purchase_weight`` x purchase
        BCE on the clicked rows; Adam. A seeded ``torch.Generator`` draws the initial weights and shuffles the
        batches: the same data, settings and seed give the same model. Training stops after ``patience`` epochs
        without a better validation loss, or after ``epochs``.

        Returns (and keeps as ``self.history``): ``train_loss`` (the training objective) and ``val_loss``
        (validation click log-loss) per epoch, ``best_epoch`` (0-based), ``seconds``.
        """
        previous = dict(self.__dict__)
        try:
            return self._fit(train_df, val_df, catalog, epochs, batch_size, lr, patience, seed, weight_decay, progress)
        except BaseException:  # bad input or an interrupt: the model stays as it was (trained or not)
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise

    def _fit(self, train_df, val_df, catalog, epochs, batch_size, lr, patience, seed, weight_decay, progress) -> dict:
        from tqdm.auto import tqdm

        settings = {
            "epochs": _check_int("epochs", epochs, 1),
            "batch_size": _check_int("batch_size", batch_size, 1),
            "lr": _check_float("lr", lr, 0.0, open_low=True),
            "patience": _check_int("patience", patience, 1),
            "seed": _check_int("seed", seed, 0),
            "weight_decay": _check_float("weight_decay", weight_decay, 0.0),
        }
        self._set_catalog(
            np.asarray(catalog.public_features(), dtype=np.float32),
            int(catalog.n_categories),
            int(np.asarray(catalog.embedding).shape[1]),
        )
        if not isinstance(train_df, pd.DataFrame):
            raise ValueError(f"train_df must be a pandas DataFrame, got {type(train_df).__name__}")
        self.f_user = len(_shopper_columns(train_df))
        if self.f_user == 0:
            raise ValueError("train_df has no shopper feature columns s0 .. s{F-1} (the serve-time features)")
        if self.cross_features and self.f_user != n_shopper_features(self.n_categories, self.embedding_dim):
            raise ValueError(
                f"train_df has {self.f_user} shopper features, but cross features need the env's layout"
                f" of {n_shopper_features(self.n_categories, self.embedding_dim)} for this catalog"
                f" ({len(SHOPPER_FEATURES)} + 2 x {self.n_categories} categories + {self.embedding_dim});"
                " pass cross_features=False for other features"
            )
        train = self._tensors(train_df, "train_df", labels=True)
        val = self._tensors(val_df, "val_df", labels=True)
        self.n_positions = int(max(train["position"].max(), val["position"].max())) + 1

        self._shopper_mean, self._shopper_std = _moments(train["shopper"])
        n_cross = len(CROSS_FEATURES) if self.cross_features else 0
        if n_cross:
            self._cross_mean, self._cross_std = _moments(self._cross(train["shopper"], train["item_id"]))
        else:
            self._cross_mean = self._cross_std = torch.zeros(0)
        for part in (train, val):
            self._prepare(part)

        generator = torch.Generator().manual_seed(settings["seed"])
        self.net = _ClickNet(
            self.f_user, self.f_item, self.n_items, self.n_positions, n_cross, self.embed_dim, self.hidden_dim
        )
        self.net.reset_parameters(generator)
        self._item_rows = None
        self.train_settings = settings
        optimiser = torch.optim.Adam(self.net.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])

        n = train["item_id"].shape[0]
        batch_size = settings["batch_size"]
        n_batches = (n + batch_size - 1) // batch_size
        history: dict = {"train_loss": [], "val_loss": [], "best_epoch": -1, "seconds": 0.0}
        best, best_state, waited = math.inf, None, 0
        started = time.perf_counter()
        epoch_bar = tqdm(range(settings["epochs"]), desc="mlp", unit="epoch", disable=not progress)
        for epoch in epoch_bar:
            self.net.train()
            order = torch.randperm(n, generator=generator)
            total = 0.0
            batch_bar = tqdm(
                range(n_batches),
                desc=f"epoch {epoch + 1}",
                unit="batch",
                leave=False,
                disable=not progress,
                mininterval=0.5,
            )
            for b in batch_bar:
                index = order[b * batch_size : (b + 1) * batch_size]
                batch = {key: value[index] for key, value in train.items()}
                click_logit, purchase_logit = self._batch_logits(batch)
                loss = F.binary_cross_entropy_with_logits(click_logit, batch["clicked"])
                clicked = batch["clicked"] > 0.5
                if self.purchase_weight > 0 and bool(clicked.any()):
                    loss = loss + self.purchase_weight * F.binary_cross_entropy_with_logits(
                        purchase_logit[clicked], batch["purchased"][clicked]
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * index.shape[0]
            batch_bar.close()
            val_loss = self._click_log_loss(val)
            history["train_loss"].append(total / n)
            history["val_loss"].append(val_loss)
            epoch_bar.set_postfix(train=f"{total / n:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best:
                best, waited, history["best_epoch"] = val_loss, 0, epoch
                best_state = copy.deepcopy(self.net.state_dict())
            else:
                waited += 1
                if waited >= settings["patience"]:
                    break
        epoch_bar.close()
        if best_state is not None:  # None only if every validation loss was NaN
            self.net.load_state_dict(best_state)
        self.net.eval()
        self._item_rows = None
        history["seconds"] = time.perf_counter() - started
        self.history = history
        return history

    def _batch_logits(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Click logit (position bias added) and purchase-given-click logit of a batch of prepared rows."""
        ids = batch["item_id"]
        if ids.shape[0] >= self.n_items:  # the whole catalog's item part, then a gather: cheaper for big batches
            items = self.net.item_part(self._item_features, self._all_items)[ids]
        else:
            items = self.net.item_part(self._item_features[ids], ids)
        logits = self.net.logits(self.net.shopper_part(batch["shopper"]), items, batch.get("cross"))
        return logits[:, 0] + self.net.position_bias[batch["position"]], logits[:, 1]

    def _click_log_loss(self, data: dict[str, torch.Tensor], batch_size: int = 65536) -> float:
        self.net.eval()
        n = data["item_id"].shape[0]
        total = 0.0
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = {key: value[start : start + batch_size] for key, value in data.items()}
                click_logit = self._batch_logits(batch)[0]
                total += float(F.binary_cross_entropy_with_logits(click_logit, batch["clicked"], reduction="sum"))
        self.net.train()
        return total / n

    def _predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self._require_trained("predict")
        data = self._tensors(frame, "frame", labels=False)
        if data["item_id"].shape[0] == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        if int(data["position"].max()) >= self.n_positions:
            raise ValueError(
                f"frame has position {int(data['position'].max())}; the model learned positions"
                f" 0..{self.n_positions - 1}"
            )
        self._prepare(data)
        self.net.eval()
        click, purchase = [], []
        with torch.inference_mode():
            for start in range(0, data["item_id"].shape[0], 65536):
                batch = {key: value[start : start + 65536] for key, value in data.items()}
                click_logit, purchase_logit = self._batch_logits(batch)
                click.append(torch.sigmoid(click_logit))
                purchase.append(torch.sigmoid(purchase_logit))
        return torch.cat(click).numpy(), torch.cat(purchase).numpy()

    # --- features -----------------------------------------------------------------------------------------------
    def _set_catalog(self, item_features: np.ndarray, n_categories: int, embedding_dim: int) -> None:
        """The public item feature table (raw, and standardised over the catalog) and what is derived from it."""
        self._item_features_raw = torch.from_numpy(np.array(item_features, dtype=np.float32))
        self.n_items, self.f_item = self._item_features_raw.shape
        self.n_categories, self.embedding_dim = int(n_categories), int(embedding_dim)
        if self.f_item != self.embedding_dim + 3 + self.n_categories:
            raise ValueError(
                f"the catalog's public features have {self.f_item} columns; allowed: embedding"
                f" ({self.embedding_dim}) + price, rating, CTR estimate + {self.n_categories} categories"
            )
        self._item_mean, self._item_std = _moments(self._item_features_raw)
        self._item_features = (self._item_features_raw - self._item_mean) / self._item_std
        self._all_items = torch.arange(self.n_items)
        self._item_category = self._item_features_raw[:, self.f_item - self.n_categories :].argmax(dim=1)
        # (d + 1, N) contiguous: embedding and log relative price, the right operand of act's relevance-price product
        self._item_table_t = self._item_features_raw[:, : self.embedding_dim + 1].T.contiguous()

    def _cross(self, shopper: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        """Raw cross features: (n, F_user) shopper rows and (n,) item ids -> (n, K); or (n, M) ids -> (n, M, K)."""
        per_row = item_ids.ndim == 1
        ids = item_ids[:, None] if per_row else item_ids
        n, c, d = len(SHOPPER_FEATURES), self.n_categories, self.embedding_dim
        category = self._item_category[ids]
        clicks = torch.gather(shopper[:, n : n + c], 1, category)
        impressions = torch.gather(shopper[:, n + c : n + 2 * c], 1, category)
        direction, embedding = shopper[:, n + 2 * c : n + 2 * c + d], self._item_features_raw[:, :d]
        if per_row or self.n_items > 16 * ids.shape[1]:
            relevance = (embedding[ids] * direction[:, None, :]).sum(dim=-1)
        else:  # (n, d) x (d, N) then a gather: cheaper than gathering (n, M, d) embeddings for a small catalog
            relevance = torch.gather(direction @ embedding.T, 1, ids)
        price = self._item_features_raw[:, d][ids]
        out = torch.stack([clicks, impressions, relevance, price], dim=-1)
        return out[:, 0] if per_row else out

    def _standardise(self, shopper: torch.Tensor) -> torch.Tensor:
        return (shopper - self._shopper_mean) / self._shopper_std

    def _standardise_cross(self, cross: torch.Tensor) -> torch.Tensor:
        return (cross - self._cross_mean) / self._cross_std

    def _prepare(self, data: dict[str, torch.Tensor]) -> None:
        """Raw rows -> model inputs, in place: cross features from the raw shopper vector, then standardisation."""
        if self.cross_features:
            data["cross"] = self._standardise_cross(self._cross(data["shopper"], data["item_id"]))
        data["shopper"] = self._standardise(data["shopper"])

    def _tensors(self, frame: pd.DataFrame, label: str, labels: bool) -> dict[str, torch.Tensor]:
        """Check a log frame against the data contract and turn it into tensors (shopper features raw)."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"{label} must be a pandas DataFrame, got {type(frame).__name__}")
        required = _REQUIRED_COLUMNS if labels else _REQUIRED_COLUMNS[:2]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} lacks column(s) {missing}; a log needs {list(required)} and s0 .. s{{F-1}}")
        columns = _shopper_columns(frame)
        if columns != [f"s{j}" for j in range(self.f_user)]:
            raise ValueError(
                f"{label} has {len(columns)} shopper feature columns; allowed: exactly s0 .."
                f" s{self.f_user - 1}, as in training"
            )
        if labels and frame.empty:
            raise ValueError(f"{label} is empty: nothing to learn from")
        ids = frame["item_id"].to_numpy()
        positions = frame["position"].to_numpy()
        for name, values in (("item_id", ids), ("position", positions)):
            if values.dtype.kind not in "iu":
                raise ValueError(f"{label}['{name}'] must hold integers, got dtype {values.dtype}")
        self._check_ids(ids, f"{label}['item_id']")
        if positions.size and positions.min() < 0:
            raise ValueError(f"{label} has a negative position {int(positions.min())}")
        shopper = frame[columns].to_numpy(dtype=np.float32)
        if not np.isfinite(shopper).all():
            raise ValueError(f"{label}'s shopper features hold NaN or inf")
        out = {
            "shopper": _as_tensor(shopper),
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

    def _check_ids(self, ids: np.ndarray, label: str) -> None:
        if ids.dtype.kind not in "iu":
            raise ValueError(f"{label} must hold integer item ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_items):
            bad = int(ids.min() if ids.min() < 0 else ids.max())
            raise ValueError(f"{label} has item id {bad}; the model's catalog holds ids 0..{self.n_items - 1}")

    def _cached_item_rows(self) -> torch.Tensor:
        """The whole catalog's item parts (N, H), computed once per set of weights."""
        if self._item_rows is None:
            self.net.eval()
            with torch.inference_mode():
                self._item_rows = self.net.item_part(self._item_features, self._all_items).contiguous()
        return self._item_rows

    def _require_trained(self, what: str) -> None:
        if self.net is None:
            raise ValueError(f"cannot {what}: the MLP click model is not trained (call fit, or load a saved one)")

    def _check_catalog(self, item_features: np.ndarray, where: str) -> None:
        features = np.asarray(item_features, dtype=np.float32)
        if features.shape != (self.n_items, self.f_item):
            raise ValueError(
                f"{where} has {features.shape[0]} items x {features.shape[1]} public features; the"
                f" model was trained on {self.n_items} x {self.f_item}"
            )
        if catalog_fingerprint(features) != catalog_fingerprint(self._item_features_raw):
            raise ValueError(f"{where} is not the catalog the model was trained on (same size, other item features)")

    # --- persistence --------------------------------------------------------------------------------------------
    def save(self, path) -> None:
        """``torch.save`` of plain data — tensors, numbers, strings — that loads with ``weights_only=True``."""
        self._require_trained("save")
        payload = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "n_items": self.n_items,
            "f_user": self.f_user,
            "f_item": self.f_item,
            "n_positions": self.n_positions,
            "n_categories": self.n_categories,
            "embedding_dim": self.embedding_dim,
            "catalog_fingerprint": catalog_fingerprint(self._item_features_raw),
            "hyperparameters": self.hyperparameters,
            "train_settings": dict(self.train_settings),
            "history": {
                "train_loss": [float(x) for x in self.history.get("train_loss", [])],
                "val_loss": [float(x) for x in self.history.get("val_loss", [])],
                "best_epoch": int(self.history.get("best_epoch", -1)),
                "seconds": float(self.history.get("seconds", 0.0)),
            },
            "state": {key: value.detach().clone() for key, value in self.net.state_dict().items()},
            "item_features": self._item_features_raw.clone(),
            "shopper_mean": self._shopper_mean.clone(),
            "shopper_std": self._shopper_std.clone(),
            "cross_mean": self._cross_mean.clone(),
            "cross_std": self._cross_std.clone(),
        }
        path = os.fspath(path)
        temporary = f"{path}.tmp{os.getpid()}"
        try:
            torch.save(payload, temporary)
            os.replace(temporary, path)  # a crash mid-write never leaves a half-written model under ``path``
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)

    @classmethod
    def load(cls, path, catalog=None) -> MLPClickModel:
        """A model saved by ``save``; with ``catalog``, also checked to be the catalog it was trained on.

        Raises ``ValueError`` naming the problem for a missing file, a file that is not a torch file (corrupt,
        truncated, foreign), another agent's or format's file, and tensors that do not fit the file's own metadata.
        """
        payload = read_agent_file(path, cls.name, "model file")
        try:
            model = cls(**payload["hyperparameters"])
            model._set_catalog(
                _tensor(payload, "item_features", None).numpy(),
                int(payload["n_categories"]),
                int(payload["embedding_dim"]),
            )
            if catalog_fingerprint(model._item_features_raw) != payload["catalog_fingerprint"]:
                raise ValueError("item_features do not match the stored catalog fingerprint")
            for key in ("n_items", "f_item"):
                if int(payload[key]) != getattr(model, key):
                    raise ValueError(f"{key} = {payload[key]!r} does not match item_features")
            model.f_user, model.n_positions = int(payload["f_user"]), int(payload["n_positions"])
            n_cross = len(CROSS_FEATURES) if model.cross_features else 0
            model._shopper_mean = _tensor(payload, "shopper_mean", (model.f_user,))
            model._shopper_std = _tensor(payload, "shopper_std", (model.f_user,))
            model._cross_mean = _tensor(payload, "cross_mean", (n_cross,))
            model._cross_std = _tensor(payload, "cross_std", (n_cross,))
            model.train_settings = dict(payload["train_settings"])
            model.history = dict(payload["history"])
            model.net = _ClickNet(
                model.f_user, model.f_item, model.n_items, model.n_positions, n_cross, model.embed_dim, model.hidden_dim
            )
            model.net.load_state_dict(payload["state"], strict=True)
            if not all(bool(torch.isfinite(p).all()) for p in model.net.state_dict().values()):
                raise ValueError("the weights hold NaN or inf")
        except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"model file {os.fspath(path)!r} is a damaged {cls.name!r} model: {reason}") from None
        model.net.eval()
        if catalog is not None:
            model._check_catalog(catalog.public_features(), "the given catalog")
        return model


def read_agent_file(path, name: str | None, what: str) -> dict:
    """The payload of a stickyrec agent file (``torch.load(weights_only=True)``: no arbitrary pickle) holding agent
    ``name`` (any agent for None); ``ValueError`` naming the problem, with ``what`` naming the file, for a missing,
    unreadable (corrupt, truncated, foreign) or other agent's or version's file."""
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
    if name is not None and payload.get("name") != name:
        raise ValueError(f"{what} {path!r} holds agent {payload.get('name')!r}, not {name!r}")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{what} {path!r} has format version {payload.get('version')!r}; this code reads version {FORMAT_VERSION}"
        )
    return payload


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing a contiguous, writable array's memory; read-only arrays (pandas copy-on-write, env buffers
    handed out read-only) are copied first, as torch does not support read-only memory."""
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations (1 where a column is constant), for standardisation."""
    std, mean = torch.std_mean(x, dim=0, correction=0)
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


def _tensor(payload: dict, key: str, shape: tuple | None) -> torch.Tensor:
    value = payload[key]
    if not isinstance(value, torch.Tensor) or (shape is not None and tuple(value.shape) != shape):
        raise ValueError(f"{key} is not a tensor of shape {shape}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{key} holds NaN or inf")
    return value
