"""The ``stickyrec`` command, run as a user would (a subprocess)."""

import json
import subprocess
import sys

import pytest


def run_cli(*args, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "stickyrec.experiments.cli", *args], capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def test_simulate_prints_the_retention_summary_and_writes_json(tmp_path):
    out = tmp_path / "summary.json"
    result = run_cli(
        "simulate", "--config", "small", "--shoppers", "200", "--quiet", "--set", "horizon_days=20", "--json", str(out)
    )
    for policy in ("random", "click_chaser", "relevance_quality"):
        assert policy in result.stdout
    assert "ret d7" in result.stdout
    payload = json.loads(out.read_text())
    assert payload["config"]["horizon_days"] == 20
    assert 0.0 <= payload["summary"]["random"]["retention_day7"] <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("simulate", "--policies", "nope"), "unknown policy 'nope'"),
        (("simulate", "--set", "clickbait_shar=0.2"), "did you mean clickbait_share"),
        (("simulate", "--set", "slate_size=0"), "'slate_size' = 0 is out of range"),
        (("simulate", "--config", "missing.yaml"), "does not exist"),
        (("simulate", "--set", "noequals"), "expects key=value"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, message):
    result = run_cli(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_config_prints_resolved_yaml_and_describes_fields():
    result = run_cli("config", "--set", "env.clickbait_share=0.3")
    assert "clickbait_share: 0.3" in result.stdout
    described = run_cli("config", "--describe").stdout
    assert "clickbait_share" in described and "allowed" not in described.splitlines()[0]


def test_bench_runs_and_prints_its_table():
    result = run_cli("bench", "--batches", "1", "8", "--seconds", "0.05", "--single-steps", "50")
    assert "env user-steps/s" in result.stdout and "single env step: median" in result.stdout
