"""The report's stickiness measures (experiments.stickiness): hand-computed DAU/MAU, WAU/MAU, N-day vs unbounded
retention and LTV; invariants on random activity; the same bootstrap as the summary table; a committed run (no
cells/) re-renders byte for byte; ``--reference``."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from stickyrec.experiments import activity as activity_rows
from stickyrec.experiments.glossary import GLOSSARY
from stickyrec.experiments.report import STICKINESS_FILES, build_report
from stickyrec.experiments.report_data import RunNotFinishedError, paired_tables, read_run
from stickyrec.experiments.stickiness import (
    STICKINESS_METRICS,
    headline_metrics,
    metric_label,
    shopper_measures,
    stickiness_tables,
)

STICKYREC = [sys.executable, "-m", "stickyrec.experiments.cli"]
AGENTS = {"random": {"kind": "random"}, "ppo": {"kind": "ppo"}, "slateq": {"kind": "slateq"}}
AGENTS["long_term_oracle"] = {"kind": "long_term_oracle"}


def hand_config(horizon: int = 10, seeds: int = 1, resamples: int = 50, cohort_days=(1, 3, 7)) -> dict:
    return {
        "name": "hand",
        "agents": AGENTS,
        "seeds": seeds,
        "scenarios": [{"name": "s", "env": {}}],
        "resolved_env": {"s": {"horizon_days": horizon, "slate_size": 5}},
        "report": {"reference": "random", "resamples": resamples, "cohort_days": list(cohort_days)},
    }


def cell_frames(shoppers: pd.DataFrame, days: pd.DataFrame, config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same shoppers and activity for every agent and seed of ``config``."""
    keys = [(a, s) for a in config["agents"] for s in range(config["seeds"])]
    return (
        pd.concat([shoppers.assign(scenario="s", agent=a, seed=s) for a, s in keys], ignore_index=True),
        pd.concat([days.assign(scenario="s", agent=a, seed=s) for a, s in keys], ignore_index=True),
    )


# shopper 0: active on days 0, 1 (two sessions), 8, never churns; 1: day 0 only, churned (churn_day 1);
# 2: days 0 and 3, churned (churn_day 4). Horizon 10 days, slate size 5.
HAND_DAYS = pd.DataFrame(
    {
        "shopper": [0, 0, 0, 1, 2, 2],
        "day": [0, 1, 8, 0, 0, 3],
        "sessions": [1, 2, 1, 1, 1, 1],
        "impressions": [4, 2, 2, 2, 1, 3],
        "clicks": [2, 1, 0, 0, 1, 1],
        "purchases": [1, 0, 1, 0, 0, 1],
        "revenue": [2.0, 0.0, 1.0, 0.0, 0.0, 3.0],
        "rating_clicked": [1.0, 0.5, 0.0, 0.0, 0.9, 0.6],
        "satisfaction": [2.0, 1.0, 1.0, 1.0, 0.5, 1.5],
    }
)
HAND_SHOPPERS = pd.DataFrame(
    {
        "shopper": [0, 1, 2],
        "churn_day": [10.0, 1.0, 4.0],
        "churned": [False, True, True],
        "visit_rate": [1.0, 0.1, 0.5],
        "price_sensitivity": [0.2, 0.4, 0.6],
        "satisfaction_start": [0.5, 0.5, 0.5],  # one value: no segment
        "interest_category": [3, 3, 1],
    }
)


def test_hand_computed_activity_retention_and_ltv():
    config = hand_config()
    shoppers, days = cell_frames(HAND_SHOPPERS, HAND_DAYS, config)
    tables = stickiness_tables(config, shoppers, days)
    got = tables.summary[tables.summary["agent"] == "random"].set_index("metric")["estimate"]
    # DAU summed over days: 3 + 1 + 2 = 6; MAU (30-day windows, cut at day 0): all 3 on all 10 days = 30
    assert got["dau_mau"] == pytest.approx(6 / 30)
    # WAU (7 days): shopper 0 on days 0-9 (10), shopper 1 on days 0-6 (7), shopper 2 on days 0-9 (10)
    assert got["wau_mau"] == pytest.approx(27 / 30)
    assert got["sessions_per_active_week"] == pytest.approx((3 + 1 + 2) / 3)  # one complete week: days 0-6
    assert got["nday_retention_day1"] == pytest.approx(1 / 3)  # only shopper 0 came on day 1
    assert got["nday_retention_day3"] == pytest.approx(1 / 3)  # only shopper 2 on day 3
    assert got["nday_retention_day7"] == 0
    assert got["unbounded_retention_day1"] == pytest.approx(2 / 3)  # shopper 1 churned on day 1
    assert got["unbounded_retention_day3"] == pytest.approx(2 / 3)
    assert got["unbounded_retention_day7"] == pytest.approx(1 / 3)  # shopper 2 churned on day 4
    assert got["click_rate_item"] == pytest.approx(5 / (14 * 5))
    assert got["satisfaction_latent"] == pytest.approx(7.0 / 14)
    assert got["rating_clicked_mean"] == pytest.approx(3.0 / 5)
    assert got["ltv_day10"] == pytest.approx(6.0 / 3)
    curves = tables.curves[tables.curves["agent"] == "random"]
    ltv = curves[curves["measure"] == "ltv"]["estimate"].to_numpy()
    np.testing.assert_allclose(ltv, np.array([2, 2, 2, 5, 5, 5, 5, 5, 6, 6]) / 3)
    at_risk = curves[curves["measure"] == "retention_unbounded"]["n"].to_numpy()
    np.testing.assert_array_equal(at_risk, [3, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1])
    weekly = curves[curves["measure"] == "ctr_item"]
    assert list(weekly["day"]) == [0] and weekly["estimate"].iloc[0] == pytest.approx(5 / (12 * 5))
    per = shopper_measures(config, shoppers, days)
    per = per[per["agent"] == "random"]
    assert list(per["active_days"]) == [3, 1, 2] and list(per["monthly_active_days"]) == [10, 10, 10]
    assert list(per["weekly_active_days"]) == [10, 7, 10] and list(per["last_active_day"]) == [8, 0, 3]
    segments = tables.segments
    assert "satisfaction_start" not in set(segments["segment"])  # one value for everyone: no terciles
    assert set(segments["level"][segments["segment"] == "interest_category"]) == {"category 1", "category 3"}


def test_headline_pairs_and_oracle_share_on_identical_agents():
    config = hand_config()
    shoppers, days = cell_frames(HAND_SHOPPERS, HAND_DAYS, config)
    tables = stickiness_tables(config, shoppers, days)
    assert list(tables.headline["metric"]) == headline_metrics(config, "s")
    assert set(tables.headline["winner"]) == {"random"}  # ties go to the agent listed first; never the oracle
    assert (tables.headline["margin"] == 0).all()
    assert list(zip(tables.rl_pairs["agent"], tables.rl_pairs["other"])) == [("ppo", "slateq")] * 5
    shares = tables.oracle_share
    assert "long_term_oracle" not in set(shares["agent"])
    ratio = shares[shares["basis"] == "oracle"]
    assert (ratio["share"] == 1).all()
    assert set(shares.loc[shares["basis"] == "random_to_oracle", "agent"]) == {"ppo", "slateq"}
    with pytest.raises(ValueError, match="no agent 'nobody'"):
        stickiness_tables(config, shoppers, days, reference="nobody")


def test_several_scenarios_each_get_their_own_numbers():
    one = hand_config()
    shoppers, days = cell_frames(HAND_SHOPPERS, HAND_DAYS, one)
    alone = stickiness_tables(one, shoppers, days).summary
    two = hand_config()
    two["scenarios"] = [{"name": "s", "env": {}}, {"name": "t", "env": {}}]
    two["resolved_env"]["t"] = {"horizon_days": 10, "slate_size": 10}
    both = stickiness_tables(
        two,
        pd.concat([shoppers, shoppers.assign(scenario="t")], ignore_index=True),
        pd.concat([days, days.assign(scenario="t")], ignore_index=True),
    ).summary
    first = both[both["scenario"] == "s"].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, alone)  # the first scenario draws first: same draws
    second = both[both["scenario"] == "t"].set_index(["agent", "metric"])["estimate"]
    expected = alone.set_index(["agent", "metric"])["estimate"]
    expected.loc[:, "click_rate_item"] /= 2  # slates of 10, not 5
    pd.testing.assert_series_equal(second, expected)


def test_every_metric_has_a_label_and_a_glossary_entry():
    config = hand_config()
    shoppers, days = cell_frames(HAND_SHOPPERS, HAND_DAYS, config)
    tables = stickiness_tables(config, shoppers, days)
    for metric in [*tables.summary["metric"].unique(), *headline_metrics(config, "s")]:
        label, key = metric_label(metric)
        assert label and key in GLOSSARY
    for key in ("ctr", "retention", "revenue", "lifetime", "logrank", "dau_mau", "wau_mau", "oracle_share"):
        assert key in GLOSSARY and len(GLOSSARY[key][1]) > 80
    assert set(STICKINESS_METRICS) <= set(tables.summary["metric"])
    with pytest.raises(ValueError, match="no stickiness metric"):
        metric_label("nonsense")


@st.composite
def activity(draw):
    """Random shoppers' activity consistent with churn: a churned shopper's churn_day is her last active day + 1."""
    n = draw(st.integers(1, 6))
    horizon = draw(st.integers(1, 40))
    active = np.array(draw(st.lists(st.booleans(), min_size=n * horizon, max_size=n * horizon))).reshape(n, horizon)
    active[:, 0] = True  # every shopper visits on her first day
    churned = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    revenue = draw(st.lists(st.floats(0, 50), min_size=int(active.sum()), max_size=int(active.sum())))
    shopper, day = np.nonzero(active)
    last = np.array([np.flatnonzero(row).max() for row in active])
    days = pd.DataFrame({"shopper": shopper, "day": day, "sessions": 1, "impressions": 2, "clicks": 1})
    days = days.assign(purchases=0, revenue=revenue, rating_clicked=0.5, satisfaction=1.0)
    shoppers = pd.DataFrame({"shopper": np.arange(n), "churned": churned})
    shoppers["churn_day"] = np.where(churned, last + 1.0, float(horizon))
    return shoppers, days, horizon, active


@given(activity())
def test_stickiness_invariants_on_random_activity(case):
    shoppers, days, horizon, active = case
    config = hand_config(horizon=horizon, resamples=20, cohort_days=[1])
    shoppers, days = cell_frames(shoppers, days, config)
    tables = stickiness_tables(config, shoppers, days)
    summary = tables.summary[tables.summary["agent"] == "random"].set_index("metric")["estimate"]
    assert summary["dau_mau"] <= summary["wau_mau"] + 1e-12 <= 1 + 2e-12
    # DAU/MAU by a loop over days: the definition in docs/report.md
    mau = sum((active[:, max(0, d - 29) : d + 1].any(axis=1)).sum() for d in range(horizon))
    assert summary["dau_mau"] == pytest.approx(active.sum() / mau)
    curves = tables.curves[tables.curves["agent"] == "random"].set_index(["measure", "day"])["estimate"]
    unbounded, nday = curves["retention_unbounded"], curves["retention_nday"]
    assert (unbounded.loc[nday.index] >= nday).all()  # came back on day N => not churned by day N
    assert (np.diff(unbounded.to_numpy()) <= 0).all()
    assert (np.diff(curves["ltv"].to_numpy()) >= -1e-9).all()
    assert ((curves["wau_mau"] >= curves["dau_mau"] - 1e-12) & (curves["wau_mau"] <= 1 + 1e-12)).all()


# ---------------------------------------------------------------------------------------------------------------
# A tiny real run
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """Three cheap agents (one an oracle), two seeds, 60 shoppers, 30 days: about 20 s."""
    root = tmp_path_factory.mktemp("sticky")
    config = {
        "name": "tiny",
        "env": {"preset": "small", "horizon_days": 30},
        "scenarios": [{"name": "default", "env": {}}],
        "agents": {"random": {}, "ctr_rating": {}, "long_term_oracle": {}},
        "seeds": 2,
        "evaluation": {"shoppers": 60},
        "report": {"reference": "random", "resamples": 40, "cohort_days": [1, 7, 14, 30]},
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    run = root / "run"
    done = subprocess.run(
        [*STICKYREC, "run", str(root / "tiny.yaml"), "--out", str(run), "--quiet", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_retention_curve_is_the_summary_tables_retention_with_the_same_interval(tiny_run):
    data = read_run(tiny_run)
    table = paired_tables(data.config, data.shoppers).table.set_index("agent")
    curves = stickiness_tables(data.config, data.shoppers, data.days).curves
    unbounded = curves[curves["measure"] == "retention_unbounded"].set_index(["agent", "day"])
    for agent in table.index:
        for day in (1, 7, 30):
            point = unbounded.loc[(agent, day)]
            assert point["estimate"] == table.loc[agent, f"retention_day{day}"]  # exactly: the same sums
            assert point["low"] == table.loc[agent, f"retention_day{day}_low"]  # the same bootstrap draws
            assert point["high"] == table.loc[agent, f"retention_day{day}_high"]
    written = pd.read_csv(tiny_run / "stickiness.csv")
    summary = pd.read_csv(tiny_run / "summary.csv").set_index("agent")
    for agent, part in written.groupby("agent"):
        row = part.set_index("metric").loc["unbounded_retention_day30"]
        assert row["estimate"] == summary.loc[agent, "retention_day30"]
        assert (row["low"], row["high"]) == (
            summary.loc[agent, "retention_day30_low"],
            summary.loc[agent, "retention_day30_high"],
        )


def test_segments_are_the_same_shoppers_for_every_agent(tiny_run):
    segments = pd.read_csv(tiny_run / "segments.csv")
    assert {"activity", "price_sensitivity", "satisfaction_start", "interest_category"} <= set(segments["segment"])
    counts = segments.groupby(["segment", "level", "metric"])["n"].nunique()
    assert (counts == 1).all()
    terciles = segments[(segments["segment"] == "activity") & (segments["agent"] == "random")]
    assert terciles.groupby("metric")["n"].sum().eq(120).all()  # 2 seeds x 60 shoppers, each in one tercile
    headline = pd.read_csv(tiny_run / "headline.csv")
    assert "long_term_oracle" not in set(headline["winner"]) | set(headline["runner_up"])


def test_a_committed_run_re_renders_byte_for_byte_without_its_cells(tiny_run, tmp_path):
    committed = tmp_path / "committed"
    shutil.copytree(tiny_run, committed)
    shutil.rmtree(committed / "cells")
    done = subprocess.run([*STICKYREC, "report", str(committed)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("summary.csv", "differences.csv", "engagement.csv", "report.md", *STICKINESS_FILES.values()):
        assert (committed / name).read_bytes() == (tiny_run / name).read_bytes(), name
    (committed / "activity.parquet").unlink()
    with pytest.raises(ValueError, match="activity.parquet") as caught:
        build_report(committed)
    assert not isinstance(caught.value, RunNotFinishedError)


def test_reference_changes_the_baseline_and_a_bad_one_is_refused_before_any_work(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    done = subprocess.run([*STICKYREC, "report", str(run), "--reference", "nobody"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--reference 'nobody' is not an agent" in done.stderr
    allowed = done.stderr.split("allowed: ")[1].strip()
    assert sorted(allowed.split(", ")) == ["ctr_rating", "long_term_oracle", "random"]
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    done = subprocess.run([*STICKYREC, "report", str(run), "--reference", "ctr_rating"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert set(pd.read_csv(run / "diff_curves.csv")["baseline"]) == {"ctr_rating"}
    assert set(pd.read_csv(run / "differences.csv")["reference"]) == {"ctr_rating"}
    assert (run / "summary.csv").read_bytes() == (tiny_run / "summary.csv").read_bytes()


@given(
    revenue=st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=40),
    seed=st.integers(0, 2**16 - 1),
)
def test_activity_parquet_packs_to_hundredths_and_reads_back_exactly_what_the_report_computes_from(revenue, seed):
    n = len(revenue)
    rng = np.random.default_rng(seed)
    days = pd.DataFrame(
        {
            "shopper": rng.integers(0, 5000, n).astype(np.int32),
            "day": rng.integers(0, 365, n).astype(np.int16),
            **{c: rng.integers(0, 300, n).astype(np.int32) for c in ("sessions", "impressions", "clicks", "purchases")},
            "revenue": np.array(revenue),
            "rating_clicked": rng.uniform(0, 50, n).astype(np.float32),
            "satisfaction": rng.normal(0, 30, n).astype(np.float32),
        }
    ).assign(scenario="default", agent=rng.choice(["a", "b"], n), seed=int(rng.integers(0, 9)))
    want = activity_rows.quantised(days)
    assert activity_rows.quantised(want).equals(want)  # idempotent: a re-render rounds nothing further
    assert np.abs(want["revenue"] - days["revenue"]).max() <= 0.005 + 1e-9 * days["revenue"].max()
    buffer = io.BytesIO()
    activity_rows.packed(days).to_parquet(buffer, index=False)
    back = activity_rows.unpacked(pd.read_parquet(io.BytesIO(buffer.getvalue())))
    pd.testing.assert_frame_equal(back, want, check_dtype=False)
    older = activity_rows.unpacked(days)  # the float form of earlier reports
    assert older.equals(activity_rows.unpacked(activity_rows.packed(days)))
    with pytest.raises(ValueError, match="lacks columns revenue"):
        activity_rows.unpacked(days.drop(columns="revenue"))
