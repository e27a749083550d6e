"""Examples for the marketing models, built from the platform's log alone (``experiments.marketing.logs``).

* ``warning_examples``: one row per (active shopper, snapshot day T) with serve-time features from her sessions on
  days before T (never a later event, never latent state, never the log's ``returned``/``churned`` outcomes) and the
  label ``churns``: she churns (the simulator's event, read from the log's true outcomes) on a day in [T, T + N).
  Active at T: she has not churned before day T. Snapshots lie on a grid (every ``every`` days from ``first``) and
  stop at ``horizon - N``, so every label is observed: a shopper not churned by the horizon either has no session
  in the window (her next visit falls past the horizon) or is seen through it. No example is censored.
* ``intent_examples``: one row per session still live after its first ``slates`` slates with no purchase yet, with
  what the platform saw in those slates and her history before the session; the label ``buys``: she buys later in
  the session (among sessions not yet converted, the same as "the session ends with a purchase").
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stickyrec.experiments.marketing.logs import check_steps, no_click_runs, session_table

TRAILING_WINDOWS: tuple[int, ...] = (7, 14)
WARNING_FEATURES: tuple[str, ...] = (
    "day",
    "recency",
    "sessions",
    "slates",
    "clicks",
    "purchases",
    "spend",
    *(f"{name}_{w}d" for w in TRAILING_WINDOWS for name in ("sessions", "slates", "clicks", "purchases", "spend")),
    "ctr",
    "ctr_7d",
    "ctr_trend",
    "session_length",
    "last_session_length",
    "session_length_trend",
    "last_ctr",
    "last_end_no_click_run",
    "last_purchased",
    "days_since_purchase",
    "clicked_rating",
    "last_clicked_rating",
    "mean_gap",
    "last_gap",
    "visit_rate",
    "recency_ratio",
    "last_no_clicks",
    "no_clicks_7d",
)
# What the churn warning uses (``models.ChurnWarning``): her return rate's posterior (from ``sessions`` and ``day``,
# under a prior fitted to the training log), the days since her last visit and a running estimate of her
# satisfaction. In the default world churn is a gap of more than ``churn_window_days`` (or the satisfaction hazard)
# after a session, so the chance of one in the next N days is set by how often she returns and how long she has been
# away; the 35 columns above, fitted by boosted trees on a few thousand shoppers, rank churners worse than these.
CHURN_FEATURES: tuple[str, ...] = ("log_visit_rate", "recency", "satisfaction")
# The satisfaction filter: the platform's model of satisfaction, the rule docs/model.md publishes ("Satisfaction")
# with its default rates, run on what the log shows, a clicked item's public rating standing in for its quality.
# Model constants, never a shopper's state; in a world with other rates it is a misspecified model, not a leak.
SATISFACTION_FILTER: dict[str, float] = {
    "initial": 0.55,  # satisfaction_initial_mean
    "click_rate": 0.08,  # toward a clicked item's quality
    "purchase_rate": 0.2,  # and further on a purchase
    "no_click_drop": 0.02,  # shrinks by this share on a slate with no click
    "baseline": 0.5,  # relaxes toward this between sessions
    "memory_days": 30.0,  # with this time constant
}
INTENT_FEATURES: tuple[str, ...] = (
    "slates_seen",
    "session_clicks",
    "no_click_run",
    "session_clicked_rating",
    "session_clicked_price",
    "past_sessions",
    "past_clicks",
    "past_purchases",
    "past_spend",
    "past_buy_per_click",
    "days_since_last_visit",
    "day",
)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def snapshot_days(horizon_days: float, window_days: int = 14, every: int = 7, first: int | None = None) -> list[int]:
    """Snapshot days T = first, first + every, ... with T + window_days <= horizon_days (labels all observed)."""
    window_days, every = check_positive_int(window_days, "window_days"), check_positive_int(every, "every")
    first = every if first is None else check_positive_int(first, "first")
    last = math.floor(float(horizon_days) - window_days)
    days = list(range(first, last + 1, every))
    if not days:
        raise ValueError(
            f"no snapshot day fits: first {first}, window_days {window_days}, horizon_days {horizon_days};"
            f" allowed: first + window_days <= horizon_days"
        )
    return days


def churn_days(sessions: pd.DataFrame) -> pd.Series:
    """Per shopper, the day of the session that ended in churn (NaN: never churned), indexed by shopper."""
    shoppers = np.unique(sessions["shopper"].to_numpy())
    churned = sessions[sessions["churned"]].groupby("shopper")["day"].min()
    return churned.reindex(shoppers).astype(np.float64)


def warning_examples(
    steps: pd.DataFrame,
    horizon_days: float,
    window_days: int = 14,
    every: int = 7,
    first: int | None = None,
    item_rating: np.ndarray | None = None,
) -> pd.DataFrame:
    """Examples of active shoppers at each snapshot day: ``shopper``, ``WARNING_FEATURES``, ``churn_day``, ``churns``.

    ``steps``: a step table (``logs.log_steps`` of an impression log, or ``logs.StepRecorder``). ``item_rating``:
    the catalog's public ratings (``Catalog.rating``), for the clicked-rating features (NaN without it).
    """
    days = snapshot_days(horizon_days, window_days, every, first)
    sessions = session_table(steps, item_rating)
    sessions["satisfaction_end"] = session_satisfaction(steps, item_rating)
    churn_day = churn_days(sessions)
    parts = []
    for day in days:
        active = churn_day.index[~(churn_day < day)]  # not churned before day T (NaN: never churned)
        past = sessions[(sessions["day"] < day) & sessions["shopper"].isin(active)]
        if past.empty:
            continue
        frame = snapshot_features(past, day)
        if item_rating is None:
            frame[["clicked_rating", "last_clicked_rating"]] = np.nan
        frame["churn_day"] = churn_day.reindex(frame["shopper"]).to_numpy()
        frame["churns"] = frame["churn_day"].to_numpy() < day + window_days
        parts.append(frame)
    if not parts:
        raise ValueError("the log has no active shopper at any snapshot day")
    return pd.concat(parts, ignore_index=True)


def snapshot_features(past: pd.DataFrame, day: int) -> pd.DataFrame:
    """Features at snapshot ``day`` from ``past``: sessions (``logs.session_table`` rows) on earlier days only."""
    by = past.groupby("shopper", sort=True)
    totals = by[["slates", "clicks", "purchases", "revenue", "rating_sum"]].sum()
    out = pd.DataFrame({"shopper": totals.index.to_numpy(), "day": day})
    out["recency"] = day - by["day"].max().to_numpy()
    out["sessions"] = by.size().to_numpy()
    out["slates"] = totals["slates"].to_numpy()
    out["clicks"] = totals["clicks"].to_numpy()
    out["purchases"] = totals["purchases"].to_numpy()
    out["spend"] = totals["revenue"].to_numpy()
    for w in TRAILING_WINDOWS:
        recent = past[past["day"] >= day - w].groupby("shopper")
        window = recent[["slates", "clicks", "purchases", "revenue"]].sum().reindex(totals.index, fill_value=0)
        out[f"sessions_{w}d"] = recent.size().reindex(totals.index, fill_value=0).to_numpy()
        for name, column in (("slates", "slates"), ("clicks", "clicks"), ("purchases", "purchases")):
            out[f"{name}_{w}d"] = window[column].to_numpy()
        out[f"spend_{w}d"] = window["revenue"].to_numpy()
    out["ctr"] = out["clicks"] / out["slates"]
    out["ctr_7d"] = out["clicks_7d"] / out["slates_7d"].where(out["slates_7d"] > 0)
    out["ctr_trend"] = out["ctr_7d"] - out["ctr"]
    out["session_length"] = out["slates"] / out["sessions"]
    last = by.last()
    out["last_session_length"] = last["slates"].to_numpy()
    out["session_length_trend"] = out["last_session_length"] / out["session_length"]
    out["last_ctr"] = (last["clicks"] / last["slates"]).to_numpy()
    out["last_end_no_click_run"] = last["end_no_click_run"].to_numpy()
    out["last_purchased"] = (last["purchases"] > 0).to_numpy()
    bought = past[past["purchases"] > 0].groupby("shopper")["day"].max().reindex(totals.index)
    out["days_since_purchase"] = day - bought.to_numpy()  # NaN: never bought
    out["clicked_rating"] = (totals["rating_sum"] / totals["clicks"].where(totals["clicks"] > 0)).to_numpy()
    out["last_clicked_rating"] = (last["rating_sum"] / last["clicks"].where(last["clicks"] > 0)).to_numpy()
    first_day = by["day"].min().to_numpy()
    last_day = by["day"].max().to_numpy()
    out["mean_gap"] = (last_day - first_day) / np.where(out["sessions"] > 1, out["sessions"] - 1, np.nan)
    previous = past.groupby("shopper")["day"].nth(-2)  # the session before the last (none for one session)
    previous_day = pd.Series(past.loc[previous.index, "day"].to_numpy(), index=past.loc[previous.index, "shopper"])
    out["last_gap"] = last_day - previous_day.reindex(totals.index).to_numpy()
    out["visit_rate"] = out["sessions"] / day  # sessions per day since day 0, when every shopper arrives
    out["recency_ratio"] = out["recency"] / out["mean_gap"].where(out["mean_gap"] > 0)
    out["last_no_clicks"] = out["last_session_length"] - last["clicks"].to_numpy()
    out["no_clicks_7d"] = out["slates_7d"] - out["clicks_7d"]
    out["satisfaction"] = last["satisfaction_end"].to_numpy() if "satisfaction_end" in past.columns else np.nan
    return out


def session_satisfaction(steps: pd.DataFrame, item_rating: np.ndarray | None = None) -> np.ndarray:
    """Per (shopper, session), in ``session_table`` order: the satisfaction filter (``SATISFACTION_FILTER``) at the
    session's end, from her slates up to then (NaN without ``item_rating``).

    Each slate moves the estimate s by an affine map (a click: s + c (r - s), then on a purchase s + p (r - s), with r
    the clicked item's public rating; no click: s (1 - d)), and a session's first slate is preceded by the relaxation
    toward the baseline over the days since her previous session. The chain s_t = a_t s_(t-1) + b_t is solved per
    shopper with cumulative sums: s_t = A_t (s_0 + sum b_k / A_k), A_t the running product of the a's.
    """
    keys = ["shopper", "session"]
    ends = steps.groupby(keys, sort=True).tail(1).sort_values(keys).index
    if item_rating is None:
        return np.full(len(ends), np.nan)
    f = SATISFACTION_FILTER
    clicked = steps["clicked_item"].to_numpy() >= 0
    bought = steps["purchased"].to_numpy(dtype=bool)
    rating = np.zeros(len(steps))
    rating[clicked] = np.asarray(item_rating)[steps["clicked_item"].to_numpy()[clicked]]
    a = np.where(clicked, 1.0 - f["click_rate"], 1.0 - f["no_click_drop"])
    b = np.where(clicked, f["click_rate"] * rating, 0.0)
    a, b = a * np.where(bought, 1.0 - f["purchase_rate"], 1.0), b * np.where(bought, 1.0 - f["purchase_rate"], 1.0)
    b = b + np.where(bought, f["purchase_rate"] * rating, 0.0)
    shopper, day = steps["shopper"].to_numpy(), steps["day"].to_numpy(dtype=np.float64)
    session = steps["session"].to_numpy()
    first = np.r_[True, shopper[1:] != shopper[:-1]]
    starts = first | np.r_[True, session[1:] != session[:-1]]
    gap = np.where(starts & ~first, day - np.r_[0.0, day[:-1]], 0.0)
    keep = np.exp(-gap / f["memory_days"])  # the relaxation over the gap, before the session's first slate
    b = b + a * f["baseline"] * (1.0 - keep)
    a = a * keep
    by = pd.Series(shopper)
    product = np.exp(pd.Series(np.log(a)).groupby(by).cumsum().to_numpy())
    trace = product * (f["initial"] + pd.Series(b / product).groupby(by).cumsum().to_numpy())
    return pd.Series(trace, index=steps.index).loc[ends].to_numpy()


def intent_examples(
    steps: pd.DataFrame,
    slates: tuple[int, ...] = (1, 3, 5),
    item_rating: np.ndarray | None = None,
    item_price: np.ndarray | None = None,
) -> pd.DataFrame:
    """Sessions still live after their first j slates (j in ``slates``) with no purchase in them.

    Columns: ``shopper``, ``session``, ``INTENT_FEATURES`` (``slates_seen`` = j) and the label ``buys`` (a purchase
    in the rest of the session). ``item_rating`` / ``item_price``: the catalog's public ratings and log relative
    prices (``Catalog.rating``, ``Catalog.log_relative_price``) for the clicked-item features (NaN without them).
    """
    check_steps(steps)
    slates = tuple(check_positive_int(j, "slates") for j in slates)
    if not slates:
        raise ValueError("slates must name at least one count of slates, e.g. (1, 3, 5)")
    keys = ["shopper", "session"]
    clicked = steps["clicked_item"].to_numpy() >= 0
    lookup = {"rating": item_rating, "price": item_price}
    frame = steps.assign(clicked=clicked, position=steps.groupby(keys, sort=False).cumcount().to_numpy())
    for name, table in lookup.items():
        values = np.full(len(steps), np.nan)
        if table is not None:
            values[clicked] = np.asarray(table)[steps["clicked_item"].to_numpy()[clicked]]
        frame[name] = values
    frame["no_click_run"] = no_click_runs(steps)
    history = session_history(session_table(steps))
    parts = []
    for j in slates:
        head = frame[frame["position"] < j].groupby(keys, sort=True)
        seen = head.agg(
            session_clicks=("clicked", "sum"),
            bought=("purchased", "any"),
            no_click_run=("no_click_run", "last"),
            session_clicked_rating=("rating", "mean"),
            session_clicked_price=("price", "mean"),
        )
        rest = frame[frame["position"] >= j].groupby(keys, sort=True)["purchased"].any().rename("buys")
        table = seen.join(rest, how="inner")  # live after j slates
        table = table[~table["bought"]].drop(columns="bought").reset_index()
        table = table.merge(history, on=keys, how="left").assign(slates_seen=j)
        parts.append(table)
    out = pd.concat(parts, ignore_index=True)
    return out[["shopper", "session", *INTENT_FEATURES, "buys"]]


def session_history(sessions: pd.DataFrame) -> pd.DataFrame:
    """Per (shopper, session): her history before the session (``past_*``), days since her last visit, the day."""
    by = sessions.groupby("shopper", sort=False)
    out = sessions[["shopper", "session", "day"]].copy()
    out["past_sessions"] = sessions["session"].to_numpy()
    for name, column in (("past_clicks", "clicks"), ("past_purchases", "purchases"), ("past_spend", "revenue")):
        out[name] = (by[column].cumsum() - sessions[column]).to_numpy()
    out["past_buy_per_click"] = out["past_purchases"] / out["past_clicks"].where(out["past_clicks"] > 0)
    out["days_since_last_visit"] = (sessions["day"] - by["day"].shift(1)).to_numpy()  # NaN on the first visit
    return out
