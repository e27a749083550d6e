"""Turn a finished run directory into what an analyst reads: tables with intervals, retention curves, a report.

``build_report(run_dir)`` reads ``config.yaml`` and every cell, and writes (atomically):

    lifetimes.parquet     every held-out shopper of every cell: scenario, agent, seed, churn_day, churned, totals
    summary.csv / .json   per scenario and agent: each metric with a 95% interval, paired differences against the
                          reference agent (the supervised MLP by default), the log-rank test against it; the json
                          also names each agent's role (RL, non-RL, oracle), the best non-RL agent and the margins
    margins.csv           per scenario, each RL agent's paired margin over the best non-RL agent (95% intervals)
    km.csv                Kaplan-Meier retention curves with 95% bands (lifelines), by scenario, agent and day
    engagement.csv        sessions and revenue per active shopper, by scenario, agent and day
    cohorts.csv           N-day and unbounded retention per evaluation cohort (one population per seed), and pooled
    stickiness.csv, curves.csv, diff_curves.csv, segments.csv, headline.csv, rl_pairs.csv, oracle_share.csv
                          the stickiness measures (``stickiness``; docs/report.md), same bootstrap as summary.csv
    activity.parquet, cells.json   every cell's activity rows (compact: sums in hundredths, ``activity.packed``)
                          and records: with lifetimes.parquet, what a run without its cells/ (a committed one)
                          is re-rendered from
    figures/*.png         retention curves, engagement over time, (several scenarios) day-30 retention by scenario
    figures/*.svg         the report's charts (the HTML inlines them; the Markdown links them)
    report.md, report.html   the same sections; the HTML is one file with inline SVG charts and a small inline
                          script (tooltips, legend toggles, sortable tables) and needs no network

The numbers come from ``report_data`` (loading, the paired bootstrap's tables, Kaplan-Meier, engagement,
cohorts; its docstring says how the intervals are made), the figures and documents from ``report_render``.
``compare_runs`` and ``compare_agents`` put several runs, or two agents, side by side.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from stickyrec.experiments.activity import packed
from stickyrec.experiments.campaign_report import FILES as CAMPAIGN_FILES
from stickyrec.experiments.campaign_report import campaign_tables
from stickyrec.experiments.metrics import METRIC_LABELS, METRICS
from stickyrec.experiments.report_data import (
    LIFETIME_COLUMNS,
    RunNotFinishedError,
    agent_roles,
    click_auc_frame,
    cohorts,
    engagement,
    kaplan_meier,
    load_run,
    logrank,
    paired_tables,
    read_run,
    scenario_horizon,
    summary_tables,
    training_frame,
)
from stickyrec.experiments.report_html import svg_files
from stickyrec.experiments.report_render import (
    ReportContext,
    agent_colours,
    format_ci,
    format_p,
    plot_by_scenario,
    plot_engagement,
    plot_retention,
    png_bytes,
    pyplot,
    render_html,
    render_markdown,
    report_blocks,
)
from stickyrec.experiments.stickiness import stickiness_tables
from stickyrec.experiments.stickiness_blocks import headline_day
from stickyrec.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic

STICKINESS_FILES = {  # StickinessTables field -> file in the run directory
    "summary": "stickiness.csv",
    "curves": "curves.csv",
    "diff_curves": "diff_curves.csv",
    "segments": "segments.csv",
    "cohorts": "cohorts.csv",
    "headline": "headline.csv",
    "rl_pairs": "rl_pairs.csv",
    "oracle_share": "oracle_share.csv",
}


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        write_parquet_atomic(frame, path, compression="zstd", compression_level=19)
    else:
        write_bytes_atomic(path, frame.to_csv(index=False, float_format="%.6g").encode())


def check_reference(config: dict, reference: str | None, run_dir: str | Path = "") -> dict:
    """The config with ``reference`` as the report's reference agent (None: as it is); an agent the run does not
    have is a ``ValueError`` listing the allowed ones."""
    if reference is None:
        return config
    if reference not in config["agents"]:
        allowed = ", ".join(config["agents"])
        raise ValueError(f"--reference {reference!r} is not an agent of {run_dir or 'the run'}; allowed: {allowed}")
    return {**config, "report": {**config["report"], "reference": reference}}


def build_report(run_dir: str | Path, progress: bool = False, reference: str | None = None) -> Path:
    """Write every summary file, figure and both reports of a finished run; returns the HTML report's path.

    A run without its cells/ (a committed one) is read from its ``lifetimes.parquet``, ``activity.parquet`` and
    ``cells.json``. ``reference``: the agent the differences, log-rank tests and difference curves are against
    (default: the config's ``report.reference``)."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    config, shoppers, daily, cells, days = read_run(run_dir)
    config = check_reference(config, reference, run_dir)
    paired = paired_tables(config, shoppers)
    table, diffs, best, margins = paired
    curves, tests = kaplan_meier(config, shoppers)
    eng = engagement(config, shoppers, daily)
    cohort = cohorts(config, shoppers)
    if len(tests):
        diffs = diffs.merge(tests, on=["scenario", "agent", "reference"], how="left")
    training, auc = training_frame(cells), click_auc_frame(cells)
    frames = [
        (shoppers[[c for c in LIFETIME_COLUMNS if c in shoppers]], "lifetimes.parquet"),
        (table, "summary.csv"),
        (diffs, "differences.csv"),
        (margins, "margins.csv"),
        (curves, "km.csv"),
        (eng, "engagement.csv"),
    ]
    sticky = None
    if days is not None:
        sticky = stickiness_tables(config, shoppers, days)
        frames += [(frame, STICKINESS_FILES[name]) for name, frame in sticky._asdict().items()]
        frames.append((packed(days), "activity.parquet"))
        write_json_atomic(run_dir / "cells.json", cells)
    else:
        frames.append((cohort, "cohorts.csv"))  # a run whose cells predate activity rows: the old cohort table
    campaigns = campaign_tables(config, shoppers, headline_day(config, config["scenarios"][0]["name"]))
    if campaigns is not None:  # coupon campaigns: their table, paired differences and Qini scores on truth
        frames += [(frame, CAMPAIGN_FILES[name]) for name, frame in campaigns._asdict().items()]
    for frame, name in frames:
        write_frame(frame, run_dir / name)
    roles = pd.DataFrame({"agent": list(config["agents"]), "role": list(agent_roles(config).values())})
    summary = {"name": config["name"], "table": table, "differences": diffs, "training": training, "roles": roles}
    summary |= {"best_non_rl": best, "margins": margins}
    if len(auc):
        summary["click_auc"] = auc
    write_json_atomic(
        run_dir / "summary.json",
        {k: v if isinstance(v, str) else v.to_dict(orient="records") for k, v in summary.items()},
    )
    images = figures(config, table, curves, eng)
    blocks = report_blocks(ReportContext.of(config, paired, diffs, sticky, training, auc, campaigns))
    for name, data in images.items() | svg_files(blocks).items():
        write_bytes_atomic(run_dir / "figures" / name, data if isinstance(data, bytes) else data.encode())
    write_bytes_atomic(run_dir / "report.md", render_markdown(blocks).encode())
    html_path = run_dir / "report.html"
    page = render_html(blocks, images, f"stickyrec report: {config['name']}", script=True)
    write_bytes_atomic(html_path, page.encode())
    if progress:
        print(f"report: {html_path} ({time.perf_counter() - t0:.1f} s)")
    return html_path


def figures(config: dict, table: pd.DataFrame, curves: pd.DataFrame, eng: pd.DataFrame) -> dict[str, bytes]:
    """The report's PNG figures by file name."""
    agents = list(config["agents"])
    scenarios = [s["name"] for s in config["scenarios"]]
    images = {
        "retention_curves.png": plot_retention(curves, agents, scenarios, f"Retention by agent: {config['name']}")
    }
    for scenario in scenarios:
        images[f"engagement_{scenario}.png"] = plot_engagement(eng, agents, scenario)
    if len(scenarios) > 1:
        images["retention_day30_by_scenario.png"] = plot_by_scenario(table, agents, scenarios, "retention_day30")
    return images


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
            [[r["scenario"], r["label"], *(format_ci(r, m) for m in METRICS)] for _, r in table.iterrows()],
        )
    )
    for name, data in images.items():
        write_bytes_atomic(out_dir / "figures" / name, data)
    write_frame(table, out_dir / "summary.csv")
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
    plt = pyplot()
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
    test = logrank(pa["churn_day"], pb["churn_day"], pa["churned"], pb["churned"])
    fig.suptitle(f"{a} vs {b}: log-rank p {format_p(float(test.p_value))}")
    out = Path(out) if out is not None else Path(run_dir) / "figures" / f"compare_{a}_vs_{b}.png"
    write_bytes_atomic(out, png_bytes(fig))
    width = max(len(a), len(b), 5)
    lines = [f"{'agent':<{width}} " + " ".join(f"{'day ' + str(d):>8}" for d in days)]
    for agent, part in ((a, pa), (b, pb)):
        churn = part["churn_day"].to_numpy()
        lines.append(f"{agent:<{width}} " + " ".join(f"{(churn > d).mean():>8.3f}" for d in days))
    lines.append(
        f"log-rank test: chi2 {test.test_statistic:.2f}, p {format_p(float(test.p_value))}"
        f" ({len(pa):,} vs {len(pb):,} shoppers)"
    )
    return out, "\n".join(lines)


__all__ = [
    "LIFETIME_COLUMNS",
    "STICKINESS_FILES",
    "RunNotFinishedError",
    "build_report",
    "check_reference",
    "compare_agents",
    "compare_runs",
    "load_run",
    "summary_tables",
]
