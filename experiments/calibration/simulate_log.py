"""A calibrated world's customer base as a log: simulated customers placed on a real log's calendar.

Simulated shopper j takes the place of a real customer drawn at random (her "template"): she is followed for
that customer's age at the calibration end plus the held-out days, and her first purchase falls on that customer's
first purchase day. The result is a ``Split`` on the real log's dates, so every view and distance of a real log
(``views``) applies to it unchanged, and the held-out weeks are a prediction the fit never saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.calibration.ensemble import PurchaseDays, simulate_purchase_days
from stickyrec.experiments.calibration.transactions import Split, rfm_summary


@dataclass(frozen=True)
class SimulatedLog:
    """The simulated base (``days``), its split on the real calendar, each shopper's template customer (a row of
    the real summary), and how many customers the real log has."""

    days: PurchaseDays
    split: Split
    template: np.ndarray
    real_customers: int

    @property
    def scale(self) -> float:
        """Real customers per simulated customer: multiply simulated counts by it to compare totals."""
        return self.real_customers / max(len(self.days.customers), 1)


def on_calendar(days: pd.DataFrame, real: Split) -> Split:
    """Simulated purchase days cut like ``real`` (same calibration end and held-out end, whatever days they hold)."""
    end, stop = real.calibration_end, real.holdout_end
    in_calibration = (days["day"] <= end).to_numpy()
    in_holdout = ~in_calibration & (days["day"] <= stop).to_numpy()
    calibration = days[in_calibration].reset_index(drop=True)
    holdout = days[in_holdout].reset_index(drop=True)
    return Split(calibration, holdout, rfm_summary(calibration, holdout, end), end, stop, real.first_day)


def simulate_log(
    config: RetentionConfig, real: Split, shoppers: int, *, seed: int, pool: int = 500, progress=None
) -> SimulatedLog:
    """Simulate ``shoppers`` shoppers of ``config`` on ``real``'s calendar (see the module docstring)."""
    summary = real.summary
    if len(summary) == 0:
        raise ValueError("the real log has no customers in its calibration weeks")
    rng = np.random.default_rng(seed)
    template = rng.integers(len(summary), size=shoppers)
    age = ((real.calibration_end - summary["first_day"]) // np.timedelta64(1, "D")).to_numpy(dtype=float)
    spans = age[template] + real.holdout_days
    days = simulate_purchase_days(config, spans, seed=seed, pool=pool, progress=progress)
    customers = days.customers
    frame = days.days_frame(summary["first_day"].to_numpy()[template])
    frame = frame[np.isin(frame["customer"].to_numpy(), customers)]
    simulated = on_calendar(frame, real)
    return SimulatedLog(days=days, split=simulated, template=template, real_customers=len(summary))


def synthetic_log(
    config: RetentionConfig, shoppers: int, start, end, *, acquisition_days: float, seed: int, pool: int = 500
) -> pd.DataFrame:
    """A store's log simulated from a known world: ``shoppers`` arrive uniformly over the first
    ``acquisition_days`` after ``start`` and are followed to ``end``. One row per customer and purchase day
    (``customer``, ``day``), shoppers who never buy left out: what ``read_transactions`` makes of a real log, for
    parameter-recovery tests and timings."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    rng = np.random.default_rng(seed)
    arrival = start + pd.to_timedelta(np.floor(rng.uniform(0.0, acquisition_days, shoppers)), unit="D")
    spans = ((end - arrival) // pd.Timedelta(days=1)).to_numpy(dtype=float)
    days = simulate_purchase_days(config, spans, seed=seed, pool=pool)
    first = arrival + pd.to_timedelta(np.nan_to_num(days.first_day), unit="D")
    frame = days.days_frame(first)
    frame = frame[frame["day"] <= end]
    frame["customer"] = "c" + frame["customer"].astype(str)
    return frame.reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m stickyrec.experiments.calibration.simulate_log --shoppers N --out LOG.csv``: a synthetic store log
    from a calibrated world (default: the ``online_retail`` preset), e.g. for timing ``stickyrec calibrate``."""
    import argparse

    from stickyrec.envs.config import make_config
    from stickyrec.io import write_bytes_atomic

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--shoppers", type=int, required=True, help="shoppers who arrive (about 70%% become customers)")
    parser.add_argument("--config", default="online_retail", help="preset or YAML with gamma/beta shoppers")
    parser.add_argument("--start", default="2020-01-01")
    parser.add_argument("--end", default="2021-12-31")
    parser.add_argument("--acquisition-days", type=float, default=365.0, help="arrivals spread over these first days")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="CSV file: customer_id, order_date")
    args = parser.parse_args(argv)
    if args.shoppers < 1 or args.seed < 0 or not args.acquisition_days > 0:
        parser.error("--shoppers must be >= 1, --seed >= 0 and --acquisition-days > 0")
    config = make_config(args.config)
    frame = synthetic_log(
        config, args.shoppers, args.start, args.end, acquisition_days=args.acquisition_days, seed=args.seed
    )
    frame = frame.rename(columns={"customer": "customer_id", "day": "order_date"})
    write_bytes_atomic(args.out, frame.to_csv(index=False).encode())
    print(f"{frame['customer_id'].nunique():,} customers, {len(frame):,} purchase days; wrote {args.out}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
