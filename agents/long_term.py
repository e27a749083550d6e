"""Strong non-RL baselines that aim past the next click, on what a platform can observe: two supervised rankers.

Both are the MLP click model (``agents.mlp``) trained on the same logged impressions, ranking differently:

* ``MultiObjectiveRanker`` (kind ``multi_objective``): the industry's multi-objective score,

      score = log P(click) + rating_weight * log(rating + 0.01) + relevance_weight * relevance

  i.e. P(click) x rating^rating_weight x exp(relevance_weight x relevance), where P(click) is the MLP's predicted
  click probability (no position bias), ``rating`` the item's public rating and ``relevance`` the cosine of the
  shopper's recent-click direction (an observed feature) with the item's public embedding. Its two weights are
  tuned after training (``tuning_plan``) by short rollouts on the *training* population (the logged shoppers, never
  the evaluation ones; ``experiments.tuning``), the grid ``RATING_WEIGHTS`` x ``RELEVANCE_WEIGHTS``; weight 0
  and 0 is the click model itself. ``tune=False`` keeps the given ``rating_weight`` and ``relevance_weight``.
* ``RetentionAwareModel`` (kind ``retention_mlp``): the "retention-aware supervised" model. The same network's
  two heads learn P(click) and, on the clicked impressions, P(good | click), where a click is *good* if she bought
  the item or came back within ``return_days`` days (``return_labels``); it ranks by

      score = log P(click) + good_weight * log P(good | click)

  (``good_weight`` 1: the probability of a click with a good outcome). ``good_weight`` is tuned like the ranker's
  weights, over ``GOOD_WEIGHTS`` (0: the click model itself); ``tune=False`` keeps the given one. The labels come
  from the log alone (the shoppers' later sessions in it); training impressions too close to the log's end to
  know are dropped.

Neither reads latent state. Both save as the MLP does (``agents.checkpoint``), their settings in the checkpoint's
``train_settings``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from stickyrec.agents.base import TuningPlan
from stickyrec.agents.hyperparameters import Hyperparameters, flag, integer, number
from stickyrec.agents.mlp import MLPClickModel, MLPConfig, MLPFitConfig
from stickyrec.envs.shoppers import SHOPPER_FEATURES
from stickyrec.envs.spaces import top_k

RATING_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
RELEVANCE_WEIGHTS = (0.0, 1.0)
GOOD_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
RATING_FLOOR = 0.01  # log(rating + floor): a rating of 0 is a large penalty, not -inf


@dataclasses.dataclass(frozen=True)
class TuningConfig(Hyperparameters):
    """Whether and how an agent's ranking weights are tuned on the training population (``experiments.tuning``)."""

    tune: bool = flag(True, doc="choose the weights by rollouts on the training population")
    tune_shoppers: int = integer(1000, low=1, doc="training-population shoppers per tuning rollout")
    tune_days: int = integer(30, low=1, doc="tuning rollouts' horizon: the objective is retention at this day")

    def plan(self, candidates) -> TuningPlan | None:
        """The ``TuningPlan`` over ``candidates`` (weight settings), or ``None`` when ``tune`` is false."""
        return TuningPlan(tuple(candidates), self.tune_shoppers, self.tune_days) if self.tune else None


@dataclasses.dataclass(frozen=True)
class RankingConfig(TuningConfig):
    """The multi-objective ranker's weights and their tuning."""

    rating_weight: float = number(1.0, low=0.0, doc="power of the public rating (kept when tune is false)")
    relevance_weight: float = number(0.0, low=0.0, doc="weight of the recent-click relevance (kept when tune is false)")


@dataclasses.dataclass(frozen=True)
class ReturnLabelConfig(TuningConfig):
    """The retention-aware model's label, its ranking weight and the weight's tuning."""

    return_days: int = integer(7, low=1, doc="N: a click is good if she bought it or came back within N days")
    good_weight: float = number(1.0, low=0.0, doc="weight of log P(good | click) (kept when tune is false)")


def own_params(kind: str, own: type[Hyperparameters], params: Mapping[str, Any]) -> tuple[Hyperparameters, dict]:
    """A config entry's params split into the ``own`` settings (checked) and the rest, for ``MLPClickModel``; a name
    neither knows is a ``ValueError`` listing both."""
    allowed = (*MLPConfig.names(), *(name for name in MLPFitConfig.names() if name != "seed"), *own.names())
    unknown = [key for key in params if key not in allowed]
    if unknown:
        raise ValueError(f"{kind} got an unexpected keyword argument {unknown[0]!r}; allowed: {', '.join(allowed)}")
    settings = own.from_kwargs(**{key: value for key, value in params.items() if key in own.names()})
    return settings, {key: value for key, value in params.items() if key not in own.names()}


def require_bound(agent: MLPClickModel) -> None:
    """``act`` needs the env's config (slate size) and catalog (public features): a ``ValueError`` before ``bind``."""
    if getattr(agent, "config", None) is None:
        raise ValueError(f"bind(env) the {agent.kind} agent before act: the slate size comes from the env's config")


class MultiObjectiveRanker(MLPClickModel):
    """The MLP's click probability x a power of the public rating x exp(weight x relevance); see the module."""

    kind = "multi_objective"

    def __init__(self, params=None, ranking: RankingConfig | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.ranking = ranking if ranking is not None else RankingConfig()
        self.weights = {"rating": self.ranking.rating_weight, "relevance": self.ranking.relevance_weight}

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> MultiObjectiveRanker:
        """``params``: the MLP's (``MLPConfig``, ``MLPFitConfig`` but ``seed``) and ``RankingConfig``'s fields."""
        ranking, rest = own_params(cls.kind, RankingConfig, params)
        model = super().from_spec(rest, seed, reward)
        model.ranking = ranking
        model.weights = {"rating": ranking.rating_weight, "relevance": ranking.relevance_weight}
        return model

    def tuning_plan(self) -> TuningPlan | None:
        grid = itertools.product(RATING_WEIGHTS, RELEVANCE_WEIGHTS)
        return self.ranking.plan({"rating": rating, "relevance": relevance} for rating, relevance in grid)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        if set(weights) != {"rating", "relevance"}:
            raise ValueError(f"{self.kind} weights {sorted(weights)}; allowed: exactly 'rating' and 'relevance'")
        self.weights = {name: float(value) for name, value in weights.items()}

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, k) candidates ranked by the multi-objective score, best first."""
        require_bound(self)
        return top_k(self.score(observation), self.config.slate_size)

    def score(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, M) multi-objective scores of the observation's candidates (public features only)."""
        ids = observation["candidate_ids"]
        logits = self.score_candidates(observation["shopper"], ids)
        score = F.logsigmoid(torch.from_numpy(logits)).numpy().astype(np.float64)
        if self.weights["rating"]:
            score += self.weights["rating"] * np.log(self.catalog.rating[ids] + RATING_FLOOR)
        if self.weights["relevance"]:
            start = len(SHOPPER_FEATURES) + 2 * self.catalog.n_categories
            direction = observation["shopper"][:, start : start + self.catalog.embedding.shape[1]]
            score += self.weights["relevance"] * np.einsum("bmd,bd->bm", self.catalog.embedding[ids], direction)
        return score

    def save(self, path) -> None:
        self.train_settings = {**self.train_settings, **{f"{k}_weight": v for k, v in self.weights.items()}}
        super().save(path)

    @classmethod
    def load(cls, path, catalog=None) -> MultiObjectiveRanker:
        model = super().load(path, catalog)
        settings = model.train_settings
        model.weights = {name: float(settings.get(f"{name}_weight", 0.0)) for name in ("rating", "relevance")}
        return model


def return_labels(train: pd.DataFrame, validation: pd.DataFrame, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both splits relabelled for the retention-aware model: ``purchased`` (the second head's label, learned on the
    clicked rows) becomes *bought it, or had her next session within* ``days`` *days* (day of the next session
    minus this one's, from the shoppers' sessions in both splits); ``clicked`` stays. Training rows after the log's
    last day minus ``days`` are dropped: whether she came back is not known yet (censored). Validation rows are all
    kept: early stopping reads only their clicks."""
    needed = ("shopper", "session", "day", "clicked", "purchased")
    for name, part in (("train", train), ("validation", validation)):
        missing = [column for column in needed if column not in part.columns]
        if missing:
            raise ValueError(f"the {name} log lacks column(s) {missing}; required: {list(needed)}")
    keys = ["run_id", "shopper"] if "run_id" in train.columns and "run_id" in validation.columns else ["shopper"]
    sessions = pd.concat([train[[*keys, "session", "day"]], validation[[*keys, "session", "day"]]])
    sessions = sessions.drop_duplicates([*keys, "session"]).sort_values([*keys, "session"])
    sessions["next_day"] = sessions.groupby(keys, sort=False)["day"].shift(-1)
    last_day = max(int(train["day"].max()), int(validation["day"].max()))
    out = []
    for part in (train, validation):
        next_day = part[[*keys, "session"]].merge(sessions, on=[*keys, "session"], how="left")["next_day"].to_numpy()
        returned = np.nan_to_num(next_day - part["day"].to_numpy(), nan=np.inf) <= days
        out.append(part.assign(purchased=part["purchased"].to_numpy(bool) | returned))
    known = out[0]["day"].to_numpy() <= last_day - days
    return out[0][known].reset_index(drop=True), out[1]


class RetentionAwareModel(MLPClickModel):
    """The MLP's heads trained on clicks and on "bought it or came back within N days" given a click
    (``return_labels``); ranks by log P(click) + good_weight * log P(good | click)."""

    kind = "retention_mlp"

    def __init__(self, params=None, label: ReturnLabelConfig | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.label = label if label is not None else ReturnLabelConfig()

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> RetentionAwareModel:
        """``params``: the MLP's (``MLPConfig``, ``MLPFitConfig`` but ``seed``) and ``return_days``."""
        label, rest = own_params(cls.kind, ReturnLabelConfig, params)
        model = super().from_spec(rest, seed, reward)
        model.label = label
        return model

    def fit_log(self, train, validation, catalog, seed: int) -> dict:
        """Relabel both splits (``return_labels``), then fit as the MLP does."""
        train, validation = return_labels(train, validation, self.label.return_days)
        if not len(train):
            raise ValueError(
                f"the log is too short for return_days={self.label.return_days}: no training impression has a"
                " known outcome"
            )
        summary = super().fit_log(train, validation, catalog, seed)
        return {**summary, "good_rate": float(train.loc[train["clicked"].astype(bool), "purchased"].mean())}

    def tuning_plan(self) -> TuningPlan | None:
        return self.label.plan({"good": weight} for weight in GOOD_WEIGHTS)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        if set(weights) != {"good"}:
            raise ValueError(f"{self.kind} weights {sorted(weights)}; allowed: exactly 'good'")
        self.label = self.label.replace(good_weight=float(weights["good"]))

    def save(self, path) -> None:
        self.train_settings = {**self.train_settings, **self.label.to_dict()}
        super().save(path)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, k) candidates ranked by log P(click) + good_weight * log P(good | click), best first."""
        require_bound(self)
        logits = torch.from_numpy(self.head_logits(observation["shopper"], observation["candidate_ids"]))
        log_p = F.logsigmoid(logits).numpy().astype(np.float64)
        return top_k(log_p[..., 0] + self.label.good_weight * log_p[..., 1], self.config.slate_size)

    def head_logits(self, shopper, candidate_ids) -> np.ndarray:
        """(B, F_user) shopper features and (B, M) catalog ids -> (B, M, 2): the click logit (no position bias) and
        the good-given-click logit of each candidate."""
        self.score_candidates(shopper, candidate_ids)  # the checks of shapes, ids and training
        raw = torch.from_numpy(np.asarray(shopper, dtype=np.float32))
        ids = torch.from_numpy(np.asarray(candidate_ids, dtype=np.int64))
        b, m = ids.shape
        with torch.inference_mode():
            users = self.net.shopper_part(self._standardise(raw)).repeat_interleave(m, dim=0)
            items = self._cached_item_rows()[ids.reshape(-1)]
            cross = None
            if self.net.n_cross:
                cross = self._standardise_cross(self._cross(raw, ids)).reshape(b * m, -1)
            return self.net.logits(users, items, cross).view(b, m, 2).numpy()

    @classmethod
    def load(cls, path, catalog=None) -> RetentionAwareModel:
        model = super().load(path, catalog)
        settings = model.train_settings
        model.label = ReturnLabelConfig.from_kwargs(
            **{k: settings[k] for k in ReturnLabelConfig.names() if k in settings}
        )
        return model


__all__ = [
    "RATING_WEIGHTS",
    "RELEVANCE_WEIGHTS",
    "MultiObjectiveRanker",
    "GOOD_WEIGHTS",
    "RankingConfig",
    "RetentionAwareModel",
    "ReturnLabelConfig",
    "TuningConfig",
    "return_labels",
    "own_params",
    "require_bound",
]
