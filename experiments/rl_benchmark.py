"""The RL comparison: baselines and oracles against PPO and SlateQ trained with 5 seeds, on held-out shoppers.

    stickyrec rl-benchmark [--seeds 5] [--rewards retention,click] [--workers 2] [--out results/rl]

1. **Baselines** (``experiments.baselines.run_baselines``): random logging, popularity, item-item CF, the supervised
   MLP click model, and the myopic and long-term oracles, evaluated on the held-out population.
2. **Cells**: every (agent, reward, seed) trains independently (``experiments.train.train_agent``) in a pool of
   worker processes, then plays the same held-out population (population seed ``EVAL_SEED_OFFSET``: shoppers no
   agent trained on). A finished cell leaves ``cells/NAME/eval.parquet`` (written atomically) and is skipped on a
   re-run, so an interrupted grid resumes where it stopped.
3. **Table** (``results.md``, ``results.json``): every metric with a 95% interval. Baselines: a bootstrap over
   shoppers. RL agents: a two-level bootstrap, over training seeds and over shoppers, so the interval holds both
   the population's noise and the seed-to-seed spread of training. The difference in 30-day retention against the
   MLP is paired (same shoppers, same resampled weights); the share of the long-term oracle's 30-day retention
   likewise.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.experiments.baselines import EVAL_SEED_OFFSET
from stickyrec.experiments.evaluate import METRICS, _metrics, format_markdown

BASELINE_ORDER = ("random", "popularity", "item_cf_brief_rhat", "item_cf", "mlp", "myopic_oracle")


def _cell_name(agent: str, reward: str, seed: int) -> str:
    return f"{agent}_{reward}_s{seed}"


def _run_cell(task: dict) -> dict:
    """Train and evaluate one cell (runs in a worker process)."""
    import torch

    from stickyrec.envs.config import RetentionConfig
    from stickyrec.experiments.evaluate import per_shopper_frame
    from stickyrec.experiments.simulate import simulate_cohort
    from stickyrec.experiments.train import train_agent
    from stickyrec.io import write_parquet_atomic

    torch.set_num_threads(1)
    config = RetentionConfig(**task["config"])
    out = Path(task["dir"])
    t0 = time.perf_counter()
    agent = train_agent(
        task["agent"],
        config,
        out,
        reward=task["reward"],
        steps=task["steps"],
        seed=task["seed"],
        hyperparameters=task["params"],
        progress=False,
    )
    train_seconds = time.perf_counter() - t0
    frame = per_shopper_frame(simulate_cohort(agent, config, task["eval_shoppers"], seed=task["eval_seed"]))
    write_parquet_atomic(frame, out / "eval.parquet")  # the cell counts as done only once this exists
    return {
        "cell": out.name,
        "train_seconds": train_seconds,
        "steps": agent.history["steps"],
        "retention_day30": float(frame["retained_day30"].mean()),
    }


def _bootstrap_rows(
    baselines: dict[str, pd.DataFrame], rl: dict[str, list[pd.DataFrame]], resamples: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Metric table with 95% intervals, and the targets table (RL vs MLP and vs the long-term oracle)."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(baselines.values())))
    for name, frames in [*((k, [v]) for k, v in baselines.items()), *rl.items()]:
        if any(len(f) != n for f in frames):
            raise ValueError(f"{name}: every evaluation must cover the same {n} held-out shoppers")
    estimates = {name: _metrics(f) for name, f in baselines.items()}
    estimates |= {
        name: {m: float(np.mean([_metrics(f)[m] for f in frames])) for m in METRICS} for name, frames in rl.items()
    }
    draws: dict[str, dict[str, list[float]]] = {name: {m: [] for m in METRICS} for name in estimates}
    for _ in range(resamples):
        weights = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)
        for name, frame in baselines.items():
            for m, value in _metrics(frame, weights).items():
                draws[name][m].append(value)
        for name, frames in rl.items():
            chosen = rng.integers(0, len(frames), size=len(frames))
            per_seed = [_metrics(frames[i], weights) for i in chosen]
            for m in METRICS:
                draws[name][m].append(float(np.mean([d[m] for d in per_seed])))
    rows = []
    for name, estimate in estimates.items():
        row = {"agent": name, "seeds": len(rl[name]) if name in rl else 1}
        for m in METRICS:
            row.update(
                {
                    m: estimate[m],
                    f"{m}_low": float(np.percentile(draws[name][m], 2.5)),
                    f"{m}_high": float(np.percentile(draws[name][m], 97.5)),
                }
            )
        rows.append(row)
    targets = []
    mlp, oracle = "mlp", "long_term_oracle"
    for name in rl:
        if mlp not in draws or oracle not in draws:
            continue
        diff = np.array(draws[name]["retention_day30"]) - np.array(draws[mlp]["retention_day30"])
        share = np.array(draws[name]["retention_day30"]) / np.array(draws[oracle]["retention_day30"])
        wk1 = np.array(draws[mlp]["click_rate_week1"]) - np.array(draws[name]["click_rate_week1"])
        targets.append(
            {
                "agent": name,
                "d30_minus_mlp": estimates[name]["retention_day30"] - estimates[mlp]["retention_day30"],
                "d30_minus_mlp_low": float(np.percentile(diff, 2.5)),
                "d30_minus_mlp_high": float(np.percentile(diff, 97.5)),
                "share_of_oracle_d30": estimates[name]["retention_day30"] / estimates[oracle]["retention_day30"],
                "share_low": float(np.percentile(share, 2.5)),
                "share_high": float(np.percentile(share, 97.5)),
                "mlp_wk1_ctr_minus_agent": estimates[mlp]["click_rate_week1"] - estimates[name]["click_rate_week1"],
                "wk1_low": float(np.percentile(wk1, 2.5)),
                "wk1_high": float(np.percentile(wk1, 97.5)),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(targets)


def _targets_markdown(targets: pd.DataFrame) -> str:
    lines = [
        "| agent | d30 retention minus MLP [95% CI] | share of long-term oracle d30 [95% CI] |"
        " MLP week-1 CTR minus agent [95% CI] |",
        "|---|---|---|---|",
    ]
    for _, r in targets.iterrows():
        lines.append(
            f"| {r['agent']} | {r['d30_minus_mlp']:+.3f} [{r['d30_minus_mlp_low']:+.3f},"
            f" {r['d30_minus_mlp_high']:+.3f}] | {r['share_of_oracle_d30']:.1%} [{r['share_low']:.1%},"
            f" {r['share_high']:.1%}] | {r['mlp_wk1_ctr_minus_agent']:+.3f} [{r['wk1_low']:+.3f},"
            f" {r['wk1_high']:+.3f}] |"
        )
    return "\n".join(lines)


def run_rl_benchmark(
    out_dir,
    config,
    agents=("ppo", "slateq"),
    rewards=("quality_stickiness", "click"),
    seeds=5,
    click_seeds: int | None = None,
    steps: dict | None = None,
    params: dict | None = None,
    eval_shoppers: int = 2000,
    train_shoppers: int = 3000,
    workers: int = 2,
    resamples: int = 300,
    progress: bool = True,
):
    """Run (or resume) the comparison into ``out_dir``; returns the Markdown report (also ``results.md``)."""
    from tqdm.auto import tqdm

    from stickyrec.agents.registry import get_agent_class
    from stickyrec.agents.rl import make_reward, make_rl_agent
    from stickyrec.experiments.baselines import run_baselines
    from stickyrec.io import write_bytes_atomic, write_json_atomic

    out = Path(out_dir)
    params = params or {}
    for agent in agents:  # every input checked before any work
        make_rl_agent(agent, **params.get(agent, {}))
    steps = {**{agent: get_agent_class(agent).default_steps for agent in agents}, **(steps or {})}
    for reward in rewards:
        make_reward(reward)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    baseline_dir = out / "baselines"
    timings["baselines_reused"] = (baseline_dir / "results.json").exists()
    if not timings["baselines_reused"]:
        run_baselines(
            baseline_dir, config, train_shoppers=train_shoppers, eval_shoppers=eval_shoppers, seed=0, progress=progress
        )
    timings["baselines"] = round(time.perf_counter() - t_start, 1)
    per_shopper = pd.read_csv(baseline_dir / "per_shopper.csv")
    baselines = {
        name: frame.drop(columns="agent").reset_index(drop=True)
        for name, frame in per_shopper.groupby("agent", sort=False)
    }
    if len(next(iter(baselines.values()))) != eval_shoppers:
        raise ValueError(f"{baseline_dir} was evaluated on another number of shoppers; use another --out")

    tasks = []
    other_seeds = seeds if click_seeds is None else click_seeds
    for agent in agents:
        for reward in rewards:
            for seed in range(seeds if reward == rewards[0] else other_seeds):
                cell = out / "cells" / _cell_name(agent, reward, seed)
                tasks.append(
                    {
                        "agent": agent,
                        "reward": reward,
                        "seed": seed,
                        "steps": steps[agent],
                        "params": params.get(agent, {}),
                        "dir": str(cell),
                        "config": config.to_dict(),
                        "eval_shoppers": eval_shoppers,
                        "eval_seed": EVAL_SEED_OFFSET,
                    }
                )
    pending = [t for t in tasks if not (Path(t["dir"]) / "eval.parquet").exists()]
    t_cells = time.perf_counter()
    cell_log = []
    if pending:
        bar = tqdm(
            total=len(tasks), initial=len(tasks) - len(pending), desc="RL cells", unit="cell", disable=not progress
        )
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_cell, task): task for task in pending}
            for future in as_completed(futures):
                result = future.result()
                cell_log.append(result)
                bar.set_postfix_str(
                    f"{result['cell']}: d30 {result['retention_day30']:.3f}, {result['train_seconds']:.0f}s"
                )
                bar.update(1)
        bar.close()
    timings["cells"] = round(time.perf_counter() - t_cells, 1)

    rl: dict[str, list[pd.DataFrame]] = {}
    train_info: dict[str, list[dict]] = {}
    for task in tasks:
        label = task["agent"] if task["reward"] == rewards[0] else f"{task['agent']}, {task['reward']} reward"
        rl.setdefault(label, []).append(pd.read_parquet(Path(task["dir"]) / "eval.parquet"))
        train_info.setdefault(label, []).append(json.loads((Path(task["dir"]) / "train.json").read_text())["history"])
    table, targets = _bootstrap_rows(baselines, rl, resamples, seed=0)
    order = [n for n in BASELINE_ORDER if n in baselines] + list(rl) + ["long_term_oracle"]
    order += [n for n in baselines if n not in order]
    table = table.set_index("agent").loc[order].reset_index()
    timings["total"] = round(time.perf_counter() - t_start, 1)
    training = {
        label: {
            "seeds": len(h),
            "steps": int(np.mean([x["steps"] for x in h])),
            "train_seconds_mean": float(np.mean([x["seconds"] for x in h])),
            "train_seconds_max": float(np.max([x["seconds"] for x in h])),
            "steps_per_second": float(np.mean([x["steps_per_second"] for x in h])),
        }
        for label, h in train_info.items()
    }
    markdown = format_markdown(
        table.assign(agent=[f"{a} ({n} seeds)" if a in rl else a for a, n in zip(table["agent"], table["seeds"])])
    )
    report = (
        f"# RL agents against baselines on held-out shoppers\n\n{eval_shoppers} held-out shoppers (population"
        f" seed {EVAL_SEED_OFFSET}), {config.horizon_days:g}-day horizon. RL rows: mean over the training"
        " seeds (as shown); 95% intervals from a bootstrap over seeds and shoppers (baselines: over"
        " shoppers).\n\n"
        f"{markdown}\n\n## Targets\n\n{_targets_markdown(targets)}\n\n## Training\n\n"
        "| agent | seeds | steps | mean seconds | max seconds | steps/s |\n|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {k} | {v['seeds']} | {v['steps']:,} | {v['train_seconds_mean']:.0f} |"
            f" {v['train_seconds_max']:.0f} | {v['steps_per_second']:,.0f} |"
            for k, v in training.items()
        )
        + f"\n\nWall time (seconds): {timings}\n"
    )
    write_bytes_atomic(out / "results.md", report.encode())
    write_json_atomic(
        out / "results.json",
        {
            "table": table.to_dict(orient="records"),
            "targets": targets.to_dict(orient="records"),
            "training": training,
            "timings": timings,
            "cells_run_now": cell_log,
            "seeds": seeds,
            "eval_shoppers": eval_shoppers,
            "config": config.to_dict(),
        },
    )
    return report
