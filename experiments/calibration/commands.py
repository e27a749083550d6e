"""The ``stickyrec calibrate`` and ``stickyrec predict`` commands (registered by ``experiments.cli``).

    stickyrec calibrate LOG --calibration-end 2011-06-30 --out DIR [--customer COL --time COL --value COL
        --order COL] [--table T | --query SQL] [--cohort-start auto|none|YYYY-MM-DD] [--base PRESET|YAML]
    stickyrec predict LOG --preset DIR/preset.yaml [--calibration-end YYYY-MM-DD] [--weeks N] --out TABLE.csv

LOG is a CSV, Parquet or DuckDB file, or an SQLAlchemy URL (MySQL included) with ``--table`` or ``--query``;
``example:online_retail_ii`` names the shipped Online Retail II example. Every argument is checked before the log
is read and before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time

from stickyrec.inputs import check_output_path

EXAMPLE_PREFIX = "example:"


def _resolve_log(text: str):
    if text.startswith(EXAMPLE_PREFIX):
        from stickyrec.experiments.calibration.examples import load_example

        return load_example(text[len(EXAMPLE_PREFIX) :])
    return text


def _log_name(text: str, log) -> str:
    """How outputs name the log: the example's name, or the source as read (password masked)."""
    return text if text.startswith(EXAMPLE_PREFIX) else log.source


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("log", help="CSV, Parquet or DuckDB file, SQLAlchemy URL, or example:online_retail_ii")
    parser.add_argument("--customer", default=None, help="customer id column (default: recognised by name)")
    parser.add_argument("--time", default=None, help="timestamp column (default: recognised by name)")
    parser.add_argument("--value", default=None, help="line value column (default: value/amount, or qty x price)")
    parser.add_argument("--order", default=None, help="order id column (default: recognised by name; optional)")
    parser.add_argument("--table", default=None, help="table to read (DuckDB file or SQL URL)")
    parser.add_argument("--query", default=None, help="SELECT to read (DuckDB file or SQL URL)")


def _read(args):
    from stickyrec.experiments.calibration.transactions import read_transactions

    return read_transactions(
        _resolve_log(args.log), args.customer, args.time, args.value, args.order, args.table, args.query
    )


def _bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="calibrate", unit="sim", disable=not enabled, file=sys.stderr)


def cmd_calibrate(args) -> int:
    from stickyrec.experiments.calibration import pipeline

    options = pipeline.CalibrationOptions(
        calibration_end=args.calibration_end,
        holdout_end=args.holdout_end,
        cohort_start=args.cohort_start,
        base=args.base or pipeline.CalibrationOptions.base,
        ensemble=args.ensemble,
        validation_ensemble=args.validation_ensemble,
        budget_seconds=args.budget_seconds,
        max_evaluations=args.max_evaluations,
        seed=args.seed,
    )
    pipeline.base_config(options.base)  # a bad base preset fails here, before the log is read
    out = check_output_path(args.out, "dir", "--out")
    started = time.perf_counter()
    log = _read(args)
    bar = _bar(options.max_evaluations, not args.no_progress)

    def progress(done: int, chi2: float, best: float) -> None:
        bar.update(done - bar.n)
        bar.set_postfix(chi2=f"{chi2:.1f}", best=f"{best:.1f}")

    with bar:
        result = pipeline.fit_log(log, options, progress=progress, name=_log_name(args.log, log))
    pipeline.write_calibration(result, out)
    v = result.validation
    elapsed = time.perf_counter() - started
    print(f"{v['customers']:,} customers; calibrated in {v['calibration_seconds']:.0f} s ({elapsed:.0f} s in all)")
    print(f"{'figure':32s} {'stickyrec':>10s} {'BG/NBD':>10s}")
    for key in ("holdout_tracking_mape", "holdout_customer_mae", "holdout_customer_corr", "holdout_auc"):
        print(f"{key:32s} {v[key]['stickyrec']:10.3f} {v[key]['bgnbd']:10.3f}")
    print(f"wrote {out}/preset.yaml, validation.json, predictions.csv, report.md, report.html")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from stickyrec.envs.config import make_config
    from stickyrec.experiments.calibration import pipeline, transactions
    from stickyrec.experiments.calibration.ensemble import simulate_purchase_days
    from stickyrec.experiments.calibration.estimate import PARAMS

    if not args.preset.endswith((".yaml", ".yml")):
        raise ValueError(f"--preset {args.preset!r}: allowed: a preset.yaml written by stickyrec calibrate")
    config = make_config(args.preset)
    if config.visit_rate_distribution != "gamma" or config.dropout_distribution != "beta":
        raise ValueError(
            f"--preset {args.preset!r} is not a calibrated world; allowed: a preset with visit_rate_distribution"
            " gamma and dropout_distribution beta (what stickyrec calibrate writes)"
        )
    if not (args.weeks > 0 and np.isfinite(args.weeks)):
        raise ValueError(f"--weeks must be a positive number, got {args.weeks}")
    if args.ensemble < 200 or args.seed < 0:
        raise ValueError(f"--ensemble must be >= 200 and --seed >= 0; got {args.ensemble}, {args.seed}")
    out = check_output_path(args.out, "file", "--out")
    log = _read(args)
    end = log.last_day if args.calibration_end is None else transactions.as_day(args.calibration_end, "calibration end")
    summary = _summary(log, end, args.weeks)
    days = simulate_purchase_days(config, np.zeros(args.ensemble), seed=args.seed)
    fields = {k: getattr(config, k) for k in PARAMS}
    table, kappa = pipeline.customer_predictions(fields, days, summary, args.weeks * 7.0)
    from stickyrec.io import write_bytes_atomic

    write_bytes_atomic(out, table.to_csv(index=False).encode())
    print(f"{len(table):,} customers, next {args.weeks:g} weeks after {end:%Y-%m-%d} (kappa {kappa:.3f}); wrote {out}")
    if "actual_purchases" in table:
        from stickyrec.experiments.calibration import views

        actual = table["actual_purchases"].to_numpy()
        print(
            f"scored on the log's next {args.weeks:g} weeks: MAE {views.mae(actual, table['expected_purchases']):.3f},"
            f" corr {views.pearson(actual, table['expected_purchases']):.3f},"
            f" AUC {views.auc(actual > 0, table['p_buy']):.3f}"
        )
    return 0


def _summary(log, end, weeks: float):
    """Each customer's history up to ``end`` and, where the log covers them, her purchase days in the next weeks."""
    import pandas as pd

    from stickyrec.experiments.calibration import transactions

    if not log.first_day <= end <= log.last_day:
        raise ValueError(
            f"calibration end {end:%Y-%m-%d} is outside the log ({log.first_day:%Y-%m-%d} to {log.last_day:%Y-%m-%d})"
        )
    horizon_end = end + pd.Timedelta(days=round(weeks * 7))
    if horizon_end <= log.last_day:
        return transactions.split(log, end, horizon_end).summary
    days = log.days
    summary = transactions.rfm_summary(days[days["day"] <= end], days.iloc[:0], end)
    return summary.drop(columns=["x_holdout"])


def add_commands(sub) -> None:
    calibrate = sub.add_parser(
        "calibrate", help="fit the shoppers to a store's transaction log; validate on held-out weeks"
    )
    _add_log_arguments(calibrate)
    calibrate.add_argument("--calibration-end", required=True, help="last day the fit may see, YYYY-MM-DD")
    calibrate.add_argument("--holdout-end", default=None, help="last held-out day (default: the log's last day)")
    calibrate.add_argument(
        "--cohort-start",
        default="auto",
        help="leave out customers first seen before this day: auto (the log's first day + 30 days: a log's first"
        " month holds old customers), none, or YYYY-MM-DD",
    )
    calibrate.add_argument(
        "--base",
        default=None,
        help="base world (preset name or YAML) whose within-session fields stay (default: online_shoppers)",
    )
    calibrate.add_argument(
        "--ensemble", type=int, default=3000, help="simulated shoppers per evaluation (default 3000)"
    )
    calibrate.add_argument(
        "--validation-ensemble", type=int, default=24000, help="shoppers of the validation run (24000)"
    )
    calibrate.add_argument(
        "--budget-seconds",
        type=float,
        default=540.0,
        help="time for the fit, its uncertainty and the validation run (default 540): the search stops early enough;"
        " a fit cut short by it depends on the machine's speed (validation.json: stopped_by)",
    )
    calibrate.add_argument(
        "--max-evaluations", type=int, default=40, help="simulations in the search (default 40; see --budget-seconds)"
    )
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument("--out", required=True, help="folder for preset.yaml, validation.json, the report")
    calibrate.add_argument("--no-progress", action="store_true", help="no progress bar")
    calibrate.set_defaults(func=cmd_calibrate)

    predict = sub.add_parser("predict", help="per-customer P(alive) and expected purchases from a calibrated preset")
    _add_log_arguments(predict)
    predict.add_argument("--preset", required=True, help="preset.yaml written by stickyrec calibrate")
    predict.add_argument("--calibration-end", default=None, help="predict from this day (default: the log's last)")
    predict.add_argument("--weeks", type=float, default=26.0, help="prediction horizon in weeks (default 26)")
    predict.add_argument("--ensemble", type=int, default=6000, help="simulated shoppers for P(customer | rate)")
    predict.add_argument("--seed", type=int, default=0)
    predict.add_argument("--out", required=True, help="CSV file for the per-customer table")
    predict.set_defaults(func=cmd_predict)
