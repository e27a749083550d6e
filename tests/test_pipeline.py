"""The baselines pipeline end to end as a user runs it (``stickyrec baselines``: an alias of ``run baselines``), the
``rl-benchmark`` alias's translation into ``run benchmark``, and the one metrics module (definitions, bootstrap)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from stickyrec.experiments.cli import baselines_overrides, build_parser, rl_benchmark_overrides
from stickyrec.experiments.experiment import load_experiment
from stickyrec.experiments.metrics import (
    COLUMNS,
    LABELS,
    METRICS,
    bootstrap_summary,
    frame_metrics,
    paired_resamples,
    per_shopper_frame,
)

BASELINES = ["baselines", "--config", "small", "--set", "horizon_days=20", "--train-shoppers", "400"]
BASELINES += ["--eval-shoppers", "60", "--mlp-epochs", "6", "--quiet"]
AGENTS = ["random", "popularity", "item_cf_brief_rhat", "item_cf", "mlp", "ctr_rating", "multi_objective"]
AGENTS += ["retention_mlp", "myopic_oracle", "long_term_oracle"]


def stickyrec(*args):
    return subprocess.run(
        [sys.executable, "-m", "stickyrec.experiments.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines") / "run"
    result = stickyrec(*BASELINES, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_baselines_is_run_baselines_with_the_flags_as_overrides(run_dir):
    out, stdout = run_dir
    assert "stickyrec run baselines --set env.preset=small --set env.horizon_days=20" in stdout
    assert "--set data.shoppers=400 --set evaluation.shoppers=60 --set agents.mlp.params.epochs=6" in stdout
    assert "--set agents.multi_objective.params.epochs=6 --set agents.retention_mlp.params.epochs=6" in stdout
    for name in ("config.yaml", "summary.csv", "summary.json", "report.md", "report.html", "lifetimes.parquet"):
        assert (out / name).is_file(), name
    data = out / "data" / "default__s0"
    for name in ("impressions.duckdb", "contexts.parquet", "train.parquet", "validation.parquet", "test.parquet"):
        assert (data / name).is_file(), name
    for agent, checkpoint in (("popularity", "popularity.npz"), ("item_cf", "item_cf.npz"), ("mlp", "mlp.pt")):
        assert (out / "cells" / f"default__{agent}__s0" / checkpoint).is_file(), checkpoint
    for agent in ("mlp", "multi_objective", "retention_mlp"):
        assert f"click AUC on held-out shoppers (seed 0): {agent} " in stdout


def test_baselines_report_every_agent_and_the_click_auc(run_dir):
    out, _ = run_dir
    summary = json.loads((out / "summary.json").read_text())
    assert [row["agent"] for row in summary["table"]] == AGENTS
    for row in summary["table"]:
        assert row["retention_day7_low"] <= row["retention_day7"] <= row["retention_day7_high"]
    aucs = {row["agent"]: row for row in summary["click_auc"]}
    assert set(aucs) == {"mlp", "multi_objective", "retention_mlp"}  # the three models of the log
    auc = aucs["mlp"]
    assert auc["impressions"] > 1000
    assert aucs["multi_objective"]["auc"] == auc["auc"], "the ranker's click model is the MLP's: same log, same seed"
    assert 0.5 < auc["auc"] <= 1.0 and 0.5 < auc["auc_true_click_probability"] <= 1.0
    assert "Click model: AUC on held-out shoppers' logged impressions" in (out / "report.md").read_text()


def test_baselines_rerun_resumes_every_cell(run_dir):
    """Re-running into the same folder finds every cell and the logged data done, and recomputes nothing."""
    out, _ = run_dir
    done = (out / "data" / "default__s0" / "done.json").read_text()
    result = stickyrec(*BASELINES, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "10 cells (0 run now, 10 already done, 0 failed)" in result.stdout
    assert (out / "data" / "default__s0" / "done.json").read_text() == done


def test_baselines_flags_become_overrides_of_the_shipped_config():
    args = build_parser().parse_args([*BASELINES, "--seeds", "2"])
    experiment = load_experiment("baselines", baselines_overrides(args))
    assert [a.label for a in experiment.agents] == AGENTS
    assert experiment.agent("item_cf_brief_rhat").params == {"ranking": "r_hat"}
    assert experiment.agent("mlp").params["epochs"] == 6
    assert (experiment.seeds, experiment.data_shoppers, experiment.eval_shoppers) == (2, 400, 60)
    assert experiment.scenarios[0].env.horizon_days == 20 and experiment.scenarios[0].env.n_items == 300
    assert experiment.cohort_days == (1, 7, 14)  # the shipped days past the 20-day horizon are dropped


def test_baselines_env_file_keeps_an_infinite_churn_window_and_named_choices(tmp_path):
    """An env YAML file's values reach the experiment as they were written: .inf stays a number (not the string
    JSON would make of it) and the named choices stay names."""
    world = tmp_path / "world.yaml"
    world.write_text("preset: small\nsession: {churn_window_days: .inf}\ndropout_distribution: beta\n")
    args = build_parser().parse_args(["baselines", "--config", str(world), "--set", "dropout_beta_a=0.5"])
    env = load_experiment("baselines", baselines_overrides(args)).scenarios[0].env
    assert env.churn_window_days == float("inf") and env.dropout_distribution == "beta"
    assert env.dropout_beta_a == 0.5 and env.n_items == 300


def test_rl_benchmark_is_run_benchmark_with_one_agent_per_further_reward():
    argv = ["rl-benchmark", "--seeds", "2", "--steps", "ppo=5000", "--param", "slateq.learning_starts=100"]
    args = build_parser().parse_args([*argv, "--rewards", "quality_stickiness,click,revenue"])
    experiment = load_experiment("benchmark", rl_benchmark_overrides(args))
    assert experiment.name == "rl-benchmark" and experiment.seeds == 2
    rl = {a.label: a for a in experiment.agents if a.needs == "rl"}
    assert sorted(rl) == ["ppo", "ppo_click", "ppo_revenue", "slateq", "slateq_click", "slateq_revenue"]
    assert rl["ppo_revenue"].kind == "ppo" and rl["ppo_revenue"].reward == "revenue"
    assert rl["ppo"].steps == rl["ppo_click"].steps == 5000
    assert rl["slateq_click"].params == {"learning_starts": 100}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "ppo"], "--steps expects AGENT=N"),
        (["--param", "gamma_day=0.9"], "--param expects AGENT.KEY=VALUE"),
        (["--set", "clickbait_shar=0.2"], "did you mean clickbait_share"),
    ],
)
def test_rl_benchmark_bad_flags_fail_before_any_work(args, message):
    result = stickyrec("rl-benchmark", "--out", "/nonexistent/never", *args)
    assert result.returncode == 2 and message in result.stderr


# --- the one metrics module ----------------------------------------------------------------------------------------
def _frame(n, retained, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.integers(0, 20, n).astype(float) for c in COLUMNS})
    for day in (1, 7, 30):
        frame[f"retained_day{day}"] = rng.random(n) < retained
    return frame


def test_metrics_are_means_or_ratios_of_means_and_match_the_cohort_summary():
    from stickyrec.agents import RandomPolicy
    from stickyrec.envs.config import make_config
    from stickyrec.experiments.simulate import simulate_cohort

    result = simulate_cohort(RandomPolicy(0), make_config("small", horizon_days=15), 80, seed=3)
    frame = per_shopper_frame(result)
    metrics, summary = frame_metrics(frame), result.summary()
    assert metrics["click_rate"] == pytest.approx(frame["clicks"].sum() / frame["impressions"].sum())
    assert metrics["retention_day7"] == pytest.approx(frame["retained_day7"].mean())
    for name in METRICS:
        assert metrics[name] == pytest.approx(summary[name], rel=1e-12), name
        assert name in LABELS


def test_paired_resamples_pair_agents_and_reduce_to_a_shopper_bootstrap_with_one_seed():
    draws = list(paired_resamples(np.random.default_rng(0), 3, 50, 20))
    assert all(len(picks) == 3 and all(w.sum() == 50 for _, w in picks) for picks in draws)
    one_seed = [w for [(s, w)] in paired_resamples(np.random.default_rng(1), 1, 50, 5)]
    plain = np.random.default_rng(1).multinomial(50, np.full(50, 1 / 50), size=5)
    np.testing.assert_array_equal(np.stack(one_seed), plain)  # picking the only seed draws nothing
    indices = next(paired_resamples(np.random.default_rng(2), 2, 50, 1, shoppers="indices"))
    assert all(i.min() >= 0 and i.max() < 50 and i.dtype.kind == "i" for _, i in indices)
    with pytest.raises(ValueError, match="counts' or 'indices'"):
        next(paired_resamples(np.random.default_rng(0), 1, 5, 1, shoppers="weights"))


def test_bootstrap_summary_brackets_the_estimate_and_is_seeded():
    frame = _frame(400, 0.6, 0)
    first, again = bootstrap_summary(frame, resamples=200, seed=4), bootstrap_summary(frame, resamples=200, seed=4)
    assert first == again
    estimate, low, high = first["retention_day30"]
    assert estimate == pytest.approx(frame["retained_day30"].mean())
    assert low < estimate < high and high - low < 0.15
