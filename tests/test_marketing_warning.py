"""Churn early warning and purchase intent (stickyrec.experiments.marketing): features hand-checked and leak-free,
labels hand-checked, the models fit and score on a tiny log, metrics hand-checked, the true hazard's machinery exact."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stickyrec.agents import RandomPolicy
from stickyrec.envs.catalog import make_catalog
from stickyrec.envs.config import make_config
from stickyrec.envs.simulator import RetentionSimulator
from stickyrec.experiments.marketing import (
    WARNING_FEATURES,
    ChurnWarning,
    IntentModel,
    SessionSnapshots,
    StateSnapshots,
    StepRecorder,
    flag_top,
    intent_examples,
    lead_times,
    log_steps,
    precision_at,
    reliability,
    snapshot_days,
    true_hazard,
    true_intent,
    warning_examples,
)
from stickyrec.experiments.marketing.hazard import session_churn_probability
from stickyrec.experiments.marketing.logs import as_step_dtypes
from stickyrec.experiments.marketing.replay import load_rows
from stickyrec.experiments.marketing.warning import evaluate_intent, evaluate_warning
from stickyrec.experiments.platform_log import collect, read_impressions
from stickyrec.experiments.rollout import rollout

CONFIG = make_config("small", horizon_days=30.0)


def hand_steps() -> pd.DataFrame:
    """Shopper 0: sessions on days 0, 3, 8 (churns on day 8). Shopper 1: days 0, 10, 20 (never churns)."""
    rows = [  # shopper, step, day, session, clicked_item, purchased, revenue, returned, churned
        (0, 0, 0, 0, 5, False, 0.0, False, False),
        (0, 1, 0, 0, -1, False, 0.0, False, False),
        (0, 2, 0, 0, -1, False, 0.0, True, False),
        (0, 3, 3, 1, -1, False, 0.0, False, False),
        (0, 4, 3, 1, 7, True, 2.5, True, False),
        (0, 5, 8, 2, -1, False, 0.0, False, True),
        (1, 0, 0, 0, 2, True, 1.0, True, False),
        (1, 1, 10, 1, -1, False, 0.0, False, False),
        (1, 2, 10, 1, -1, False, 0.0, True, False),
        (1, 3, 20, 2, 3, False, 0.0, False, False),
    ]
    columns = ["shopper", "step", "day", "session", "clicked_item", "purchased", "revenue", "returned", "churned"]
    return as_step_dtypes(pd.DataFrame(rows, columns=columns))


@pytest.fixture(scope="module")
def tiny_run():
    """A tiny logged population under random slates: its step table and state snapshots."""
    steps, states = rollout(RandomPolicy(3), CONFIG, 80, 41, [StepRecorder(), StateSnapshots([7, 14])])
    return steps, states


def test_snapshot_grid_stops_where_labels_end():
    assert snapshot_days(60.0) == [7, 14, 21, 28, 35, 42]
    assert snapshot_days(30.0, 14, 7) == [7, 14]
    assert snapshot_days(30.0, 10, 5, first=3) == [3, 8, 13, 18]
    with pytest.raises(ValueError, match="no snapshot day fits"):
        snapshot_days(10.0, 14)
    with pytest.raises(ValueError, match="window_days"):
        snapshot_days(60.0, 0)


def test_warning_features_and_labels_by_hand():
    rating = np.linspace(0.0, 0.9, 10)
    examples = warning_examples(hand_steps(), 30.0, 14, 7, item_rating=rating).set_index(["day", "shopper"])
    assert sorted(examples.index) == [(7, 0), (7, 1), (14, 1)]  # shopper 0 churned on day 8: gone by day 14
    a = examples.loc[(7, 0)]
    expected = {"recency": 4, "sessions": 2, "slates": 5, "clicks": 2, "purchases": 1, "spend": 2.5}
    expected |= {"sessions_7d": 2, "slates_7d": 5, "ctr": 0.4, "session_length": 2.5, "last_session_length": 2}
    expected |= {"last_ctr": 0.5, "last_end_no_click_run": 0, "last_purchased": True, "days_since_purchase": 4}
    expected |= {"mean_gap": 3.0, "last_gap": 3.0, "clicked_rating": (0.5 + 0.7) / 2, "last_clicked_rating": 0.7}
    expected |= {"visit_rate": 2 / 7, "recency_ratio": 4 / 3, "last_no_clicks": 1, "no_clicks_7d": 3}
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name
    assert a["churn_day"] == 8 and a["churns"]
    b = examples.loc[(7, 1)]
    assert (b["recency"], b["sessions"], b["days_since_purchase"]) == (7, 1, 7)
    assert math.isnan(b["mean_gap"]) and math.isnan(b["last_gap"]) and not b["churns"]
    c = examples.loc[(14, 1)]
    expected = {"recency": 4, "sessions": 2, "slates": 3, "clicks": 1, "sessions_7d": 1, "slates_7d": 2}
    expected |= {"clicks_7d": 0, "ctr_7d": 0.0, "ctr_trend": -1 / 3, "last_end_no_click_run": 2, "last_gap": 10}
    expected |= {"recency_ratio": 0.4, "last_no_clicks": 2, "no_clicks_7d": 2, "visit_rate": 2 / 14}
    for name, value in expected.items():
        assert c[name] == pytest.approx(value), name
    assert not c["churns"]


def test_churn_label_is_the_window_from_the_snapshot():
    steps = hand_steps()
    assert warning_examples(steps, 30.0, 2, 7).set_index(["day", "shopper"]).loc[(7, 0), "churns"]  # day 8 < 9
    assert not warning_examples(steps, 30.0, 1, 7).set_index(["day", "shopper"]).loc[(7, 0), "churns"]  # 8 >= 8


def test_features_use_only_days_before_the_snapshot(tiny_run):
    """Rewriting everything on or after day 14 (but the truth) changes no feature at day 14 or before."""
    steps = tiny_run[0]
    future = steps["day"].to_numpy() >= 14
    changed = steps.copy()
    rng = np.random.default_rng(0)
    changed.loc[future, "clicked_item"] = rng.integers(-1, CONFIG.n_items, future.sum())
    changed.loc[future, "purchased"] = rng.random(future.sum()) < 0.5
    changed.loc[future, "revenue"] = rng.random(future.sum()) * 100
    changed.loc[future & ~changed["churned"], "returned"] = ~changed.loc[future & ~changed["churned"], "returned"]
    rating = make_catalog(CONFIG).rating
    before = warning_examples(steps, CONFIG.horizon_days, 14, 7, item_rating=rating)
    after = warning_examples(changed, CONFIG.horizon_days, 14, 7, item_rating=rating)
    pd.testing.assert_frame_equal(before[list(WARNING_FEATURES)], after[list(WARNING_FEATURES)])
    assert set(before["day"]) == {7, 14} and before["churns"].any() and not before["churns"].all()


def test_step_recorder_is_the_impression_log_at_step_grain(tmp_path):
    store = tmp_path / "log.duckdb"
    collect(RandomPolicy(1), CONFIG, 6, store=store, run_id="tiny", seed=9, progress=False)
    recorded = rollout(RandomPolicy(1), CONFIG, 6, 9, [StepRecorder()])[0]
    pd.testing.assert_frame_equal(log_steps(read_impressions(store, "tiny")), recorded)
    with pytest.raises(ValueError, match="lacks columns"):
        log_steps(recorded.drop(columns="session"))
    with pytest.raises(ValueError, match="step table lacks columns"):
        warning_examples(recorded.drop(columns="clicked_item"), CONFIG.horizon_days)
    with pytest.raises(ValueError, match="DataFrame"):
        intent_examples([1, 2, 3])


def test_intent_examples_by_hand():
    rating, price = np.linspace(0.0, 0.9, 10), np.linspace(-1.0, 1.0, 10)
    examples = intent_examples(hand_steps(), (1, 2), rating, price).set_index(["slates_seen", "shopper", "session"])
    # live after 1 slate, no purchase yet: (0, 0) [3 slates], (0, 1) [buys on slate 2], (1, 1) [2 slates]
    assert sorted(examples.loc[1].index) == [(0, 0), (0, 1), (1, 1)]
    assert sorted(examples.loc[2].index) == [(0, 0)]  # (0, 1) bought on its 2nd slate; (1, 1) has no 3rd
    row = examples.loc[(1, 0, 1)]
    assert row["buys"] and row["session_clicks"] == 0 and row["no_click_run"] == 1
    assert (row["past_sessions"], row["past_clicks"], row["past_purchases"], row["days_since_last_visit"]) == (
        1,
        1,
        0,
        3,
    )
    row = examples.loc[(1, 0, 0)]
    assert not row["buys"] and row["session_clicked_rating"] == pytest.approx(0.5)
    assert row["session_clicked_price"] == pytest.approx(price[5]) and math.isnan(row["days_since_last_visit"])
    assert examples.loc[(1, 1, 1), "past_buy_per_click"] == 1.0


def test_models_fit_and_score_on_a_tiny_log(tiny_run):
    steps = tiny_run[0]
    examples = warning_examples(steps, CONFIG.horizon_days, 14, 7)
    risk = ChurnWarning(max_iter=20).fit(examples).score(examples)
    assert risk.shape == (len(examples),) and ((risk >= 0) & (risk <= 1)).all()
    figures = evaluate_warning(examples, risk, 14, 0.05)
    assert 0.5 < figures["roc_auc"] <= 1.0  # in-sample: it must at least rank its own training rows
    assert set(figures["reliability"].columns) == {"bin_low", "bin_high", "n", "predicted", "observed"}
    assert figures["reliability"]["n"].sum() == len(examples)
    intent = intent_examples(steps)
    probability = IntentModel(max_iter=20).fit(intent).score(intent)
    by_slates = evaluate_intent(intent, probability)
    assert sorted(by_slates) == [1, 3, 5] and all(0.5 < v["roc_auc"] <= 1.0 for v in by_slates.values())
    with pytest.raises(ValueError, match="not fitted"):
        ChurnWarning().score(examples)
    with pytest.raises(ValueError, match="both"):
        ChurnWarning().fit(examples[~examples["churns"]])
    with pytest.raises(ValueError, match="risk has shape"):
        evaluate_warning(examples, risk[:-1])


def test_flags_precision_and_lead_time_by_hand():
    score = np.array([0.1, 0.9, 0.5, 0.3] * 10 + [0.2] * 20)
    groups = np.repeat([7, 14], [40, 20])
    flagged = flag_top(score, groups, 0.05)  # ceil(2) of 40 and ceil(1) of 20
    assert flagged.sum() == 3 and flagged[[1, 5, 40]].all()  # ties go to the earlier row
    assert precision_at(np.arange(60) == 1, flagged) == pytest.approx(1 / 3)
    assert math.isnan(precision_at(np.ones(60, bool), np.zeros(60, bool)))
    with pytest.raises(ValueError, match="share"):
        flag_top(score, groups, 0.0)
    examples = pd.DataFrame(
        {"shopper": [0, 0, 1, 1, 2, 3], "day": [7, 14, 7, 14, 14, 7], "churn_day": [20, 20, np.nan, np.nan, 40, 30]}
    )
    flags = np.array([False, True, True, True, True, True])
    leads = lead_times(examples, flags, window_days=14).set_index("shopper")
    assert leads["lead"].to_dict() == {0: 6.0}  # shopper 1 never churns; 2 and 3 churn 26 and 23 days on
    assert sorted(lead_times(examples, flags)["lead"]) == [6.0, 23.0, 26.0]


def test_reliability_bins_by_hand():
    table = reliability(np.array([0, 1, 1, 0, 1]), np.array([0.05, 0.15, 0.12, 0.95, 1.0]), bins=10)
    assert table["n"].tolist() == [1, 2, 2]
    assert table["observed"].tolist() == [0.0, 1.0, 0.5]
    assert table["predicted"].tolist() == pytest.approx([0.05, 0.135, 0.975])
    assert table["bin_low"].tolist() == pytest.approx([0.0, 0.1, 0.9])


def test_state_copy_reproduces_the_future_exactly():
    """Loaded into a fresh simulator with the same streams and slates, a snapshot replays her life exactly."""

    class FirstSlots:
        def bind(self, env):
            self.k = env.simulator.config.slate_size

        def act(self, obs):
            return np.tile(np.arange(self.k), (obs["candidate_ids"].shape[0], 1))

    steps, states = rollout(FirstSlots(), CONFIG, 40, 5, [StepRecorder(), StateSnapshots([7])])
    shoppers, state = states[7]
    simulator = RetentionSimulator(CONFIG, shoppers.size)
    load_rows(simulator, state)
    churned = np.zeros(shoppers.size, dtype=bool)
    while simulator.state.alive.any():
        churned |= simulator.step(np.tile(np.arange(CONFIG.slate_size), (shoppers.size, 1))).churned
    truth = steps[steps["churned"]]["shopper"].to_numpy()
    assert churned.any() and (churned == np.isin(shoppers, truth)).all()


def test_true_hazard_is_a_share_of_replicates(tiny_run):
    hazard = true_hazard(CONFIG, tiny_run[1], 14, replicates=4, seed=1)
    assert set(hazard["day"]) == {7, 14}
    assert len(hazard) == sum(s.size for s, _ in tiny_run[1].values())
    assert set(np.round(hazard["hazard_draws"] * 4, 9)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert (hazard["hazard"] >= 0).all() and hazard["hazard"].max() > 0
    again = true_hazard(CONFIG, tiny_run[1], 14, replicates=4, seed=1)
    pd.testing.assert_frame_equal(hazard, again)
    with pytest.raises(ValueError, match="replicates"):
        true_hazard(CONFIG, tiny_run[1], 14, replicates=0)


def test_session_churn_probability_by_hand():
    """model.md's table at patience 0, median visit rate: s 0.30 gives hazard 0.0198 and P(gap > 14) 0.065."""
    config = make_config("default")
    chance = session_churn_probability(config, np.array([0.3, 0.8]), np.full(2, 0.08), np.zeros(2), np.ones(2, bool))
    gap_over = np.exp(-0.08 * np.exp(3.0 * np.array([0.3, 0.8])) * (14.0 - 0.1))
    hazard = 1.0 / (1.0 + np.exp(-(-1.5 - 8.0 * np.array([0.3, 0.8]))))
    assert chance == pytest.approx(1.0 - (1.0 - hazard) * (1.0 - gap_over))
    assert chance[0] == pytest.approx(1.0 - (1.0 - 0.0198) * (1.0 - 0.065), abs=1e-3)
    dropout = make_config("default", dropout_distribution="beta", churn_window_days=math.inf)
    chance = session_churn_probability(
        dropout, np.full(2, 0.3), np.full(2, 0.08), np.full(2, 0.5), np.array([1, 0], bool)
    )
    assert chance == pytest.approx([1.0 - (1.0 - hazard[0]) * 0.5, hazard[0]])


def test_expected_churn_matches_the_draws_on_average(tiny_run):
    """The Rao-Blackwell hazard and the plain share of churned re-simulations estimate the same thing."""
    hazard = true_hazard(CONFIG, tiny_run[1], 14, replicates=24, seed=2)
    difference = hazard["hazard"].mean() - hazard["hazard_draws"].mean()
    assert hazard["hazard_draws"].mean() > 0.05 and abs(difference) < 0.03


def test_ceilings_match_the_observed_rates_and_the_examples(tiny_run):
    """The true hazard and the true intent average to the rates the run itself shows, and cover its examples."""
    steps, states = tiny_run
    examples = warning_examples(steps, CONFIG.horizon_days, 14, 7)
    hazard = examples.merge(true_hazard(CONFIG, states, 14, replicates=8, seed=3), on=["shopper", "day"], how="left")
    assert hazard["hazard"].notna().all()  # every active shopper here has a session in her window
    assert abs(hazard["hazard"].mean() - examples["churns"].mean()) < 0.06
    sessions = rollout(RandomPolicy(3), CONFIG, 80, 41, [SessionSnapshots((1, 3))])[0]
    truth = true_intent(CONFIG, sessions, replicates=4, seed=3)
    intent = intent_examples(steps, (1, 3))
    assert sorted(map(tuple, truth[["shopper", "session", "slates_seen"]].to_numpy())) == sorted(
        map(tuple, intent[["shopper", "session", "slates_seen"]].to_numpy())
    )
    assert abs(truth["probability"].mean() - intent["buys"].mean()) < 0.04
    assert abs(truth["probability"].mean() - truth["probability_draws"].mean()) < 0.04


def test_the_ceiling_starts_each_replicate_from_her_state_at_day_t():
    """``back_to_day``: the gap since her last session is redrawn from min_gap + Exp(rate) given that it ends after
    T and lasts at most the churn window; satisfaction and fatigue follow the new gap. Hand-derived on one shopper
    whose last session ended on day 5 with satisfaction 0.6, captured at her next session on day 12 (T = 9)."""
    from stickyrec.envs import dynamics
    from stickyrec.experiments.marketing.hazard import back_to_day

    config = make_config("default")
    n = 20_000
    baseline, memory = config.satisfaction_baseline, config.satisfaction_memory_days
    at_next = dynamics.revert_satisfaction(0.6, 7.0, baseline, memory)
    state = {
        "day": np.full(n, 12.0),
        "days_since_last_visit": np.full(n, 7.0),
        "satisfaction": np.full(n, at_next),
        "visit_rate": np.full(n, 0.1),
        "fatigue": np.full((n, 2), 0.25),
    }
    back_to_day(config, state, np.full(n, 9), np.random.default_rng(0))
    gap = state["days_since_last_visit"]
    assert np.allclose(state["day"], 5.0 + gap)
    assert gap.min() >= 4.0 and gap.max() <= config.churn_window_days  # after T, within the window
    assert np.allclose(state["satisfaction"], dynamics.revert_satisfaction(0.6, gap, baseline, memory))
    assert np.allclose(state["fatigue"][:, 0], 0.25 * 2.0 ** ((7.0 - gap) / config.fatigue_half_life_days))
    rate = 0.1 * np.exp(config.return_satisfaction_weight * 0.6)
    low, high = 4.0 - config.min_return_gap_days, config.churn_window_days - config.min_return_gap_days
    # the mean of Exp(rate) truncated to [low, high]
    mean = (low * np.exp(-rate * low) - high * np.exp(-rate * high)) / (np.exp(-rate * low) - np.exp(-rate * high))
    mean += 1.0 / rate
    assert gap.mean() - config.min_return_gap_days == pytest.approx(mean, abs=0.05)


def test_the_satisfaction_filter_by_hand():
    """Shopper 0 of ``hand_steps``: a click on an item rated 0.9, two slates without one; three days later a slate
    without a click, then a click on an item rated 0.4 that she buys."""
    from stickyrec.experiments.marketing.features import SATISFACTION_FILTER as F
    from stickyrec.experiments.marketing.features import session_satisfaction

    rating = np.zeros(10)
    rating[[5, 7, 2, 3]] = [0.9, 0.4, 0.7, 0.2]
    got = session_satisfaction(hand_steps(), rating)
    s = F["initial"] + F["click_rate"] * (0.9 - F["initial"])
    s *= (1 - F["no_click_drop"]) ** 2
    first = s
    s = F["baseline"] + (s - F["baseline"]) * math.exp(-3.0 / F["memory_days"])
    s *= 1 - F["no_click_drop"]
    s += F["click_rate"] * (0.4 - s)
    s += F["purchase_rate"] * (0.4 - s)
    assert got[:2] == pytest.approx([first, s])
    assert np.isnan(session_satisfaction(hand_steps())).all()  # without the public ratings: nothing to filter


def test_the_return_rate_prior_is_recovered_by_empirical_bayes():
    from stickyrec.experiments.marketing.models import gamma_prior

    rng = np.random.default_rng(4)
    days = rng.uniform(10, 50, 40_000)
    returns = rng.poisson(rng.gamma(5.0, 1 / 20.0, days.size) * days).astype(float)
    shape, rate = gamma_prior(returns, days)
    assert shape == pytest.approx(5.0, rel=0.15) and rate == pytest.approx(20.0, rel=0.15)
    assert gamma_prior(np.full(5, 2.0), np.full(5, 10.0))[0] / gamma_prior(np.full(5, 2.0), np.full(5, 10.0))[1] == (
        pytest.approx(11 / 51)
    )
