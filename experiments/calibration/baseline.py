"""BG/NBD on a split log, scored on the held-out weeks: the reference figures of a calibration report.

    python -m stickyrec.experiments.calibration.baseline [LOG] --calibration-end 2011-06-30 \\
        [--cohort-start 2010-01-01] [--json OUT]

LOG defaults to the shipped Online Retail II example. The figures (``score_bgnbd``):

- ``holdout_tracking_mape``: mean absolute percentage error of the cohort's cumulative repeat purchase days
  counted from the calibration end, at the end of each whole held-out week (``..._from_start`` counts from the
  start of the log, as the classic tracking plot does, which flatters every model with the calibration weeks;
  ``..._weekly`` compares the weekly counts themselves);
- ``holdout_customer_mae`` and ``holdout_customer_corr``: each customer's expected purchase days over the whole
  held-out span against her actual ones (mean absolute error, Pearson correlation);
- ``holdout_auc``: area under the ROC curve of P(at least one purchase in the held-out span) for "bought again".
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from stickyrec.experiments.calibration import bgnbd, views
from stickyrec.experiments.calibration.transactions import Split, read_transactions, split


def tracking_figures(split_log: Split, params) -> dict:
    """Real and BG/NBD tracking curves (cumulative repeat purchase days) and their distances."""
    curve = views.tracking_curve(split_log)
    expected = bgnbd.expected_cumulative_repeats(params, views.first_day_numbers(split_log), curve["week_day"])
    held = (curve["period"] == "holdout").to_numpy()
    calibration = ~held
    actual = curve["cumulative"].to_numpy(dtype=float)
    at_split = expected[curve["week"].to_numpy() == 0]
    at_split = float(at_split[0]) if at_split.size else 0.0
    weekly_expected = np.diff(np.concatenate([[0.0], expected]))
    return {
        "curve": {
            "week_end": [f"{d:%Y-%m-%d}" for d in curve["week_end"]],
            "actual": actual.astype(int).tolist(),
            "bgnbd": np.round(expected, 3).tolist(),
        },
        "holdout_tracking_mape": views.mape(curve["cumulative_since_split"][held], expected[held] - at_split),
        "holdout_tracking_mape_from_start": views.mape(actual[held], expected[held]),
        "holdout_tracking_mape_weekly": views.mape(curve["repeat_purchases"][held], weekly_expected[held]),
        "calibration_tracking_mape": views.mape(actual[calibration][1:], expected[calibration][1:]),
    }


def score_bgnbd(split_log: Split) -> dict:
    """Fit BG/NBD to the calibration summary and score it on the held-out span (see the module docstring)."""
    summary = split_log.summary
    started = time.perf_counter()
    fit = bgnbd.fit_bgnbd(summary["x"], summary["t_x"], summary["T"])
    seconds = time.perf_counter() - started
    horizon = split_log.holdout_weeks
    args = (summary["x"], summary["t_x"], summary["T"])
    predicted = bgnbd.conditional_expected_purchases(fit.params, horizon, *args)
    buys = bgnbd.prob_purchase(fit.params, horizon, *args)
    actual = summary["x_holdout"].to_numpy()
    figures = {
        "calibration_end": f"{split_log.calibration_end:%Y-%m-%d}",
        "holdout_end": f"{split_log.holdout_end:%Y-%m-%d}",
        "holdout_days": split_log.holdout_days,
        "customers": int(len(summary)),
        "params": fit.params.as_dict(),
        "se": fit.se,
        "log_likelihood": fit.log_likelihood,
        "converged": fit.converged,
        "fit_seconds": seconds,
        "holdout_customer_mae": views.mae(actual, predicted),
        "holdout_customer_corr": views.pearson(actual, predicted),
        "holdout_auc": views.auc(actual > 0, buys),
        "holdout_purchases_actual": int(actual.sum()),
        "holdout_purchases_bgnbd": float(predicted.sum()),
    }
    figures.update(tracking_figures(split_log, fit.params))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BG/NBD fitted to a log's calibration weeks, scored on the rest")
    parser.add_argument("log", nargs="?", default=None, help="transaction log (default: the shipped example)")
    parser.add_argument("--calibration-end", required=True, help="last calibration day, YYYY-MM-DD")
    parser.add_argument("--cohort-start", default=None, help="leave out customers whose first purchase is before")
    parser.add_argument("--json", default=None, help="also write the figures (with both curves) here")
    args = parser.parse_args(argv)
    if args.log is None:
        from stickyrec.experiments.calibration.examples import load_example

        args.log = load_example("online_retail_ii")
    started = time.perf_counter()
    try:
        log = read_transactions(args.log)
        cut = split(log, args.calibration_end, cohort_start=args.cohort_start)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    read_seconds = time.perf_counter() - started
    figures = {"read_and_split_seconds": read_seconds, **score_bgnbd(cut)}
    if args.json:
        from stickyrec.io import write_json_atomic

        write_json_atomic(args.json, figures)
    shown = {k: v for k, v in figures.items() if k != "curve"}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
