"""The simulator-side calibration: the ensemble driver, the moments, the SMM fit, per-customer predictions, and the
``stickyrec calibrate`` / ``stickyrec predict`` commands on a tiny log."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from stickyrec.envs.config import make_config
from stickyrec.experiments.calibration import bgnbd, load_example, read_transactions, split
from stickyrec.experiments.calibration import estimate as est
from stickyrec.experiments.calibration import moments as mom
from stickyrec.experiments.calibration import predict as pred
from stickyrec.experiments.calibration.ensemble import KeyedRandomPolicy, simulate_purchase_days
from stickyrec.experiments.cli import main

THETA = est.fields_to_theta(
    {"visit_rate_gamma_shape": 0.8, "visit_rate_gamma_rate": 60.0, "dropout_beta_a": 0.3, "dropout_beta_b": 4.0}
)


def small_world(theta=THETA):
    return est.world(make_config("small"), theta)


def test_theta_and_fields_round_trip():
    fields = est.theta_to_fields(THETA)
    assert fields == pytest.approx(
        {"visit_rate_gamma_shape": 0.8, "visit_rate_gamma_rate": 60.0, "dropout_beta_a": 0.3, "dropout_beta_b": 4.0}
    )
    assert est.fields_to_theta(fields) == pytest.approx(THETA)


def test_a_shopper_lives_the_same_life_whatever_the_pool():
    """Common random numbers: shopper j's purchase days depend on her seed only, not on who shares the batch, how
    the slots are refilled, or how many shoppers come after her."""
    spans = np.full(120, 200.0)
    a = simulate_purchase_days(small_world(), spans, seed=7, pool=16, refill_every=3)
    b = simulate_purchase_days(small_world(), spans, seed=7, pool=64, refill_every=10)
    c = simulate_purchase_days(small_world(), spans[:60], seed=7, pool=60)
    assert len(a.customers) > 20
    np.testing.assert_array_equal(a.shopper, b.shopper)
    np.testing.assert_array_equal(a.day, b.day)
    np.testing.assert_array_equal(a.first_day, b.first_day)
    first = a.shopper < 60
    np.testing.assert_array_equal(a.day[first], c.day)
    assert np.all(a.day <= spans[a.shopper]) and np.all(a.day >= 0)
    assert np.all(np.isin(a.customers, a.shopper))  # every customer has her first purchase day (day 0) listed
    assert set(a.shopper[a.day == 0]) == set(a.customers)


def test_keyed_policy_slates_depend_on_the_row_key_and_count_only():
    policy = KeyedRandomPolicy(slate_size=3, n_slots=4)
    policy.assign(np.arange(4), np.array([5, 6, 5, 9]))
    obs = {"candidate_ids": np.zeros((4, 12), dtype=np.int32)}
    slates = policy.act(obs)
    assert slates.shape == (4, 3)
    np.testing.assert_array_equal(slates[0], slates[2])
    assert not np.array_equal(slates[0], slates[1])
    assert all(len(set(row)) == 3 for row in slates.tolist())


def test_moments_of_a_hand_made_log():
    # customer 0: days 0, 10, 30 (T 100); customer 1: day 0 only (T 50); customer 2: days 0, 400 (T 500)
    h = mom.Histories(np.array([0, 0, 0, 1, 2, 2]), np.array([0, 10, 30, 0, 0, 400]), np.array([100.0, 50.0, 500.0]))
    m = dict(zip(mom.NAMES, mom.moment_vector(h)))
    assert m["mean_repeats"] == pytest.approx(1.0)
    assert m["share_x0"] == pytest.approx(1 / 3)
    assert m["share_x1"] == pytest.approx(1 / 3)
    assert m["share_x2_4"] == pytest.approx(1 / 3)
    assert m["share_x10_plus"] == 0.0
    assert m["mean_recency_share"] == pytest.approx(((100 - 30) / 100 + (500 - 400) / 500) / 2)
    assert m["share_lapsed_26w"] == pytest.approx(0.0)  # customer 2 (T > 39 weeks) bought 100 days before the end
    assert m["mean_log_gap"] == pytest.approx(np.mean(np.log([10, 20, 400])))
    assert m["share_gap_over_90d"] == pytest.approx(1 / 3)
    # age 0-13 weeks: repeats on days 10 and 30 over 13 + 50/7 + 13 customer-weeks
    assert m["rate_age_0_13w"] == pytest.approx(2 / (13 + 50 / 7 + 13))
    assert m["rate_age_52_plusw"] == pytest.approx(1 / ((500 - 364) / 7))


def test_days_after_the_calibration_end_do_not_count():
    h = mom.Histories(np.array([0, 0, 0]), np.array([0, 5, 50]), np.array([20.0]))
    assert dict(zip(mom.NAMES, mom.moment_vector(h)))["mean_repeats"] == 1.0


def test_bootstrap_moments_spread_around_the_log():
    log = read_transactions(load_example("online_retail_ii"))
    h = mom.histories(split(log, "2011-06-30", cohort_start="2010-01-01"))
    real = mom.moment_vector(h)
    boot = mom.bootstrap_moments(h, 60, np.random.default_rng(0))
    assert boot.shape == (60, len(mom.NAMES))
    assert np.all(np.abs(boot.mean(axis=0) - real) < 3 * boot.std(axis=0) / math.sqrt(60) + 1e-9)
    assert real[0] == pytest.approx(2.3897, abs=1e-3)  # mean repeat purchase days, docs/calibration-plan.md


def test_prediction_reduces_to_the_nbd_without_dropout():
    """With dropout ~ 0 the posterior of lambda is Gamma(r + x, alpha + T): E[purchases] = (r + x) t / (alpha + T)."""
    fields = {
        "visit_rate_gamma_shape": 0.7,
        "visit_rate_gamma_rate": 40.0,
        "dropout_beta_a": 1e-4,
        "dropout_beta_b": 1e4,
    }
    grid = pred.population_grid(fields)
    x, t_x, T = np.array([0.0, 2, 9]), np.array([0.0, 50, 200]), np.array([100.0, 120, 300])
    table = pred.predict_customers(grid, 1.0, x, t_x, T, 90.0)
    expected = (0.7 + x) * 90.0 / (40.0 + T)
    assert table["expected_purchases"].to_numpy() == pytest.approx(expected, rel=0.02)
    assert table["p_alive"].to_numpy() == pytest.approx(1.0, abs=1e-3)
    assert np.all((table["p_buy"] > 0) & (table["p_buy"] < 1))


def test_fit_kappa_finds_the_rate_scale_of_bgnbd_data():
    """Histories simulated by BG/NBD (dropout after repeat purchases only) at rate 2 x the grid's lambda."""
    rng = np.random.default_rng(3)
    params = bgnbd.BGNBDParams(r=0.8, alpha=10.0, a=0.01, b=5.0)  # weeks; almost no dropout
    sim = bgnbd.simulate_bgnbd(params, np.full(3000, 60.0), rng)
    fields = {
        "visit_rate_gamma_shape": 0.8,
        "visit_rate_gamma_rate": 2 * 70.0,
        "dropout_beta_a": 0.01,
        "dropout_beta_b": 5,
    }
    kappa = pred.fit_kappa(pred.population_grid(fields), sim["x"], sim["t_x"] * 7, sim["T"] * 7)
    assert kappa == pytest.approx(2.0, rel=0.15)


def tiny_log(tmp_path, customers=250):
    log = read_transactions(load_example("online_retail_ii"))
    days = log.days
    keep = np.random.default_rng(0).choice(days["customer"].unique(), customers, replace=False)
    frame = days[days["customer"].isin(keep)][["customer", "day"]]
    frame = frame.rename(columns={"customer": "Customer ID", "day": "InvoiceDate"})
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


def test_calibrate_command_on_a_tiny_log(tmp_path, capsys):
    path = tiny_log(tmp_path)
    out = tmp_path / "cal"
    args = [str(path), "--calibration-end", "2011-06-30", "--out", str(out), "--base", "small"]
    args += ["--ensemble", "200", "--validation-ensemble", "300", "--max-evaluations", "2", "--no-progress"]
    assert main(["calibrate", *args]) == 0
    written = {p.name for p in out.iterdir()}
    assert written >= {"preset.yaml", "validation.json", "predictions.csv", "report.md", "report.html", "tracking.svg"}
    page = (out / "report.html").read_text()
    assert "holdout_tracking_mape" in page or "tracking" in page.lower()
    assert 'src="http' not in page and "<script src" not in page
    v = json.loads((out / "validation.json").read_text())
    for key in ("holdout_tracking_mape", "holdout_customer_mae", "holdout_customer_corr", "holdout_auc"):
        assert set(v[key]) == {"stickyrec", "bgnbd"} and all(math.isfinite(x) for x in v[key].values())
    assert v["customers"] == len(pd.read_csv(out / "predictions.csv")) and v["calibration_seconds"] > 0
    assert v["cohort_start"] == "2009-12-31"  # auto: the log's first day + 30 days
    for name in est.PARAMS:
        assert v["params"][name]["value"] > 0 and v["params"][name]["se"] >= 0
    config = make_config(str(out / "preset.yaml"))
    assert config.visit_rate_distribution == "gamma" and math.isinf(config.churn_window_days)
    assert config.visit_rate_gamma_shape == pytest.approx(v["params"]["visit_rate_gamma_shape"]["value"])
    yaml.safe_load((out / "preset.yaml").read_text())
    assert v["stopped_by"] == "evaluations" and v["evaluations"] == 2
    again = tmp_path / "again"
    assert main(["calibrate", *args[:3], "--out", str(again), *args[5:]]) == 0
    assert (again / "preset.yaml").read_bytes() == (out / "preset.yaml").read_bytes()  # same log, options, seed
    assert (again / "predictions.csv").read_bytes() == (out / "predictions.csv").read_bytes()
    table = out / "next.csv"
    predict = [str(path), "--preset", str(out / "preset.yaml"), "--calibration-end", "2011-06-30", "--weeks", "8"]
    assert main(["predict", *predict, "--ensemble", "300", "--out", str(table)]) == 0
    frame = pd.read_csv(table)
    assert {"customer", "p_alive", "expected_purchases", "p_buy", "actual_purchases"} <= set(frame.columns)
    assert frame["p_alive"].between(0, 1).all() and (frame["expected_purchases"] >= 0).all()
    assert "AUC" in capsys.readouterr().out


BAD = [
    (["--calibration-end", "2031-01-01"], "outside the log"),
    (["--calibration-end", "yesterday-ish"], "calibration end"),
    (["--calibration-end", "2011-06-30", "--customer", "Klant"], "Klant"),
    (["--calibration-end", "2011-06-30", "--ensemble", "10"], "ensemble"),
    (["--calibration-end", "2011-06-30", "--budget-seconds", "-1"], "budget_seconds"),
    (["--calibration-end", "2011-06-30", "--base", "nope"], "preset"),
    (["--calibration-end", "2011-06-30", "--cohort-start", "2011-07-01"], "cohort start"),
]


@pytest.mark.parametrize("extra, needle", BAD)
def test_calibrate_refuses_bad_input_and_writes_nothing(tmp_path, capsys, extra, needle):
    path = tiny_log(tmp_path, customers=40)
    out = tmp_path / "cal"
    assert main(["calibrate", str(path), "--out", str(out), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stickyrec: error:") and needle in err and "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.csv"]


def test_the_calibration_base_has_the_fitted_session_shape():
    from stickyrec.envs.config import PRESETS
    from stickyrec.experiments.calibration import pipeline, sessions

    assert pipeline.CalibrationOptions(calibration_end="2011-06-30").base == "online_shoppers"
    assert PRESETS["online_shoppers"] == sessions.FITTED["gamma_beta"]


def test_calibrate_refuses_an_out_that_is_a_file(tmp_path, capsys):
    path = tiny_log(tmp_path, customers=40)
    assert main(["calibrate", str(path), "--calibration-end", "2011-06-30", "--out", str(path)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_predict_refuses_a_world_that_is_not_calibrated(tmp_path, capsys):
    path = tiny_log(tmp_path, customers=40)
    preset = tmp_path / "p.yaml"
    preset.write_text("preset: small\n")
    assert main(["predict", str(path), "--preset", str(preset), "--out", str(tmp_path / "t.csv")]) == 2
    assert "not a calibrated world" in capsys.readouterr().err
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.slow
def test_parameters_are_recovered_within_their_stated_uncertainty():
    """A log simulated from known parameters (4,000 shoppers over two years, about 2,800 customers) is calibrated
    back (a different ensemble: seeds 0.. against the log's 12,345..): each log-parameter within 3 standard errors,
    and jointly inside the 99% ellipse of the stated covariance (chi-square, 4 degrees of freedom)."""
    from scipy import stats

    from stickyrec.experiments.calibration.simulate_log import synthetic_log

    base = make_config("default")
    truth = {
        "visit_rate_gamma_shape": 0.82,
        "visit_rate_gamma_rate": 97.0,
        "dropout_beta_a": 0.33,
        "dropout_beta_b": 4.1,
    }
    theta = est.fields_to_theta(truth)
    frame = synthetic_log(est.world(base, theta), 4000, "2020-01-01", "2021-12-31", acquisition_days=365, seed=12345)
    # 30 evaluations and a budget that never binds: the same fit on every machine (a time-bound search would not be)
    histories = mom.histories(split(read_transactions(frame), "2021-06-30"))
    fit = est.calibrate(histories, base, max_evals=30, budget_s=3600.0)
    assert fit.stopped_by in ("evaluations", "converged")
    se = np.sqrt(np.diag(fit.cov_theta))
    assert np.all(se > 0) and np.all(se < 1.5)  # informative, not degenerate
    assert np.all(np.abs(fit.theta - theta) < 3 * se), (fit.theta, theta, se)
    distance = (fit.theta - theta) @ np.linalg.inv(fit.cov_theta) @ (fit.theta - theta)
    assert distance < stats.chi2.ppf(0.99, 4)


def test_the_online_retail_preset_is_the_committed_calibration():
    """PRESETS["online_retail"] is the preset that ``stickyrec calibrate`` wrote for the shipped example (rounded)."""
    from pathlib import Path

    from stickyrec.envs.config import get_preset

    committed = Path(__file__).resolve().parents[1] / "results" / "calibration" / "online_retail_ii" / "preset.yaml"
    written, preset = make_config(str(committed)), get_preset("online_retail")
    for name, value in written.to_dict().items():
        if isinstance(value, float):
            assert getattr(preset, name) == pytest.approx(value, rel=1e-3), name
        else:
            assert getattr(preset, name) == value, name


def test_reports_say_which_churn_their_retention_counts():
    from stickyrec.envs.config import get_preset
    from stickyrec.experiments.report_render import churn_meaning

    default = churn_meaning(get_preset("default").to_dict())
    calibrated = churn_meaning(get_preset("online_retail").to_dict())
    assert "more than 14 days" in default and "latent" not in default
    assert "latent event only" in calibrated and "14 days" not in calibrated
