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

The network (``ClickNet``) and the check of that data contract (``log_tensors``) live in ``agents/click_net.py``;
the model's settings are typed (``MLPConfig``, ``MLPFitConfig``); it saves in the shared checkpoint format
(``agents/checkpoint.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from stickyrec.agents.base import NEEDS_DATA, Agent
from stickyrec.agents.checkpoint import (
    CHECKPOINT_SUFFIX,
    catalog_fingerprint,
    check_sizes,
    read_checkpoint,
    space_bounds,
    write_checkpoint,
)
from stickyrec.agents.click_net import (
    CROSS_FEATURES,
    ClickNet,
    as_tensor,
    check_item_ids,
    log_tensors,
    moments,
    shopper_columns,
)
from stickyrec.agents.hyperparameters import MAX_WIDTH, Hyperparameters, flag, integer, number
from stickyrec.envs.shoppers import SHOPPER_FEATURES, n_shopper_features
from stickyrec.envs.spaces import top_k

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


@dataclasses.dataclass(frozen=True)
class MLPConfig(Hyperparameters):
    """The model's shape and loss (saved with it)."""

    embed_dim: int = integer(64, low=1, high=MAX_WIDTH, doc="E: width of both towers and of the item-id embedding")
    hidden_dim: int = integer(32, low=1, high=MAX_WIDTH, doc="H: the hidden layer")
    cross_features: bool = flag(True, doc="add the shopper-weighted (shopper, item) cross terms")
    purchase_weight: float = number(0.5, low=0.0, doc="weight of the purchase BCE (clicked rows) beside the click BCE")


@dataclasses.dataclass(frozen=True)
class MLPFitConfig(Hyperparameters):
    """One ``fit``'s settings (saved with the model as ``train_settings``)."""

    epochs: int = integer(30, low=1, high=1_000_000, doc="at most this many passes over the training rows")
    batch_size: int = integer(2048, low=1, high=10_000_000)
    lr: float = number(5e-4, low=0.0, open_low=True, doc="Adam's learning rate")
    patience: int = integer(3, low=1, doc="stop after this many epochs without a better validation loss")
    seed: int = integer(0, low=0, doc="draws the initial weights and shuffles the batches")
    weight_decay: float = number(0.0, low=0.0)


class MLPClickModel(Agent):
    """Supervised click (and purchase) model over shopper and item features; ranks candidates by click probability.

    Keyword arguments (or ``params=MLPConfig(...)``): ``embed_dim`` E, width of both towers and of the id embedding;
    ``hidden_dim`` H, the hidden layer; ``cross_features``, add the shopper-weighted (shopper, item) cross terms
    (see the module docstring); ``purchase_weight``, weight of the purchase BCE (on clicked rows) beside the click
    BCE.

    ``fit`` trains it, ``predict_click`` scores logged rows, ``act`` ranks candidates, ``save`` / ``load`` round-trip
    it exactly. A loaded model checks at ``bind(env)`` that the env's catalog is the one it was trained on.
    """

    kind = "mlp"
    needs = NEEDS_DATA
    priority = 2  # after the RL agents and the logged data it needs, before the quick log-trained baselines
    file_suffix = CHECKPOINT_SUFFIX

    def __init__(self, params: MLPConfig | None = None, **kwargs) -> None:
        if params is not None and kwargs:
            raise ValueError("pass either params=MLPConfig(...) or keyword arguments, not both")
        self.params = params if params is not None else MLPConfig.from_kwargs(**kwargs)
        self.fit_options: dict = {}  # fit settings from a config entry (``from_spec``), used by ``fit_log``
        self.net: ClickNet | None = None
        self.train_settings: dict = {}
        self.history: dict = {}
        self._item_rows: torch.Tensor | None = None  # (N, H) item parts for act; reset whenever the weights change

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> MLPClickModel:
        """A config entry's ``params``: ``MLPConfig`` fields, and ``MLPFitConfig`` fields (``epochs``, ``patience``,
        ...; not ``seed``, which is the cell's) for the fit."""
        if reward is not None:
            raise ValueError(f"{cls.kind} takes no reward; only agents that train in the env do")
        fit_names = [name for name in MLPFitConfig.names() if name != "seed"]
        unknown = [key for key in params if key not in (*MLPConfig.names(), *fit_names)]
        if unknown:
            raise ValueError(
                f"{cls.kind} got an unexpected keyword argument {unknown[0]!r}; allowed:"
                f" {', '.join((*MLPConfig.names(), *fit_names))}"
            )
        model = cls(**{key: value for key, value in params.items() if key not in fit_names})
        model.fit_options = {key: value for key, value in params.items() if key in fit_names}
        MLPFitConfig.from_kwargs(**model.fit_options)  # checked now, not at fit time
        return model

    @property
    def hyperparameters(self) -> dict:
        return self.params.to_dict()

    def build_net(self, n_cross: int) -> ClickNet:
        """An untrained network of this model's shape for the catalog, shopper features and positions set."""
        return ClickNet(
            self.f_user,
            self.f_item,
            self.n_items,
            self.n_positions,
            n_cross,
            self.params.embed_dim,
            self.params.hidden_dim,
        )

    def fit_log(self, train, validation, catalog, seed: int) -> dict:
        """``fit`` on the pipeline's logged splits, with the config entry's fit settings and the cell's seed."""
        history = self.fit(train, validation, catalog, seed=seed, progress=False, **self.fit_options)
        return {"epochs": len(history.get("train_loss", []))}

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
        h, k = self.params.hidden_dim, self.net.n_cross
        with torch.inference_mode():
            rows = self._cached_item_rows()
            raw = as_tensor(shopper)
            users = self.net.shopper_part(self._standardise(raw))
            weight, bias = self.net.head.weight[0], self.net.head.bias[0]
            ids_t = as_tensor(ids.astype(np.int64, copy=False))
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
    def fit(self, train_df: pd.DataFrame, val_df: pd.DataFrame, catalog, *, progress: bool = True, **settings) -> dict:
        """Train on ``train_df``, early-stopping on ``val_df``'s click log-loss and keeping the best epoch's weights.

        ``settings``: the fields of ``MLPFitConfig`` (``epochs`` 30, ``batch_size`` 2048, ``lr`` 5e-4, ``patience``
        3, ``seed`` 0, ``weight_decay`` 0). Loss: click BCE on every row (position bias added to the click logit)
        plus ``purchase_weight`` x purchase BCE on the clicked rows; Adam. A seeded ``torch.Generator`` draws the
        initial weights and shuffles the batches: the same data, settings and seed give the same model. Training
        stops after ``patience`` epochs without a better validation loss, or after ``epochs``.

        Returns (and keeps as ``self.history``): ``train_loss`` (the training objective) and ``val_loss``
        (validation click log-loss) per epoch, ``best_epoch`` (0-based), ``seconds``.
        """
        previous = dict(self.__dict__)
        try:
            fit = MLPFitConfig.from_kwargs(**settings)
            train, val = self._training_data(train_df, val_df, catalog)
            generator = torch.Generator().manual_seed(fit.seed)
            self.net = self.build_net(len(CROSS_FEATURES) if self.params.cross_features else 0)
            self.net.reset_parameters(generator)
            self._item_rows = None
            self.train_settings = fit.to_dict()
            history = self._train_epochs(train, val, fit, generator, progress)
        except BaseException:  # bad input or an interrupt: the model stays as it was (trained or not)
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise
        self.history = history
        return history

    def _training_data(self, train_df, val_df, catalog) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Check the splits, set the catalog, the shopper layout, the positions and the standardisation; return the
        prepared training and validation rows."""
        self._set_catalog(
            np.asarray(catalog.public_features(), dtype=np.float32),
            int(catalog.n_categories),
            int(np.asarray(catalog.embedding).shape[1]),
        )
        if not isinstance(train_df, pd.DataFrame):
            raise ValueError(f"train_df must be a pandas DataFrame, got {type(train_df).__name__}")
        self.f_user = len(shopper_columns(train_df))
        if self.f_user == 0:
            raise ValueError("train_df has no shopper feature columns s0 .. s{F-1} (the serve-time features)")
        if self.params.cross_features and self.f_user != n_shopper_features(self.n_categories, self.embedding_dim):
            raise ValueError(
                f"train_df has {self.f_user} shopper features, but cross features need the env's layout"
                f" of {n_shopper_features(self.n_categories, self.embedding_dim)} for this catalog"
                f" ({len(SHOPPER_FEATURES)} + 2 x {self.n_categories} categories + {self.embedding_dim});"
                " pass cross_features=False for other features"
            )
        train = self._tensors(train_df, "train_df", labels=True)
        val = self._tensors(val_df, "val_df", labels=True)
        self.n_positions = int(max(train["position"].max(), val["position"].max())) + 1
        self._shopper_mean, self._shopper_std = moments(train["shopper"])
        if self.params.cross_features:
            self._cross_mean, self._cross_std = moments(self._cross(train["shopper"], train["item_id"]))
        else:
            self._cross_mean = self._cross_std = torch.zeros(0)
        for part in (train, val):
            self._prepare(part)
        return train, val

    def _train_epochs(self, train, val, fit: MLPFitConfig, generator: torch.Generator, progress: bool) -> dict:
        """Adam over shuffled batches, epoch after epoch, keeping the weights of the best validation loss."""
        from tqdm.auto import tqdm

        optimiser = torch.optim.Adam(self.net.parameters(), lr=fit.lr, weight_decay=fit.weight_decay)
        n = train["item_id"].shape[0]
        history: dict = {"train_loss": [], "val_loss": [], "best_epoch": -1, "seconds": 0.0}
        best, best_state, waited = math.inf, None, 0
        started = time.perf_counter()
        epoch_bar = tqdm(range(fit.epochs), desc="mlp", unit="epoch", disable=not progress)
        for epoch in epoch_bar:
            total = self._train_epoch(train, optimiser, fit.batch_size, generator, f"epoch {epoch + 1}", progress)
            val_loss = self._click_log_loss(val)
            history["train_loss"].append(total / n)
            history["val_loss"].append(val_loss)
            epoch_bar.set_postfix(train=f"{total / n:.4f}", val=f"{val_loss:.4f}")
            if val_loss < best:
                best, waited, history["best_epoch"] = val_loss, 0, epoch
                best_state = copy.deepcopy(self.net.state_dict())
            else:
                waited += 1
                if waited >= fit.patience:
                    break
        epoch_bar.close()
        if best_state is not None:  # None only if every validation loss was NaN
            self.net.load_state_dict(best_state)
        self.net.eval()
        self._item_rows = None
        history["seconds"] = time.perf_counter() - started
        return history

    def _train_epoch(self, train, optimiser, batch_size: int, generator, description: str, progress: bool) -> float:
        """One pass over the training rows in a fresh shuffled order; the summed loss (row-weighted)."""
        from tqdm.auto import tqdm

        self.net.train()
        n = train["item_id"].shape[0]
        order = torch.randperm(n, generator=generator)
        total = 0.0
        n_batches = (n + batch_size - 1) // batch_size
        batch_bar = tqdm(
            range(n_batches), desc=description, unit="batch", leave=False, disable=not progress, mininterval=0.5
        )
        for b in batch_bar:
            index = order[b * batch_size : (b + 1) * batch_size]
            batch = {key: value[index] for key, value in train.items()}
            click_logit, purchase_logit = self._batch_logits(batch)
            loss = F.binary_cross_entropy_with_logits(click_logit, batch["clicked"])
            clicked = batch["clicked"] > 0.5
            if self.params.purchase_weight > 0 and bool(clicked.any()):
                loss = loss + self.params.purchase_weight * F.binary_cross_entropy_with_logits(
                    purchase_logit[clicked], batch["purchased"][clicked]
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * index.shape[0]
        batch_bar.close()
        return total

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
        self._item_mean, self._item_std = moments(self._item_features_raw)
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
        if self.params.cross_features:
            data["cross"] = self._standardise_cross(self._cross(data["shopper"], data["item_id"]))
        data["shopper"] = self._standardise(data["shopper"])

    def _tensors(self, frame: pd.DataFrame, label: str, labels: bool) -> dict[str, torch.Tensor]:
        return log_tensors(frame, label, labels, self.f_user, self.n_items)

    def _check_ids(self, ids: np.ndarray, label: str) -> None:
        check_item_ids(ids, label, self.n_items)

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
        """A checkpoint (``agents.checkpoint``) of plain data — tensors, numbers, strings — that loads with
        ``weights_only=True``."""
        self._require_trained("save")
        payload = {
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
        write_checkpoint(path, self.kind, payload)  # the kind, not the display label: ``load`` reads it back

    @classmethod
    def load(cls, path, catalog=None) -> MLPClickModel:
        """A model saved by ``save``; with ``catalog``, also checked to be the catalog it was trained on.

        Raises ``ValueError`` naming the problem for a missing file, a file that is not a torch file (corrupt,
        truncated, foreign), another agent's or format's file, and tensors that do not fit the file's own metadata.
        """
        payload = read_checkpoint(path, cls.kind, "model file")
        try:
            bounds = space_bounds()  # sizes bounded before the network is allocated
            sizes = {"f_user": "shopper_dim", "n_positions": "slate_size", "n_categories": None, "embedding_dim": None}
            check_sizes(path, cls.kind, payload, {key: bounds[name or key] for key, name in sizes.items()})
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
            n_cross = len(CROSS_FEATURES) if model.params.cross_features else 0
            model._shopper_mean = _tensor(payload, "shopper_mean", (model.f_user,))
            model._shopper_std = _tensor(payload, "shopper_std", (model.f_user,))
            model._cross_mean = _tensor(payload, "cross_mean", (n_cross,))
            model._cross_std = _tensor(payload, "cross_std", (n_cross,))
            model.train_settings = dict(payload["train_settings"])
            model.history = dict(payload["history"])
            model.net = model.build_net(n_cross)
            model.net.load_state_dict(payload["state"], strict=True)
            if not all(bool(torch.isfinite(p).all()) for p in model.net.state_dict().values()):
                raise ValueError("the weights hold NaN or inf")
        except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"model file {os.fspath(path)!r} is a damaged {cls.kind!r} model: {reason}") from None
        model.net.eval()
        if catalog is not None:
            model._check_catalog(catalog.public_features(), "the given catalog")
        return model


def _tensor(payload: dict, key: str, shape: tuple | None) -> torch.Tensor:
    value = payload[key]
    if not isinstance(value, torch.Tensor) or (shape is not None and tuple(value.shape) != shape):
        raise ValueError(f"{key} is not a tensor of shape {shape}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{key} holds NaN or inf")
    return value
