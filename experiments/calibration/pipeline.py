"""``stickyrec calibrate``: a store's transaction log in, a calibrated world and its validation out.

``run_calibration`` reads and splits the log, fits the shopper population by simulated moments
(``estimate.calibrate``), simulates the fitted world on the log's calendar (``simulate_log``), predicts every
customer's held-out weeks (``predict``), fits and scores BG/NBD on the same split (``baseline``), and writes, all
at once (``stickyrec.io.staged_directory``: a failure leaves nothing half-written):

- ``preset.yaml``: the calibrated env config (the base preset plus the fitted population), which ``gym.make``
  (``config="DIR/preset.yaml"``) and experiment configs (``env: {preset: DIR/preset.yaml}``) accept;
- ``validation.json``: every figure, for stickyrec and for BG/NBD, and the fit (parameters with standard errors,
  moments, evaluations);
- ``predictions.csv``: per customer, P(alive) at the calibration end, expected purchase days and P(buys again) in
  the held-out weeks, against what she did (``stickyrec predict`` writes the same table without the fit);
- ``report.md``, ``report.html``, ``tracking.svg``, ``figures/``: the validation report (``report``), setting real
  against simulated on the calibration and the held-out weeks (``validate.compare_views``).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.envs.config import RetentionConfig, make_config
from stickyrec.experiments.calibration import moments as mom
from stickyrec.experiments.calibration import predict as pred
from stickyrec.experiments.calibration import report, validate, views
from stickyrec.experiments.calibration.baseline import score_bgnbd
from stickyrec.experiments.calibration.estimate import SimulatedFit, calibrate, fields_to_theta, world
from stickyrec.experiments.calibration.simulate_log import SimulatedLog, simulate_log
from stickyrec.experiments.calibration.transactions import Split, TransactionLog, as_day, split
from stickyrec.inputs import dump_yaml

AUTO = "auto"
COHORT_LAG_DAYS = 30  # --cohort-start auto: customers first seen in a log's first month may be old ones


@dataclass(frozen=True)
class CalibrationOptions:
    """What ``stickyrec calibrate`` takes besides the log; see ``stickyrec calibrate --help``."""

    calibration_end: str
    holdout_end: str | None = None
    cohort_start: str | None = AUTO
    base: str = "online_shoppers"
    policy: str = "random"
    ensemble: int = 3000
    validation_ensemble: int = 24000
    jacobian_ensemble: int | None = None  # default: twice the search ensemble
    budget_seconds: float = 540.0
    max_evaluations: int = 40
    seed: int = 0
    pool: int = 500

    def __post_init__(self) -> None:
        for name in ("ensemble", "validation_ensemble", "jacobian_ensemble", "max_evaluations", "pool"):
            value = getattr(self, name)
            if value is None and name == "jacobian_ensemble":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.ensemble < 200:
            raise ValueError(
                f"ensemble must be at least 200 shoppers (a smaller one cannot be fitted); got {self.ensemble}"
            )
        if not (isinstance(self.budget_seconds, (int, float)) and math.isfinite(self.budget_seconds)):
            raise ValueError(f"budget_seconds must be a finite number, got {self.budget_seconds!r}")
        if self.budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be > 0, got {self.budget_seconds}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.policy not in ("random",):
            raise ValueError(f"unknown status-quo policy {self.policy!r}; allowed: random")
        as_day(self.calibration_end, "calibration end")
        if self.holdout_end is not None:
            as_day(self.holdout_end, "holdout end")
        if self.cohort_start not in (None, AUTO, "none"):
            as_day(self.cohort_start, "cohort start")


def base_config(name: str) -> RetentionConfig:
    """The base world whose within-session fields the fit keeps (a preset name or a YAML file)."""
    return make_config(name)


def cohort_start_of(log: TransactionLog, option: str | None) -> pd.Timestamp | None:
    if option in (None, "none"):
        return None
    if option == AUTO:
        return log.first_day + pd.Timedelta(days=COHORT_LAG_DAYS)
    return as_day(option, "cohort start")


def split_log(log: TransactionLog, options: CalibrationOptions) -> tuple[Split, pd.Timestamp | None]:
    start = cohort_start_of(log, options.cohort_start)
    cut = split(log, options.calibration_end, options.holdout_end, cohort_start=start)
    if len(cut.summary) == 0:
        raise ValueError(
            f"no customer made a first purchase between the cohort start {start:%Y-%m-%d} and the calibration end"
            f" {cut.calibration_end:%Y-%m-%d}; allowed: a later calibration end or an earlier --cohort-start"
        )
    return cut, start


def customer_predictions(
    fit_fields: dict, days, summary: pd.DataFrame, horizon_days: float
) -> tuple[pd.DataFrame, float]:
    """Per-customer predictions over the next ``horizon_days`` (``predict``) for a summary's customers.

    ``days`` is a simulated base of the world (``PurchaseDays``): who among its shoppers became a customer gives
    P(customer | lambda). Adds each customer's actual purchase days after the calibration end when the summary has
    them (``x_holdout``).
    """
    selection = pred.selection_curve(days.visit_rate, ~np.isnan(days.first_day))
    grid = pred.population_grid(fit_fields, selection)
    x, t_x, T = summary["x"].to_numpy(), summary["t_x_days"].to_numpy(), summary["T_days"].to_numpy()
    kappa = pred.fit_kappa(grid, x, t_x, T)
    table = pred.predict_customers(grid, kappa, x, t_x, T, horizon_days)
    table.insert(0, "customer", summary.index.to_numpy())
    table.insert(1, "x", x)
    table.insert(2, "t_x_days", t_x)
    table.insert(3, "T_days", T)
    if "x_holdout" in summary:
        table["actual_purchases"] = summary["x_holdout"].to_numpy()
    return table, kappa


def customer_scores(table: pd.DataFrame) -> dict[str, float]:
    """The per-customer predictions scored on what each customer did in the held-out days (BG/NBD's key names)."""
    actual = table["actual_purchases"].to_numpy()
    return {
        "holdout_customer_mae": views.mae(actual, table["expected_purchases"]),
        "holdout_customer_corr": views.pearson(actual, table["expected_purchases"]),
        "holdout_auc": views.auc(actual > 0, table["p_buy"]),
    }


PRESET_HORIZON_DAYS = 365.0  # a calibrated world is a store's year: visits are weeks apart, not days


def preset_config(base: RetentionConfig, fit_fields: dict[str, float]) -> RetentionConfig:
    """The calibrated world as an env config: the base, the fitted population, latent churn only, a year's horizon."""
    return world(base, fields_to_theta(fit_fields)).replace(horizon_days=PRESET_HORIZON_DAYS)


def preset_yaml(config: RetentionConfig, header: list[str]) -> str:
    lines = "".join(f"# {line}\n" for line in header)
    return lines + dump_yaml(config.to_dict(nested=True), sort_keys=False)


@dataclass(frozen=True)
class Calibration:
    """Everything ``run_calibration`` computed (``validation`` is what validation.json holds)."""

    validation: dict
    predictions: pd.DataFrame
    preset: RetentionConfig
    real: Split
    simulated: SimulatedLog
    fit: SimulatedFit


def fit_log(log: TransactionLog, options: CalibrationOptions, progress=None, name: str | None = None) -> Calibration:
    """The whole calibration of one log, in memory (``write_calibration`` puts it on disk); ``name`` describes the
    log in the outputs (default: its source, password masked)."""
    started = time.perf_counter()
    real, cohort_start = split_log(log, options)
    base = base_config(options.base)
    fit = calibrate(
        mom.histories(real),
        base,
        ensemble=options.ensemble,
        jacobian_ensemble=options.jacobian_ensemble or 2 * options.ensemble,
        seed=options.seed,
        budget_s=options.budget_seconds,
        max_evals=options.max_evaluations,
        progress=progress,
        reserve_shoppers=options.validation_ensemble,
    )
    calibration_seconds = time.perf_counter() - started
    preset = preset_config(base, fit.fields)
    simulated = simulate_log(world(base, fit.theta), real, options.validation_ensemble, seed=options.seed + 20_000_000)
    table, kappa = customer_predictions(fit.fields, simulated.days, real.summary, real.holdout_days)
    bgnbd = score_bgnbd(real)
    compared = validate.compare_views(real, simulated.split, bgnbd)
    validation = {
        "log": name or log.source,
        "customers": int(len(real.summary)),
        "calibration_seconds": calibration_seconds,
        "total_seconds": time.perf_counter() - started,
        **validate.headline(compared, bgnbd, customer_scores(table)),
        "tracking_mape": compared["tracking"]["mape"],
        "calibration_end": f"{real.calibration_end:%Y-%m-%d}",
        "holdout_end": f"{real.holdout_end:%Y-%m-%d}",
        "holdout_days": real.holdout_days,
        "cohort_start": None if cohort_start is None else f"{cohort_start:%Y-%m-%d}",
        "policy": options.policy,
        "base": options.base,
        "options": asdict(options),
        "kappa": kappa,
        "validation_customers": int(len(simulated.days.customers)),
        "holdout_purchases": {
            "actual": int(real.summary["x_holdout"].sum()),
            "stickyrec_population": float(simulated.split.summary["x_holdout"].sum() * simulated.scale),
            "stickyrec_customers": float(table["expected_purchases"].sum()),
            "bgnbd": float(bgnbd["holdout_purchases_bgnbd"]),
        },
        **fit.as_dict(),
        "bgnbd_fit": {"params": bgnbd["params"], "se": bgnbd["se"], "log_likelihood": bgnbd["log_likelihood"]},
        "views": compared,
    }
    if validation["log"].startswith("example:"):
        validation["example"] = validation["log"].removeprefix("example:")
    validation["notes"] = notes(validation)
    return Calibration(validation, table, preset, real, simulated, fit)


def notes(v: dict) -> list[str]:
    """What an analyst should know to read the report."""
    start = v["cohort_start"]
    return [
        f"The simulated side is {v['validation_customers']:,} customers of the fitted world under the status-quo"
        f" policy ({v['policy']} slates), each placed on the first purchase day of a real customer drawn at random;"
        " its counts are scaled to the real cohort. It knows when each customer first bought, not what she did next:"
        " the tracking curve is a population prediction, as BG/NBD's is. The per-customer figures condition on each"
        " customer's calibration weeks (importance weights over the fitted population).",
        "Cohort: customers whose first purchase day is "
        + (
            f"on or after {start} (earlier ones may be older customers, left-censored by the log's start)."
            if start
            else "any day of the log."
        )
        + " Tracking MAPE counts cumulative repeat purchase days from the calibration end.",
        f"Fit: simulated method of moments on {len(v['moments'])} moments of the calibration weeks,"
        f" {v['evaluations']} simulations of {v['options']['ensemble']:,} shoppers; chi-square {v['chi2']:.1f};"
        f" over-identification J = {v['j_statistic']:.1f} (p = {v['j_p_value']:.2g}): a small p says no parameter"
        " value matches every moment at once (see the moments table in validation.json). The search stopped by"
        f" {v['stopped_by']}"
        + (
            " (--budget-seconds: on a faster machine it would have gone further)."
            if v["stopped_by"] == "budget"
            else "."
        ),
    ]


def write_calibration(result: Calibration, out_dir: str | Path) -> None:
    """DIR/preset.yaml, validation.json, predictions.csv and the report, all at once."""
    from stickyrec.io import staged_directory, write_bytes_atomic, write_json_atomic

    v = result.validation
    header = [
        f"stickyrec calibrate: {v['log']}, {v['customers']} customers, calibration weeks to {v['calibration_end']}",
        f"status-quo policy: {v['policy']}; base: {v['base']}; fitted: {', '.join(v['params'])}",
    ]
    with staged_directory(out_dir) as stage:
        write_bytes_atomic(stage / "preset.yaml", preset_yaml(result.preset, header).encode())
        write_json_atomic(stage / "validation.json", v)
        write_bytes_atomic(stage / "predictions.csv", result.predictions.to_csv(index=False).encode())
        report.write_report(stage, v)
