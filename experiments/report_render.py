"""What a report looks like: figures (matplotlib, PNG bytes), the report as a list of blocks, Markdown and HTML.

A document is a list of blocks, rendered twice: ``("h", level, text)``, ``("p", text)``, ``("table", header,
rows)``, ``("grid", header, rows, shades)`` (a table whose cells are shaded by ``shades``, same shape as ``rows``:
a number in [-1, 1], blue for positive and red for negative, or None), ``("img", file name, caption)`` (PNG bytes,
or SVG text for a ``.svg`` name, which the HTML inlines), ``("code", text)``. The HTML embeds its images, needs no
network, fits a phone's width (viewport tag; wide tables scroll with their first column kept in view).
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import Any

import numpy as np
import pandas as pd

from stickyrec.experiments.metrics import METRIC_LABELS, METRICS
from stickyrec.experiments.report_data import BEST_METRIC, DIFF_METRICS, NON_RL, ORACLE, ROLE_NOTES, agent_roles


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


def render_markdown(blocks: list[tuple], image_dir: str = "figures") -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind in ("table", "grid"):
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


CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left;position:sticky;left:0;background:#fff;z-index:1}
th:first-child{background:#f3f3f3}img,svg{max-width:100%;height:auto}img{border:1px solid #eee}.wide{overflow-x:auto}
table.grid td{min-width:2.6em}figure{margin:1em 0}code,pre{background:#f6f6f6;padding:2px 4px}
pre{padding:8px;overflow-x:auto}"""


def shade_style(shade) -> str:
    """The inline style of a grid cell shaded by ``shade`` in [-1, 1] (None: no shade)."""
    if shade is None or not np.isfinite(shade):
        return ""
    level = min(abs(float(shade)), 1.0)
    rgb = "33,102,172" if shade >= 0 else "178,24,43"
    ink = "#fff" if level > 0.55 else "#222"
    return f' style="background:rgba({rgb},{level:.2f});color:{ink}"'


def inline_html(text: str) -> str:
    """Markdown's inline marks as HTML: `code`, **bold** and [text](link)."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def html_table(header, rows, shades=None) -> str:
    """A table in a scrolling box; with ``shades`` (same shape as ``rows``), a shaded grid (``shade_style``)."""
    head = "".join(f"<th>{inline_html(str(h))}</th>" for h in header)
    css = ' class="grid"' if shades is not None else ""
    shades = shades if shades is not None else [[None] * len(r) for r in rows]
    body = "".join(
        "<tr>"
        + "".join(f"<td{shade_style(v)}>{inline_html(str(c))}</td>" for c, v in zip(r, sr, strict=True))
        + "</tr>"
        for r, sr in zip(rows, shades, strict=True)
    )
    return f'<div class="wide"><table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render_html(blocks: list[tuple], images: dict[str, bytes], title: str) -> str:
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{inline_html(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{inline_html(block[1])}</p>")
        elif kind in ("table", "grid"):
            body.append(html_table(block[1], block[2], block[3] if kind == "grid" else None))
        elif kind == "img" and block[1].endswith(".svg"):
            svg = images[block[1]]
            svg = svg.decode() if isinstance(svg, bytes) else svg
            body.append(f"<figure>{svg}<figcaption>{inline_html(block[2])}</figcaption></figure>")
        elif kind == "img":
            data = base64.b64encode(images[block[1]]).decode()
            body.append(
                f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
                f"<figcaption>{inline_html(block[2])}</figcaption></figure>"
            )
        elif kind == "code":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def env_difference(config: dict) -> str:
    env = config.get("env") or {}
    return ", ".join(f"{k}={v}" for k, v in env.items()) or "preset default"


def report_blocks(config, table, diffs, cohort, eng, training, auc, best_margins=None) -> list[tuple]:
    """The whole report of one run, as blocks: setup, each scenario (with the best non-RL agent and RL's margins
    over it, given ``best_margins``: ``paired_tables``' best and margins), across scenarios, timings, the click
    model's held-out AUC (where the run has one), how to reproduce."""
    agents = list(config["agents"])
    scenarios = [s["name"] for s in config["scenarios"]]
    reference = config["report"]["reference"]
    blocks = setup_blocks(config, scenarios, agents, reference)
    for scenario in scenarios:
        blocks += scenario_blocks(config, scenario, len(scenarios) > 1, table, diffs, cohort, eng, agents, reference)
        if best_margins is not None:
            blocks += best_non_rl_blocks(scenario, *best_margins, 3 if len(scenarios) > 1 else 2)
    if len(scenarios) > 1:
        blocks += across_blocks(diffs, scenarios, agents, reference)
    blocks += training_blocks(training)
    if len(auc):
        blocks += click_auc_blocks(auc)
    blocks.append(("h", 2, "Reproduce"))
    blocks.append(
        (
            "code",
            f"stickyrec run {config['name']}  # or the YAML file; the resolved config is"
            " config.yaml beside this report",
        )
    )
    return blocks


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
        ("h", 1, f"stickyrec report: {config['name']}"),
        ("p", config.get("description") or ""),
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
            "**How to read it.** Retention at day d is the share of shoppers still customers on day d (not yet"
            f" churned; {churn_meaning(env0)}). Brackets are 95% intervals from a bootstrap over seeds and shoppers."
            " A difference is paired: the same shoppers under both agents. Kaplan-Meier curves and the log-rank test"
            " (lifelines) pool the seeds.",
        ),
        ("img", "retention_curves.png", "Kaplan-Meier retention curves with 95% bands, by agent"),
    ]


def scenario_blocks(config, scenario, several, table, diffs, cohort, eng, agents, reference) -> list[tuple]:
    """One scenario: its summary table, the paired differences, cohort retention and engagement over time."""
    level = 3 if several else 2
    blocks: list[tuple] = []
    if several:
        blocks.append(("h", 2, f"Scenario {scenario}"))
        overrides = next(s["env"] for s in config["scenarios"] if s["name"] == scenario)
        blocks.append(("p", "Env overrides: " + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "none")))
    t = table[table["scenario"] == scenario]
    roles = agent_roles(config)
    blocks.append(("h", level, "Summary per agent"))
    blocks.append(
        (
            "table",
            ["agent", *(METRIC_LABELS[m] for m in METRICS)],
            [[oracle_mark(r["agent"], roles), *(format_ci(r, m) for m in METRICS)] for _, r in t.iterrows()],
        )
    )
    d = diffs[diffs["scenario"] == scenario] if len(diffs) else diffs
    if len(d):
        blocks.append(("h", level, f"Against {reference}"))
        blocks.append(differences_table(d))
    c = cohort[(cohort["scenario"] == scenario) & (cohort["cohort"] == "all")]
    day_cols = [col for col in c.columns if col.startswith("day_")]
    blocks.append(("h", level, "Cohort retention (share still active on day N)"))
    blocks.append(
        (
            "table",
            ["agent", *(f"day {col[4:]}" for col in day_cols)],
            [[r["agent"], *(f"{r[col]:.3f}" for col in day_cols)] for _, r in c.iterrows()],
        )
    )
    blocks.append(("p", "Per-seed cohorts (one held-out population per seed) are in `cohorts.csv`."))
    blocks.append(("img", f"engagement_{scenario}.png", "Sessions and revenue per active shopper per day (3-day mean)"))
    blocks.append(engagement_table(eng[eng["scenario"] == scenario], agents))
    return blocks


def oracle_mark(agent: str, roles: dict[str, str]) -> str:
    """The agent's label, marked where it reads hidden state."""
    return f"{agent} (oracle: reads hidden state)" if roles.get(agent) == ORACLE else agent


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


def engagement_table(e: pd.DataFrame, agents) -> tuple:
    """Sessions and revenue per active shopper, averaged over the first week, the rest of the month, and after."""
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
    return ("table", ["agent", *(f"days {lo}-{hi - 1}: sessions / revenue per active" for lo, hi in windows)], rows)


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
    "CSS",
    "click_auc_blocks",
    "agent_colours",
    "best_non_rl_blocks",
    "oracle_mark",
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
    "report_blocks",
]
