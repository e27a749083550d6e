"""The marketing models: churn early warning (a logistic regression on three log features) and purchase intent
(gradient-boosted trees), each a classifier of a fixed-window label.

A classifier rather than a survival regression (lifelines' Cox or Weibull AFT): the question asked is a fixed-window
one ("churns within N days of this snapshot", "buys later in this session"), which a classifier per example answers
directly, with every example's label observed (``features.snapshot_days``), so nothing is gained from a
censoring-aware model. The intent model's boosted trees take the features' non-linear, interacting effects and their
missing values as they come. The churn warning's signal is weak and nearly monotone in a few well-shaped features
(``ChurnWarning`` says what was measured), where boosted trees on many features fitted noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stickyrec.experiments.marketing.features import CHURN_FEATURES, INTENT_FEATURES


def one_thread():
    """One OpenMP thread for the trees (a context manager): on a busy 2-core machine OpenMP's spinning threads slowed
    a 2,000-row fit from seconds to over ten minutes, and a 5-row prediction to 2.4 s (200 trees at 12 ms each);
    the runner's cells run one thread each too."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


class LogModel:
    """A boosted-tree classifier of ``label`` from the ``features`` columns of an examples frame.

    The defaults (small trees, slow learning, strong L2) were chosen for churn warning on a validation population
    of the training side (seeds from 502,000; never the held-out population): the signal is weak, and the
    larger trees of scikit-learn's defaults fit noise (held-out-side AUC 0.567 against 0.575).
    """

    features: tuple[str, ...] = ()
    label: str = ""

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.02,
        max_leaf_nodes: int = 5,
        l2_regularization: float = 10.0,
        random_state: int = 0,
    ) -> None:
        self.model = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            l2_regularization=l2_regularization,
            early_stopping=False,
            random_state=random_state,
        )
        self.fitted = False
        self.columns: list[str] = list(self.features)  # at fit: the features with a value (all-NaN ones dropped)

    def matrix(self, examples: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in examples.columns]
        if missing:
            raise ValueError(f"examples lack the feature columns {missing}; needed: {list(self.features)}")
        return examples[self.columns].to_numpy(dtype=np.float64)

    def fit(self, examples: pd.DataFrame):
        """Fit on ``examples`` (rows of ``features`` and ``label``); returns self."""
        self.columns = list(self.features)
        x = self.matrix(examples)
        known = ~np.isnan(x).all(axis=0)  # e.g. clicked ratings without the catalog's: nothing to learn from
        self.columns = [c for c, k in zip(self.columns, known) if k]
        x = x[:, known]
        if self.label not in examples.columns:
            raise ValueError(f"examples lack the label column {self.label!r}")
        y = examples[self.label].to_numpy(dtype=bool)
        if y.all() or not y.any():
            raise ValueError(
                f"cannot fit on {y.size} examples without both values of {self.label!r};"
                " allowed: examples with both labels (a larger log, or a longer window)"
            )
        with one_thread():
            self.model.fit(x, y)
        self.fitted = True
        return self

    def score(self, examples: pd.DataFrame) -> np.ndarray:
        """The predicted probability of ``label`` for each row of ``examples``."""
        if not self.fitted:
            raise ValueError(f"{type(self).__name__} is not fitted; call fit(examples) first")
        if examples.empty:
            return np.zeros(0)
        with one_thread():
            return self.model.predict_proba(self.matrix(examples))[:, 1]


class ChurnWarning(LogModel):
    """Risk that an active shopper churns within N days of a snapshot (``features.warning_examples``).

    A logistic regression on ``CHURN_FEATURES`` (standardised). ``log_visit_rate`` is the log posterior mean of her
    return rate: ``sessions - 1`` returns over the ``day - 0.5`` days since she arrived (her last visit starts on
    average half a day into its day), under a Gamma prior fitted to the training examples by empirical Bayes
    (``gamma_prior``). Why not the boosted trees on the 35 ``WARNING_FEATURES``: the signal is weak and nearly
    monotone in the return rate, and the trees fitted noise: on 4,000 held-out shoppers (seed 2,000,000), trained
    on 2,000, ROC-AUC 0.594 for these three features against the trees' 0.574 (0.592 with 20,000 to learn from).
    """

    features = CHURN_FEATURES
    label = "churns"

    def __init__(self, max_iter: int = 1000, C: float = 1.0, random_state: int = 0) -> None:
        self.model = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=random_state)
        )
        self.fitted = False
        self.columns = list(self.features)
        self.prior: tuple[float, float] | None = None  # Gamma(shape, rate) of the return rate, per day

    def fit(self, examples: pd.DataFrame):
        self.prior = gamma_prior(*exposure(examples))
        return super().fit(examples)

    def matrix(self, examples: pd.DataFrame) -> np.ndarray:
        if self.prior is None:
            raise ValueError("ChurnWarning is not fitted; call fit(examples) first")
        returns, days = exposure(examples)
        shape, rate = self.prior
        return super().matrix(examples.assign(log_visit_rate=np.log((shape + returns) / (rate + days))))


def exposure(examples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(returns, days observed) per example: ``sessions - 1`` and ``day - 0.5``."""
    missing = [c for c in ("sessions", "day") if c not in examples.columns]
    if missing:
        raise ValueError(f"examples lack the columns {missing}; needed for the return rate: sessions, day")
    returns = examples["sessions"].to_numpy(dtype=np.float64) - 1.0
    return returns, examples["day"].to_numpy(dtype=np.float64) - 0.5


def gamma_prior(returns: np.ndarray, days: np.ndarray) -> tuple[float, float]:
    """Gamma(shape, rate) maximising the marginal (negative binomial) likelihood of ``returns`` over ``days``: the
    empirical-Bayes prior of a Poisson return rate."""
    from scipy import optimize, special

    ok = (returns >= 0) & (days > 0)
    k, t = returns[ok], days[ok]
    if k.size < 2 or k.var() == 0:
        mean = (k.sum() + 1.0) / (t.sum() + 1.0)
        return 1e3 * mean, 1e3  # no spread to learn: a tight prior at the pooled rate
    mean = k.sum() / t.sum()

    def loss(x):
        a, b = np.exp(x)
        return -np.mean(special.gammaln(a + k) - special.gammaln(a) + a * np.log(b) - (a + k) * np.log(b + t))

    start = np.log([1.0, 1.0 / max(mean, 1e-6)])
    best = optimize.minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    shape, rate = np.exp(best.x)
    return float(shape), float(rate)


class IntentModel(LogModel):
    """Probability that a session still live with no purchase ends with one (``features.intent_examples``)."""

    features = INTENT_FEATURES
    label = "buys"
