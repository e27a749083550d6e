"""The platform's log at the grain the marketing models need: one row per step (slate shown), one per session.

``log_steps`` reduces the impression log (``experiments.platform_log``, one row per slate position) to one row per
step; ``StepRecorder`` is a rollout observer that builds the same table directly (no store: the demo and the
experiments use it to save the per-position rows; ``tests/test_marketing_warning.py`` checks the two agree).
``session_table`` sums steps into sessions. Columns of a step table (``STEP_COLUMNS``):

``shopper``, ``step`` (from 0 in her life), ``day`` (floor of the session's start time), ``session`` (from 0),
``clicked_item`` (catalog id, -1 for none), ``purchased``, ``revenue`` (what the platform sees), and the step-level
outcomes ``returned`` and ``churned`` — the simulator's truth, known only later: labels, never features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stickyrec.experiments.rollout import RolloutObserver

STEP_COLUMNS: tuple[str, ...] = (
    "shopper",
    "step",
    "day",
    "session",
    "clicked_item",
    "purchased",
    "revenue",
    "returned",
    "churned",
)
NEEDED_LOG_COLUMNS: tuple[str, ...] = (
    "shopper",
    "step",
    "day",
    "session",
    "item_id",
    "clicked",
    "purchased",
    "revenue",
    "returned",
    "churned",
)


def log_steps(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per (shopper, step) of an impression log (one run), in ``STEP_COLUMNS``, ordered by shopper, step."""
    missing = [c for c in NEEDED_LOG_COLUMNS if c not in impressions.columns]
    if missing:
        raise ValueError(f"the impression log lacks columns {missing}; needed: {list(NEEDED_LOG_COLUMNS)}")
    if "run_id" in impressions.columns and impressions["run_id"].nunique() > 1:
        raise ValueError(f"the log holds {impressions['run_id'].nunique()} runs; pass the impressions of one run")
    frame = impressions.assign(clicked_id=np.where(impressions["clicked"], impressions["item_id"], -1))
    steps = (
        frame.groupby(["shopper", "step"], sort=True)
        .agg(
            day=("day", "first"),
            session=("session", "first"),
            clicked_item=("clicked_id", "max"),
            purchased=("purchased", "any"),
            revenue=("revenue", "sum"),
            returned=("returned", "first"),
            churned=("churned", "first"),
        )
        .reset_index()
    )
    return as_step_dtypes(steps)


def as_step_dtypes(steps: pd.DataFrame) -> pd.DataFrame:
    """A step table in ``STEP_COLUMNS`` order and dtypes (int64 ids and days, bool flags, float64 revenue)."""
    out = pd.DataFrame({c: steps[c].to_numpy() for c in STEP_COLUMNS})
    for c in ("shopper", "step", "day", "session", "clicked_item"):
        out[c] = out[c].astype(np.int64)
    for c in ("purchased", "returned", "churned"):
        out[c] = out[c].astype(bool)
    out["revenue"] = out["revenue"].astype(np.float64)
    return out


class StepRecorder(RolloutObserver):
    """Rollout observer: the step table of a run (``log_steps`` of its impression log, without the store)."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []
        self.session: np.ndarray | None = None
        self.step: np.ndarray | None = None

    def on_reset(self, env, obs, info) -> None:
        self.session = np.zeros(env.num_envs, dtype=np.int64)
        self.step = np.zeros(env.num_envs, dtype=np.int64)

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        rows = np.flatnonzero(active)
        self.parts.append(
            {
                "shopper": rows,
                "step": self.step[rows],
                "day": np.asarray(info["day"])[rows],
                "session": self.session[rows],
                "clicked_item": np.asarray(info["clicked_item"])[rows],
                "purchased": np.asarray(info["purchased"])[rows],
                "revenue": np.asarray(info["revenue"])[rows],
                "returned": np.asarray(info["returned"])[rows],
                "churned": np.asarray(info["churned"])[rows],
            }
        )
        self.step[rows] += 1
        self.session += np.asarray(info["returned"], dtype=bool) & active

    def finish(self) -> pd.DataFrame:
        if not self.parts:
            return as_step_dtypes(pd.DataFrame({c: np.zeros(0) for c in STEP_COLUMNS}))
        table = pd.DataFrame({c: np.concatenate([p[c] for p in self.parts]) for c in STEP_COLUMNS})
        return as_step_dtypes(table.sort_values(["shopper", "step"], kind="stable").reset_index(drop=True))


def check_steps(steps) -> pd.DataFrame:
    """``steps`` if it is a step table (a DataFrame with every ``STEP_COLUMNS`` column), else ``ValueError``."""
    if not isinstance(steps, pd.DataFrame):
        raise ValueError(f"steps must be a pandas DataFrame (log_steps or StepRecorder), got {type(steps).__name__}")
    missing = [c for c in STEP_COLUMNS if c not in steps.columns]
    if missing:
        raise ValueError(f"the step table lacks columns {missing}; needed: {list(STEP_COLUMNS)} (see log_steps)")
    return steps


def session_table(steps: pd.DataFrame, item_rating: np.ndarray | None = None) -> pd.DataFrame:
    """One row per (shopper, session): ``day``, ``slates``, ``clicks``, ``purchases``, ``revenue``, ``rating_sum``
    (public ratings of clicked items; 0 without ``item_rating``), ``end_no_click_run`` (slates without a click at the
    session's end), and the truth ``churned`` (the session ended in churn; a label, never a feature)."""
    clicked = check_steps(steps)["clicked_item"].to_numpy() >= 0
    rating = np.zeros(len(steps))
    if item_rating is not None:
        rating[clicked] = np.asarray(item_rating)[steps["clicked_item"].to_numpy()[clicked]]
    frame = steps.assign(clicked=clicked, rating=rating)
    frame["since_click"] = no_click_runs(frame)
    sessions = (
        frame.groupby(["shopper", "session"], sort=True)
        .agg(
            day=("day", "first"),
            slates=("step", "size"),
            clicks=("clicked", "sum"),
            purchases=("purchased", "sum"),
            revenue=("revenue", "sum"),
            rating_sum=("rating", "sum"),
            end_no_click_run=("since_click", "last"),
            churned=("churned", "any"),
        )
        .reset_index()
    )
    return sessions


def no_click_runs(steps: pd.DataFrame) -> np.ndarray:
    """Per step, the slates without a click in its session up to and including it (0 on a clicked slate)."""
    clicked = steps["clicked_item"].to_numpy() >= 0
    keys = [steps["shopper"], steps["session"]]
    clicks_so_far = pd.Series(clicked, index=steps.index).groupby(keys, sort=False).cumsum()
    since = steps.groupby([*keys, clicks_so_far], sort=False).cumcount().to_numpy()
    return since + (clicks_so_far.to_numpy() == 0)  # before any click, every slate so far counts
