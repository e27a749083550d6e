"""The analyst's views of purchase days, and the distances that compare a real view with a predicted one.

- ``tracking_curve``: weekly and cumulative repeat purchases of the calibration cohort (the classic tracking plot),
  with weeks aligned on the calibration end so that held-out weeks are whole weeks;
- ``repeat_distribution``: how many customers made 0, 1, 2, ... repeat purchases;
- ``purchase_gaps``: days between consecutive purchase days of each customer;
- ``cohort_retention``: the share of each month's new customers who buy again k months later.

All take the frames of ``transactions`` (purchase days with ``customer`` and ``day``; a ``Split``) and are
vectorised. The metrics (``mape``, ``mae``, ``pearson``, ``auc``, ``ks_distance``) score predictions on held-out
weeks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from stickyrec.experiments.calibration.transactions import Split

WEEK = 7


def _day_numbers(days: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return ((days - origin) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)


def repeat_days(split: Split) -> pd.DataFrame:
    """The cohort's purchase days after each customer's first one, calibration and held-out (customer, day)."""
    cohort = split.summary.index
    both = pd.concat([split.calibration[["customer", "day"]], split.holdout[["customer", "day"]]], ignore_index=True)
    position = cohort.get_indexer(both["customer"])  # -1: first purchase held out (Series.isin is slow on strings)
    first = split.summary["first_day"].to_numpy()[np.maximum(position, 0)]
    return both[(position >= 0) & (both["day"].to_numpy() > first)].reset_index(drop=True)


def tracking_curve(split: Split) -> pd.DataFrame:
    """Weekly and cumulative repeat purchase days of the calibration cohort, one row per whole week.

    Week ``k`` ends (inclusive) on ``calibration_end + 7 k``: weeks ``k <= 0`` are calibration weeks, ``k >= 1``
    held-out ones (the first row's ``cumulative`` also counts the days before it; a last partial week is left
    out). ``cumulative_since_split`` counts from the calibration end. The model's side of the plot:
    ``bgnbd.expected_cumulative_repeats(params, first_day_numbers(split), curve["week_day"])``.
    """
    end = split.calibration_end
    first_week = -int((end - split.first_day).days // WEEK) + 1  # first week ending >= first_day + 6
    last_week = int(split.holdout_days // WEEK)
    weeks = np.arange(first_week, last_week + 1)
    offsets = _day_numbers(repeat_days(split)["day"], end)  # 1.. for held-out days, <= 0 for calibration days
    week_of = np.clip(-((-offsets) // WEEK), first_week, None)  # ceil(offset / 7): day 1..7 -> week 1
    week_of = week_of[week_of <= last_week]
    weekly = np.bincount(week_of - first_week, minlength=len(weeks)).astype(np.int64)
    cumulative = np.cumsum(weekly)
    at_split = cumulative[weeks == 0][0] if (weeks == 0).any() else 0
    return pd.DataFrame(
        {
            "week": weeks,
            "week_end": end + pd.to_timedelta(weeks * WEEK, unit="D"),
            "week_day": weeks * WEEK,  # the week's last day, in days after the calibration end
            "period": np.where(weeks <= 0, "calibration", "holdout"),
            "repeat_purchases": weekly,
            "cumulative": cumulative,
            "cumulative_since_split": np.where(weeks > 0, cumulative - at_split, 0),
        }
    )


def first_day_numbers(split: Split) -> np.ndarray:
    """Each cohort customer's first purchase day, in days after the calibration end (zero or negative)."""
    return _day_numbers(split.summary["first_day"], split.calibration_end)


def repeat_distribution(counts, cap: int | None = None) -> pd.DataFrame:
    """Customers per number of repeat purchases (``counts``: one number per customer, e.g. ``summary["x"]``).

    With ``cap``, counts above it are pooled into the last row (``repeats == cap`` then means "cap or more").
    """
    counts = np.asarray(counts, dtype=np.int64)
    if cap is not None:
        counts = np.minimum(counts, cap)
    tally = np.bincount(counts, minlength=(cap or 0) + 1)
    return pd.DataFrame({"repeats": np.arange(len(tally)), "customers": tally, "share": tally / max(tally.sum(), 1)})


def purchase_gaps(days: pd.DataFrame) -> np.ndarray:
    """Days between consecutive purchase days of each customer (all customers pooled, int64)."""
    ordered = days[["customer", "day"]].sort_values(["customer", "day"], kind="stable")
    day = _day_numbers(ordered["day"], pd.Timestamp("1970-01-01"))
    same = ordered["customer"].to_numpy()[1:] == ordered["customer"].to_numpy()[:-1]
    return np.diff(day)[same]


def cohort_retention(days: pd.DataFrame, max_months: int | None = None) -> pd.DataFrame:
    """Share of each first-purchase month's customers with a purchase day ``k`` months later (columns k = 0, 1, ...).

    Rows are indexed by the cohort month (a monthly Period); ``customers`` holds the cohort's size. Months after
    the log's end are NaN, not 0.
    """
    month = days["day"].dt.to_period("M")
    ordinal = month.map(lambda m: m.ordinal) if month.dtype == object else month.array.asi8
    frame = pd.DataFrame({"customer": days["customer"].to_numpy(), "month": np.asarray(ordinal, dtype=np.int64)})
    first = frame.groupby("customer", observed=True)["month"].transform("min").to_numpy()
    frame["cohort"] = first
    frame["k"] = frame["month"].to_numpy() - first
    active = frame.drop_duplicates(["customer", "k"])
    size = active[active["k"] == 0].groupby("cohort").size()
    counts = active.groupby(["cohort", "k"]).size().unstack(fill_value=0)
    last = int(frame["month"].max())
    ks = np.arange(counts.columns.max() + 1 if max_months is None else max_months + 1)
    counts = counts.reindex(columns=ks, fill_value=0)
    share = counts.div(size, axis=0).astype(float)
    observable = (counts.index.to_numpy()[:, None] + ks[None, :]) <= last
    share = share.where(observable)
    share.index = pd.PeriodIndex.from_ordinals(share.index.to_numpy(), freq="M")
    share.index.name = "cohort"
    share.columns.name = "months_after_first"
    share.insert(0, "customers", size.to_numpy())
    return share


def mape(actual, predicted) -> float:
    """Mean absolute percentage error, in percent, over the points where ``actual`` is not zero."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    keep = actual != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(predicted[keep] - actual[keep]) / np.abs(actual[keep])) * 100.0)


def mae(actual, predicted) -> float:
    return float(np.mean(np.abs(np.asarray(predicted, dtype=float) - np.asarray(actual, dtype=float))))


def pearson(actual, predicted) -> float:
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if actual.std() == 0 or predicted.std() == 0:
        return float("nan")
    return float(np.corrcoef(actual, predicted)[0, 1])


def auc(positive, score) -> float:
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (Mann-Whitney, ties count one half)."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(np.asarray(score, dtype=float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ks_distance(sample_a, sample_b) -> float:
    """Kolmogorov-Smirnov distance between two samples (e.g. real and simulated gaps)."""
    return float(stats.ks_2samp(np.asarray(sample_a), np.asarray(sample_b)).statistic)
