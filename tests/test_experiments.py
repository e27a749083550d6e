"""Experiment configs, ``stickyrec run`` (local and Ray backends, kill and resume), and the analyst's report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stickyrec.experiments.cells import CELL_MARKER
from stickyrec.experiments.experiment import CONFIG_DIR, apply_overrides, load_experiment
from stickyrec.experiments.report import RunNotFinishedError, build_report, compare_agents, compare_runs, load_run
from stickyrec.experiments.runner import run_experiment
from tests.helpers import interactive_sigint, proc_stats

STICKYREC = [sys.executable, "-m", "stickyrec.experiments.cli"]
QUICK_AGENTS = ["random", "popularity", "item_cf", "mlp", "ctr_rating", "multi_objective", "retention_mlp"]
QUICK_AGENTS += ["myopic_oracle", "ppo", "slateq", "long_term_oracle"]


def stickyrec(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*STICKYREC, *args], capture_output=True, text=True, **kwargs)


def frames_equal(a: Path, b: Path) -> None:
    """Every cell's per-shopper and daily results, and the summary, identical between two run directories."""
    cells_a = sorted(p.name for p in (a / "cells").iterdir())
    assert cells_a == sorted(p.name for p in (b / "cells").iterdir())
    for cell in cells_a:
        for name in ("shoppers.parquet", "daily.parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(a / "cells" / cell / name), pd.read_parquet(b / "cells" / cell / name), check_exact=True
            )
    pd.testing.assert_frame_equal(pd.read_csv(a / "summary.csv"), pd.read_csv(b / "summary.csv"), check_exact=True)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, float, subprocess.CompletedProcess]:
    """``stickyrec run quick`` as a user runs it: the shipped config, a fresh directory, default workers."""
    out = tmp_path_factory.mktemp("quick") / "run"
    started = time.perf_counter()
    done = stickyrec("run", "quick", "--out", str(out), "--quiet", timeout=300)
    return out, time.perf_counter() - started, done


# ---------------------------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["quick", "benchmark", "baselines", "rewards", "clickbait", "click_reward", "online_retail", "sweep"]
)
def test_shipped_configs_load_and_validate(name):
    experiment = load_experiment(name)
    assert experiment.name == name
    assert experiment.agents and experiment.seeds >= 1
    assert (CONFIG_DIR / f"{name}.yaml").is_file()


def test_benchmark_config_has_every_agent_and_five_seeds():
    experiment = load_experiment("benchmark")
    kinds = {a.kind for a in experiment.agents}
    assert set(QUICK_AGENTS) <= kinds
    assert experiment.seeds == 5


def test_clickbait_config_sweeps_the_clickbait_share():
    shares = [s.env.clickbait_share for s in load_experiment("clickbait").scenarios]
    assert len(shares) >= 3 and shares == sorted(shares) and len(set(shares)) == len(shares)


def test_set_overrides_reach_the_resolved_config():
    experiment = load_experiment(
        "quick",
        [
            "env.clickbait_share=0.3",
            "seeds=3",
            "agents.ppo.steps=1234",
            "agents.mlp.params.epochs=1",
            "evaluation.shoppers=50",
        ],
    )
    assert experiment.scenarios[0].env.clickbait_share == 0.3
    assert experiment.seeds == 3 and experiment.eval_shoppers == 50
    assert experiment.agent("ppo").steps == 1234 and experiment.agent("mlp").params["epochs"] == 1
    resolved = experiment.to_dict()
    assert resolved["env"]["clickbait_share"] == 0.3 and resolved["agents"]["ppo"]["steps"] == 1234


def test_rl_defaults_are_resolved_in_the_saved_config():
    ppo = load_experiment("benchmark").agent("ppo")
    assert ppo.steps is not None and ppo.steps > 0 and ppo.reward == "quality_stickiness"


@pytest.mark.parametrize(
    "override, names",
    [
        ("env.clickbate_share=0.3", "clickbate_share"),
        ("env.clickbait_share=1.7", "clickbait_share"),
        ("seeds=0", "seeds"),
        ("seeds=two", "seeds"),
        ("sedes=2", "sedes"),
        ("agents.ppo.steps=-5", "agents.ppo.steps"),
        ("agents.ppo.params.learning_rate=-1", "agents.ppo"),
        ("agents.ppo.params.not_a_param=1", "agents.ppo"),
        ("agents.mlp.params.epochs=0", "agents.mlp.params.epochs"),
        ("agents.random.reward=click", "agents.random.reward"),
        ("agents.ppo.reward=clicks", "agents.ppo"),
        ("agents.dqn.steps=5", "dqn"),
        ("evaluation.shoppers=3", "evaluation.shoppers"),
        ("evaluation.population_seed=500100", "evaluation.population_seed"),
        ("report.reference=nobody", "report.reference"),
        ("report.cohort_days=[0]", "report.cohort_days"),
        ("data.shopers=10", "data.shopers"),
    ],
)
def test_bad_config_values_fail_naming_the_key(override, names):
    with pytest.raises(ValueError, match=names.replace(".", r"\.")):
        load_experiment("quick", [override])


def test_bad_config_files_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="no experiment config 'nope'"):
        load_experiment("nope")
    with pytest.raises(ValueError, match="does not exist"):
        load_experiment(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nagents: {random: {}\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_experiment(str(bad))
    unknown_kind = tmp_path / "kind.yaml"
    unknown_kind.write_text("name: x\nseeds: 1\nagents: {foo: {kind: banana}}\n")
    with pytest.raises(ValueError, match=r"agents\.foo\.kind.*banana"):
        load_experiment(str(unknown_kind))
    with pytest.raises(ValueError, match="dotted.key=value"):
        apply_overrides({}, ["seeds"])


def test_a_bad_override_fails_before_any_work(tmp_path):
    out = tmp_path / "run"
    done = stickyrec("run", "quick", "--out", str(out), "--set", "env.clickbate_share=0.3")
    assert done.returncode == 2
    assert "clickbate_share" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_a_run_directory_of_another_config_is_refused(tmp_path):
    experiment = load_experiment("quick", ["agents.ppo.steps=512", "agents.slateq.steps=512"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"name": "other"}))
    with pytest.raises(ValueError, match="different config"):
        run_experiment(experiment, tmp_path, progress=False)


def test_an_unfinished_run_cannot_be_reported(tmp_path):
    experiment = load_experiment("quick")
    from stickyrec.experiments.runner import resolved_config

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(resolved_config(experiment)))
    with pytest.raises(RunNotFinishedError, match="not finished"):
        build_report(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# The quick run, as a user runs it
# ---------------------------------------------------------------------------------------------------------------
def test_quick_config_runs_end_to_end_from_the_cli(quick_run):
    out, seconds, done = quick_run
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"stickyrec run quick: {seconds:.1f} s end to end")  # quoted in the docs; no timed assert here
    assert "stickyrec run quick: done: 22 cells (22 run now" in done.stdout
    for name in (
        "config.yaml",
        "summary.csv",
        "summary.json",
        "differences.csv",
        "margins.csv",
        "km.csv",
        "engagement.csv",
        "cohorts.csv",
        "lifetimes.parquet",
        "report.md",
        "report.html",
        "figures/retention_curves.png",
        "figures/engagement_default.png",
    ):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.tmp")), "no temporary files are left behind"
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["resolved_env"]["default"]["n_items"] == 300  # the small preset, fully resolved


def test_summary_has_every_agent_with_intervals_around_the_estimate(quick_run):
    out = quick_run[0]
    table = pd.read_csv(out / "summary.csv")
    assert list(table["agent"]) == QUICK_AGENTS
    for metric in (
        "click_rate",
        "purchases_per_shopper",
        "revenue_per_shopper",
        "sessions_per_shopper",
        "retention_day1",
        "retention_day7",
        "retention_day30",
        "mean_lifetime_days",
    ):
        assert (table[f"{metric}_low"] <= table[metric] + 1e-12).all()
        assert (table[metric] <= table[f"{metric}_high"] + 1e-12).all()
        assert (table[f"{metric}_low"] < table[f"{metric}_high"]).all(), metric
    long_term = table.set_index("agent").loc["long_term_oracle"]
    assert long_term["retention_day30"] > table.set_index("agent").loc["random", "retention_day30"]


def test_lifetimes_match_the_cells_and_the_table(quick_run):
    out = quick_run[0]
    lifetimes = pd.read_parquet(out / "lifetimes.parquet")
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert len(lifetimes) == len(QUICK_AGENTS) * config["seeds"] * config["evaluation"]["shoppers"]
    horizon = config["resolved_env"]["default"]["horizon_days"]
    censored = lifetimes[~lifetimes["churned"]]
    assert (censored["churn_day"] == horizon).all()
    assert (lifetimes.loc[lifetimes["churned"], "churn_day"] <= horizon).all()
    table = pd.read_csv(out / "summary.csv").set_index("agent")
    km = pd.read_csv(out / "km.csv")
    for agent, part in lifetimes.groupby("agent"):
        day7 = (part["churn_day"] > 7).mean()  # still active on day 7
        assert day7 == pytest.approx(table.loc[agent, "retention_day7"])
        curve = km[(km["agent"] == agent) & (km["day"] == 7)].iloc[0]
        assert curve["survival"] == pytest.approx(day7)  # lifelines' Kaplan-Meier: no censoring before the horizon
        assert curve["low"] <= curve["survival"] <= curve["high"]


def test_engagement_and_cohorts_add_up(quick_run):
    out = quick_run[0]
    config, shoppers, daily, _ = load_run(out)
    for (agent, seed), part in daily.groupby(["agent", "seed"]):
        cell = shoppers[(shoppers["agent"] == agent) & (shoppers["seed"] == seed)]
        assert part["sessions"].sum() == cell["sessions"].sum()
        assert part["revenue"].sum() == pytest.approx(cell["revenue"].sum())
    engagement = pd.read_csv(out / "engagement.csv")
    first = engagement[(engagement["agent"] == "random") & (engagement["day"] == 0)].iloc[0]
    assert first["active_shoppers"] == config["seeds"] * config["evaluation"]["shoppers"]
    assert first["sessions_per_active"] >= 1.0  # everyone opens a session on day 0
    cohorts = pd.read_csv(out / "cohorts.csv")
    assert set(cohorts["cohort"]) == {"seed 0", "seed 1", "all"} and set(cohorts["kind"]) == {"nday", "unbounded"}
    day7 = cohorts[(cohorts["day"] == 7) & (cohorts["kind"] == "unbounded")]
    pooled = day7[day7["cohort"] == "all"].set_index("agent")["value"]
    per_seed = day7[day7["cohort"] != "all"].groupby("agent")["value"].mean()
    pd.testing.assert_series_equal(pooled.sort_index(), per_seed.sort_index(), check_names=False)


def test_the_best_non_rl_agent_is_named_and_each_rl_agent_has_its_margin_over_it(quick_run):
    out = quick_run[0]
    summary = json.loads((out / "summary.json").read_text())
    roles = {row["agent"]: row["role"] for row in summary["roles"]}
    assert roles["long_term_oracle"] == roles["myopic_oracle"] == "oracle" and roles["ppo"] == "RL"
    table = pd.read_csv(out / "summary.csv").set_index("agent")
    non_rl = [agent for agent, role in roles.items() if role == "non-RL"]
    [best] = summary["best_non_rl"]
    assert best["best_non_rl"] == table.loc[non_rl, "retention_day30"].idxmax()
    margins = pd.read_csv(out / "margins.csv").set_index("agent")
    assert list(margins.index) == ["ppo", "slateq"]
    for agent, row in margins.iterrows():
        expected = table.loc[agent, "retention_day30"] - best["retention_day30"]
        assert row["retention_day30_margin"] == pytest.approx(expected, abs=1e-5)
        assert row["retention_day30_margin_low"] <= row["retention_day30_margin"] <= row["retention_day30_margin_high"]
    report = (out / "report.md").read_text()
    assert f"**Best non-RL: `{best['best_non_rl']}`**" in report and "## Reference bounds: oracles" in report


def test_log_rank_against_the_reference_is_reported(quick_run):
    differences = pd.read_csv(quick_run[0] / "differences.csv")
    assert set(differences["agent"]) == set(QUICK_AGENTS) - {"mlp"}
    assert ((differences["logrank_p"] >= 0) & (differences["logrank_p"] <= 1)).all()
    oracle = differences.set_index("agent").loc["long_term_oracle"]
    assert oracle["retention_day30_diff_low"] > 0 and oracle["logrank_p"] < 0.01


def test_oracle_share_is_the_ratio_of_day30_retention_with_an_interval(quick_run):
    from stickyrec.experiments.oracle_share import oracle_shares

    run_dir = quick_run[0]
    table = pd.read_csv(run_dir / "summary.csv").set_index("agent")
    rows = {row["agent"]: row for row in oracle_shares(run_dir, day=29, resamples=200)}
    assert "long_term_oracle" not in rows and set(rows) == set(table.index) - {"long_term_oracle"}
    for agent, row in rows.items():
        lifetimes = pd.read_parquet(run_dir / "lifetimes.parquet")
        mine = lifetimes[lifetimes.agent == agent].groupby("seed")["churn_day"].apply(lambda d: (d > 29).mean())
        oracle = (
            lifetimes[lifetimes.agent == "long_term_oracle"]
            .groupby("seed")["churn_day"]
            .apply(lambda d: (d > 29).mean())
        )
        assert row["share"] == pytest.approx(mine.mean() / oracle.mean())
        assert row["low"] <= row["share"] <= row["high"]
    with pytest.raises(ValueError, match="no agent 'oracle'"):
        oracle_shares(run_dir, oracle="oracle")


def test_html_report_is_self_contained(quick_run):
    text = (quick_run[0] / "report.html").read_text()
    assert 'src="data:image/png' not in text and text.count("<svg") >= 12  # charts are inline SVG
    assert "https://" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert text.count("<script>") == 1 and "<script src" not in text  # one inline script, nothing fetched
    for label in ("CTR per slate, week 1", "retained d30", "log-rank p", "Cohort retention", "long_term_oracle"):
        assert label in text
    markdown = (quick_run[0] / "report.md").read_text()
    assert "![Retention (unbounded)" in markdown and "| mlp |" in markdown and "<script" not in markdown


def test_report_and_compare_commands(quick_run, tmp_path):
    out = quick_run[0]
    before = pd.read_csv(out / "summary.csv")
    done = stickyrec("report", str(out), str(out), "--out", str(tmp_path / "cmp"))
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(before, pd.read_csv(out / "summary.csv"))  # regenerated: same numbers
    assert (tmp_path / "cmp" / "report.html").is_file()
    done = stickyrec("compare", str(out), "ppo", "mlp", "--out", str(tmp_path / "pm.png"))
    assert done.returncode == 0, done.stderr
    assert "log-rank test" in done.stdout and (tmp_path / "pm.png").stat().st_size > 10_000
    done = stickyrec("compare", str(out), "ppo", "nobody")
    assert done.returncode == 2 and "no agent 'nobody'" in done.stderr
    path, table = compare_agents(out, "long_term_oracle", "random")
    assert path.is_file() and "day 7" in table
    assert compare_runs([out], tmp_path / "one").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Resume after a real kill; Ray against the local backend
# ---------------------------------------------------------------------------------------------------------------
def test_a_killed_run_resumes_to_identical_results(quick_run, tmp_path):
    reference = quick_run[0]
    out = tmp_path / "run"
    process = subprocess.Popen(
        [*STICKYREC, "run", "quick", "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if len(list((out / "cells").glob(f"*/{CELL_MARKER}"))) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-flight
        process.wait()
    finished = len(list((out / "cells").glob(f"*/{CELL_MARKER}")))
    assert 3 <= finished < 16, f"the kill should land mid-run ({finished} cells finished)"
    assert not (out / "report.html").exists()
    done = stickyrec("run", "quick", "--out", str(out), "--quiet", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reused = int(done.stdout.split("run now, ")[1].split(" already done")[0])
    assert reused >= finished
    assert not list(out.rglob("*.tmp")), "leftovers of the killed run were cleaned"
    frames_equal(reference, out)


def test_ray_backend_gives_the_same_numbers_as_local(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is installed by ./dev.sh test")
    overrides = [
        "agents.ppo.steps=2048",
        "agents.slateq.steps=1024",
        "seeds=1",
        "evaluation.shoppers=100",
        "data.shoppers=100",
        "report.resamples=50",
    ]
    experiment = load_experiment("quick", overrides)
    local = run_experiment(experiment, tmp_path / "local", backend="local", workers=2, progress=False)
    ray = run_experiment(experiment, tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert not local.failed and not ray.failed and ray.cells_run == local.cells_run == len(QUICK_AGENTS)
    frames_equal(tmp_path / "local", tmp_path / "ray")


def test_backend_and_workers_are_checked(tmp_path):
    experiment = load_experiment("quick")
    with pytest.raises(ValueError, match="backend 'dask'"):
        run_experiment(experiment, tmp_path, backend="dask")
    with pytest.raises(ValueError, match="workers"):
        run_experiment(experiment, tmp_path, workers=0)
    with pytest.raises(ValueError, match="--ray-address needs --backend ray"):
        run_experiment(experiment, tmp_path, ray_address="auto")
    assert not (tmp_path / "config.yaml").exists()


def test_simulated_daily_totals_match_the_per_shopper_totals():
    from stickyrec.agents import RandomPolicy
    from stickyrec.envs.config import make_config
    from stickyrec.experiments.simulate import simulate_cohort

    result = simulate_cohort(RandomPolicy(0), make_config("small", horizon_days=20), 150, seed=11)
    assert result.daily["sessions"].sum() == result.sessions.sum()
    assert result.daily["impressions"].sum() == result.impressions.sum()
    assert result.daily["clicks"].sum() == result.clicks.sum()
    assert result.daily["purchases"].sum() == result.purchases.sum()
    assert np.isclose(result.daily["revenue"].sum(), result.revenue.sum())
    assert len(result.daily["sessions"]) == 20 and result.daily["sessions"][0] >= 150


def test_a_sweep_over_scenarios_reports_each_and_across(tmp_path):
    """Several scenarios (as in clickbait.yaml): a table per scenario, and day-30 retention across them."""
    config = tmp_path / "sweep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "sweep",
                "env": {"preset": "small", "horizon_days": 20},
                "scenarios": [
                    {"name": "cb00", "env": {"clickbait_share": 0.0}},
                    {"name": "cb40", "env": {"clickbait_share": 0.4}},
                ],
                "agents": {"random": {}, "myopic_oracle": {}, "long_term_oracle": {}},
                "seeds": 2,
                "evaluation": {"shoppers": 60},
                "report": {"reference": "myopic_oracle", "resamples": 40, "cohort_days": [1, 7, 14]},
            }
        )
    )
    done = stickyrec("run", str(config), "--out", str(tmp_path / "run"), "--quiet", "--workers", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["resolved_env"]["cb40"]["clickbait_share"] == 0.4
    assert resolved["resolved_env"]["cb00"]["clickbait_share"] == 0.0
    table = pd.read_csv(run / "summary.csv")
    assert sorted(set(table["scenario"])) == ["cb00", "cb40"] and len(table) == 6
    assert (run / "figures" / "retention_day30_by_scenario.png").is_file()
    report = (run / "report.md").read_text()
    assert "## Scenario cb00" in report and "## Across scenarios" in report
    assert report.count("retained d30") == 4  # per scenario: the agents' summary table and the oracles'


def _live_processes_in_group(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (from /proc; Linux)."""
    return [pid for pid, state, _, group in proc_stats() if group == pgid and state != "Z"]


def test_ctrl_c_stops_the_workers_at_once(tmp_path):
    """SIGINT to the CLI: it exits promptly (not after the running cells), with no worker left behind."""
    out = tmp_path / "run"
    process = subprocess.Popen(
        [
            *STICKYREC,
            "run",
            "quick",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "agents.ppo.steps=2000000",
        ],  # a cell that would run for minutes
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interactive_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((out / "cells").glob("*ppo*/started.json")):
            time.sleep(0.05)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr[-2000:]
    assert "run the same command again to resume" in stderr
    time.sleep(1.0)
    assert _live_processes_in_group(process.pid) == []  # no worker of the run's process group survives
    assert not list((out / "cells").glob(f"*ppo*/{CELL_MARKER}"))


# ---------------------------------------------------------------------------------------------------------------
# stickyrec verify: committed results against a fresh re-run
# ---------------------------------------------------------------------------------------------------------------
def test_verify_reruns_committed_cells_and_names_any_difference(quick_run, tmp_path):
    out, _, done = quick_run
    assert done.returncode == 0, done.stderr
    committed = tmp_path / "committed"  # what a results commit holds: no cells, no data
    committed.mkdir()
    for name in ("config.yaml", "lifetimes.parquet"):
        shutil.copy(out / name, committed / name)
    same = stickyrec("verify", str(committed), "--agents", "random,ppo", "--quiet", timeout=300)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "identical  default__random__s0" in same.stdout and "identical  default__ppo__s0" in same.stdout

    table = pd.read_parquet(committed / "lifetimes.parquet")
    row = table.index[(table["agent"] == "ppo") & (table["seed"] == 0) & (table["shopper"] == 3)][0]
    table.loc[row, "revenue"] += 0.5  # one shopper's revenue, as if the code that made it had drifted
    table.to_parquet(committed / "lifetimes.parquet")
    drifted = stickyrec("verify", str(committed), "--agents", "random,ppo", "--quiet", timeout=300)
    assert drifted.returncode == 1
    assert "DIFFERS  default__ppo__s0" in drifted.stdout and "revenue: 1 shoppers differ" in drifted.stdout
    assert "identical  default__random__s0" in drifted.stdout

    for args, message in (
        (["--agents", "nope"], "agent 'nope' is not in this run; allowed: random"),
        (["--seed", "9"], "--seed 9 is not in this run; allowed: 0 to 1"),
    ):
        refused = stickyrec("verify", str(committed), *args, "--quiet", timeout=60)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    refused = stickyrec("verify", str(tmp_path), "--quiet", timeout=60)
    assert refused.returncode == 2 and "has no config.yaml" in refused.stderr
