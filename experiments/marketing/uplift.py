"""Uplift models and their scores: who should get an offer, learned from a logged randomised campaign, and how good
that targeting is, scored on truth.

Learners (scikit-learn gradient boosting underneath, seeded):

- ``two_model`` (T-learner): one outcome model per arm, mu_1(x) - mu_0(x);
- ``x_learner`` (Kuenzel et al. 2019): the T-learner's models impute each shopper's effect in her own arm
  (D1 = y - mu_0(x) for the treated, D0 = mu_1(x) - y for the controls), one model per arm regresses those, and the
  two are blended by the logged propensity e(x): tau(x) = e(x) tau_0(x) + (1 - e(x)) tau_1(x).

Scores:

- ``uplift_curve``: targeting the top fraction q by score, the cumulative true uplift (the simulator runs every
  shopper both ways with the same seed, so each shopper's true effect is known) against q, beside random
  targeting's straight line; ``qini_coefficient``: the area between them, over the perfect ranking's;
- ``qini_observed``: the classic Qini curve from a randomised log alone (treated minus scaled control responders
  among the top q), for when truth is not at hand;
- ``target_by_budget``: the shoppers a campaign contacts when each costs what it costs and the budget is fixed,
  highest score first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stickyrec.experiments.marketing.models import one_thread

LEARNERS = ("two_model", "x_learner")


def _check(x: np.ndarray, treated: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    treated = np.asarray(treated)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or treated.shape != (x.shape[0],) or y.shape != (x.shape[0],):
        raise ValueError(
            f"uplift data: features (n, d), treated (n,), outcomes (n,); got {x.shape}, {treated.shape}, {y.shape}"
        )
    if treated.dtype != bool and not np.isin(treated, (0, 1)).all():
        raise ValueError("uplift data: treated must be 0/1 or bool")
    treated = treated.astype(bool)
    if treated.sum() < 2 or (~treated).sum() < 2:
        raise ValueError(
            f"uplift data: {int(treated.sum())} treated and {int((~treated).sum())} control shoppers; allowed: at"
            " least 2 of each (a randomised campaign logs both arms)"
        )
    if np.isinf(x).any() or not np.isfinite(y).all():  # NaN features are allowed: the trees route them
        raise ValueError("uplift data: features must be finite or NaN (missing), outcomes finite")
    return x, treated, y


def _regressor(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, min_samples_leaf=40, random_state=seed)


class UpliftModel:
    """An uplift learner (``LEARNERS``): ``fit(x, treated, y, propensity)`` then ``predict(x)`` -> effect per row."""

    def __init__(self, learner: str = "x_learner", seed: int = 0) -> None:
        if learner not in LEARNERS:
            raise ValueError(f"uplift learner {learner!r} is unknown; allowed: {', '.join(LEARNERS)}")
        self.learner, self.seed = learner, int(seed)
        self.models: dict[str, object] = {}
        self.propensity = 0.5

    def fit(self, x, treated, y, propensity: float | np.ndarray | None = None) -> UpliftModel:
        x, treated, y = _check(x, treated, y)
        with one_thread():
            return self._fit(x, treated, y, propensity)

    def _fit(self, x, treated, y, propensity) -> UpliftModel:
        mu1 = _regressor(self.seed).fit(x[treated], y[treated])
        mu0 = _regressor(self.seed + 1).fit(x[~treated], y[~treated])
        self.models = {"mu1": mu1, "mu0": mu0}
        if self.learner == "x_learner":
            d1 = y[treated] - mu0.predict(x[treated])
            d0 = mu1.predict(x[~treated]) - y[~treated]
            self.models["tau1"] = _regressor(self.seed + 2).fit(x[treated], d1)
            self.models["tau0"] = _regressor(self.seed + 3).fit(x[~treated], d0)
            share = float(treated.mean()) if propensity is None else float(np.mean(propensity))
            if not 0.0 < share < 1.0:
                raise ValueError(f"propensity {share} is outside (0, 1); allowed: a randomised campaign's share")
            self.propensity = share
        return self

    def predict(self, x) -> np.ndarray:
        if not self.models:
            raise ValueError("the uplift model is not fitted; call fit() first")
        x = np.asarray(x, dtype=float)
        with one_thread():
            if self.learner == "two_model":
                return self.models["mu1"].predict(x) - self.models["mu0"].predict(x)
            e = self.propensity
            return e * self.models["tau0"].predict(x) + (1.0 - e) * self.models["tau1"].predict(x)


def uplift_curve(score, true_uplift, points: int = 101) -> pd.DataFrame:
    """Targeting the top ``fraction`` by ``score`` (ties: stable order): the true uplift gained per shopper of the
    population (``model``), random targeting's (``random``), the best possible ranking's (``perfect``)."""
    score, true_uplift = np.asarray(score, dtype=float), np.asarray(true_uplift, dtype=float)
    if score.shape != true_uplift.shape or score.ndim != 1 or score.size == 0:
        raise ValueError(
            f"score and true uplift must be equal-length 1-d arrays; got {score.shape}, {true_uplift.shape}"
        )
    n = score.size
    cum = np.concatenate([[0.0], np.cumsum(true_uplift[np.argsort(-score, kind="stable")])])
    best = np.concatenate([[0.0], np.cumsum(np.sort(true_uplift)[::-1])])
    fraction = np.linspace(0.0, 1.0, points)
    k = np.round(fraction * n).astype(int)
    return pd.DataFrame(
        {"fraction": fraction, "model": cum[k] / n, "random": fraction * cum[-1] / n, "perfect": best[k] / n}
    )


def _area(y: np.ndarray, x: np.ndarray) -> float:
    """The trapezoid rule (numpy 1.26 has no ``np.trapezoid``)."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Area between the model's and random targeting's uplift curves, over the perfect ranking's (1: perfect, 0:
    no better than random, negative: worse)."""
    x = curve["fraction"].to_numpy()
    gain = _area((curve["model"] - curve["random"]).to_numpy(), x)
    best = _area((curve["perfect"] - curve["random"]).to_numpy(), x)
    return float(gain / best) if best > 0 else 0.0


def qini_observed(score, treated, y, points: int = 101) -> pd.DataFrame:
    """The Qini curve from a randomised log: among the top ``fraction`` by score, treated responders minus control
    responders scaled by the arms' sizes, per shopper of the population."""
    score, treated, y = np.asarray(score, dtype=float), np.asarray(treated, dtype=bool), np.asarray(y, dtype=float)
    order = np.argsort(-score, kind="stable")
    t, yt = treated[order], y[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    r_t, r_c = np.cumsum(yt * t), np.cumsum(yt * ~t)
    qini = np.concatenate([[0.0], r_t - np.where(n_c > 0, r_c * n_t / np.maximum(n_c, 1), 0.0)])
    fraction = np.linspace(0.0, 1.0, points)
    k = np.round(fraction * score.size).astype(int)
    return pd.DataFrame(
        {"fraction": fraction, "qini": qini[k] / score.size, "random": fraction * qini[-1] / score.size}
    )


def target_by_budget(score, cost, budget: float) -> np.ndarray:
    """Bool mask of the shoppers contacted: highest score first while the summed expected ``cost`` fits ``budget``
    (shoppers with a score <= 0 are never contacted: an offer expected to do harm or nothing is not sent)."""
    score = np.asarray(score, dtype=float)
    cost = np.broadcast_to(np.asarray(cost, dtype=float), score.shape)
    if not np.isfinite(budget) or budget < 0:
        raise ValueError(f"budget {budget!r} is not allowed; allowed: a finite number >= 0")
    if (cost < 0).any() or not np.isfinite(cost).all():
        raise ValueError("offer costs must be finite and >= 0")
    order = np.argsort(-score, kind="stable")
    spent = np.cumsum(cost[order])
    chosen = order[(spent <= budget) & (score[order] > 0)]
    mask = np.zeros(score.size, dtype=bool)
    mask[chosen] = True
    return mask


__all__ = ["LEARNERS", "UpliftModel", "qini_coefficient", "qini_observed", "target_by_budget", "uplift_curve"]
