"""The recommender team's pipeline, end to end: collect -> preprocess -> features -> train -> evaluate.

1. **Collect** logged behaviour: a cohort of shoppers under a logging policy (random slates: every item gets
   shown, so click models and co-click statistics are unbiased), every impression into the log store (DuckDB by
   default, or a SQLAlchemy URL such as MySQL), with serve-time shopper features (feature logging).
2. **Preprocess**: the training table (impressions joined with their serve-time features), split by shopper and
   by time (``experiments.data.split_log``).
3. **Train** the baselines on the training split: popularity, item-item CF, and the supervised MLP click model
   (early stopping on the validation split).
4. **Score**: the MLP's click AUC on the held-out shoppers' impressions, beside the AUC of the simulator's true
   click probabilities on the same impressions (the ceiling of any click model).
5. **Evaluate** every agent on a held-out shopper population over the horizon, with 95% bootstrap intervals.

Everything lands in ``out_dir``: the resolved config, checkpoints, ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from stickyrec.envs.config import RetentionConfig

EVAL_SEED_OFFSET = 1_000_000  # held-out populations start far from every training seed


@dataclasses.dataclass(frozen=True)
class BaselineRun:
    """What ``run_baselines`` produced."""

    out_dir: Path
    auc_mlp: float
    auc_ceiling: float
    table_markdown: str
    seconds: dict


def run_baselines(
    out_dir: str | Path,
    config: RetentionConfig,
    train_shoppers: int = 3000,
    eval_shoppers: int = 2000,
    seed: int = 0,
    store=None,
    mlp_epochs: int = 20,
    progress: bool = True,
) -> BaselineRun:
    import pandas as pd
    import torch

    from stickyrec.agents import LongTermOracle, MyopicOracle, RandomPolicy
    from stickyrec.agents.baselines import ItemCFPolicy, PopularityPolicy
    from stickyrec.agents.mlp import MLPClickModel, roc_auc
    from stickyrec.envs.catalog import make_catalog
    from stickyrec.experiments.data import TRUE_CLICK_PROB, load_training_log, split_log
    from stickyrec.experiments.evaluate import evaluate_agents, format_markdown, results_table
    from stickyrec.experiments.platform import collect
    from stickyrec.io import write_bytes_atomic, write_json_atomic

    for name, value in (("train_shoppers", train_shoppers), ("eval_shoppers", eval_shoppers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 10:
            raise ValueError(f"{name} must be an integer >= 10, got {value!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # faster than two on small networks here
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    write_bytes_atomic(out / "config.yaml", config.to_yaml().encode())
    catalog = make_catalog(config)
    store = store if store is not None else out / "impressions.duckdb"
    contexts = out / "contexts.parquet"
    run_id = f"baselines_logging_{seed}"
    collected = collect(
        RandomPolicy(seed),
        config,
        train_shoppers,
        store=store,
        run_id=run_id,
        seed=seed,
        progress=progress,
        contexts=contexts,
    )
    if collected.already_complete and not contexts.exists():
        raise ValueError(
            f"run {run_id!r} is complete in the store but {contexts} is missing; remove the run or the"
            " store to collect again"
        )
    lap("collect")

    table = load_training_log(store, run_id, contexts, catalog)
    splits = split_log(table, seed=seed)
    lap("preprocess")

    popularity = PopularityPolicy().fit(splits.train, catalog)
    # Two CF rankings: the founding brief's normalised r_hat, and the usual implicit-feedback top-N ranking
    # (the similarity-weighted sum, r_hat's numerator), which does much better with click counts as ratings.
    item_cf = ItemCFPolicy(ranking="weighted_sum").fit(splits.train, catalog)
    item_cf_brief = ItemCFPolicy(ranking="r_hat").fit(splits.train, catalog)
    item_cf_brief.name = "item_cf_brief_rhat"
    lap("fit_popularity_cf")
    mlp = MLPClickModel()
    history = mlp.fit(splits.train, splits.validation, catalog, epochs=mlp_epochs, seed=seed, progress=progress)
    lap("fit_mlp")

    labels = splits.test["clicked"].to_numpy()
    auc_mlp = roc_auc(labels, mlp.predict_click(splits.test))
    auc_ceiling = roc_auc(labels, splits.test[TRUE_CLICK_PROB].to_numpy())
    lap("auc")

    popularity.save(out / "popularity.npz")
    item_cf.save(out / "item_cf.npz")
    mlp.save(out / "mlp.pt")

    agents = [RandomPolicy(seed), popularity, item_cf_brief, item_cf, mlp, MyopicOracle(), LongTermOracle()]
    frames = evaluate_agents(agents, config, eval_shoppers, seed=EVAL_SEED_OFFSET + seed, progress=progress)
    table_ci = results_table(frames)
    lap("evaluate")
    markdown = format_markdown(table_ci)
    frames_all = pd.concat([f.assign(agent=name) for name, f in frames.items()], ignore_index=True)
    write_bytes_atomic(out / "per_shopper.csv", frames_all.to_csv(index=False).encode())
    write_json_atomic(
        out / "results.json",
        {
            "train_shoppers": train_shoppers,
            "eval_shoppers": eval_shoppers,
            "seed": seed,
            "eval_population_seed": EVAL_SEED_OFFSET + seed,
            "store": collected.store,
            "impressions": int(len(table)),
            "split_sizes": {
                "train": len(splits.train),
                "validation": len(splits.validation),
                "test": len(splits.test),
                "cut_day": splits.cut_day,
            },
            "auc": {"mlp": auc_mlp, "true_click_probability": auc_ceiling, "gap": auc_ceiling - auc_mlp},
            "mlp_history": {k: (v if not isinstance(v, np.ndarray) else v.tolist()) for k, v in history.items()},
            "table": table_ci.to_dict(orient="records"),
            "seconds": seconds,
        },
    )
    report = (
        f"# Baselines on held-out shoppers\n\n{eval_shoppers} held-out shoppers (population seed "
        f"{EVAL_SEED_OFFSET + seed}), {config.horizon_days:g} days; 95% bootstrap intervals over shoppers.\n\n"
        f"{markdown}\n\nClick AUC on {len(splits.test):,} held-out impressions: MLP {auc_mlp:.4f}, true click "
        f"probabilities (ceiling) {auc_ceiling:.4f}, gap {auc_ceiling - auc_mlp:.4f}.\n"
    )
    write_bytes_atomic(out / "results.md", report.encode())
    return BaselineRun(out, auc_mlp, auc_ceiling, markdown, seconds)
