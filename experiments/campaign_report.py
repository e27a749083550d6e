"""The campaign tables and report section of a run whose agents are coupon campaigns (``experiments.campaigns``).

For each arm, over every seed's held-out shoppers, with the paired bootstrap of the summary tables (the same seed
picks and shopper weights for every arm, ``metrics.paired_resamples``):

- ``retention_dayN``: still a customer at day N (the headline day; unbounded retention, as ``summary.csv``);
- ``net_revenue``: revenue minus coupon cost, per starting shopper; ``coupon_spend``: coupon cost per shopper;
- ``contacted``: the share of shoppers the campaign contacted;
- ``retained_per_1000_spend``: retained shoppers gained over the control arm (targeting ``none``) per 1,000 of coupon
  spend (NaN for an arm that spent nothing);
- ``sleeping_dogs_woken_per_1000``: contacted sleeping dogs (latent type, simulator-only truth) per 1,000 shoppers.

``campaign_differences.csv``: every arm minus the control, and each uplift arm minus the churn-risk, blanket and
random arms, paired. ``qini.csv`` / ``qini_curves.csv``: each scored arm's ranking (its ``campaign_score`` of the
shoppers who reached the decision) scored on truth: a shopper's true effect is her outcome in the blanket arm minus
her outcome in the control arm, the same shopper run both ways with the same seed (common random numbers).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from stickyrec.experiments.campaigns import woken
from stickyrec.experiments.metrics import interval, paired_resamples

PARTS = ("retained", "net_revenue", "coupon_cost", "contacted", "woken", "one")
METRICS = ("retention", "net_revenue", "coupon_spend", "contacted", "retained_per_1000_spend", "woken_per_1000")
LABELS = {
    "retention": "retained d{day} (unbounded)",
    "net_revenue": "net revenue per shopper",
    "coupon_spend": "coupon spend per shopper",
    "contacted": "contacted",
    "retained_per_1000_spend": "retained per 1,000 coupon spend",
    "woken_per_1000": "sleeping dogs woken per 1,000",
}
OUTCOMES = ("retained", "net_revenue")  # what the Qini curves score a ranking on


class CampaignTables(NamedTuple):
    campaigns: pd.DataFrame  # scenario, agent, targeting, metric, estimate, low, high
    differences: pd.DataFrame  # scenario, agent, other, metric, diff, low, high
    qini: pd.DataFrame  # scenario, agent, outcome, qini, low, high, n
    qini_curves: pd.DataFrame  # scenario, agent, outcome, fraction, model, random, perfect
    warning: pd.DataFrame  # scenario, agent, roc_auc, pr_auc, brier, base_rate, precision_top5, n
    warning_reliability: pd.DataFrame  # scenario, agent, bin_low, bin_high, n, predicted, observed


FILES = {
    "campaigns": "campaigns.csv",
    "differences": "campaign_differences.csv",
    "qini": "qini.csv",
    "qini_curves": "qini_curves.csv",
    "warning": "campaign_warning.csv",
    "warning_reliability": "campaign_warning_reliability.csv",
}
WARNING_COLUMNS = ["scenario", "agent", "roc_auc", "pr_auc", "brier", "base_rate", "precision_top5", "n"]
OWN_SLATES = {"ppo"}  # targetings whose arm shows its own slates (the others share the control's)
RELIABILITY_COLUMNS = ["scenario", "agent", "bin_low", "bin_high", "n", "predicted", "observed"]


def targetings(config: dict) -> dict[str, str]:
    """Agent label -> its targeting (``none``, ``all``, ``random``, ``churn_risk``, ``uplift``, ``oracle``), for
    the campaign agents of a run's config."""
    out = {}
    for label, spec in config["agents"].items():
        kind = spec.get("kind", label)
        if kind == "campaign":
            out[label] = (spec.get("params") or {}).get("targeting", "none")
        elif kind == "campaign_oracle":
            out[label] = "oracle"
        elif kind == "campaign_ppo":
            out[label] = "ppo"
    return out


def campaign_tables(config: dict, shoppers: pd.DataFrame, day: int) -> CampaignTables | None:
    """The campaign tables of a run (None without campaign arms or offer columns); ``day``: the retention day."""
    arms = targetings(config)
    if not arms or "coupon_cost" not in shoppers or "campaign_score" not in shoppers:
        return None
    rng = np.random.default_rng(config["report"].get("seed", 0))
    resamples = int(config["report"]["resamples"])
    parts: dict[str, list] = {name: [] for name in CampaignTables._fields}
    for scenario in [s["name"] for s in config["scenarios"]]:
        frame = shoppers[(shoppers["scenario"] == scenario) & shoppers["agent"].isin(list(arms))]
        if not len(frame):
            continue
        agents = [a for a in arms if a in set(frame["agent"])]
        cube = stack(frame, agents, day)  # (agents, seeds, shoppers, parts)
        control = next((a for a in agents if arms[a] == "none"), None)
        draws = bootstrap(cube, rng, resamples, agents.index(control) if control else None)
        point = metric_values(cube.sum(axis=(1, 2))[None], agents.index(control) if control else None)[0]
        # an arm with its own slates retains beyond the control for reasons other than its coupons: no per-spend figure
        own = [i for i, agent in enumerate(agents) if arms[agent] in OWN_SLATES]
        per_spend = METRICS.index("retained_per_1000_spend")
        point[own, per_spend], draws[:, own, per_spend] = np.nan, np.nan
        for a, agent in enumerate(agents):
            for m, metric in enumerate(METRICS):
                low, high = interval_or_nan(draws[:, a, m])
                row = {"scenario": scenario, "agent": agent, "targeting": arms[agent], "metric": metric}
                parts["campaigns"].append({**row, "estimate": point[a, m], "low": low, "high": high})
        parts["differences"] += differences(scenario, agents, arms, point, draws)
        qini, curves = qini_tables(scenario, frame, agents, arms, day, rng, resamples)
        parts["qini"] += qini
        parts["qini_curves"] += curves
        warning, bins = warning_tables(config, scenario, frame, agents, arms)
        parts["warning"] += warning
        parts["warning_reliability"] += bins
    columns = {
        "campaigns": ["scenario", "agent", "targeting", "metric", "estimate", "low", "high"],
        "differences": ["scenario", "agent", "other", "metric", "diff", "low", "high"],
        "qini": ["scenario", "agent", "outcome", "qini", "low", "high", "n"],
        "qini_curves": ["scenario", "agent", "outcome", "fraction", "model", "random", "perfect"],
        "warning": WARNING_COLUMNS,
        "warning_reliability": RELIABILITY_COLUMNS,
    }
    curves = parts.pop("qini_curves")
    tables = {name: pd.DataFrame(rows, columns=columns[name]) for name, rows in parts.items()}
    tables["qini_curves"] = (
        pd.concat(curves, ignore_index=True)[columns["qini_curves"]]
        if curves
        else pd.DataFrame(columns=columns["qini_curves"])
    )
    return CampaignTables(**tables)


def interval_or_nan(draws: np.ndarray) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    return interval(finite) if finite.size == draws.size else (float("nan"), float("nan"))


def cell_parts(part: pd.DataFrame, day: int) -> np.ndarray:
    """(shoppers, ``PARTS``) of one cell, in shopper order."""
    part = part.sort_values("shopper")
    return np.column_stack(
        [
            (part["churn_day"].to_numpy(dtype=float) > day).astype(float),
            part["net_revenue"].to_numpy(dtype=float),
            part["coupon_cost"].to_numpy(dtype=float),
            part["contacted"].to_numpy(dtype=float),
            woken(part).astype(float),
            np.ones(len(part)),
        ]
    )


def stack(frame: pd.DataFrame, agents: list[str], day: int) -> np.ndarray:
    seeds = sorted(set(frame["seed"]))
    by = frame.groupby(["agent", "seed"], sort=False)
    return np.stack([np.stack([cell_parts(by.get_group((a, s)), day) for s in seeds]) for a in agents])


def metric_values(sums: np.ndarray, control: int | None) -> np.ndarray:
    """(draws, agents, ``METRICS``) from (draws, agents, ``PARTS``) weighted sums."""
    n = sums[..., 5]
    retention = sums[..., 0] / n
    spend = sums[..., 2] / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if control is None:
            gained = np.full_like(retention, np.nan)
        else:
            gained = np.where(spend > 0, 1000.0 * (retention - retention[:, [control]]) / spend, np.nan)
    values = (retention, sums[..., 1] / n, spend, sums[..., 3] / n, gained, 1000.0 * sums[..., 4] / n)
    return np.stack(values, axis=-1)


def bootstrap(cube: np.ndarray, rng, resamples: int, control: int | None) -> np.ndarray:
    """(resamples, agents, ``METRICS``): the paired draws (the same seed picks and shopper weights for every arm)."""
    n_agents, n_seeds, n_shoppers, n_parts = cube.shape
    sums = np.zeros((resamples, n_agents, n_parts))
    for r, picks in enumerate(paired_resamples(rng, n_seeds, n_shoppers, resamples)):
        for s, weights in picks:
            sums[r] += np.einsum("i,aip->ap", weights, cube[:, s])
    return metric_values(sums, control)


def differences(scenario: str, agents: list[str], arms: dict, point: np.ndarray, draws: np.ndarray) -> list[dict]:
    """Each arm minus the control; each uplift arm minus the churn-risk, blanket and random arms; each PPO arm minus
    the uplift and blanket arms."""
    pairs = [(a, b) for a in agents for b in agents if arms[b] == "none" and a != b]
    pairs += [
        (a, b) for a in agents for b in agents if arms[a] == "uplift" and arms[b] in ("churn_risk", "all", "random")
    ]
    pairs += [(a, b) for a in agents for b in agents if arms[a] == "ppo" and arms[b] in ("uplift", "all")]
    rows = []
    for a, b in pairs:
        i, j = agents.index(a), agents.index(b)
        for m, metric in enumerate(METRICS):
            undefined = arms[b] == "none" or OWN_SLATES & {arms[a], arms[b]}
            if metric in ("contacted", "coupon_spend") or (metric == "retained_per_1000_spend" and undefined):
                continue  # the control spends nothing; an arm with its own slates has no per-spend figure
            low, high = interval_or_nan(draws[:, i, m] - draws[:, j, m])
            diff = point[i, m] - point[j, m]
            rows.append({"scenario": scenario, "agent": a, "other": b, "metric": metric, "diff": diff})
            rows[-1] |= {"low": low, "high": high}
    return rows


def true_effects(frame: pd.DataFrame, arms: dict, day: int) -> dict | None:
    """Per seed: (shopper ids decided in both, {outcome: blanket minus control}); None without both arms."""
    control = next((a for a, t in arms.items() if t == "none"), None)
    blanket = next((a for a, t in arms.items() if t == "all"), None)
    if control is None or blanket is None:
        return None
    out = {}
    for seed in sorted(set(frame["seed"])):
        both = [
            frame[(frame["agent"] == a) & (frame["seed"] == seed)].sort_values("shopper") for a in (blanket, control)
        ]
        decided = both[0]["decided"].to_numpy(bool) & both[1]["decided"].to_numpy(bool)
        outcome = {
            "retained": [(b["churn_day"].to_numpy(dtype=float) > day).astype(float) for b in both],
            "net_revenue": [b["net_revenue"].to_numpy(dtype=float) for b in both],
        }
        out[seed] = (decided, {k: (v[0] - v[1])[decided] for k, v in outcome.items()})
    return out


def warning_tables(config, scenario, frame, agents, arms) -> tuple[list[dict], list[dict]]:
    """The churn warning of each churn-risk arm scored on truth: its risk at the decision (``campaign_score``)
    against whether the same shopper, in the control arm (no offers), churned within ``window_days`` of it."""
    from stickyrec.experiments.campaigns import CampaignAgent
    from stickyrec.experiments.marketing.scores import flag_top, precision_at, ranking_scores

    control = next((a for a in agents if arms[a] == "none"), None)
    rows, bins = [], []
    for agent in [a for a in agents if arms[a] == "churn_risk"] if control else []:
        spec = CampaignAgent.from_spec(config["agents"][agent].get("params") or {}, seed=0)
        end = spec.decision_day + spec.window_days
        risk, label = [], []
        for seed in sorted(set(frame["seed"])):
            arm, base = (
                frame[(frame["agent"] == a) & (frame["seed"] == seed)].sort_values("shopper") for a in (agent, control)
            )
            decided = arm["decided"].to_numpy(bool) & base["decided"].to_numpy(bool)
            churn_session = np.where(base["churned"].to_numpy(bool), base["churn_day"].to_numpy(float) - 1, np.inf)
            risk.append(arm["campaign_score"].to_numpy(float)[decided])
            label.append((churn_session < end)[decided])
        risk, label = np.concatenate(risk), np.concatenate(label)
        scores = ranking_scores(label, risk)
        top = precision_at(label, flag_top(risk, np.zeros(risk.size), 0.05))
        rows.append({"scenario": scenario, "agent": agent, **{k: scores[k] for k in WARNING_COLUMNS[2:6]}})
        rows[-1] |= {"precision_top5": top, "n": scores["n"]}
        bins += [{"scenario": scenario, "agent": agent, **r} for r in decile_reliability(label, risk)]
    return rows, bins


def decile_reliability(label: np.ndarray, risk: np.ndarray) -> list[dict]:
    """Calibration in ten equal-count bins of predicted risk (a warning's risks sit in a narrow range, where
    equal-width bins would leave one or two): ``bin_low``, ``bin_high``, ``n``, ``predicted``, ``observed``."""
    order = np.argsort(risk, kind="stable")
    out = []
    for part in np.array_split(order, 10):
        if part.size:
            r = risk[part]
            out.append({"bin_low": float(r.min()), "bin_high": float(r.max()), "n": int(part.size)})
            out[-1] |= {"predicted": float(r.mean()), "observed": float(label[part].mean())}
    return out


def qini_tables(scenario, frame, agents, arms, day, rng, resamples) -> tuple[list[dict], list[pd.DataFrame]]:
    """Each scored arm's Qini coefficient on truth (pooled over seeds, with a bootstrap over seeds and shoppers) and
    its pooled uplift curve, for each outcome."""
    from stickyrec.experiments.marketing.uplift import qini_coefficient, uplift_curve

    truth = true_effects(frame, arms, day)
    scored = [a for a in agents if arms[a] in ("random", "churn_risk", "uplift", "oracle")]
    if truth is None or not scored:
        return [], []
    seeds = sorted(truth)
    rows, curves = [], []
    for agent in scored:
        score = {}
        for seed in seeds:
            part = frame[(frame["agent"] == agent) & (frame["seed"] == seed)].sort_values("shopper")
            score[seed] = part["campaign_score"].to_numpy(dtype=float)[truth[seed][0]]
        for outcome in OUTCOMES:
            s = np.concatenate([score[seed] for seed in seeds])
            e = np.concatenate([truth[seed][1][outcome] for seed in seeds])
            curve = uplift_curve(s, e)
            draws = []
            for picks in paired_resamples(rng, len(seeds), 1, resamples, shoppers="indices"):
                pick = [seeds[p] for p, _ in picks]
                index = [rng.integers(0, score[q].size, score[q].size) for q in pick]
                s_r = np.concatenate([score[q][i] for q, i in zip(pick, index)])
                e_r = np.concatenate([truth[q][1][outcome][i] for q, i in zip(pick, index)])
                draws.append(qini_coefficient(uplift_curve(s_r, e_r)))
            low, high = interval(draws)
            row = {"scenario": scenario, "agent": agent, "outcome": outcome, "qini": qini_coefficient(curve)}
            rows.append(row | {"low": low, "high": high, "n": int(s.size)})
            curves.append(curve.assign(scenario=scenario, agent=agent, outcome=outcome))
    return rows, curves


# --------------------------------------------------------------------------------------------------------------
# The report section
# --------------------------------------------------------------------------------------------------------------
DECIMALS = {"retention": 3, "net_revenue": 2, "coupon_spend": 2, "contacted": 3}
DECIMALS |= {"retained_per_1000_spend": 1, "woken_per_1000": 1}


def value_ci(estimate: float, low: float, high: float, metric: str, signed: bool = False) -> str:
    if not np.isfinite(estimate):
        return "n/a"
    d = DECIMALS[metric]
    sign = "+" if signed else ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{estimate:{sign}.{d}f}"
    return f"{estimate:{sign}.{d}f} [{low:{sign}.{d}f}, {high:{sign}.{d}f}]"


def campaign_blocks(tables: CampaignTables, scenario: str, day: int, colours: dict[str, str]) -> list[tuple]:
    """The campaign section of one scenario: the arms' table, the paired differences, the Qini scores and curves."""
    from stickyrec.experiments.report_charts import line_chart

    table = tables.campaigns[tables.campaigns["scenario"] == scenario]
    if not len(table):
        return []
    agents = list(dict.fromkeys(table["agent"]))
    header = ["campaign", "targeting", *(LABELS[m].format(day=day) for m in METRICS)]
    rows = []
    for agent in agents:
        part = table[table["agent"] == agent].set_index("metric")
        cells = [value_ci(*part.loc[m, ["estimate", "low", "high"]], m) for m in METRICS]
        rows.append([agent, part["targeting"].iloc[0], *cells])
    slates = "Every arm shows the same slates"
    if (table["targeting"] == "ppo").any():
        slates = (
            "Every arm but the PPO one shows the same slates (the PPO arm's agent chooses its own slates and whom"
            " to contact, at the same budget; its slates put shoppers in other states at the decision, so its"
            " ranking is not among those scored on truth below, and it has no retained-per-spend figure: its"
            " slates, not its coupons, move its retention)"
        )
    blocks: list[tuple] = [
        ("h", 2, "Targeted retention campaigns"),
        (
            "p",
            f"{slates}; the campaign decides once per shopper, at her first session from the"
            " decision day, and a contacted shopper gets one between-visits coupon. Net revenue is revenue minus"
            " coupon cost. Retained per 1,000 coupon spend counts the shoppers retained beyond the control arm"
            " (no offers) per 1,000 spent. Sleeping dogs woken: contacted shoppers whose latent uplift type is"
            " sleeping dog (simulator-only truth). Brackets: 95% intervals from the paired bootstrap over seeds and"
            " shoppers. `campaigns.csv`.",
        ),
        ("table", header, rows),
    ]
    diffs = tables.differences[tables.differences["scenario"] == scenario]
    if len(diffs):
        shown = ("retention", "net_revenue", "retained_per_1000_spend", "woken_per_1000")
        rows = []
        for (agent, other), part in diffs.groupby(["agent", "other"], sort=False):
            part = part.set_index("metric")
            cells = [value_ci(*part.loc[m, ["diff", "low", "high"]], m, True) if m in part.index else "" for m in shown]
            rows.append([f"{agent} − {other}", *cells])
        header = ["comparison (paired)", *(LABELS[m].format(day=day) for m in shown)]
        blocks += [("p", "Paired differences (`campaign_differences.csv`):"), ("table", header, rows)]
    blocks += qini_blocks(tables, scenario, colours, line_chart)
    blocks += warning_blocks(tables, scenario, colours, line_chart)
    return blocks


def warning_blocks(tables: CampaignTables, scenario: str, colours: dict[str, str], line_chart) -> list[tuple]:
    """The churn early warning behind churn-risk targeting, scored on the control arm's true churn."""
    warning = tables.warning[tables.warning["scenario"] == scenario]
    if not len(warning):
        return []
    header = ["campaign", "ROC-AUC", "PR-AUC", "Brier", "churn rate", "precision, top 5%", "shoppers"]
    rows = [
        [r["agent"], *(f"{r[k]:.3f}" for k in WARNING_COLUMNS[2:7]), f"{int(r['n']):,}"] for _, r in warning.iterrows()
    ]
    blocks: list[tuple] = [
        ("h", 3, "The churn early warning, scored on truth"),
        (
            "p",
            "The churn-risk arm's warning (trained on the logged campaign's control shoppers) gives each deciding"
            " shopper a risk of churning within its window of the decision day; the label is whether the same"
            " shopper, in the control arm (no offers), did. `campaign_warning.csv`,"
            " `campaign_warning_reliability.csv`.",
        ),
        ("table", header, rows),
    ]
    bins = tables.warning_reliability[tables.warning_reliability["scenario"] == scenario]
    series = []
    for agent, part in bins.groupby("agent", sort=False):
        x, y = part["predicted"].to_numpy(dtype=float), part["observed"].to_numpy(dtype=float)
        series.append(dict(name=agent, colour=colours.get(agent, "#555555"), dash="", x=x, y=y, low=None, high=None))
        series[-1]["n"] = part["n"].to_numpy(dtype=float)
    if series:
        top = max(float(np.max(s["x"])) for s in series)
        diagonal = np.array([0.0, top])
        series.append(dict(name="perfect calibration", colour="#999999", dash="4 3", x=diagonal, y=diagonal))
        series[-1] |= {"low": None, "high": None, "n": None}
        svg = line_chart(
            series,
            title="Churn warning: reliability",
            y_label="observed churn rate",
            x_label="predicted risk (bin mean)",
            end_labels=False,
        )
        legend = [(s["name"], s["colour"], s["dash"]) for s in series]
        caption = "Observed churn rate against the warning's predicted risk, in ten equal-count bins (deciles)."
        blocks.append(("svg", f"warning_reliability_{scenario}.svg", svg, caption, legend))
    return blocks


def qini_blocks(tables: CampaignTables, scenario: str, colours: dict[str, str], line_chart) -> list[tuple]:
    qini = tables.qini[tables.qini["scenario"] == scenario]
    if not len(qini):
        return []
    rows = []
    for agent, part in qini.groupby("agent", sort=False):
        part = part.set_index("outcome")
        cells = [
            f"{part.loc[o, 'qini']:+.3f} [{part.loc[o, 'low']:+.3f}, {part.loc[o, 'high']:+.3f}]" for o in OUTCOMES
        ]
        rows.append([agent, *cells, f"{int(part['n'].iloc[0]):,}"])
    blocks: list[tuple] = [
        ("h", 3, "Targeting scored on truth: Qini"),
        (
            "p",
            "Each arm's ranking of the shoppers who reached the decision, scored on their true effects: a shopper's"
            " outcome in the blanket arm minus her outcome in the control arm, the same shopper run both ways with"
            " the same seed. Qini coefficient: the area between the ranking's uplift curve and random targeting's,"
            " over the perfect ranking's (1: perfect, 0: no better than random, negative: worse). `qini.csv`,"
            " `qini_curves.csv`.",
        ),
        ("table", ["campaign", "Qini, retention", "Qini, net revenue", "shoppers"], rows),
    ]
    curves = tables.qini_curves[tables.qini_curves["scenario"] == scenario]
    for outcome, label in (("retained", "retained shoppers"), ("net_revenue", "net revenue")):
        part = curves[curves["outcome"] == outcome]
        series = []
        for agent, one in part.groupby("agent", sort=False):
            x = one["fraction"].to_numpy(dtype=float)
            series.append(
                dict(
                    name=agent,
                    colour=colours.get(agent, "#555555"),
                    dash="",
                    x=x,
                    y=one["model"].to_numpy(dtype=float),
                    low=None,
                    high=None,
                    n=None,
                )
            )
        if not series:
            continue
        first = part[part["agent"] == part["agent"].iloc[0]]
        for name, column, colour in (("random", "random", "#999999"), ("perfect", "perfect", "#333333")):
            series.append(
                dict(
                    name=name,
                    colour=colour,
                    dash="4 3",
                    x=first["fraction"].to_numpy(dtype=float),
                    y=first[column].to_numpy(dtype=float),
                    low=None,
                    high=None,
                    n=None,
                )
            )
        svg = line_chart(
            series,
            title=f"Uplift curves on truth: {label}",
            y_label=f"true gain in {label} per shopper",
            x_label="share of deciding shoppers targeted, best score first",
            end_labels=False,
            zero=True,
        )
        legend = [(s["name"], s["colour"], s["dash"]) for s in series]
        blocks.append(
            (
                "svg",
                f"qini_{outcome}_{scenario}.svg",
                svg,
                f"Uplift curves of each ranking on the true effects ({label}); dashed: random and perfect targeting.",
                legend,
            )
        )
    return blocks


__all__ = ["FILES", "LABELS", "METRICS", "CampaignTables", "campaign_blocks", "campaign_tables", "targetings"]
