"""Evaluate agents on one held-out shopper population and tabulate the results with 95% confidence intervals.

Every agent meets the same shoppers: population seed ``s`` gives the same starting shoppers to every agent
(slot i is seeded ``s + i``), so differences between rows are differences between policies. The metrics, their
labels and the bootstrap are ``experiments.metrics``'; ``stickyrec run`` does the same over several seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from stickyrec.agents.base import Agent
from stickyrec.envs.config import RetentionConfig
from stickyrec.experiments.metrics import METRIC_LABELS, METRICS, bootstrap_summary, per_shopper_frame
from stickyrec.experiments.simulate import simulate_cohort


def evaluate_agents(
    agents: Sequence[Agent], config: RetentionConfig, n_shoppers: int, seed: int, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """Run each agent on the same held-out population; per-shopper frames by agent name."""
    names = [agent.name for agent in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique, got {names}")
    return {
        agent.name: per_shopper_frame(simulate_cohort(agent, config, n_shoppers, seed=seed, progress=progress))
        for agent in agents
    }


def results_table(frames: dict[str, pd.DataFrame], resamples: int = 300) -> pd.DataFrame:
    """One row per agent: each metric with its 95% CI (columns ``metric``, ``metric_low``, ``metric_high``)."""
    rows = []
    for name, frame in frames.items():
        row = {"agent": name, "shoppers": len(frame)}
        for metric, (value, low, high) in bootstrap_summary(frame, resamples).items():
            row.update({metric: value, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def click_auc(model, test: pd.DataFrame) -> dict[str, float]:
    """A click model's AUC on held-out logged impressions, beside the AUC of the simulator's true click probabilities
    on the same impressions (the ceiling of any click model)."""
    from stickyrec.agents.mlp import roc_auc
    from stickyrec.experiments.data import TRUE_CLICK_PROB

    labels = test["clicked"].to_numpy()
    model_auc = roc_auc(labels, model.predict_click(test))
    ceiling = roc_auc(labels, test[TRUE_CLICK_PROB].to_numpy())
    return {"model": float(model_auc), "true_click_probability": float(ceiling), "impressions": len(test)}


def format_markdown(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> str:
    """A Markdown table: ``estimate [low, high]`` per metric."""
    header = "| agent | " + " | ".join(METRIC_LABELS[m] for m in metrics) + " |"
    lines = [header, "|" + "---|" * (len(metrics) + 1)]
    for _, row in table.iterrows():
        cells = []
        for m in metrics:
            digits = 1 if row[m] >= 10 else 3
            cells.append(f"{row[m]:.{digits}f} [{row[m + '_low']:.{digits}f}, {row[m + '_high']:.{digits}f}]")
        lines.append(f"| {row['agent']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["click_auc", "evaluate_agents", "format_markdown", "results_table"]
