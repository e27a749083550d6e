"""The baselines pipeline end to end, as a user runs it (collect -> preprocess -> train -> evaluate)."""

import json
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stickyrec.experiments.cli",
            "baselines",
            "--config",
            "small",
            "--set",
            "horizon_days=20",
            "--train-shoppers",
            "400",
            "--eval-shoppers",
            "60",
            "--mlp-epochs",
            "6",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_pipeline_writes_results_checkpoints_and_the_resolved_config(run_dir):
    out, stdout = run_dir
    for name in (
        "config.yaml",
        "results.json",
        "results.md",
        "per_shopper.csv",
        "popularity.npz",
        "item_cf.npz",
        "mlp.pt",
        "impressions.duckdb",
        "contexts.parquet",
    ):
        assert (out / name).is_file(), name
    assert "click AUC on held-out shoppers" in stdout


def test_pipeline_reports_both_aucs_and_every_agent(run_dir):
    results = json.loads((run_dir[0] / "results.json").read_text())
    auc = results["auc"]
    assert 0.5 < auc["mlp"] <= 1.0 and 0.5 < auc["true_click_probability"] <= 1.0
    agents = {row["agent"] for row in results["table"]}
    assert agents == {
        "random",
        "popularity",
        "item_cf_brief_rhat",
        "item_cf",
        "mlp",
        "myopic_oracle",
        "long_term_oracle",
    }
    for row in results["table"]:
        assert row["retention_day7_low"] <= row["retention_day7"] <= row["retention_day7_high"]


def test_pipeline_rerun_resumes_from_the_store(run_dir):
    """Re-running into the same folder finds the logging run complete and reuses it (no duplicate rows)."""
    out, _ = run_dir
    before = json.loads((out / "results.json").read_text())["impressions"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stickyrec.experiments.cli",
            "baselines",
            "--config",
            "small",
            "--set",
            "horizon_days=20",
            "--train-shoppers",
            "400",
            "--eval-shoppers",
            "60",
            "--mlp-epochs",
            "6",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "results.json").read_text())["impressions"] == before
