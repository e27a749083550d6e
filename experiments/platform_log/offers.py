"""Logged campaigns: every offer a platform sent, its propensity, and what the shopper did next.

``collect`` adds ``OfferLogObserver`` to a run whose config has ``offers: on``; it reads the env's offer infos
(``envs.offers.OFFER_INFO_KEYS``) and the policy's ``offer_propensity()`` (e.g. ``agents.offers.RandomOfferPolicy``),
and when the cohort is done writes one row per offer to the store's ``offer_events`` table
(``schema.OFFER_SCHEMA``), replacing any rows of the same run in one transaction (a resumed run writes them once).
Runs without offers never create that table. ``read_offer_events`` reads it back.

Outcomes: ``purchased`` and ``coupon_cost`` cover the purchases made while that coupon was in force (a visit offer:
from its step to the session's end or a newer visit offer; a between-visits offer: her next session, until a newer
visit offer); ``returned`` and ``churned`` are how the session in which it was sent ended.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stickyrec.experiments.platform_log.errors import EmptyLogError
from stickyrec.experiments.platform_log.schema import OFFER_COLUMNS, OFFER_SCHEMA, OFFERS_TABLE
from stickyrec.experiments.platform_log.stores import StoreLike, opened
from stickyrec.experiments.rollout import RolloutObserver

_VISIT, _BETWEEN = 0, 1
_KINDS = np.array(["visit", "between"])
_BUFFERS = {  # event column -> dtype (slot and kind are stored as ints, turned into the schema at the end)
    "slot": np.int64,
    "day": np.int32,
    "session": np.int32,
    "step": np.int32,
    "kind": np.int8,
    "discount": np.float64,
    "propensity": np.float64,
    "purchased": bool,
    "coupon_cost": np.float64,
    "returned": bool,
    "churned": bool,
    "pending": bool,  # a visit offer whose session has not ended yet
}


class OfferLogObserver(RolloutObserver):
    """Rollout observer: the offer events of a cohort (slot ``i`` is shopper ``i``), written at ``finish()``.

    ``store``: an open ``LogStore`` (``None``: keep the events in memory only; ``frame()`` returns them).
    """

    def __init__(self, store, run_id: str, policy_name: str, policy, n_shoppers: int) -> None:
        self.store, self.run_id, self.policy_name = store, run_id, policy_name
        self.propensity_of = getattr(policy, "offer_propensity", None)
        self.propensity: tuple[np.ndarray, np.ndarray] | None = None
        self.step = np.zeros(n_shoppers, np.int32)
        self.session = np.zeros(n_shoppers, np.int32)
        self.open = np.full(n_shoppers, -1, np.int64)  # the event whose coupon is in force, per slot
        self.n = 0
        self.events = {name: np.zeros(1024, dtype) for name, dtype in _BUFFERS.items()}

    def before_step(self, obs, slates, active) -> None:
        self.propensity = self.propensity_of() if callable(self.propensity_of) else None

    def _add(self, slots: np.ndarray, kind: int, discount: np.ndarray, info, which: int) -> np.ndarray:
        """New events for ``slots``; their indices."""
        if self.n + slots.size > self.events["slot"].shape[0]:
            size = max(2 * self.events["slot"].shape[0], self.n + slots.size)
            self.events = {k: np.resize(v, size) for k, v in self.events.items()}
        at = np.arange(self.n, self.n + slots.size)
        self.n += slots.size
        propensity = np.full(slots.size, np.nan) if self.propensity is None else self.propensity[which][slots]
        values = {
            "slot": slots,
            "day": info["day"][slots],
            "session": self.session[slots],
            "step": self.step[slots],
            "kind": kind,
            "discount": discount,
            "propensity": propensity,
            "purchased": False,
            "coupon_cost": 0.0,
            "returned": False,
            "churned": False,
            "pending": kind == _VISIT,
        }
        for name, value in values.items():
            self.events[name][at] = value
        return at

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        if "offer" not in info:  # offers off: nothing to log
            return
        ev = self.events
        rows = np.flatnonzero(active)
        offer = info["offer"][rows]
        sent = rows[~np.isnan(offer)]
        self.open[sent] = self._add(sent, _VISIT, info["offer"][sent], info, 0)
        bought = rows[info["purchased"][rows] & ~np.isnan(info["coupon_discount"][rows]) & (self.open[rows] >= 0)]
        at = self.open[bought]
        ev["purchased"][at] = True
        ev["coupon_cost"][at] += info["coupon_cost"][bought]
        ended = rows[info["session_ended"][rows]]
        if ended.size:
            pending = np.flatnonzero(ev["pending"][: self.n])
            done = pending[np.isin(ev["slot"][pending], ended)]
            ev["returned"][done] = info["returned"][ev["slot"][done]]
            ev["churned"][done] = info["churned"][ev["slot"][done]]
            ev["pending"][done] = False
            between = ended[~np.isnan(info["offer_between"][ended])]
            at = self._add(between, _BETWEEN, info["offer_between"][between], info, 1)
            ev["returned"][at], ev["churned"][at] = info["returned"][between], info["churned"][between]
            self.open[ended] = -1
            self.open[between] = np.where(info["returned"][between], at, -1)  # in force at her next visit
        self.step[rows] += 1
        self.session[ended] += 1

    def frame(self) -> pd.DataFrame:
        """The events so far in ``OFFER_SCHEMA`` order and dtypes."""
        ev = {name: values[: self.n] for name, values in self.events.items()}
        columns = {
            "run_id": np.full(self.n, self.run_id, dtype=object),
            "shopper": ev["slot"],
            "kind": _KINDS[ev["kind"]],
            "policy": np.full(self.n, self.policy_name, dtype=object),
            **{name: ev[name] for name in OFFER_COLUMNS if name in ev and name != "kind"},
        }
        frame = pd.DataFrame({c.name: columns[c.name] for c in OFFER_SCHEMA})
        order = np.lexsort((frame["kind"].to_numpy() == "between", frame["step"].to_numpy(), frame["shopper"]))
        return frame.iloc[order].reset_index(drop=True).astype({c.name: c.dtype for c in OFFER_SCHEMA})

    def finish(self) -> int:
        """Write the events (replacing the run's rows, one transaction) and return how many."""
        if self.store is not None:
            self.store.write_offer_events(self.run_id, self.frame())
        return self.n


def read_offer_events(store: StoreLike = None, run_id: str | None = None) -> pd.DataFrame:
    """The offer events of ``run_id`` (every run with None), ordered by run, shopper, step and kind (visit first).

    ``EmptyLogError`` when the store has no offer events (a run without offers writes none)."""
    with opened(store, read_only=True) as handle:
        frame = handle.read_offer_events(run_id)
    if frame is None or frame.empty:
        what = f"run {run_id!r}" if run_id is not None else "any run"
        raise EmptyLogError(f"no offer events for {what} (no {OFFERS_TABLE!r} rows: collect with offers: on)")
    frame = frame.assign(_between=frame["kind"] == "between")
    frame = frame.sort_values(["run_id", "shopper", "step", "_between"], kind="stable").drop(columns="_between")
    return frame.reset_index(drop=True).astype({c.name: c.dtype for c in OFFER_SCHEMA})
