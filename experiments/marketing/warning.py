"""Churn early warning and purchase intent, scored against the simulator's truth; a demo on the default world.

``evaluate_warning`` and ``evaluate_intent`` score any risk or probability column against the true outcomes;
``run_demo`` runs the whole experiment: a training population and a held-out one (different seeds, as the runner's
logged and evaluation populations) followed under random slates, the examples built from their logs, the models
fitted on the first and scored on the second, beside the true hazard (``hazard.true_hazard``) as the ceiling.

    python -m stickyrec.experiments.marketing.warning --help
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from stickyrec.experiments.marketing.features import (
    check_positive_int,
    intent_examples,
    snapshot_days,
    warning_examples,
)
from stickyrec.experiments.marketing.hazard import StateSnapshots, true_hazard
from stickyrec.experiments.marketing.intent import SessionSnapshots, true_intent
from stickyrec.experiments.marketing.logs import StepRecorder
from stickyrec.experiments.marketing.models import ChurnWarning, IntentModel
from stickyrec.experiments.marketing.scores import (
    check_share,
    flag_top,
    lead_times,
    precision_at,
    ranking_scores,
    reliability,
)

TRAIN_POPULATION_SEED = 500_000  # the runner's logged populations start here (experiments.experiment)
TEST_POPULATION_SEED = 1_000_000  # and its evaluation populations here


def evaluate_warning(
    examples: pd.DataFrame, risk: np.ndarray, window_days: int = 14, share: float = 0.05, bins: int = 10
) -> dict:
    """Scores of ``risk`` (one per row of ``warning_examples``) against the true ``churns`` labels.

    ``roc_auc``, ``pr_auc``, ``brier``, ``base_rate``, ``n``; ``precision_at_top``: the share of churners among the
    top ``share`` of each snapshot's shoppers by risk (the flagged); ``lead_time_days``: the median days from a
    shopper's first flag to her churn, over flagged shoppers who churn within ``window_days`` of it
    (``flagged_churners`` of them), ``lead_time_days_any`` over those who churn at any later day observed;
    ``reliability``: the calibration frame (``scores.reliability``).
    """
    risk = np.asarray(risk, dtype=np.float64)
    if risk.shape != (len(examples),):
        raise ValueError(f"risk has shape {risk.shape}; allowed: ({len(examples)},), one per example")
    label = examples["churns"].to_numpy(dtype=bool)
    flagged = flag_top(risk, examples["day"].to_numpy(), share)
    within = lead_times(examples, flagged, window_days)
    anytime = lead_times(examples, flagged)
    return {
        **ranking_scores(label, risk),
        "share": check_share(share),
        "precision_at_top": precision_at(label, flagged),
        "lead_time_days": float(within["lead"].median()) if len(within) else math.nan,
        "flagged_churners": len(within),
        "lead_time_days_any": float(anytime["lead"].median()) if len(anytime) else math.nan,
        "reliability": reliability(label, risk, bins),
    }


def evaluate_intent(examples: pd.DataFrame, probability: np.ndarray, share: float = 0.05, bins: int = 10) -> dict:
    """Per slates seen (``intent_examples``' ``slates_seen``): ranking scores, ``precision_at_top`` (the share of
    buyers among the top ``share`` by probability), ``reliability``."""
    probability = np.asarray(probability, dtype=np.float64)
    if probability.shape != (len(examples),):
        raise ValueError(f"probability has shape {probability.shape}; allowed: ({len(examples)},), one per example")
    out = {}
    for j in sorted(examples["slates_seen"].unique()):
        rows = examples["slates_seen"].to_numpy() == j
        label, score = examples["buys"].to_numpy(dtype=bool)[rows], probability[rows]
        flagged = flag_top(score, np.zeros(score.size), share)
        out[int(j)] = {
            **ranking_scores(label, score),
            "precision_at_top": precision_at(label, flagged),
            "reliability": reliability(label, score, bins),
        }
    return out


def simulate_population(
    config, n_shoppers: int, seed: int, policy_seed: int, days=(), progress: bool = False, intent_shoppers: int = 0
):
    """(step table, state snapshots at ``days``, session snapshots of the first ``intent_shoppers`` shoppers or
    None) of ``n_shoppers`` (seeds ``seed + i``) under random slates."""
    from stickyrec.agents import RandomPolicy
    from stickyrec.experiments.rollout import rollout

    observers = [StepRecorder(), StateSnapshots(days)]
    if intent_shoppers:
        observers.append(SessionSnapshots(shoppers=intent_shoppers))
    results = rollout(RandomPolicy(policy_seed), config, n_shoppers, seed, observers, progress, f"seed {seed}")
    return results[0], results[1], results[2] if intent_shoppers else None


def run_demo(
    config="default",
    train_shoppers: int = 2000,
    test_shoppers: int = 600,
    window_days: int = 14,
    every: int = 7,
    replicates: int = 48,
    share: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    intent_shoppers: int = 200,
    intent_replicates: int = 8,
) -> dict:
    """The experiment end to end; a dict of the figures and the frames.

    ``warning`` and ``hazard``: the churn model and the true hazard on every held-out example; ``intent``: the intent
    model on every held-out session; ``intent_subset`` and ``intent_ceiling``: the model and the true probability
    (``intent.true_intent``, ``intent_replicates`` re-simulations) on the sessions of the first ``intent_shoppers``
    held-out shoppers."""
    from stickyrec.envs.catalog import make_catalog
    from stickyrec.envs.config import make_config

    config = make_config(config)
    train_shoppers = check_positive_int(train_shoppers, "train_shoppers")
    test_shoppers = check_positive_int(test_shoppers, "test_shoppers")
    replicates, share = check_positive_int(replicates, "replicates"), check_share(share)
    intent_shoppers = check_positive_int(intent_shoppers, "intent_shoppers")
    intent_replicates = check_positive_int(intent_replicates, "intent_replicates")
    days = snapshot_days(config.horizon_days, window_days, every)
    catalog = make_catalog(config)
    started = time.perf_counter()
    train_steps, _, _ = simulate_population(config, train_shoppers, TRAIN_POPULATION_SEED, seed, (), progress)
    test_steps, states, sessions = simulate_population(
        config, test_shoppers, TEST_POPULATION_SEED, seed + 1, days, progress, min(intent_shoppers, test_shoppers)
    )
    train = warning_examples(train_steps, config.horizon_days, window_days, every, item_rating=catalog.rating)
    test = warning_examples(test_steps, config.horizon_days, window_days, every, item_rating=catalog.rating)
    model = ChurnWarning(random_state=seed).fit(train)
    test["risk"] = model.score(test)
    hazard = true_hazard(config, states, window_days, replicates, seed, catalog, progress=progress)
    test = test.merge(hazard, on=["shopper", "day"], how="left")
    test["hazard"] = test["hazard"].fillna(0.0)  # active, but no session before the horizon: cannot churn
    items = {"item_rating": catalog.rating, "item_price": catalog.log_relative_price}
    intent_train, intent_test = intent_examples(train_steps, **items), intent_examples(test_steps, **items)
    intent_test["probability"] = IntentModel(random_state=seed).fit(intent_train).score(intent_test)
    ceiling = true_intent(config, sessions, intent_replicates, seed, catalog, progress=progress)
    subset = intent_test.merge(
        ceiling.rename(columns={"probability": "true_probability"}), on=["shopper", "session", "slates_seen"]
    )
    return {
        "warning": evaluate_warning(test, test["risk"].to_numpy(), window_days, share),
        "hazard": evaluate_warning(test, test["hazard"].to_numpy(), window_days, share),
        "intent": evaluate_intent(intent_test, intent_test["probability"].to_numpy(), share),
        "intent_subset": evaluate_intent(subset, subset["probability"].to_numpy(), share),
        "intent_ceiling": evaluate_intent(subset, subset["true_probability"].to_numpy(), share),
        "examples": {"train": len(train), "test": len(test)},
        "test_examples": test,
        "intent_examples": intent_test,
        "seconds": time.perf_counter() - started,
    }


def format_report(result: dict, window_days: int) -> str:
    """The figures as plain-text tables."""
    keys = ("roc_auc", "pr_auc", "brier", "base_rate", "precision_at_top", "lead_time_days", "lead_time_days_any")
    lines = [f"churn within {window_days} days, held-out shoppers ({result['examples']['test']} examples)"]
    lines.append(f"{'':<22}" + "".join(f"{k:>20}" for k in keys))
    for name in ("warning", "hazard"):
        lines.append(f"{name:<22}" + "".join(f"{result[name][k]:>20.4f}" for k in keys))
    lines.append(
        f"flagged churners (warning / hazard): {result['warning']['flagged_churners']}"
        f" / {result['hazard']['flagged_churners']}"
    )
    for name in ("warning", "hazard"):
        lines.append(f"reliability ({name}):")
        lines.append(result[name]["reliability"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    lines.append("purchase intent (sessions live with no purchase yet):")
    for name in ("intent", "intent_subset", "intent_ceiling"):
        lines.append(f"  {name}:")
        for j, figures in result[name].items():
            keys = ("roc_auc", "pr_auc", "brier", "base_rate", "precision_at_top")
            lines.append(
                f"    after {j} slate(s): n {figures['n']}, " + ", ".join(f"{k} {figures[k]:.4f}" for k in keys)
            )
    lines.append(f"wall time {result['seconds']:.1f} s")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stickyrec.experiments.marketing.warning",
        description="Churn early warning and purchase intent on a world (default: the default world), scored on"
        " held-out shoppers against the simulator's true outcomes and its true hazard.",
    )
    parser.add_argument("--config", default="default", help="a preset name or a YAML path (default: default)")
    parser.add_argument("--train-shoppers", type=int, default=2000)
    parser.add_argument("--test-shoppers", type=int, default=600)
    parser.add_argument("--window-days", type=int, default=14, help="N: churn within N days (default 14)")
    parser.add_argument("--every", type=int, default=7, help="days between snapshots (default 7)")
    parser.add_argument("--replicates", type=int, default=48, help="re-simulations per true-hazard estimate")
    parser.add_argument("--share", type=float, default=0.05, help="share flagged per snapshot (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intent-shoppers", type=int, default=200, help="held-out shoppers with the intent ceiling")
    parser.add_argument("--intent-replicates", type=int, default=8, help="re-simulations per true intent")
    args = parser.parse_args(argv)
    result = run_demo(
        args.config,
        args.train_shoppers,
        args.test_shoppers,
        args.window_days,
        args.every,
        args.replicates,
        args.share,
        args.seed,
        intent_shoppers=args.intent_shoppers,
        intent_replicates=args.intent_replicates,
    )
    print(format_report(result, args.window_days))


if __name__ == "__main__":
    main()
