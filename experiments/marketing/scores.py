"""Scoring a risk or intent model against the simulator's true outcomes (plain functions of arrays and frames).

* ``flag_top``: the top share of each snapshot's examples by score (what a team would act on);
* ``precision_at``: the share of flagged examples whose label is true;
* ``lead_times``: for each shopper, days from her first flag to her churn;
* ``reliability``: a binned calibration curve; ``ranking_scores``: ROC-AUC, PR-AUC, Brier, base rate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def check_share(share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 < share <= 1.0:
        raise ValueError(f"share must be a number in (0, 1], got {share!r}")
    return float(share)


def flag_top(score: np.ndarray, groups: np.ndarray, share: float = 0.05) -> np.ndarray:
    """True for the ``ceil(share * n)`` highest scores of each group (n its size); ties go to the earlier row."""
    share = check_share(share)
    score, groups = np.asarray(score, dtype=np.float64), np.asarray(groups)
    if score.shape != groups.shape:
        raise ValueError(f"score has shape {score.shape} and groups {groups.shape}; they must match")
    flagged = np.zeros(score.size, dtype=bool)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        top = math.ceil(share * rows.size)
        order = np.argsort(-score[rows], kind="stable")
        flagged[rows[order[:top]]] = True
    return flagged


def precision_at(label: np.ndarray, flagged: np.ndarray) -> float:
    """The share of flagged rows whose label is true (NaN when none is flagged)."""
    label, flagged = np.asarray(label, dtype=bool), np.asarray(flagged, dtype=bool)
    return float(label[flagged].mean()) if flagged.any() else math.nan


def lead_times(examples: pd.DataFrame, flagged: np.ndarray, window_days: int | None = None) -> pd.DataFrame:
    """Per shopper ever flagged and later churned: ``first_flag`` (day), ``churn_day``, ``lead`` (days between).

    ``examples`` needs ``shopper``, ``day`` (snapshot) and ``churn_day`` (NaN: never churned). With
    ``window_days``, only shoppers who churn within that many days of their first flag count (the true positives of
    the first flag); without, any later churn does.
    """
    frame = examples.loc[np.asarray(flagged, dtype=bool), ["shopper", "day", "churn_day"]]
    first = frame.sort_values(["shopper", "day"]).drop_duplicates("shopper")
    first = first.rename(columns={"day": "first_flag"})
    first = first[first["churn_day"].notna()]
    first = first.assign(lead=first["churn_day"] - first["first_flag"])
    if window_days is not None:
        first = first[first["lead"] < window_days]
    return first.reset_index(drop=True)


def reliability(label: np.ndarray, probability: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Calibration curve in ``bins`` equal-width bins of predicted probability: ``bin_low``, ``bin_high``, ``n``,
    ``predicted`` (mean probability), ``observed`` (share of true labels). Empty bins are left out."""
    label, probability = np.asarray(label, dtype=np.float64), np.asarray(probability, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    at = np.clip(np.searchsorted(edges, probability, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"bin": at, "predicted": probability, "observed": label})
    table = frame.groupby("bin").agg(
        n=("observed", "size"), predicted=("predicted", "mean"), observed=("observed", "mean")
    )
    table.insert(0, "bin_high", edges[table.index + 1])
    table.insert(0, "bin_low", edges[table.index])
    return table.reset_index(drop=True)


def ranking_scores(label: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """``roc_auc``, ``pr_auc`` (average precision), ``brier`` (on a [0, 1] score), ``base_rate``, ``n``."""
    label, score = np.asarray(label, dtype=bool), np.asarray(score, dtype=np.float64)
    both = 0 < label.sum() < label.size
    return {
        "roc_auc": float(roc_auc_score(label, score)) if both else math.nan,
        "pr_auc": float(average_precision_score(label, score)) if both else math.nan,
        "brier": float(brier_score_loss(label, np.clip(score, 0.0, 1.0))) if label.size else math.nan,
        "base_rate": float(label.mean()) if label.size else math.nan,
        "n": int(label.size),
    }
