"""Preprocessing and features: from the impression log to training tables (pandas).

The platform's flow is collect -> preprocess -> features -> train. Here:

* ``load_training_log``: impressions (any store) joined with the serve-time shopper features that
  ``collect(contexts=...)`` logged for each step (feature logging: the features a model is trained on are exactly
  the ones it will be served), plus, for analysis only, the true click probability of each impression.
* ``shopper_history_features``: per-shopper features rebuilt from the log with pandas, strictly from earlier
  steps (counts of clicks and purchases, spend, visits, session position, recency in days, recently clicked
  categories) — the offline twin of the serve-time features, and the check that nothing from the future leaks.
* ``item_log_features``: per-item impressions, clicks, purchases and a smoothed click rate, from a log.
* ``split_log``: train / validation / test by shopper and by time (see its docstring).
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pandas as pd

from stickyrec.experiments.platform_log import read_contexts, read_impressions, validate_impressions

TRUE_CLICK_PROB = "true_click_prob"  # analysis only: never a model input


def shopper_feature_columns(frame: pd.DataFrame) -> list[str]:
    """The serve-time shopper feature columns ``s0 .. s{F-1}`` of a training table, in order."""
    columns = [c for c in frame.columns if c.startswith("s") and c[1:].isdigit()]
    return sorted(columns, key=lambda c: int(c[1:]))


def load_training_log(store, run_id: str, contexts_path, catalog=None) -> pd.DataFrame:
    """Impressions of ``run_id`` joined with their serve-time features; unknown item ids raise ``ValueError``."""
    impressions = read_impressions(store, run_id)
    if catalog is not None:
        validate_impressions(impressions, catalog)
    contexts = read_contexts(contexts_path)
    table = impressions.merge(contexts, on=["shopper", "step"], how="left", validate="many_to_one")
    missing = int(table["s0"].isna().sum())
    if missing:
        raise ValueError(
            f"{missing} impressions of run {run_id!r} have no logged features in {str(contexts_path)!r};"
            " the contexts file belongs to another run"
        )
    probability_columns = sorted(
        (c for c in contexts.columns if c.startswith("true_click_prob_")), key=lambda c: int(c.rsplit("_", 1)[1])
    )
    by_position = table[probability_columns].to_numpy()
    table[TRUE_CLICK_PROB] = by_position[np.arange(len(table)), table["position"].to_numpy()]
    return table.drop(columns=probability_columns)


def shopper_history_features(
    impressions: pd.DataFrame,
    n_categories: int | None = None,
    category_of: np.ndarray | None = None,
    recent_days: int = 7,
) -> pd.DataFrame:
    """Per-step shopper features from the log alone, using only earlier steps (one row per (shopper, step)).

    Columns: ``clicks_before``, ``purchases_before``, ``spend_before``, ``visits`` (sessions so far, this one
    included), ``session_step`` (slates already shown this session), ``session_clicks_before``,
    ``days_since_last_visit`` (whole days since the previous session's day, 0 on the first), and with
    ``category_of`` (item id -> category) ``recent_clicks_c{j}``: clicks on category j in the ``recent_days``
    days before this step's day.
    """
    steps = (
        impressions.groupby(["shopper", "step"], sort=True)
        .agg(
            day=("day", "first"),
            session=("session", "first"),
            clicks=("clicked", "sum"),
            purchases=("purchased", "sum"),
            revenue=("revenue", "sum"),
        )
        .reset_index()
    )
    by_shopper = steps.groupby("shopper", sort=False)
    out = steps[["shopper", "step", "day", "session"]].copy()
    for name, column in (("clicks_before", "clicks"), ("purchases_before", "purchases"), ("spend_before", "revenue")):
        out[name] = by_shopper[column].cumsum() - steps[column]  # strictly earlier steps
    out["visits"] = steps["session"] + 1
    by_session = steps.groupby(["shopper", "session"], sort=False)
    out["session_step"] = by_session.cumcount()
    out["session_clicks_before"] = by_session["clicks"].cumsum() - steps["clicks"]
    session_day = steps.drop_duplicates(["shopper", "session"])[["shopper", "session", "day"]]
    session_day = session_day.assign(previous_day=session_day.groupby("shopper")["day"].shift(1))
    out = out.merge(session_day[["shopper", "session", "previous_day"]], on=["shopper", "session"], how="left")
    out["days_since_last_visit"] = (out["day"] - out["previous_day"]).fillna(0).astype(np.int64)
    out = out.drop(columns=["previous_day"])
    if category_of is not None:
        out = _recent_category_clicks(
            impressions, out, n_categories or int(category_of.max()) + 1, category_of, recent_days
        )
    return out


def _recent_category_clicks(impressions, out, n_categories, category_of, recent_days):
    """Clicks per category in the ``recent_days`` days before each step's day (past steps only)."""
    clicks = impressions.loc[impressions["clicked"], ["shopper", "step", "day", "item_id"]]
    clicks = clicks.assign(category=category_of[clicks["item_id"].to_numpy()])
    counts = np.zeros((len(out), n_categories))
    if len(clicks):
        # For each step row, count clicks of the same shopper with step' < step and day' > day - recent_days.
        merged = out[["shopper", "step", "day"]].reset_index().merge(clicks, on="shopper", suffixes=("", "_click"))
        recent = merged[(merged["step_click"] < merged["step"]) & (merged["day_click"] > merged["day"] - recent_days)]
        np.add.at(counts, (recent["index"].to_numpy(), recent["category"].to_numpy()), 1.0)
    for j in range(n_categories):
        out[f"recent_clicks_c{j}"] = counts[:, j]
    return out


def item_log_features(impressions: pd.DataFrame, n_items: int, prior_impressions: float = 20.0) -> pd.DataFrame:
    """Per item: impressions, clicks, purchases and a click rate shrunk toward the log's mean (empirical Bayes)."""
    grouped = impressions.groupby("item_id").agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum"), purchases=("purchased", "sum")
    )
    table = grouped.reindex(np.arange(n_items), fill_value=0)
    mean_rate = table["clicks"].sum() / max(table["impressions"].sum(), 1)
    table["click_rate"] = (table["clicks"] + prior_impressions * mean_rate) / (table["impressions"] + prior_impressions)
    table.index.name = "item_id"
    return table


@dataclasses.dataclass(frozen=True)
class LogSplits:
    train: pd.DataFrame  # training shoppers, days before the cut
    validation: pd.DataFrame  # training shoppers, days from the cut on (early stopping)
    test: pd.DataFrame  # held-out shoppers, every day
    cut_day: int


def split_log(
    table: pd.DataFrame, test_fraction: float = 0.2, validation_days_fraction: float = 0.2, seed: int = 0
) -> LogSplits:
    """Split by shopper and by time, with no leakage of the future into training.

    Shoppers are assigned to test with probability ``test_fraction`` by a seeded hash of their id (stable when the
    log grows). Training shoppers' impressions before the cut day train the model; those from the cut day on
    validate it (early stopping sees only the training shoppers' later days). The cut is the day before which
    ``1 - validation_days_fraction`` of the training shoppers' impressions fall. Test shoppers are never seen.
    """
    for name, value in (("test_fraction", test_fraction), ("validation_days_fraction", validation_days_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} = {value!r} is out of range; allowed: strictly between 0 and 1")
    if table.empty:
        raise ValueError("cannot split an empty log")
    shoppers = table["shopper"].to_numpy()
    unique = np.unique(shoppers)
    draws = np.array([zlib.crc32(f"{seed}:{s}".encode()) for s in unique]) / 2**32
    test_shoppers = unique[draws < test_fraction]
    is_test = np.isin(shoppers, test_shoppers)
    training = table[~is_test]
    cut_day = int(np.quantile(training["day"].to_numpy(), 1.0 - validation_days_fraction)) if len(training) else 0
    cut_day = max(cut_day, 1)
    is_train = ~is_test & (table["day"].to_numpy() < cut_day)
    is_validation = ~is_test & ~is_train
    if not is_train.any() or not is_validation.any() or not is_test.any():
        raise ValueError(
            f"the log is too small to split: {int(is_train.sum())} train, {int(is_validation.sum())}"
            f" validation, {int(is_test.sum())} test impressions"
        )
    return LogSplits(
        table[is_train].reset_index(drop=True),
        table[is_validation].reset_index(drop=True),
        table[is_test].reset_index(drop=True),
        cut_day,
    )
