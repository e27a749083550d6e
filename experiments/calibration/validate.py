"""A simulated log set against the real one, on the analyst's four views, calibration and held-out weeks apart.

``compare_views(real, simulated, bgnbd_figures)`` takes two ``transactions.Split`` of the same dates: the real
log's, and the simulated log's (its customers' first purchase days drawn from the real cohort's, possibly more of
them). Counts of the simulated log are scaled by ``n_real / n_sim`` (cohort customers); shares need no scaling.
It returns a JSON-ready dict with one entry per view, each with its distance:

- ``tracking``: weekly cumulative repeat purchase days (real, stickyrec scaled, BG/NBD's expectation), the split
  week, and the mean absolute percentage error (MAPE, %) of the held-out weeks counted since the split and from the
  start, of the held-out weekly counts, and of the calibration weeks;
- ``repeats``: the distribution of repeat purchase days per cohort customer (calibration ``x``, held-out
  ``x_holdout``), capped at ``REPEAT_CAP`` or more, with total variation distance and mean absolute difference of
  the shares;
- ``gaps``: days between consecutive purchase days of cohort customers (a gap belongs to the period of its later
  day), as shares on log-spaced bins, quantiles p10/25/50/75/90 and the Kolmogorov-Smirnov distance;
- ``cohorts``: the share of each first-purchase month's customers who buy ``k`` months later, real and simulated,
  with the mean absolute difference in percentage points over the calibration cells (months that end by the
  calibration end) and over the held-out cells (months with a held-out day), month 0 left out (always 100%).

``headline`` picks the issue's four figures (``{"stickyrec": x, "bgnbd": y}``) from the views, BG/NBD's figures and
the simulator's per-customer scores. ``bgnbd_days`` draws a BG/NBD log as purchase days: the stand-in simulated log
that the report is developed and tested with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stickyrec.experiments.calibration import bgnbd, views
from stickyrec.experiments.calibration.transactions import Split

REPEAT_CAP = 10  # repeat purchase days pooled into "10+"
GAP_EDGES = (1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512)  # bins [e_i, e_i+1), last open
QUANTILES = (10, 25, 50, 75, 90)
HEADLINE = ("holdout_tracking_mape", "holdout_customer_mae", "holdout_customer_corr", "holdout_auc")
LOWER_IS_BETTER = {"holdout_tracking_mape": True, "holdout_customer_mae": True}  # the others: higher is better


def _number(value) -> float | None:
    """A float for JSON, None for a missing or non-finite one."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _numbers(values, digits: int = 6) -> list:
    return [None if v is None or not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, float)]


def _check_pair(real: Split, simulated: Split) -> None:
    for name, item in (("real", real), ("simulated", simulated)):
        if not isinstance(item, Split):
            raise ValueError(
                f"{name} must be a transactions.Split (from transactions.split); got {type(item).__name__}"
            )
        if len(item.summary) == 0:
            raise ValueError(f"the {name} split has no cohort customers (none bought by the calibration end)")
    if (real.calibration_end, real.holdout_end) != (simulated.calibration_end, simulated.holdout_end):
        raise ValueError(
            f"real and simulated splits must share their dates; real {real.calibration_end:%Y-%m-%d} to"
            f" {real.holdout_end:%Y-%m-%d}, simulated {simulated.calibration_end:%Y-%m-%d} to"
            f" {simulated.holdout_end:%Y-%m-%d}"
        )


# ------------------------------------------------------------------------------------------------------------------
# (1) tracking curve
# ------------------------------------------------------------------------------------------------------------------
def tracking_distances(curve: pd.DataFrame, predicted_cumulative) -> dict[str, float | None]:
    """MAPEs (%) of a predicted cumulative curve against the real one (rows of ``views.tracking_curve``)."""
    predicted = np.asarray(predicted_cumulative, dtype=float)
    held = (curve["period"] == "holdout").to_numpy()
    weeks = curve["week"].to_numpy()
    actual = curve["cumulative"].to_numpy(dtype=float)
    at_split = float(predicted[weeks == 0][0]) if (weeks == 0).any() else 0.0
    weekly = np.diff(np.concatenate([[0.0], predicted]))
    calibration = ~held
    calibration[np.argmax(calibration)] = False  # the first row also counts the days before it
    return {
        "holdout_since_split": _number(views.mape(curve["cumulative_since_split"][held], predicted[held] - at_split)),
        "holdout_from_start": _number(views.mape(actual[held], predicted[held])),
        "holdout_weekly": _number(views.mape(curve["repeat_purchases"][held], weekly[held])),
        "calibration": _number(views.mape(actual[calibration], predicted[calibration])),
    }


def _bgnbd_curve(curve: pd.DataFrame, bgnbd_figures: dict | None) -> np.ndarray | None:
    if not bgnbd_figures or "curve" not in bgnbd_figures:
        return None
    theirs = bgnbd_figures["curve"]
    by_week = dict(zip(theirs["week_end"], theirs["bgnbd"], strict=True))
    ours = [f"{d:%Y-%m-%d}" for d in curve["week_end"]]
    missing = [w for w in ours if w not in by_week]
    if missing:
        raise ValueError(
            f"bgnbd_figures['curve'] lacks weeks of the real tracking curve (first missing {missing[0]});"
            " score BG/NBD on the same split (baseline.score_bgnbd(real))"
        )
    return np.array([by_week[w] for w in ours], dtype=float)


def compare_tracking(real: Split, simulated: Split, scale: float, bgnbd_figures: dict | None) -> dict:
    """View (1): real, scaled simulated and BG/NBD cumulative repeat purchases per week, with their MAPEs."""
    curve = views.tracking_curve(real)
    theirs = views.tracking_curve(simulated).set_index("week")["cumulative"]
    sim = theirs.reindex(curve["week"]).ffill().fillna(0.0).to_numpy(dtype=float) * scale
    expected = _bgnbd_curve(curve, bgnbd_figures)
    distances = {key: {"stickyrec": value} for key, value in tracking_distances(curve, sim).items()}
    if expected is not None:
        for key, value in tracking_distances(curve, expected).items():
            distances[key]["bgnbd"] = value
    weeks = curve["week"].to_numpy()
    return {
        "week": weeks.astype(int).tolist(),
        "week_end": [f"{d:%Y-%m-%d}" for d in curve["week_end"]],
        "split_index": int(np.flatnonzero(weeks == 0)[0]) if (weeks == 0).any() else None,
        "split_week_end": f"{real.calibration_end:%Y-%m-%d}",
        "real": curve["cumulative"].astype(int).tolist(),
        "stickyrec": _numbers(sim, 3),
        "bgnbd": None if expected is None else _numbers(expected, 3),
        "mape": distances,
    }


# ------------------------------------------------------------------------------------------------------------------
# (2) repeat purchases per customer
# ------------------------------------------------------------------------------------------------------------------
def distribution_distances(real_shares, simulated_shares) -> dict[str, float]:
    """Total variation distance (half the L1 distance) and mean absolute difference of two share vectors."""
    diff = np.abs(np.asarray(real_shares, float) - np.asarray(simulated_shares, float))
    return {"total_variation": float(diff.sum() / 2), "mae": float(diff.mean())}


def compare_repeats(real: Split, simulated: Split, cap: int = REPEAT_CAP) -> dict:
    """View (2): shares of cohort customers by repeat purchase days, calibration (x) and held-out (x_holdout)."""
    out = {"labels": [str(k) for k in range(cap)] + [f"{cap}+"]}
    for period, column in (("calibration", "x"), ("holdout", "x_holdout")):
        ours = views.repeat_distribution(real.summary[column], cap)["share"].to_numpy()
        theirs = views.repeat_distribution(simulated.summary[column], cap)["share"].to_numpy()
        out[period] = {
            "real": _numbers(ours),
            "stickyrec": _numbers(theirs),
            "mean": {"real": float(real.summary[column].mean()), "stickyrec": float(simulated.summary[column].mean())},
            "distance": distribution_distances(ours, theirs),
        }
    return out


# ------------------------------------------------------------------------------------------------------------------
# (3) gaps between purchase days
# ------------------------------------------------------------------------------------------------------------------
def cohort_days(split_log: Split) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cohort customers' purchase days: calibration ones, and all of them (calibration and held-out)."""
    cohort = split_log.summary.index
    calibration = split_log.calibration[cohort.get_indexer(split_log.calibration["customer"]) >= 0]
    holdout = split_log.holdout[cohort.get_indexer(split_log.holdout["customer"]) >= 0]
    both = pd.concat([calibration[["customer", "day"]], holdout[["customer", "day"]]], ignore_index=True)
    return calibration[["customer", "day"]], both


def gaps_by_period(split_log: Split) -> dict[str, np.ndarray]:
    """Gaps (days) between consecutive purchase days of cohort customers, by the period of the later day.

    A gap whose later day is a calibration day joins two calibration days, so the held-out gaps are all gaps less
    the calibration ones (as multisets of whole days).
    """
    calibration, both = cohort_days(split_log)
    gaps_calibration = views.purchase_gaps(calibration)
    gaps_all = views.purchase_gaps(both)
    size = int(max(gaps_all.max(initial=0), gaps_calibration.max(initial=0))) + 1
    held = np.bincount(gaps_all, minlength=size) - np.bincount(gaps_calibration, minlength=size)
    return {"calibration": gaps_calibration, "holdout": np.repeat(np.arange(size), held)}


def gap_summary(gaps: np.ndarray) -> dict:
    """Shares on the ``GAP_EDGES`` bins and the quantiles of one sample of gaps."""
    counts = np.bincount(np.searchsorted(GAP_EDGES, gaps, side="right"), minlength=len(GAP_EDGES) + 1)[1:]
    shares = counts / max(int(counts.sum()), 1)
    quantiles = np.percentile(gaps, QUANTILES) if gaps.size else [np.nan] * len(QUANTILES)
    return {
        "n": int(gaps.size),
        "shares": _numbers(shares),
        "quantiles": {f"p{q}": _number(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
    }


def compare_gaps(real: Split, simulated: Split) -> dict:
    """View (3): gaps between purchase days, real against simulated, with the Kolmogorov-Smirnov distance."""
    ours, theirs = gaps_by_period(real), gaps_by_period(simulated)
    labels = [f"{lo}-{hi - 1}" if hi - 1 > lo else f"{lo}" for lo, hi in zip(GAP_EDGES[:-1], GAP_EDGES[1:])]
    out = {"edges": list(GAP_EDGES), "labels": labels + [f"{GAP_EDGES[-1]}+"]}
    for period in ("calibration", "holdout"):
        a, b = ours[period], theirs[period]
        ks = views.ks_distance(a, b) if a.size and b.size else None
        out[period] = {"real": gap_summary(a), "stickyrec": gap_summary(b), "ks": _number(ks)}
    return out


# ------------------------------------------------------------------------------------------------------------------
# (4) cohort retention by month of first purchase
# ------------------------------------------------------------------------------------------------------------------
def _matrix(share: pd.DataFrame, months: pd.PeriodIndex, ks: np.ndarray) -> np.ndarray:
    return share.drop(columns="customers").reindex(index=months, columns=ks).to_numpy(dtype=float, copy=True)


def _mean_abs_pp(ours: np.ndarray, theirs: np.ndarray, cells: np.ndarray) -> float | None:
    both = cells & np.isfinite(ours) & np.isfinite(theirs)
    return _number(np.mean(np.abs(ours[both] - theirs[both])) * 100.0) if both.any() else None


def compare_cohorts(real: Split, simulated: Split, scale: float) -> dict:
    """View (4): cohort retention matrices (share buying k months after the first purchase month), real and
    simulated, cells labelled calibration or held-out, with the mean absolute difference in percentage points."""
    ours = views.cohort_retention(cohort_days(real)[1])
    theirs = views.cohort_retention(cohort_days(simulated)[1])
    months = ours.index
    ks = np.array([c for c in ours.columns if c != "customers"], dtype=np.int64)
    real_m, sim_m = _matrix(ours, months, ks), _matrix(theirs, months, ks)
    sim_m[~np.isfinite(real_m)] = np.nan  # months after the real log's end are not observed
    cell_month = months.asi8[:, None] + ks[None, :]
    last_calibration = pd.Period(real.calibration_end, "M")
    if real.calibration_end != last_calibration.end_time.floor("D"):
        last_calibration -= 1  # the split month holds held-out days
    held = cell_month > last_calibration.ordinal
    observed = np.isfinite(real_m) & (ks[None, :] > 0)
    period = np.where(np.isfinite(real_m), np.where(held, "holdout", "calibration"), None)
    sizes = theirs["customers"].reindex(months).fillna(0).to_numpy(dtype=float) * scale
    return {
        "months": [str(m) for m in months],
        "months_after": ks.tolist(),
        "customers": {"real": ours["customers"].astype(int).tolist(), "stickyrec": _numbers(sizes, 1)},
        "real": [_numbers(row, 4) for row in real_m],
        "stickyrec": [_numbers(row, 4) for row in sim_m],
        "period": period.tolist(),
        "last_calibration_month": str(last_calibration),
        "mean_abs_diff_pp": {
            "calibration": _mean_abs_pp(real_m, sim_m, observed & ~held),
            "holdout": _mean_abs_pp(real_m, sim_m, observed & held),
        },
    }


# ------------------------------------------------------------------------------------------------------------------
# all four, the headline, the stand-in simulated log
# ------------------------------------------------------------------------------------------------------------------
def compare_views(real: Split, simulated: Split, bgnbd_figures: dict | None = None) -> dict:
    """The four views, real against simulated (and BG/NBD's tracking curve), with distances; JSON-ready."""
    _check_pair(real, simulated)
    n_real, n_sim = len(real.summary), len(simulated.summary)
    scale = n_real / n_sim
    return {
        "customers": {"real": n_real, "simulated": n_sim, "scale": scale},
        "dates": {
            "first_day": f"{real.first_day:%Y-%m-%d}",
            "cohort_first_purchase": f"{real.summary['first_day'].min():%Y-%m-%d}",
            "calibration_end": f"{real.calibration_end:%Y-%m-%d}",
            "holdout_end": f"{real.holdout_end:%Y-%m-%d}",
            "holdout_days": real.holdout_days,
        },
        "tracking": compare_tracking(real, simulated, scale, bgnbd_figures),
        "repeats": compare_repeats(real, simulated),
        "gaps": compare_gaps(real, simulated),
        "cohorts": compare_cohorts(real, simulated, scale),
    }


def headline(compared: dict, bgnbd_figures: dict | None, customer_scores: dict | None = None) -> dict:
    """The issue's four figures as ``{"stickyrec": x, "bgnbd": y}``: the held-out tracking MAPE since the split from
    ``compare_views``; MAE, correlation and AUC from ``customer_scores`` (the simulator's per-customer predictions,
    keys as in ``baseline.score_bgnbd``; None where not given) and from ``bgnbd_figures``."""
    bg = bgnbd_figures or {}
    ours = dict(customer_scores or {})
    ours["holdout_tracking_mape"] = compared["tracking"]["mape"]["holdout_since_split"]["stickyrec"]
    return {key: {"stickyrec": _number(ours.get(key)), "bgnbd": _number(bg.get(key))} for key in HEADLINE}


def better(figure: str, pair: dict) -> str | None:
    """Which side of a headline pair is better ("stickyrec", "bgnbd", "tie"), or None if one is missing."""
    ours, theirs = pair.get("stickyrec"), pair.get("bgnbd")
    if ours is None or theirs is None:
        return None
    if ours == theirs:
        return "tie"
    lower = LOWER_IS_BETTER.get(figure, False)
    return "stickyrec" if (ours < theirs) == lower else "bgnbd"


def bgnbd_days(params, first_days, holdout_end, rng: np.random.Generator, prefix: str = "s") -> pd.DataFrame:
    """Purchase days (customer, day) of customers drawn from BG/NBD, one per entry of ``first_days`` (Timestamps),
    observed up to ``holdout_end``: ``bgnbd.simulate_bgnbd`` gives each one's repeat count x and last repeat time
    t_x (weeks); given them, her earlier repeats are uniform on (0, t_x). Times round up to whole days (two repeats
    on one day are one purchase day)."""
    first = pd.DatetimeIndex(pd.to_datetime(np.asarray(first_days))).floor("D")
    end = pd.Timestamp(holdout_end).floor("D")
    if (first > end).any():
        raise ValueError(f"first_days must be on or before holdout_end {end:%Y-%m-%d}")
    ages = ((end - first) / pd.Timedelta(days=1)).to_numpy(dtype=float) / 7.0
    drawn = bgnbd.simulate_bgnbd(params, ages, rng)
    x, t_x = drawn["x"], drawn["t_x"]
    owner = np.repeat(np.arange(first.size), x)
    times = rng.uniform(size=owner.size) * t_x[owner]
    last = np.cumsum(x)[x > 0] - 1
    times[last] = t_x[x > 0]  # each customer's last repeat is at t_x
    offsets = np.minimum(np.ceil(times * 7.0 - 1e-9), np.round(ages[owner] * 7.0)).astype(np.int64)
    ids = np.array([f"{prefix}{i}" for i in range(first.size)], dtype=object)
    frame = pd.DataFrame(
        {
            "customer": np.concatenate([ids, ids[owner]]),
            "day": np.concatenate([first.to_numpy(), (first[owner] + pd.to_timedelta(offsets, unit="D")).to_numpy()]),
        }
    )
    return frame.drop_duplicates().sort_values(["customer", "day"], kind="stable").reset_index(drop=True)
