"""Turn a finished run directory into what an analyst reads: tables with intervals, retention curves, a report.

``build_report(run_dir)`` reads ``config.yaml`` and every cell, and writes (atomically):

    lifetimes.parquet     every held-out shopper of every cell: scenario, agent, seed, churn_day, churned, totals
    summary.csv / .json   per scenario and agent: each metric with a 95% interval, paired differences against the
                          reference agent (the supervised MLP by default), the log-rank test against it
    km.csv                Kaplan-Meier retention curves with 95% bands (lifelines), by scenario, agent and day
    engagement.csv        sessions and revenue per active shopper, by scenario, agent and day
    cohorts.csv           day-N retention per evaluation cohort (one population per seed), and pooled
    figures/*.png         retention curves, engagement over time, (several scenarios) day-30 retention by scenario
    report.md, report.html   the same content; the HTML embeds its images and needs no network

Intervals. Seeds pair the agents: in seed s every agent meets the same held-out population. The bootstrap
resamples seeds (the same picks for every agent), then shoppers within each picked population (the same weights
for every agent), so an interval holds both the seed-to-seed spread of training and the population's noise, and a
difference between two agents is paired. Kaplan-Meier curves and the log-rank test pool the seeds' shoppers
(lifelines; Greenwood's exponential bands); the log-rank test treats the two agents' shoppers as independent,
which they are not (same starting shoppers), so its p-value is conservative for the paired comparison.

"Still active at day d" is ``churn_day > d``: a churned shopper's ``churn_day`` is the day after their last
session, so day-d retention in the table equals the Kaplan-Meier curve at d for every d below the horizon.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from stickyrec.experiments.evaluate import METRICS
from stickyrec.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic

METRIC_LABELS = {
    "click_rate_week1": "CTR week 1",
    "click_rate": "CTR",
    "sessions_per_shopper": "sessions",
    "purchases_per_shopper": "purchases",
    "revenue_per_shopper": "revenue",
    "retention_day1": "retained d1",
    "retention_day7": "retained d7",
    "retention_day30": "retained d30",
    "mean_lifetime_days": "lifetime (days)",
}
_COLUMNS = (
    "impressions",
    "clicks",
    "week1_impressions",
    "week1_clicks",
    "sessions",
    "purchases",
    "revenue",
    "retained_day1",
    "retained_day7",
    "retained_day30",
    "lifetime_days",
)
DIFF_METRICS = ("retention_day30", "click_rate_week1", "revenue_per_shopper")


class RunNotFinishedError(ValueError):
    """The run directory is missing cells; ``stickyrec run`` the same config again to finish it."""


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------
def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[dict]]:
    """(resolved config, per-shopper frame of every cell, daily frame of every cell, cell records)."""
    from stickyrec.experiments.runner import CELL_MARKER, cell_name

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a stickyrec run directory (no config.yaml)")
    config = yaml.safe_load(config_path.read_text())
    shoppers, daily, cells, missing = [], [], [], []
    for scenario in config["scenarios"]:
        for label in config["agents"]:
            for seed in range(config["seeds"]):
                cell = run_dir / "cells" / cell_name(scenario["name"], label, seed)
                if not (cell / CELL_MARKER).exists():
                    missing.append(cell.name)
                    continue
                keys = {"scenario": scenario["name"], "agent": label, "seed": seed}
                shoppers.append(pd.read_parquet(cell / "shoppers.parquet").assign(**keys))
                daily.append(pd.read_parquet(cell / "daily.parquet").assign(**keys))
                cells.append(json.loads((cell / CELL_MARKER).read_text()))
    if missing:
        raise RunNotFinishedError(
            f"{run_dir}: {len(missing)} cells are not finished (e.g. {missing[0]}); run"
            f" `stickyrec run` with the same config and --out to finish them"
        )
    return config, pd.concat(shoppers, ignore_index=True), pd.concat(daily, ignore_index=True), cells


# --------------------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------------------
def _metrics_from_sums(sums: np.ndarray, weight: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from weighted column sums (last axis: ``_COLUMNS``) and total weights; works on stacked arrays."""
    c = {name: sums[..., i] for i, name in enumerate(_COLUMNS)}
    return {
        "click_rate_week1": c["week1_clicks"] / np.maximum(c["week1_impressions"], 1e-12),
        "click_rate": c["clicks"] / np.maximum(c["impressions"], 1e-12),
        "sessions_per_shopper": c["sessions"] / weight,
        "purchases_per_shopper": c["purchases"] / weight,
        "revenue_per_shopper": c["revenue"] / weight,
        "retention_day1": c["retained_day1"] / weight,
        "retention_day7": c["retained_day7"] / weight,
        "retention_day30": c["retained_day30"] / weight,
        "mean_lifetime_days": c["lifetime_days"] / weight,
    }


def summary_tables(config: dict, shoppers: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metric table with 95% intervals, paired differences against the reference agent), per scenario."""
    resamples = int(config["report"]["resamples"])
    reference = config["report"]["reference"]
    agents = list(config["agents"])
    n_seeds = int(config["seeds"])
    rows, diffs = [], []
    rng = np.random.default_rng(seed)
    for scenario in [s["name"] for s in config["scenarios"]]:
        frame = shoppers[shoppers["scenario"] == scenario]
        # X[a, s]: (n shoppers, columns) for agent a in seed s
        x = np.stack(
            [
                np.stack(
                    [
                        frame[(frame["agent"] == a) & (frame["seed"] == s)]
                        .sort_values("shopper")[list(_COLUMNS)]
                        .to_numpy(dtype=float)
                        for s in range(n_seeds)
                    ]
                )
                for a in agents
            ]
        )
        n = x.shape[2]
        estimate = _metrics_from_sums(x.sum(axis=(1, 2)), np.full(len(agents), float(n_seeds * n)))
        sums = np.zeros((resamples, len(agents), len(_COLUMNS)))
        for r in range(resamples):
            picks = rng.integers(0, n_seeds, size=n_seeds)
            for s in picks:
                weights = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)
                sums[r] += np.einsum("n,anc->ac", weights, x[:, s])
        draws = _metrics_from_sums(sums, float(n_seeds * n))  # (resamples, agents) per metric
        ref = agents.index(reference)
        for a, agent in enumerate(agents):
            row: dict[str, Any] = {"scenario": scenario, "agent": agent, "seeds": n_seeds, "shoppers": n * n_seeds}
            for m in METRICS:
                row[m] = float(estimate[m][a])
                row[f"{m}_low"], row[f"{m}_high"] = (float(v) for v in np.percentile(draws[m][:, a], [2.5, 97.5]))
            rows.append(row)
            if a == ref:
                continue
            diff = {"scenario": scenario, "agent": agent, "reference": reference}
            for m in DIFF_METRICS:
                d = draws[m][:, a] - draws[m][:, ref]
                diff[f"{m}_diff"] = float(estimate[m][a] - estimate[m][ref])
                diff[f"{m}_diff_low"], diff[f"{m}_diff_high"] = (float(v) for v in np.percentile(d, [2.5, 97.5]))
            diffs.append(diff)
    return pd.DataFrame(rows), pd.DataFrame(diffs)


def _logrank(durations_a, durations_b, events_a, events_b):
    """lifelines' log-rank test, without its pandas-4 deprecation chatter (not ours to fix)."""
    import warnings

    from lifelines.statistics import logrank_test

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*arguments of sum will be keyword-only")
        return logrank_test(durations_a, durations_b, events_a, events_b)


def kaplan_meier(config: dict, shoppers: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(KM curves with 95% bands by scenario/agent/day, log-rank tests against the reference agent)."""
    from lifelines import KaplanMeierFitter

    reference = config["report"]["reference"]
    curves, tests = [], []
    for scenario in config["scenarios"]:
        horizon = int(np.ceil(scenario_horizon(config, scenario["name"])))
        days = np.arange(horizon + 1, dtype=float)
        frame = shoppers[shoppers["scenario"] == scenario["name"]]
        for agent in config["agents"]:
            part = frame[frame["agent"] == agent]
            fitter = KaplanMeierFitter().fit(part["churn_day"], part["churned"], label=agent)
            survival = fitter.survival_function_at_times(days).to_numpy()
            bands = fitter.confidence_interval_survival_function_
            # the bands are step functions on the event times: read them at each day like the curve
            idx = np.searchsorted(bands.index.to_numpy(), days, side="right") - 1
            low = np.where(idx >= 0, bands.iloc[np.maximum(idx, 0), 0].to_numpy(), 1.0)
            high = np.where(idx >= 0, bands.iloc[np.maximum(idx, 0), 1].to_numpy(), 1.0)
            curves.append(
                pd.DataFrame(
                    {
                        "scenario": scenario["name"],
                        "agent": agent,
                        "day": days.astype(int),
                        "survival": survival,
                        "low": low,
                        "high": high,
                    }
                )
            )
            if agent == reference:
                continue
            ref = frame[frame["agent"] == reference]
            test = _logrank(part["churn_day"], ref["churn_day"], part["churned"], ref["churned"])
            tests.append(
                {
                    "scenario": scenario["name"],
                    "agent": agent,
                    "reference": reference,
                    "logrank_statistic": float(test.test_statistic),
                    "logrank_p": float(test.p_value),
                }
            )
    return pd.concat(curves, ignore_index=True), pd.DataFrame(tests)


def scenario_horizon(config: dict, scenario: str) -> float:
    return float(config["resolved_env"][scenario]["horizon_days"])


def engagement(config: dict, shoppers: pd.DataFrame, daily: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, agent and day: shoppers still active, sessions and revenue per active shopper (seeds pooled)."""
    out = []
    for (scenario, agent), frame in daily.groupby(["scenario", "agent"], sort=False):
        totals = frame.groupby("day")[["sessions", "impressions", "clicks", "purchases", "revenue"]].sum()
        days = totals.index.to_numpy()
        churn = shoppers.loc[(shoppers["scenario"] == scenario) & (shoppers["agent"] == agent), "churn_day"]
        active = (churn.to_numpy()[None, :] > days[:, None]).sum(axis=1).astype(float)
        per = np.maximum(active, 1.0)
        out.append(
            pd.DataFrame(
                {
                    "scenario": scenario,
                    "agent": agent,
                    "day": days,
                    "active_shoppers": active,
                    "sessions_per_active": totals["sessions"].to_numpy() / per,
                    "revenue_per_active": totals["revenue"].to_numpy() / per,
                    "clicks_per_active": totals["clicks"].to_numpy() / per,
                    "click_rate": totals["clicks"].to_numpy() / np.maximum(totals["impressions"].to_numpy(), 1.0),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def cohorts(config: dict, shoppers: pd.DataFrame) -> pd.DataFrame:
    """Day-N retention per evaluation cohort (the population of each seed) and pooled (cohort ``all``)."""
    days = config["report"]["cohort_days"]
    rows = []
    for (scenario, agent), frame in shoppers.groupby(["scenario", "agent"], sort=False):
        groups = [(f"seed {s}", f) for s, f in frame.groupby("seed")] + [("all", frame)]
        for cohort, part in groups:
            churn = part["churn_day"].to_numpy()
            rows.append(
                {
                    "scenario": scenario,
                    "agent": agent,
                    "cohort": cohort,
                    "shoppers": len(part),
                    **{f"day_{d}": float((churn > d).mean()) for d in days},
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def agent_colours(agents: list[str]) -> dict[str, Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if len(agents) <= 10 else "tab20")
    return {agent: cmap(i % cmap.N) for i, agent in enumerate(agents)}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def plot_retention(curves: pd.DataFrame, agents: list[str], scenarios: list[str], title: str) -> bytes:
    """Kaplan-Meier retention by agent (one colour each, 95% bands), one panel per scenario."""
    plt = _pyplot()
    colours = agent_colours(agents)
    cols = min(len(scenarios), 3)
    rows = int(np.ceil(len(scenarios) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.6 * rows), squeeze=False, sharey=True)
    for ax, scenario in zip(axes.flat, scenarios):
        for agent in agents:
            c = curves[(curves["scenario"] == scenario) & (curves["agent"] == agent)]
            ax.step(c["day"], c["survival"], where="post", color=colours[agent], label=agent, lw=1.8)
            ax.fill_between(c["day"], c["low"], c["high"], step="post", color=colours[agent], alpha=0.18, lw=0)
        ax.set_xlabel("days since the shopper's first visit")
        ax.set_ylabel("share of shoppers still active")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, float(curves.loc[curves["scenario"] == scenario, "day"].max()))
        ax.grid(alpha=0.3)
        ax.set_title(scenario if len(scenarios) > 1 else title)
    for ax in list(axes.flat)[len(scenarios) :]:
        ax.set_visible(False)
    first = curves[curves["scenario"] == scenarios[0]]
    last = first[first["day"] == first["day"].max()].set_index("agent")["survival"]
    handles, names = axes.flat[0].get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: -last.get(names[i], 0.0))  # legend top-down like the curves
    axes.flat[0].legend(
        [handles[i] for i in order], [names[i] for i in order], loc="lower left", fontsize=8, framealpha=0.9
    )
    if len(scenarios) > 1:
        fig.suptitle(title)
    return _png(fig)


def plot_engagement(eng: pd.DataFrame, agents: list[str], scenario: str) -> bytes:
    plt = _pyplot()
    colours = agent_colours(agents)
    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.4))
    for ax, column, label in (
        (axes[0], "sessions_per_active", "sessions per active shopper"),
        (axes[1], "revenue_per_active", "revenue per active shopper"),
    ):
        for agent in agents:
            e = eng[(eng["scenario"] == scenario) & (eng["agent"] == agent)]
            smooth = e[column].rolling(3, min_periods=1, center=True).mean()  # 3-day mean: less day-to-day noise
            ax.plot(e["day"], smooth, color=colours[agent], label=agent, lw=1.6)
        ax.set_xlabel("day")
        ax.set_ylabel(f"{label} per day (3-day mean)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Engagement over time ({scenario})")
    return _png(fig)


def plot_by_scenario(table: pd.DataFrame, agents: list[str], scenarios: list[str], metric: str) -> bytes:
    plt = _pyplot()
    colours = agent_colours(agents)
    fig, ax = plt.subplots(figsize=(8, 4.6))
    x = np.arange(len(scenarios))
    for i, agent in enumerate(agents):
        t = table[table["agent"] == agent].set_index("scenario").loc[scenarios]
        offset = (i - (len(agents) - 1) / 2) * 0.03
        ax.errorbar(
            x + offset,
            t[metric],
            yerr=[t[metric] - t[f"{metric}_low"], t[f"{metric}_high"] - t[metric]],
            color=colours[agent],
            label=agent,
            marker="o",
            capsize=3,
            lw=1.4,
        )
    ax.set_xticks(x, scenarios)
    ax.set_xlabel("scenario")
    ax.set_ylabel(METRIC_LABELS[metric] + " (95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


# --------------------------------------------------------------------------------------------------------------
# Documents: one list of blocks, rendered to Markdown and to self-contained HTML
# --------------------------------------------------------------------------------------------------------------
def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def _ci(row, m: str) -> str:
    return f"{_fmt(row[m])} [{_fmt(row[m + '_low'])}, {_fmt(row[m + '_high'])}]"


def _signed(row, m: str) -> str:
    return f"{row[m]:+.3f} [{row[m + '_low']:+.3f}, {row[m + '_high']:+.3f}]"


def _p(value: float) -> str:
    return "< 1e-4" if value < 1e-4 else f"{value:.4f}"


def render_markdown(blocks: list[tuple], image_dir: str = "figures") -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append(
                "\n".join(
                    [
                        "| " + " | ".join(header) + " |",
                        "|" + "---|" * len(header),
                        *("| " + " | ".join(str(c) for c in r) + " |" for r in rows),
                    ]
                )
            )
        elif kind == "img":
            out.append(f"![{block[2]}]({image_dir}/{block[1]})")
        elif kind == "code":
            out.append(f"```\n{block[1]}\n```")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}.wide{overflow-x:auto}
code,pre{background:#f6f6f6;padding:2px 4px}pre{padding:8px;overflow-x:auto}"""


def render_html(blocks: list[tuple], images: dict[str, bytes], title: str) -> str:
    import re

    def inline(text: str) -> str:
        text = html.escape(text)
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)

    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{inline(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{inline(str(h))}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{inline(str(c))}</td>" for c in r) + "</tr>" for r in block[2])
            body.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>')
        elif kind == "img":
            data = base64.b64encode(images[block[1]]).decode()
            body.append(
                f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                f"<figcaption>{inline(block[2])}</figcaption></figure>"
            )
        elif kind == "code":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _write_frame(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        write_parquet_atomic(frame, path)
    else:
        write_bytes_atomic(path, frame.to_csv(index=False, float_format="%.6g").encode())


def _env_difference(config: dict) -> str:
    env = config.get("env") or {}
    return ", ".join(f"{k}={v}" for k, v in env.items()) or "preset default"


def build_report(run_dir: str | Path, progress: bool = False) -> Path:
    """Write every summary file, figure and both reports of a finished run; returns the HTML report's path."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    config, shoppers, daily, cells = load_run(run_dir)
    agents = list(config["agents"])
    scenarios = [s["name"] for s in config["scenarios"]]
    reference = config["report"]["reference"]
    table, diffs = summary_tables(config, shoppers)
    curves, tests = kaplan_meier(config, shoppers)
    eng = engagement(config, shoppers, daily)
    cohort = cohorts(config, shoppers)
    if len(tests):
        diffs = diffs.merge(tests, on=["scenario", "agent", "reference"], how="left")

    lifetimes = shoppers[
        [
            "scenario",
            "agent",
            "seed",
            "shopper",
            "churn_day",
            "churned",
            "lifetime_days",
            "sessions",
            "clicks",
            "impressions",
            "purchases",
            "revenue",
        ]
    ]
    _write_frame(lifetimes, run_dir / "lifetimes.parquet")
    _write_frame(table, run_dir / "summary.csv")
    _write_frame(diffs, run_dir / "differences.csv")
    _write_frame(curves, run_dir / "km.csv")
    _write_frame(eng, run_dir / "engagement.csv")
    _write_frame(cohort, run_dir / "cohorts.csv")
    training = pd.DataFrame(
        [
            {
                "scenario": c["scenario"],
                "agent": c["agent"],
                "seed": c["seed"],
                "train_seconds": c["train_seconds"],
                "cell_seconds": c["seconds"],
                "steps": c["training"].get("steps"),
            }
            for c in cells
        ]
    )
    write_json_atomic(
        run_dir / "summary.json",
        {
            "name": config["name"],
            "table": table.to_dict(orient="records"),
            "differences": diffs.to_dict(orient="records"),
            "training": training.to_dict(orient="records"),
        },
    )

    images: dict[str, bytes] = {}
    title = f"Retention by agent: {config['name']}"
    images["retention_curves.png"] = plot_retention(curves, agents, scenarios, title)
    for scenario in scenarios:
        images[f"engagement_{scenario}.png"] = plot_engagement(eng, agents, scenario)
    if len(scenarios) > 1:
        images["retention_day30_by_scenario.png"] = plot_by_scenario(table, agents, scenarios, "retention_day30")
    for name, data in images.items():
        write_bytes_atomic(run_dir / "figures" / name, data)

    blocks = _report_blocks(config, table, diffs, cohort, eng, training, scenarios, agents, reference)
    write_bytes_atomic(run_dir / "report.md", render_markdown(blocks).encode())
    html_path = run_dir / "report.html"
    write_bytes_atomic(html_path, render_html(blocks, images, f"stickyrec report: {config['name']}").encode())
    if progress:
        print(f"report: {html_path} ({time.perf_counter() - t0:.1f} s)")
    return html_path


def _report_blocks(config, table, diffs, cohort, eng, training, scenarios, agents, reference) -> list[tuple]:
    env0 = config["resolved_env"][scenarios[0]]
    n_shoppers = config["evaluation"]["shoppers"]
    blocks: list[tuple] = [
        ("h", 1, f"stickyrec report: {config['name']}"),
        ("p", config.get("description") or ""),
        (
            "p",
            f"**Setup.** {len(agents)} agents x {len(scenarios)} scenario(s) x {config['seeds']} seeds. In seed s"
            f" every agent meets the same {n_shoppers:,} held-out shoppers (population seed"
            f" {config['evaluation']['population_seed']} + s x {n_shoppers}), over a {env0['horizon_days']:g}-day"
            f" horizon; none of them was seen in training. Environment: {_env_difference(config)}."
            f" Reference agent for the tests: `{reference}`.",
        ),
        (
            "p",
            "**How to read it.** Retention at day d is the share of shoppers still customers on day d (not yet"
            " churned). Brackets are 95% intervals from a bootstrap over seeds and shoppers. A difference is"
            " paired: the same shoppers under both agents. Kaplan-Meier curves and the log-rank test (lifelines)"
            " pool the seeds.",
        ),
        ("img", "retention_curves.png", "Kaplan-Meier retention curves with 95% bands, by agent"),
    ]
    for scenario in scenarios:
        t = table[table["scenario"] == scenario]
        if len(scenarios) > 1:
            blocks.append(("h", 2, f"Scenario {scenario}"))
            overrides = next(s["env"] for s in config["scenarios"] if s["name"] == scenario)
            blocks.append(("p", "Env overrides: " + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "none")))
        blocks.append(("h", 2 if len(scenarios) == 1 else 3, "Summary per agent"))
        blocks.append(
            (
                "table",
                ["agent", *(METRIC_LABELS[m] for m in METRICS)],
                [[r["agent"], *(_ci(r, m) for m in METRICS)] for _, r in t.iterrows()],
            )
        )
        d = diffs[diffs["scenario"] == scenario] if len(diffs) else diffs
        if len(d):
            blocks.append(("h", 2 if len(scenarios) == 1 else 3, f"Against {reference}"))
            header = ["agent", "d30 retention minus ref.", "week-1 CTR minus ref.", "revenue minus ref."]
            rows = [[r["agent"], *(_signed(r, f"{m}_diff") for m in DIFF_METRICS)] for _, r in d.iterrows()]
            if "logrank_p" in d:
                header += ["log-rank chi2", "log-rank p"]
                for row, (_, r) in zip(rows, d.iterrows()):
                    row += [f"{r['logrank_statistic']:.1f}", _p(r["logrank_p"])]
            blocks.append(("table", header, rows))
        c = cohort[(cohort["scenario"] == scenario) & (cohort["cohort"] == "all")]
        day_cols = [col for col in c.columns if col.startswith("day_")]
        blocks.append(("h", 2 if len(scenarios) == 1 else 3, "Cohort retention (share still active on day N)"))
        blocks.append(
            (
                "table",
                ["agent", *(f"day {col[4:]}" for col in day_cols)],
                [[r["agent"], *(f"{r[col]:.3f}" for col in day_cols)] for _, r in c.iterrows()],
            )
        )
        blocks.append(("p", "Per-seed cohorts (one held-out population per seed) are in `cohorts.csv`."))
        blocks.append(
            ("img", f"engagement_{scenario}.png", "Sessions and revenue per active shopper per day (3-day mean)")
        )
        e = eng[eng["scenario"] == scenario]
        horizon = int(e["day"].max()) + 1
        windows = [(0, 7), (7, 30), (30, horizon)] if horizon > 30 else [(0, 7), (7, horizon)]
        rows = []
        for agent in agents:
            ea = e[e["agent"] == agent]
            cells = []
            for lo, hi in windows:
                w = ea[(ea["day"] >= lo) & (ea["day"] < hi)]
                cells.append(f"{w['sessions_per_active'].mean():.3f} / {w['revenue_per_active'].mean():.2f}")
            rows.append([agent, *cells])
        blocks.append(
            ("table", ["agent", *(f"days {lo}-{hi - 1}: sessions / revenue per active" for lo, hi in windows)], rows)
        )
    if len(scenarios) > 1:
        blocks.append(("h", 2, "Across scenarios"))
        blocks.append(("img", "retention_day30_by_scenario.png", "Day-30 retention by scenario (95% intervals)"))
        if len(diffs):
            rows = []
            for agent in [a for a in agents if a != reference]:
                rows.append(
                    [
                        agent,
                        *(
                            _signed(
                                diffs[(diffs["scenario"] == s) & (diffs["agent"] == agent)].iloc[0],
                                "retention_day30_diff",
                            )
                            for s in scenarios
                        ),
                    ]
                )
            blocks.append(("p", f"Day-30 retention minus {reference}'s, per scenario:"))
            blocks.append(("table", ["agent", *scenarios], rows))
    blocks.append(("h", 2, "Training and evaluation time"))
    t = (
        training.groupby(["scenario", "agent"], sort=False)
        .agg(
            seeds=("seed", "count"),
            train_seconds=("train_seconds", "mean"),
            cell_seconds=("cell_seconds", "mean"),
            steps=("steps", "mean"),
        )
        .reset_index()
    )
    blocks.append(
        (
            "table",
            ["scenario", "agent", "seeds", "mean training s", "mean cell s", "env steps"],
            [
                [
                    r["scenario"],
                    r["agent"],
                    int(r["seeds"]),
                    f"{r['train_seconds']:.1f}",
                    f"{r['cell_seconds']:.1f}",
                    "" if pd.isna(r["steps"]) else f"{int(r['steps']):,}",
                ]
                for _, r in t.iterrows()
            ],
        )
    )
    blocks.append(("h", 2, "Reproduce"))
    blocks.append(
        (
            "code",
            f"stickyrec run {config['name']}  # or the YAML file; the resolved config is"
            " config.yaml beside this report",
        )
    )
    return blocks


# --------------------------------------------------------------------------------------------------------------
# Several runs, two agents
# --------------------------------------------------------------------------------------------------------------
def compare_runs(run_dirs: list[str | Path], out_dir: str | Path) -> Path:
    """One report over several finished runs: agents labelled ``run/agent``, curves on shared axes."""
    out_dir = Path(out_dir)
    tables, all_curves, labels = [], [], []
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        config, shoppers, _, _ = load_run(run_dir)
        table, _ = summary_tables(config, shoppers)
        curves, _ = kaplan_meier(config, shoppers)
        run = config["name"] if config["name"] not in [t["run"].iloc[0] for t in tables] else run_dir.name
        tables.append(table.assign(run=run, label=run + "/" + table["agent"]))
        all_curves.append(curves.assign(agent=run + "/" + curves["agent"]))
        labels += [f"{run}/{a}" for a in config["agents"]]
    table = pd.concat(tables, ignore_index=True)
    curves = pd.concat(all_curves, ignore_index=True)
    scenarios = list(dict.fromkeys(curves["scenario"]))
    images = {"retention_curves.png": plot_retention(curves, labels, scenarios, "Retention: runs compared")}
    blocks: list[tuple] = [
        ("h", 1, "stickyrec comparison"),
        ("p", "Runs: " + ", ".join(f"`{Path(r)}`" for r in run_dirs)),
        ("img", "retention_curves.png", "Kaplan-Meier retention by run and agent"),
    ]
    blocks.append(
        (
            "table",
            ["scenario", "run/agent", *(METRIC_LABELS[m] for m in METRICS)],
            [[r["scenario"], r["label"], *(_ci(r, m) for m in METRICS)] for _, r in table.iterrows()],
        )
    )
    for name, data in images.items():
        write_bytes_atomic(out_dir / "figures" / name, data)
    _write_frame(table, out_dir / "summary.csv")
    write_bytes_atomic(out_dir / "report.md", render_markdown(blocks).encode())
    write_bytes_atomic(out_dir / "report.html", render_html(blocks, images, "stickyrec comparison").encode())
    return out_dir / "report.html"


def compare_agents(
    run_dir: str | Path,
    agent_a: str,
    agent_b: str,
    scenario: str | None = None,
    run_dir_b: str | Path | None = None,
    out: str | Path | None = None,
) -> tuple[Path, str]:
    """Two agents' retention curves side by side (PNG) and a text table with the log-rank test between them."""
    from lifelines import KaplanMeierFitter

    sides = []
    for agent, directory in ((agent_a, run_dir), (agent_b, run_dir_b or run_dir)):
        config, shoppers, _, _ = load_run(directory)
        names = [s["name"] for s in config["scenarios"]]
        chosen = scenario or names[0]
        if chosen not in names:
            raise ValueError(f"{directory}: no scenario {chosen!r}; scenarios: {', '.join(names)}")
        if agent not in config["agents"]:
            raise ValueError(f"{directory}: no agent {agent!r}; agents: {', '.join(config['agents'])}")
        part = shoppers[(shoppers["scenario"] == chosen) & (shoppers["agent"] == agent)]
        sides.append((agent, part, scenario_horizon(config, chosen), config["report"]["cohort_days"]))
    plt = _pyplot()
    colours = agent_colours([agent_a, agent_b])
    fig, axes = plt.subplots(1, 2, figsize=(12.8, 4.6), sharey=True)
    fitted = [KaplanMeierFitter().fit(part["churn_day"], part["churned"], label=agent) for agent, part, _, _ in sides]
    for ax, (agent, _, horizon, _), km, other in zip(axes, sides, fitted, fitted[::-1]):
        km.plot_survival_function(ax=ax, color=colours[agent], ci_show=True)
        other.plot_survival_function(ax=ax, color="grey", ls="--", ci_show=False, lw=1)
        ax.set_title(agent)
        ax.set_xlabel("days since the shopper's first visit")
        ax.set_ylabel("share of shoppers still active")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, horizon)
        ax.grid(alpha=0.3)
    (a, pa, _, days), (b, pb, _, _) = sides
    test = _logrank(pa["churn_day"], pb["churn_day"], pa["churned"], pb["churned"])
    fig.suptitle(f"{a} vs {b}: log-rank p {_p(float(test.p_value))}")
    out = Path(out) if out is not None else Path(run_dir) / "figures" / f"compare_{a}_vs_{b}.png"
    write_bytes_atomic(out, _png(fig))
    width = max(len(a), len(b), 5)
    lines = [f"{'agent':<{width}} " + " ".join(f"{'day ' + str(d):>8}" for d in days)]
    for agent, part in ((a, pa), (b, pb)):
        churn = part["churn_day"].to_numpy()
        lines.append(f"{agent:<{width}} " + " ".join(f"{(churn > d).mean():>8.3f}" for d in days))
    lines.append(
        f"log-rank test: chi2 {test.test_statistic:.2f}, p {_p(float(test.p_value))}"
        f" ({len(pa):,} vs {len(pb):,} shoppers)"
    )
    return out, "\n".join(lines)


__all__ = ["RunNotFinishedError", "build_report", "compare_agents", "compare_runs", "load_run", "summary_tables"]
