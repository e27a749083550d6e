"""The calibration's validation report: ``report.md``, a self-contained ``report.html`` and ``tracking.svg``.

``write_report(out_dir, validation)`` renders a validation dict (what ``validation.json`` holds) with the blocks of
``experiments.report_render``. The dict's keys (``check_validation`` refuses a dict without the required ones):

- required: ``log`` (the log described without credentials), ``customers`` (the calibration cohort), ``policy``
  (the status-quo policy the simulated shoppers ran under), ``calibration_seconds``, ``params`` (``{name:
  {"value": v, "se": s}}``, rendered whatever the names), the four headline figures ``holdout_tracking_mape``,
  ``holdout_customer_mae``, ``holdout_customer_corr``, ``holdout_auc`` (each ``{"stickyrec": x, "bgnbd": y}``, a
  side may be None) and ``views`` (``validate.compare_views``);
- optional: ``cohort_start`` (None: every customer of the calibration weeks), ``example`` (the shipped example's
  name, e.g. ``"online_retail_ii"``, which adds its CC BY 4.0 attribution), ``notes`` (a list of paragraphs).

Files, each written atomically (``stickyrec.io``): ``report.md``, ``report.html`` (inline SVG charts, no scripts,
no network; a viewport tag; wide tables scroll with their first column in view; cohort tables as shaded grids),
``tracking.svg`` (the classic tracking plot: real, stickyrec and BG/NBD cumulative repeat purchases with a line at
the split, for a README) and ``figures/*.svg`` (the other charts, which ``report.md`` links).

    python -m stickyrec.experiments.calibration.report --demo OUT_DIR

renders the report of the stand-in described in ``validate.bgnbd_days`` on the shipped example (a BG/NBD log in
place of the simulator's), for looking at the layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.experiments.calibration import charts
from stickyrec.experiments.calibration.validate import HEADLINE, better
from stickyrec.experiments.report_render import render_html, render_markdown
from stickyrec.io import write_bytes_atomic

REQUIRED = ("log", "customers", "policy", "calibration_seconds", "params", *HEADLINE, "views")
VIEW_KEYS = ("customers", "dates", "tracking", "repeats", "gaps", "cohorts")
FIGURE_NAMES = {
    "holdout_tracking_mape": "held-out tracking MAPE since the split (%)",
    "holdout_customer_mae": "per-customer held-out MAE (purchase days)",
    "holdout_customer_corr": "per-customer correlation, predicted vs actual",
    "holdout_auc": "AUC of buying again in the held-out weeks",
}
ATTRIBUTION = {
    "online_retail_ii": (
        "**Data.** The log is a compact derivative of *Online Retail II* (Chen, D. (2019), UCI Machine Learning"
        " Repository, [doi:10.24432/C5CG6D](https://doi.org/10.24432/C5CG6D)), licensed under"
        " [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/): one row per customer-invoice, cancellations"
        " and lines without a customer dropped (what was changed: `experiments/datasets/README.md`)."
    )
}
PERIODS = {"calibration": "calibration weeks", "holdout": "held-out weeks"}


def check_validation(validation: dict) -> None:
    """``ValueError`` naming what a validation dict lacks (see the module docstring for the keys)."""
    if not isinstance(validation, dict):
        raise ValueError(f"validation must be a dict (validation.json's content); got {type(validation).__name__}")
    missing = [key for key in REQUIRED if key not in validation]
    if missing:
        raise ValueError(f"validation lacks {missing}; required keys: {list(REQUIRED)}")
    for key in HEADLINE:
        pair = validation[key]
        if not isinstance(pair, dict) or set(pair) - {"stickyrec", "bgnbd"}:
            raise ValueError(f"validation[{key!r}] must be {{'stickyrec': x, 'bgnbd': y}}; got {pair!r}")
    views = validation["views"]
    lacking = [key for key in VIEW_KEYS if not isinstance(views, dict) or key not in views]
    if lacking:
        raise ValueError(f"validation['views'] lacks {lacking}; build it with validate.compare_views")
    params = validation["params"]
    if not isinstance(params, dict) or any(not isinstance(p, dict) or "value" not in p for p in params.values()):
        raise ValueError("validation['params'] must be {name: {'value': v, 'se': s}}")


def fmt(value, digits: int = 3) -> str:
    """A number for a table: None or NaN as an en dash, large numbers with fewer decimals."""
    if value is None or not np.isfinite(value):
        return "–"
    value = float(value)
    if value != 0 and abs(value) < 10**-digits:
        return f"{value:.2e}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.{min(digits, 2)}f}" if abs(value) >= 10 else f"{value:.{digits}f}"


def next_day(day: str) -> str:
    return f"{pd.Timestamp(day) + pd.Timedelta(days=1):%Y-%m-%d}"


def pct(value, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value * 100:.{digits}f}%"


# ------------------------------------------------------------------------------------------------------------------
# Blocks
# ------------------------------------------------------------------------------------------------------------------
def setup_blocks(validation: dict) -> list[tuple]:
    views = validation["views"]
    dates, people = views["dates"], views["customers"]
    cohort = (
        validation.get("cohort_start")
        or f"none (every customer of the calibration weeks; first purchase from {dates['cohort_first_purchase']})"
    )
    return [
        ("h", 1, "stickyrec calibration: validation report"),
        (
            "p",
            f"**Log.** {validation['log']}. **Customers** (calibration cohort: first purchase by the calibration"
            f" end): {int(validation['customers']):,}. **Split:** calibration weeks {dates['first_day']} to"
            f" {dates['calibration_end']}, held-out weeks {next_day(dates['calibration_end'])} to"
            f" {dates['holdout_end']} ({dates['holdout_days']} days). **Cohort start:** {cohort}.",
        ),
        (
            "p",
            f"**Status-quo policy** (what the simulated shoppers were shown): {validation['policy']}. Simulated"
            f" customers: {people['simulated']:,}, their first purchase days drawn from the real cohort's; simulated"
            f" counts are scaled by {people['real']:,} / {people['simulated']:,} = {people['scale']:.3f}, shares are"
            f" not. Calibration took {float(validation['calibration_seconds']):.1f} s.",
        ),
    ]


def headline_blocks(validation: dict) -> list[tuple]:
    rows = []
    for key in HEADLINE:
        pair = validation[key]
        winner = better(key, pair)
        mark = {"stickyrec": "stickyrec ✓", "bgnbd": "BG/NBD ✓", "tie": "tie", None: "–"}[winner]
        rows.append([FIGURE_NAMES[key], fmt(pair.get("stickyrec")), fmt(pair.get("bgnbd")), mark, f"`{key}`"])
    params = [[name, fmt(p.get("value"), 4), fmt(p.get("se"), 3)] for name, p in validation["params"].items()]
    blocks = [
        ("h", 2, "Held-out figures"),
        ("table", ["figure", "stickyrec", "BG/NBD", "better", "key"], rows),
        ("p", "MAPE and MAE: lower is better; correlation and AUC: higher is better."),
        ("h", 2, "Fitted parameters"),
        ("table", ["parameter", "value", "standard error"], params),
    ]
    for note in validation.get("notes") or []:
        blocks.append(("p", str(note)))
    return blocks


def tracking_svg(tracking: dict) -> str:
    series = [{"name": "real", "values": tracking["real"], "colour": charts.COLOURS["real"]}]
    series.append({"name": "stickyrec", "values": tracking["stickyrec"], "colour": charts.COLOURS["stickyrec"]})
    if tracking.get("bgnbd") is not None:
        series.append({"name": "BG/NBD", "values": tracking["bgnbd"], "colour": charts.COLOURS["bgnbd"], "dash": "6 4"})
    labels = [w[:7] for w in tracking["week_end"]]  # yyyy-mm
    return charts.line_chart(
        labels, series, title="Cumulative repeat purchase days of the calibration cohort",
        y_label="repeat purchase days", mark=tracking.get("split_index"),
        mark_label=f"split {tracking['split_week_end']}",
    )  # fmt: skip


def tracking_blocks(tracking: dict) -> list[tuple]:
    names = {
        "holdout_since_split": "held-out weeks, cumulative since the split",
        "holdout_from_start": "held-out weeks, cumulative from the start",
        "holdout_weekly": "held-out weeks, weekly counts",
        "calibration": "calibration weeks, cumulative",
    }
    rows = [[names[k], fmt(v.get("stickyrec")), fmt(v.get("bgnbd"))] for k, v in tracking["mape"].items()]
    return [
        ("h", 2, "Weekly cumulative repeat purchases (tracking plot)"),
        ("img", "tracking.svg", "Real, stickyrec (scaled) and BG/NBD; dashed vertical line: the calibration end"),
        ("table", ["MAPE (%)", "stickyrec", "BG/NBD"], rows),
    ]


def repeat_blocks(repeats: dict) -> tuple[list[tuple], dict[str, str]]:
    blocks: list[tuple] = [("h", 2, "Repeat purchase days per customer")]
    images = {}
    for period, label in PERIODS.items():
        side = repeats[period]
        name = f"figures/repeats_{period}.svg"
        images[name] = charts.bar_chart(
            repeats["labels"], _bars(side["real"], side["stickyrec"]),
            title=f"Repeat purchase days per customer, {label}", y_label="share of customers",
            x_label="repeat purchase days",
        )  # fmt: skip
        d = side["distance"]
        blocks += [
            ("h", 3, label.capitalize()),
            ("img", name, f"Share of cohort customers by repeat purchase days, {label}"),
            (
                "p",
                f"Total variation distance {d['total_variation']:.3f}; mean absolute difference of the shares"
                f" {d['mae'] * 100:.2f} percentage points. Mean per customer: real {side['mean']['real']:.3f},"
                f" stickyrec {side['mean']['stickyrec']:.3f}.",
            ),
            (
                "table",
                ["", *repeats["labels"]],
                [["real", *map(pct, side["real"])], ["stickyrec", *map(pct, side["stickyrec"])]],
            ),
        ]
    return blocks, images


def _bars(real, simulated) -> list[dict]:
    return [
        {"name": "real", "values": real, "colour": charts.COLOURS["real"]},
        {"name": "stickyrec", "values": simulated, "colour": charts.COLOURS["stickyrec"]},
    ]


def gap_blocks(gaps: dict) -> tuple[list[tuple], dict[str, str]]:
    blocks: list[tuple] = [
        ("h", 2, "Gaps between purchase days"),
        ("p", "Days between consecutive purchase days of a cohort customer; a gap belongs to the period of its"
              " later day. Bins are log-spaced."),
    ]  # fmt: skip
    images = {}
    for period, label in PERIODS.items():
        side = gaps[period]
        name = f"figures/gaps_{period}.svg"
        images[name] = charts.bar_chart(
            gaps["labels"], _bars(side["real"]["shares"], side["stickyrec"]["shares"]),
            title=f"Gaps between purchase days, {label}", y_label="share of gaps",
            x_label="days",
        )  # fmt: skip
        keys = list(side["real"]["quantiles"])
        rows = [
            [who, f"{side[who]['n']:,}", *(fmt(side[who]["quantiles"][k], 1) for k in keys)]
            for who in ("real", "stickyrec")
        ]
        blocks += [
            ("h", 3, label.capitalize()),
            ("img", name, f"Gaps between purchase days (days), {label}"),
            ("table", ["", "gaps", *keys], rows),
            ("p", f"Kolmogorov-Smirnov distance: {fmt(side['ks'])}."),
        ]
    return blocks, images


def cohort_grid(cohorts: dict, who: str, period: str) -> tuple:
    """A shaded grid of one side's cohort retention, the cells of one period filled (others blank)."""
    header = ["cohort", "customers", *(f"+{k}" for k in cohorts["months_after"])]
    rows, shades = [], []
    for i, month in enumerate(cohorts["months"]):
        cells, shade = [], []
        for value, cell_period in zip(cohorts[who][i], cohorts["period"][i], strict=True):
            keep = cell_period == period and value is not None
            cells.append(f"{value * 100:.0f}" if keep else "")
            shade.append(min(value / 0.5, 1.0) if keep else None)  # full colour at 50%
        size = cohorts["customers"][who][i]
        rows.append([month, f"{size:,.0f}", *cells])
        shades.append([None, None, *shade])
    return ("grid", header, rows, shades)


def cohort_blocks(cohorts: dict) -> list[tuple]:
    blocks: list[tuple] = [
        ("h", 2, "Cohort retention by month of first purchase"),
        (
            "p",
            "Share of each month's new customers (%) with a purchase day k months after their first month (+0 is"
            " 100% by definition and left out of the distance). Calibration cells are months that end by the"
            f" calibration end (up to {cohorts['last_calibration_month']}); held-out cells are the later months."
            " Shading is full at 50%.",
        ),
    ]
    for period, label in PERIODS.items():
        distance = cohorts["mean_abs_diff_pp"][period]
        blocks += [
            ("h", 3, f"{label.capitalize()}: mean absolute difference {fmt(distance, 2)} percentage points"),
            ("p", f"**Real**, {label}"),
            cohort_grid(cohorts, "real", period),
            ("p", f"**stickyrec**, {label} (customers scaled)"),
            cohort_grid(cohorts, "stickyrec", period),
        ]
    return blocks


def report_blocks(validation: dict) -> tuple[list[tuple], dict[str, str]]:
    """The whole report as blocks, with its SVG charts by file name."""
    views = validation["views"]
    images = {"tracking.svg": tracking_svg(views["tracking"])}
    blocks = setup_blocks(validation) + headline_blocks(validation) + tracking_blocks(views["tracking"])
    for part in (repeat_blocks(views["repeats"]), gap_blocks(views["gaps"])):
        blocks += part[0]
        images.update(part[1])
    blocks += cohort_blocks(views["cohorts"])
    attribution = ATTRIBUTION.get(validation.get("example") or "")
    if attribution:
        blocks += [("h", 2, "Data and licence"), ("p", attribution)]
    return blocks, images


def write_report(out_dir, validation: dict) -> Path:
    """Write report.md, report.html, tracking.svg and figures/*.svg into ``out_dir``; returns report.html's path."""
    check_validation(validation)
    blocks, images = report_blocks(validation)
    markdown = render_markdown(blocks, image_dir=".")
    page = render_html(blocks, images, "stickyrec calibration report")
    out = Path(out_dir)
    for name, svg in images.items():
        write_bytes_atomic(out / name, svg.encode())
    write_bytes_atomic(out / "report.md", markdown.encode())
    write_bytes_atomic(out / "report.html", page.encode())
    return out / "report.html"


def demo_validation(seed: int = 0, simulated_per_real: float = 2.0) -> dict:
    """A validation dict for the shipped example, with a BG/NBD log (``validate.bgnbd_days``) as the "simulated"
    one: split 2011-06-30, BG/NBD fitted to the calibration weeks; its parameters shown as the fitted ones."""
    import time

    from stickyrec.experiments.calibration import validate
    from stickyrec.experiments.calibration.baseline import score_bgnbd
    from stickyrec.experiments.calibration.bgnbd import BGNBDParams
    from stickyrec.experiments.calibration.examples import load_example
    from stickyrec.experiments.calibration.transactions import read_transactions, split

    started = time.perf_counter()
    real = split(read_transactions(load_example("online_retail_ii")), "2011-06-30")
    figures = score_bgnbd(real)
    rng = np.random.default_rng(seed)
    first = rng.choice(real.summary["first_day"].to_numpy(), size=int(simulated_per_real * len(real.summary)))
    days = validate.bgnbd_days(BGNBDParams(**figures["params"]), first, real.holdout_end, rng)
    views = validate.compare_views(real, split(days, real.calibration_end, real.holdout_end), figures)
    return {
        "log": "the shipped example online_retail_ii (UCI Online Retail II, one row per customer-invoice)",
        "example": "online_retail_ii",
        "customers": len(real.summary),
        "policy": "none: a stand-in log drawn from BG/NBD at its own fit (layout demo, not the simulator)",
        "cohort_start": None,
        "calibration_seconds": time.perf_counter() - started,
        "params": {k: {"value": v, "se": figures["se"][k]} for k, v in figures["params"].items()},
        **validate.headline(views, figures),
        "views": views,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="render the validation report of a calibration")
    parser.add_argument("out", help="output folder")
    parser.add_argument("--demo", action="store_true", help="the stand-in on the shipped example (layout demo)")
    parser.add_argument("--validation", default=None, help="a validation.json to render")
    args = parser.parse_args(argv)
    if args.demo == (args.validation is not None):
        parser.error("give exactly one of --demo and --validation FILE")
    if args.demo:
        validation = demo_validation()
    else:
        import json

        validation = json.loads(Path(args.validation).read_text())
    try:
        path = write_report(args.out, validation)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
