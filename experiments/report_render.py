"""What a run report holds: the PNG figures (matplotlib) written beside it, and the report as a list of blocks.

``report_blocks(ReportContext)`` assembles the whole report: the executive summary, setup, each scenario's tables
(``report_sections``) and charts (``report_figures``, inline SVG), across scenarios, timings, the glossary
(``report_glossary``), the files. ``report_html`` renders the blocks to Markdown and to self-contained HTML.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from stickyrec.experiments.campaign_report import CampaignTables, campaign_blocks
from stickyrec.experiments.metrics import METRIC_LABELS
from stickyrec.experiments.report_charts import hex_colours
from stickyrec.experiments.report_data import BEST_METRIC, DIFF_METRICS, NON_RL, ORACLE, ROLE_NOTES, agent_roles
from stickyrec.experiments.report_figures import chart_blocks
from stickyrec.experiments.report_glossary import glossary_block
from stickyrec.experiments.report_html import render_html, render_markdown
from stickyrec.experiments.report_sections import (
    cohort_blocks,
    executive_summary,
    of,
    reference_bounds,
    rl_pairs_table,
    segment_blocks,
    stickiness_blocks,
    summary_table,
)
from stickyrec.experiments.stickiness import StickinessTables
from stickyrec.experiments.stickiness_blocks import headline_day


# --------------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------------
def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def agent_colours(agents: list[str]) -> dict[str, Any]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if len(agents) <= 10 else "tab20")
    return {agent: cmap(i % cmap.N) for i, agent in enumerate(agents)}


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def plot_retention(curves: pd.DataFrame, agents: list[str], scenarios: list[str], title: str) -> bytes:
    """Kaplan-Meier retention by agent (one colour each, 95% bands), one panel per scenario."""
    plt = pyplot()
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
    return png_bytes(fig)


def plot_engagement(eng: pd.DataFrame, agents: list[str], scenario: str) -> bytes:
    plt = pyplot()
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
    return png_bytes(fig)


def plot_by_scenario(table: pd.DataFrame, agents: list[str], scenarios: list[str], metric: str) -> bytes:
    plt = pyplot()
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
    return png_bytes(fig)


# --------------------------------------------------------------------------------------------------------------
# Documents: one list of blocks, rendered to Markdown and to self-contained HTML
# --------------------------------------------------------------------------------------------------------------
def format_number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def format_ci(row, m: str) -> str:
    return f"{format_number(row[m])} [{format_number(row[m + '_low'])}, {format_number(row[m + '_high'])}]"


def format_signed(row, m: str) -> str:
    return f"{row[m]:+.3f} [{row[m + '_low']:+.3f}, {row[m + '_high']:+.3f}]"


def format_p(value: float) -> str:
    return "< 1e-4" if value < 1e-4 else f"{value:.4f}"


def env_difference(config: dict) -> str:
    env = config.get("env") or {}
    return ", ".join(f"{k}={v}" for k, v in env.items()) or "preset default"


STICKY_COLUMNS = {  # stickiness.StickinessTables' frames (docs/report.md): empty ones for a run without activity
    "summary": ["scenario", "agent", "metric", "estimate", "low", "high"],
    "curves": ["scenario", "agent", "measure", "day", "estimate", "low", "high", "n"],
    "diff_curves": ["scenario", "agent", "baseline", "measure", "day", "estimate", "low", "high"],
    "segments": ["scenario", "segment", "level", "agent", "metric", "estimate", "low", "high", "n"],
    "cohorts": ["scenario", "agent", "cohort", "kind", "day", "value", "n"],
    "headline": ["scenario", "metric", "winner", "winner_estimate", "runner_up", "margin", "low", "high"],
    "rl_pairs": ["scenario", "metric", "agent", "other", "diff", "low", "high"],
    "oracle_share": ["scenario", "agent", "metric", "oracle", "basis", "share", "low", "high"],
}


class ReportContext(NamedTuple):
    """What the run report shows: the config, the paired tables (``report_data.paired_tables``), the log-rank
    differences, the stickiness tables (``stickiness.stickiness_tables``; None for a run whose cells predate
    activity rows: those sections are left out), training times and click AUCs."""

    config: dict
    table: pd.DataFrame
    diffs: pd.DataFrame
    best: pd.DataFrame
    margins: pd.DataFrame
    sticky: StickinessTables | None
    training: pd.DataFrame
    auc: pd.DataFrame
    campaigns: CampaignTables | None = None  # a run of coupon campaigns (``campaign_report``)

    @classmethod
    def of(cls, config, paired, diffs, sticky, training, auc, campaigns=None) -> ReportContext:
        """From ``paired_tables``' result (its ``diffs`` replaced by ``diffs``, with the log-rank tests)."""
        if sticky is None:
            sticky = StickinessTables(**{name: pd.DataFrame(columns=c) for name, c in STICKY_COLUMNS.items()})
        return cls(config, paired.table, diffs, paired.best, paired.margins, sticky, training, auc, campaigns)

    @property
    def agents(self) -> list[str]:
        return list(self.config["agents"])

    @property
    def roles(self) -> dict[str, str]:
        return agent_roles(self.config)

    @property
    def agents_shown(self) -> list[str]:
        """The agents of the main tables: all but the oracles (their own section: reference bounds)."""
        roles = self.roles
        return [a for a in self.agents if roles[a] != ORACLE]

    @property
    def colours(self) -> dict[str, str]:
        roles = self.roles
        return hex_colours(self.agents, tuple(a for a in self.agents if roles[a] == ORACLE))

    @property
    def reference(self) -> str:
        return self.config["report"]["reference"]


def report_blocks(ctx: ReportContext) -> list[tuple]:
    """The whole report of one run, as blocks: the executive summary, setup, each scenario's tables and charts,
    across scenarios, timings, the click model's held-out AUC (where the run has one), the glossary, the files."""
    config = ctx.config
    scenarios = [s["name"] for s in config["scenarios"]]
    several = len(scenarios) > 1
    summary = []
    for scenario in scenarios:
        summary += [f"*{scenario}*: {s}" if several else s for s in executive_summary(ctx, scenario)]
    blocks = [("h", 1, f"stickyrec report: {config['name']}"), ("p", config.get("description") or "")]
    blocks += [("box", "Executive summary", summary)]
    blocks += setup_blocks(config, scenarios, ctx.agents, ctx.reference)
    if not len(ctx.sticky.curves):  # a run without activity rows: no curves but Kaplan-Meier's
        blocks.append(("img", "retention_curves.png", "Kaplan-Meier retention curves with 95% bands, by agent"))
    for scenario in scenarios:
        blocks += scenario_blocks(ctx, scenario, several)
        if ctx.campaigns is not None:
            blocks += campaign_blocks(ctx.campaigns, scenario, headline_day(config, scenario), ctx.colours)
    if several:
        blocks += across_blocks(ctx.diffs, scenarios, ctx.agents, ctx.reference)
    blocks += training_blocks(ctx.training)
    if len(ctx.auc):
        blocks += click_auc_blocks(ctx.auc)
    blocks += [("h", 2, "Glossary"), glossary_block(), ("h", 2, "Files")]
    blocks.append(("p", " · ".join(f"[{name}]({name})" for name in DATA_FILES)))
    blocks.append(("h", 2, "Reproduce"))
    blocks.append(
        (
            "code",
            f"stickyrec run {config['name']}  # or the YAML file; the resolved config is"
            " config.yaml beside this report\nstickyrec report RUN_DIR  # re-render from the committed files",
        )
    )
    return blocks


DATA_FILES = (
    "summary.csv",
    "stickiness.csv",
    "differences.csv",
    "margins.csv",
    "headline.csv",
    "oracle_share.csv",
    "curves.csv",
    "diff_curves.csv",
    "cohorts.csv",
    "segments.csv",
    "rl_pairs.csv",
    "km.csv",
    "engagement.csv",
    "summary.json",
    "config.yaml",
)


def churn_meaning(env: dict) -> str:
    """Which churn a world's retention counts: the observed gap rule and the hazard, or the latent event only."""
    window = float(env.get("churn_window_days", 14.0))
    if window == float("inf"):
        return (
            "here churn is the latent event only, she has left for good (her latent dropout or the satisfaction"
            " hazard); no gap between visits counts as churn, however long"
        )
    latent = " or her latent dropout" if env.get("dropout_distribution", "none") != "none" else ""
    return (
        f"here churn is observed: her next visit is more than {window:g} days away, or the satisfaction hazard"
        f"{latent} ends her"
    )


def setup_blocks(config, scenarios, agents, reference) -> list[tuple]:
    env0 = config["resolved_env"][scenarios[0]]
    n_shoppers = config["evaluation"]["shoppers"]
    return [
        ("h", 2, "Setup and how to read it"),
        (
            "p",
            f"**Setup.** {len(agents)} agents x {len(scenarios)} scenario(s) x {config['seeds']} seeds. In seed s"
            f" every agent meets the same {n_shoppers:,} held-out shoppers (population seed"
            f" {config['evaluation']['population_seed']} + s x {n_shoppers}), over a {env0['horizon_days']:g}-day"
            f" horizon; none of them was seen in training. Environment: {env_difference(config)}."
            f" Reference agent for the tests: `{reference}`.",
        ),
        (
            "p",
            "**How to read it.** [Unbounded retention](#g-retention) at day d is the share of shoppers still"
            f" customers on day d (not yet churned; {churn_meaning(env0)}); [N-day retention](#g-retention) counts"
            " those active on day d itself. Brackets are [95% intervals](#g-bootstrap_interval) from a bootstrap over"
            " seeds and shoppers, and the charts' bands come from the same bootstrap. A [difference is"
            " paired](#g-paired_margin): the same shoppers under both agents. The [log-rank test](#g-logrank)"
            " (lifelines) pools the seeds. Hover a chart for values; click a legend entry to hide or show its line;"
            " click a table header to sort.",
        ),
    ]


def scenario_blocks(ctx: ReportContext, scenario: str, several: bool) -> list[tuple]:
    """One scenario: summary and stickiness tables, RL against the best non-RL, the paired differences, the charts,
    cohort heatmaps, segments, and the oracles as reference bounds."""
    level = 3 if several else 2
    blocks: list[tuple] = []
    if several:
        blocks.append(("h", 2, f"Scenario {scenario}"))
        overrides = next(s["env"] for s in ctx.config["scenarios"] if s["name"] == scenario)
        blocks.append(("p", "Env overrides: " + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "none")))
    blocks.append(("h", level, "Summary per agent"))
    blocks.append(("p", "Oracles are not in this table: see the reference bounds below."))
    blocks.append(summary_table(ctx, scenario, ctx.agents_shown))
    blocks += stickiness_blocks(ctx, scenario, level)
    blocks += best_non_rl_blocks(scenario, ctx.best, ctx.margins, level)
    blocks += rl_pairs_table(ctx, scenario)
    d = of(ctx.diffs, scenario=scenario)
    if len(d):
        blocks.append(("h", level, f"Paired differences against {ctx.reference}"))
        blocks.append(differences_table(d))
    blocks += chart_blocks(ctx, scenario, level)
    blocks += cohort_blocks(ctx, scenario, level)
    blocks += segment_blocks(ctx, scenario, level)
    blocks += reference_bounds(ctx, scenario, level)
    return blocks


def best_non_rl_blocks(scenario: str, best: pd.DataFrame, margins: pd.DataFrame, level: int) -> list[tuple]:
    """The scenario's best non-RL agent and each RL agent's paired margin over it, in words and as a table."""
    b = best[best["scenario"] == scenario] if len(best) else best
    if not len(b):
        return []
    b = b.iloc[0]
    name = b["best_non_rl"]
    blocks: list[tuple] = [
        ("h", level, "RL against the best non-RL agent"),
        (
            "p",
            f"**Best non-RL: `{name}`**, day-30 retention {format_ci(b, BEST_METRIC)}: the highest among the agents"
            f" that neither train in the simulator nor read hidden state (non-RL: {ROLE_NOTES[NON_RL]}). Oracles"
            " are excluded: they read hidden state.",
        ),
    ]
    m = margins[margins["scenario"] == scenario] if len(margins) else margins
    sentences = []
    for _, r in m.iterrows():
        low, value = r[f"{BEST_METRIC}_margin_low"], r[f"{BEST_METRIC}_margin"]
        plainly = (
            "not distinguishable from zero at 95%"
            if low <= 0 <= r[f"{BEST_METRIC}_margin_high"]
            else f"{'above' if value > 0 else 'below'} it at 95%"
        )
        size = "small (under 2 points)" if abs(value) < 0.02 else ("large" if abs(value) >= 0.05 else "modest")
        sentences.append(f"`{r['agent']}` {format_signed(r, f'{BEST_METRIC}_margin')}: {size}, {plainly}.")
    if sentences:
        blocks.append(("p", f"Day-30 retention margin over `{name}` (paired, 95% interval): " + " ".join(sentences)))
        header = ["RL agent", *(f"{label} minus {name}" for label in ("d30 retention", "week-1 CTR", "revenue"))]
        rows = [[r["agent"], *(format_signed(r, f"{x}_margin") for x in DIFF_METRICS)] for _, r in m.iterrows()]
        blocks.append(("table", header, rows))
    return blocks


def differences_table(d: pd.DataFrame) -> tuple:
    header = ["agent", "d30 retention minus ref.", "week-1 CTR minus ref.", "revenue minus ref."]
    rows = [[r["agent"], *(format_signed(r, f"{m}_diff") for m in DIFF_METRICS)] for _, r in d.iterrows()]
    if "logrank_p" in d:
        header += ["log-rank chi2", "log-rank p"]
        for row, (_, r) in zip(rows, d.iterrows()):
            row += [f"{r['logrank_statistic']:.1f}", format_p(r["logrank_p"])]
    return ("table", header, rows)


def across_blocks(diffs, scenarios, agents, reference) -> list[tuple]:
    blocks: list[tuple] = [
        ("h", 2, "Across scenarios"),
        ("img", "retention_day30_by_scenario.png", "Day-30 retention by scenario (95% intervals)"),
    ]
    if len(diffs):
        rows = []
        for agent in [a for a in agents if a != reference]:
            rows.append(
                [
                    agent,
                    *(
                        format_signed(
                            diffs[(diffs["scenario"] == s) & (diffs["agent"] == agent)].iloc[0],
                            "retention_day30_diff",
                        )
                        for s in scenarios
                    ),
                ]
            )
        blocks.append(("p", f"Day-30 retention minus {reference}'s, per scenario:"))
        blocks.append(("table", ["agent", *scenarios], rows))
    return blocks


def training_blocks(training: pd.DataFrame) -> list[tuple]:
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
    return [
        ("h", 2, "Training and evaluation time"),
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
        ),
    ]


def click_auc_blocks(auc: pd.DataFrame) -> list[tuple]:
    return [
        ("h", 2, "Click model: AUC on held-out shoppers' logged impressions"),
        (
            "table",
            ["scenario", "agent", "seed", "impressions", "click AUC", "true click probabilities' AUC", "gap"],
            [
                [
                    r["scenario"],
                    r["agent"],
                    int(r["seed"]),
                    f"{int(r['impressions']):,}",
                    f"{r['auc']:.4f}",
                    f"{r['auc_true_click_probability']:.4f}",
                    f"{r['auc_true_click_probability'] - r['auc']:.4f}",
                ]
                for _, r in auc.iterrows()
            ],
        ),
    ]


__all__ = [
    "click_auc_blocks",
    "agent_colours",
    "best_non_rl_blocks",
    "env_difference",
    "format_ci",
    "format_number",
    "format_p",
    "format_signed",
    "plot_by_scenario",
    "plot_engagement",
    "plot_retention",
    "png_bytes",
    "pyplot",
    "render_html",
    "render_markdown",
    "ReportContext",
    "report_blocks",
]
