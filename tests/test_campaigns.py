"""Targeted retention campaigns (``experiments.campaigns``) and their tables (``experiments.campaign_report``).

The campaign acts only from each shopper's first session on or after the decision day, sends each contacted shopper
exactly ``coupons`` between-visits coupons, and leaves every trajectory as it is without offers; bad parameters fail
before any work; the models learn from a logged randomised campaign; the tables' numbers are hand-derived on tiny
frames, and a Qini score ranks a perfect ranking 1.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from stickyrec.agents.heuristics import CtrRatingPolicy
from stickyrec.envs.offers import SLEEPING_DOG
from stickyrec.experiments.campaign_report import campaign_tables, metric_values
from stickyrec.experiments.campaigns import CampaignAgent, CampaignOracle, OfferStats
from stickyrec.experiments.rollout import RolloutObserver, rollout
from stickyrec.experiments.simulate import CohortStats

DAY = 3  # the decision day of these tests (a 10-day horizon)


@pytest.fixture(scope="module")
def world(small_config):
    return small_config.replace(horizon_days=10.0, offers="on")


class Sent(RolloutObserver):
    """Per shopper: the days on which a between-visits offer was sent, and her days before the decision day."""

    def __init__(self, n):
        self.days = [[] for _ in range(n)]
        self.before = [[] for _ in range(n)]

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active):
        for row in np.flatnonzero(active):
            if not np.isnan(info["offer_between"][row]):
                self.days[row].append(int(info["day"][row]))
            if info["day"][row] < DAY:
                self.before[row].append((int(info["clicked_item"][row]), float(info["revenue"][row])))

    def finish(self):
        return self


def run(agent, config, n=150, seed=11):
    (cohort, offers, sent) = rollout(agent, config, n, seed, [CohortStats("x", config, n), OfferStats(n), Sent(n)])
    return cohort, offers, sent


@pytest.mark.parametrize("coupons", [1, 2])
def test_blanket_contacts_every_deciding_shopper_with_exactly_its_coupons_from_the_decision_day(world, coupons):
    agent = CampaignAgent("all", decision_day=DAY, coupons=coupons, seed=0)
    _, offers, sent = run(agent, world)
    columns = agent.shopper_columns()
    assert columns["decided"].any() and (columns["contacted"] == columns["decided"]).all()
    for row, days in enumerate(sent.days):
        assert all(d >= DAY for d in days)
        assert len(days) <= coupons
        if not columns["decided"][row]:
            assert not days
    assert (offers["offers_sent"].to_numpy() <= coupons).all()
    assert max(len(d) for d in sent.days) == coupons  # someone had enough sessions to get all of hers


def test_without_offers_trajectories_are_the_lever_off_ones_and_arms_share_the_days_before_the_decision(world):
    none_cohort, none_offers, none_sent = run(CampaignAgent("none", decision_day=DAY), world)
    off = world.replace(offers="off")
    (plain,) = rollout(CtrRatingPolicy(), off, 150, 11, [CohortStats("x", off, 150)])
    for name in ("sessions", "clicks", "purchases", "revenue", "last_day", "churned"):
        np.testing.assert_array_equal(getattr(none_cohort, name), getattr(plain, name), err_msg=name)
    assert (none_offers["coupon_cost"] == 0).all() and (none_offers["offers_sent"] == 0).all()
    _, all_offers, all_sent = run(CampaignAgent("all", decision_day=DAY), world)
    assert all_sent.before == none_sent.before  # common random numbers: identical until the campaign acts
    assert all_offers["coupon_cost"].sum() > 0
    np.testing.assert_array_equal(all_offers["uplift_type"], none_offers["uplift_type"])


def test_a_campaign_needs_offers_on_and_rejects_bad_parameters_before_any_work(small_config):
    from stickyrec.envs.vector import RetentionVectorEnv

    with pytest.raises(ValueError, match="offers: on"):
        CampaignAgent("all").bind(RetentionVectorEnv(2, config=small_config))
    bad = [
        ({"targeting": "everyone"}, "targeting = 'everyone'; allowed: none, all, random, churn_risk, uplift"),
        ({"share": 1.5}, r"share = 1.5; allowed: a number in \[0, 1\]"),
        ({"discount": -0.1}, "discount"),
        ({"coupons": 0}, "coupons"),
        ({"objective": "clicks"}, "objective = 'clicks'; allowed: retained, net_revenue"),
        ({"slates": "long_term_oracle"}, "slates = 'long_term_oracle'"),
        ({"learner": "t_learner"}, "learner"),
    ]
    for params, message in bad:
        with pytest.raises(ValueError, match=message):
            CampaignAgent.from_spec(params, seed=0)
    with pytest.raises(ValueError, match="needs fit_population"):
        CampaignAgent("uplift").bind(object.__new__(type("E", (), {})))  # before any env is touched
    with pytest.raises(ValueError, match="targeting = 'uplift'; allowed: oracle"):
        CampaignOracle("uplift")


@pytest.mark.parametrize("targeting", ["churn_risk", "uplift"])
def test_models_learn_from_a_logged_randomised_campaign_and_contact_about_their_share(world, targeting):
    agent = CampaignAgent(targeting, share=0.3, decision_day=DAY, outcome_day=6, window_days=4, seed=1)
    fitted = agent.fit_population(world, 500_000, 400)
    assert fitted["decided"] > 100 and 0.3 < fitted["treated"] / fitted["decided"] < 0.7  # logged_share 0.5
    _, _, _ = run(agent, world, n=300, seed=1_000_000)
    columns = agent.shopper_columns()
    decided = columns["decided"]
    assert np.isfinite(columns["campaign_score"][decided]).all()
    assert np.isnan(columns["campaign_score"][~decided]).all()
    assert 0.05 < columns["contacted"][decided].mean() < 0.6  # the training quantile: about share of them


def test_the_oracle_never_contacts_a_sleeping_dog(world):
    oracle = CampaignOracle(share=0.5, decision_day=DAY, seed=2)
    oracle.fit_population(world, 500_000, 300)
    _, offers, _ = run(oracle, world, n=300)
    contacted = oracle.shopper_columns()["contacted"]
    assert contacted.any()
    assert not (contacted & (offers["uplift_type"].to_numpy() == SLEEPING_DOG)).any()


def test_campaign_metrics_are_hand_derived():
    # parts: retained, net revenue, coupon cost, contacted, woken, one; two agents (control first), one draw
    sums = np.array([[[8.0, 500.0, 0.0, 0.0, 0.0, 10.0], [9.0, 480.0, 40.0, 5.0, 1.0, 10.0]]])
    values = metric_values(sums, control=0)[0]
    np.testing.assert_allclose(values[1, :4], [0.9, 48.0, 4.0, 0.5])
    assert values[1, 4] == pytest.approx(1000 * (0.9 - 0.8) / 4.0)  # retained gained per 1,000 of spend
    assert values[1, 5] == pytest.approx(100.0)  # woken per 1,000 shoppers
    assert np.isnan(values[0, 4])  # the control spent nothing


def _frame(arm, seed, n, retained, net, score, contacted, kind):
    return pd.DataFrame(
        {
            "scenario": "default",
            "agent": arm,
            "seed": seed,
            "shopper": np.arange(n),
            "churn_day": np.where(retained, 60.0, 20.0),
            "churned": ~np.asarray(retained, dtype=bool),
            "net_revenue": net,
            "coupon_cost": np.where(contacted, 1.0, 0.0),
            "contacted": contacted,
            "offers_sent": contacted.astype(int),
            "uplift_type": kind,
            "decided": np.ones(n, dtype=bool),
            "campaign_score": score,
        }
    )


def test_qini_on_truth_scores_a_perfect_ranking_one_and_a_reversed_one_negative():
    rng = np.random.default_rng(0)
    n = 400
    effect = rng.normal(size=n)
    base = rng.normal(50, 5, n)
    kind = rng.integers(0, 4, n)
    parts = []
    for seed in (0, 1):
        none = np.zeros(n, dtype=bool)
        parts += [
            _frame("control", seed, n, np.ones(n, bool), base, np.full(n, np.nan), none, kind),
            _frame("blanket", seed, n, np.ones(n, bool), base + effect, np.full(n, np.nan), ~none, kind),
            _frame("good", seed, n, np.ones(n, bool), base, effect, effect > 1, kind),
            _frame("bad", seed, n, np.ones(n, bool), base, -effect, -effect > 1, kind),
        ]
    config = {
        "scenarios": [{"name": "default"}],
        "report": {"resamples": 30},
        "agents": {
            "control": {"kind": "campaign", "params": {"targeting": "none"}},
            "blanket": {"kind": "campaign", "params": {"targeting": "all"}},
            "good": {"kind": "campaign", "params": {"targeting": "uplift"}},
            "bad": {"kind": "campaign", "params": {"targeting": "churn_risk"}},
        },
    }
    tables = campaign_tables(config, pd.concat(parts, ignore_index=True), day=30)
    qini = tables.qini[tables.qini["outcome"] == "net_revenue"].set_index("agent")["qini"]
    assert qini["good"] == pytest.approx(1.0)
    assert qini["bad"] < -0.5
    spend = tables.campaigns.set_index(["agent", "metric"])["estimate"]
    assert spend[("blanket", "coupon_spend")] == 1.0 and spend[("blanket", "woken_per_1000")] == pytest.approx(
        1000 * np.mean(kind == SLEEPING_DOG)
    )
    diffs = tables.differences.set_index(["agent", "other", "metric"])["diff"]
    assert diffs[("blanket", "control", "net_revenue")] == pytest.approx(effect.mean())


def test_the_churn_warning_is_scored_on_the_control_arms_true_churn():
    rng = np.random.default_rng(1)
    n = 500
    stays = rng.random(n) < 0.8  # the others churn on day 19 (churn_day 20), within 14 days of day 14
    risk = (~stays) * 0.5 + 0.1 * rng.random(n)  # every churner above every stayer
    kind = np.zeros(n, dtype=int)
    none = np.zeros(n, dtype=bool)
    frame = pd.concat(
        [
            _frame("control", 0, n, stays, np.full(n, 50.0), np.full(n, np.nan), none, kind),
            _frame("risk", 0, n, np.ones(n, bool), np.full(n, 50.0), risk, risk > 0.5, kind),
        ],
        ignore_index=True,
    )
    config = {
        "scenarios": [{"name": "default"}],
        "report": {"resamples": 10},
        "agents": {
            "control": {"kind": "campaign", "params": {"targeting": "none"}},
            "risk": {"kind": "campaign", "params": {"targeting": "churn_risk", "decision_day": 14}},
        },
    }
    warning = campaign_tables(config, frame, day=30).warning.set_index("agent").loc["risk"]
    assert warning["roc_auc"] == 1.0 and warning["precision_top5"] == 1.0
    assert warning["base_rate"] == pytest.approx(np.mean(~stays)) and warning["n"] == n


def test_a_tiny_campaign_run_reports_its_tables(tmp_path):
    config = yaml.safe_load(open("experiments/configs/campaigns.yaml"))
    config["agents"] = {k: config["agents"][k] for k in ("no_offers", "blanket", "uplift_20", "ppo_20")}
    tiny = {"steps": 1024, "threshold_shoppers": 100, "ppo": {"n_envs": 32, "n_steps": 16, "batch_size": 256}}
    config["agents"]["ppo_20"]["params"] |= tiny
    config |= {"seeds": 1, "data": {"shoppers": 300}, "evaluation": {"shoppers": 200, "population_seed": 1000000}}
    config["env"] |= {"preset": "small", "horizon_days": 35}
    config["report"] = {"reference": "no_offers", "resamples": 20, "cohort_days": [1, 7, 30]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "stickyrec.experiments.cli", "run", str(path), "--out", str(out), "--quiet"]
    done = subprocess.run([*cmd, "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    campaigns = pd.read_csv(out / "campaigns.csv")
    assert set(campaigns["agent"]) == {"no_offers", "blanket", "uplift_20", "ppo_20"}
    assert set(pd.read_csv(out / "qini.csv")["agent"]) == {"uplift_20"}  # PPO's own slates: not on the same truth
    differences = pd.read_csv(out / "campaign_differences.csv")
    assert {("ppo_20", "uplift_20"), ("ppo_20", "blanket")} <= set(zip(differences["agent"], differences["other"]))
    lifetimes = pd.read_parquet(out / "lifetimes.parquet")
    assert {"coupon_cost", "net_revenue", "contacted", "campaign_score", "uplift_type"} <= set(lifetimes)
    page = (out / "report.html").read_text()
    assert "Targeted retention campaigns" in page and "Targeting scored on truth: Qini" in page
