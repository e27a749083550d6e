"""The strong non-RL baselines (``ctr_rating``, ``multi_objective``, ``retention_mlp``), the weight tuning on the
training population (``experiments.tuning``), and the best non-RL agent with RL's margins over it (``report_data``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stickyrec import envs
from stickyrec.agents.heuristics import CtrRatingPolicy
from stickyrec.agents.long_term import (
    GOOD_WEIGHTS,
    RATING_WEIGHTS,
    RELEVANCE_WEIGHTS,
    MultiObjectiveRanker,
    RetentionAwareModel,
    return_labels,
)
from stickyrec.agents.mlp import MLPClickModel
from stickyrec.agents.registry import load_agent
from stickyrec.experiments import tuning
from stickyrec.experiments.experiment import ExperimentConfig, load_experiment
from stickyrec.experiments.metrics import COLUMNS
from stickyrec.experiments.report_data import NON_RL, ORACLE, RL, agent_roles, paired_tables
from stickyrec.experiments.runner import plan, run_task

TINY_MLP = {"epochs": 1, "embed_dim": 8, "hidden_dim": 8}
TINY = {
    "name": "tiny",
    "env": {"preset": "small", "horizon_days": 20},
    "agents": {
        "ctr_rating": {},
        "multi_objective": {"params": {**TINY_MLP, "tune_shoppers": 40, "tune_days": 10}},
        "retention_mlp": {"params": {**TINY_MLP, "return_days": 3, "tune_shoppers": 40, "tune_days": 10}},
    },
    "seeds": 1,
    "data": {"shoppers": 120},
    "evaluation": {"shoppers": 50},
    "report": {"reference": "ctr_rating", "resamples": 20, "cohort_days": [1, 7]},
}


def assert_valid_slates(slates: np.ndarray, batch: int, n_candidates: int, k: int) -> None:
    assert slates.shape == (batch, k)
    assert ((slates >= 0) & (slates < n_candidates)).all()
    assert all(len(set(row)) == k for row in slates.tolist()), "a slate repeats a candidate"


def acts_validly(agent, config) -> np.ndarray:
    env = envs.RetentionVectorEnv(16, config=config)
    obs, _ = env.reset(seed=7)
    agent.bind(env)
    slates = agent.act(obs)
    assert_valid_slates(slates, 16, obs["candidate_ids"].shape[1], config.slate_size)
    return slates


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny experiment's data cell and agent cells, run in this process through the runner's own tasks, with
    every seed the tuning rolls out recorded."""
    out = tmp_path_factory.mktemp("tiny")
    experiment = ExperimentConfig.from_dict(TINY)
    data_tasks, agent_tasks = plan(experiment, out)
    seen: list[tuple[int, int]] = []
    original = tuning.simulate_cohort

    def recording(policy, config, n_shoppers, seed=0, progress=False):
        seen.append((seed, n_shoppers))
        return original(policy, config, n_shoppers, seed=seed, progress=progress)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuning, "simulate_cohort", recording)
        for task in [*data_tasks, *agent_tasks]:
            run_task(task)
    return experiment, out, {t["spec"]["label"]: t for t in agent_tasks}, seen


def test_ctr_rating_ranks_by_the_product_of_two_public_columns(small_config):
    agent = CtrRatingPolicy()
    env = envs.RetentionVectorEnv(16, config=small_config)
    obs, _ = env.reset(seed=3)
    slates = agent.bind(env).act(obs)
    assert_valid_slates(slates, 16, obs["candidate_ids"].shape[1], small_config.slate_size)
    catalog = env.unwrapped.catalog
    score = catalog.ctr_estimate[obs["candidate_ids"]] * catalog.rating[obs["candidate_ids"]]
    chosen = np.take_along_axis(score, slates, axis=1)
    assert (np.diff(chosen, axis=1) <= 0).all(), "best first"
    assert np.allclose(chosen[:, -1], -np.sort(-score, axis=1)[:, small_config.slate_size - 1])
    assert not agent.uses_latent_state


def test_each_new_agent_trains_on_a_tiny_config_and_acts_with_valid_slates(tiny_run):
    experiment, out, tasks, _ = tiny_run
    config = experiment.scenarios[0].env
    for label in TINY["agents"]:
        cell = json.loads((out / "cells" / f"default__{label}__s0" / "cell.json").read_text())
        assert 0.0 <= cell["metrics"]["retention_day30"] <= 1.0
        shoppers = pd.read_parquet(out / "cells" / f"default__{label}__s0" / "shoppers.parquet")
        assert len(shoppers) == TINY["evaluation"]["shoppers"]
    ranker = load_agent(out / "cells" / "default__multi_objective__s0" / "multi_objective.pt")
    assert isinstance(ranker, MultiObjectiveRanker)
    tuned = json.loads((out / "cells" / "default__multi_objective__s0" / "cell.json").read_text())["training"]
    assert ranker.weights == tuned["tuning"]["weights"], "the saved agent holds the tuned weights"
    acts_validly(ranker, config)
    model = load_agent(out / "cells" / "default__retention_mlp__s0" / "retention_mlp.pt")
    assert isinstance(model, RetentionAwareModel) and model.label.return_days == 3
    tuned = json.loads((out / "cells" / "default__retention_mlp__s0" / "cell.json").read_text())["training"]
    assert model.label.good_weight == tuned["tuning"]["weights"]["good"], "the saved agent holds the tuned weight"
    acts_validly(model, config)
    env = envs.RetentionVectorEnv(16, config=config)
    obs, _ = env.reset(seed=7)
    both = model.head_logits(obs["shopper"], obs["candidate_ids"])
    assert np.allclose(both[..., 0], model.score_candidates(obs["shopper"], obs["candidate_ids"]), atol=1e-4)
    model.label = model.label.replace(good_weight=0.0)  # the click head alone: the click model's ranking
    clicks = model.score_candidates(obs["shopper"], obs["candidate_ids"])
    mine, mlp = (np.take_along_axis(clicks, s, axis=1) for s in (model.act(obs), MLPClickModel.act(model, obs)))
    assert np.allclose(mine, mlp, atol=1e-4)
    acts_validly(CtrRatingPolicy(), config)
    unbound = load_agent(out / "cells" / "default__retention_mlp__s0" / "retention_mlp.pt")
    with pytest.raises(ValueError, match="bind"):
        unbound.act({"shopper": np.zeros((1, unbound.f_user), np.float32), "candidate_ids": np.zeros((1, 20), int)})


def test_the_tuning_tries_the_whole_grid_on_training_shoppers_only(tiny_run):
    experiment, out, tasks, seen = tiny_run
    training = json.loads((out / "cells" / "default__multi_objective__s0" / "cell.json").read_text())["training"]
    grid = training["tuning"]["grid"]
    assert [(g["rating"], g["relevance"]) for g in grid] == [(r, v) for r in RATING_WEIGHTS for v in RELEVANCE_WEIGHTS]
    best = max(g["value"] for g in grid)
    assert training["tuning"]["weights"] == next(
        {"rating": g["rating"], "relevance": g["relevance"]} for g in grid if g["value"] == best
    )
    retention = json.loads((out / "cells" / "default__retention_mlp__s0" / "cell.json").read_text())["training"]
    assert [g["good"] for g in retention["tuning"]["grid"]] == list(GOOD_WEIGHTS)
    # every rollout of the tuning met the logged (training) population's shoppers, never an evaluation shopper
    assert seen == [(experiment.data_population_seed(0), 40)] * (len(grid) + len(GOOD_WEIGHTS))
    start, n = seen[0]
    assert set(range(start, start + n)) <= set(
        range(experiment.data_population_seed(0), experiment.data_population_seed(0) + experiment.data_shoppers)
    )
    assert tasks["multi_objective"]["eval_seed"] == experiment.eval_population_seed(0)


@pytest.mark.parametrize("name", ["quick", "baselines", "benchmark"])
def test_shipped_configs_tune_on_shoppers_disjoint_from_every_evaluation_population(name, tmp_path):
    experiment = load_experiment(name)
    _, tasks = plan(experiment, tmp_path)
    evaluation = set()
    for seed in range(experiment.seeds):
        start = experiment.eval_population_seed(seed)
        evaluation |= set(range(start, start + experiment.eval_shoppers))
    for task in tasks:
        tuned = range(task["tune_seed"], task["tune_seed"] + task["tune_shoppers"])  # the most a tuning may use
        assert evaluation.isdisjoint(tuned), task["name"]
    assert {"ctr_rating", "multi_objective", "retention_mlp"} <= {a.kind for a in experiment.agents}


def test_a_fixed_weight_ranker_plans_no_tuning_and_bad_params_fail_naming_them():
    ranker = MultiObjectiveRanker.from_spec({"tune": False, "rating_weight": 2.0}, seed=0)
    assert ranker.tuning_plan() is None and ranker.weights == {"rating": 2.0, "relevance": 0.0}
    with pytest.raises(ValueError, match="rating_weight"):
        MultiObjectiveRanker.from_spec({"rating_weight": -1}, seed=0)
    with pytest.raises(ValueError, match="unexpected keyword argument 'colour'.*tune_days"):
        MultiObjectiveRanker.from_spec({"colour": 1}, seed=0)
    with pytest.raises(ValueError, match="return_days"):
        RetentionAwareModel.from_spec({"return_days": 0}, seed=0)
    with pytest.raises(ValueError, match="allowed: exactly 'rating' and 'relevance'"):
        ranker.set_weights({"rating": 1.0})
    fixed = RetentionAwareModel.from_spec({"tune": False, "good_weight": 3.0}, seed=0)
    assert fixed.tuning_plan() is None and fixed.label.good_weight == 3.0
    with pytest.raises(ValueError, match="allowed: exactly 'good'"):
        fixed.set_weights({"rating": 1.0})


def test_return_labels_are_a_purchase_or_a_return_within_n_days():
    rows = [  # shopper, session, day, clicked, purchased -> good (days = 7; the log ends on day 20)
        (0, 0, 0, True, False, True),  # next session on day 3: back within 7 days
        (0, 0, 0, False, False, True),  # not clicked (the good head learns on clicked rows only)
        (0, 1, 3, True, False, False),  # next session on day 20: 17 days later
        (0, 1, 3, True, True, True),  # bought it
        (0, 2, 20, True, False, None),  # day 20 > 20 - 7: censored, dropped
        (1, 0, 5, True, False, False),  # never came back
        (1, 0, 5, True, True, True),
    ]
    frame = pd.DataFrame(rows, columns=["shopper", "session", "day", "clicked", "purchased", "label"])
    train, validation = return_labels(frame.iloc[:4].drop(columns="label"), frame.iloc[4:].drop(columns="label"), 7)
    assert train["purchased"].tolist() == [True, True, False, True]
    assert train["clicked"].tolist() == frame["clicked"].iloc[:4].tolist()
    assert validation["purchased"].tolist() == [False, False, True]  # kept: early stopping reads only clicks
    train, _ = return_labels(frame.iloc[4:].drop(columns="label"), frame.iloc[:4].drop(columns="label"), 7)
    assert train["day"].tolist() == [5, 5]  # the censored training row is gone
    with pytest.raises(ValueError, match="lacks column"):
        return_labels(frame.drop(columns="session"), frame, 7)


def hand_made_lifetimes(retained: dict[str, np.ndarray]) -> pd.DataFrame:
    parts = []
    for agent, kept in retained.items():
        part = pd.DataFrame({column: np.zeros(len(kept)) for column in COLUMNS})
        part["retained_day30"] = kept.astype(float)
        parts.append(part.assign(scenario="default", agent=agent, seed=0, shopper=np.arange(len(kept))))
    return pd.concat(parts, ignore_index=True)


def hand_made_config(kinds: dict[str, str]) -> dict:
    return {
        "agents": {label: {"kind": kind} for label, kind in kinds.items()},
        "seeds": 1,
        "scenarios": [{"name": "default"}],
        "report": {"reference": next(iter(kinds)), "resamples": 200},
    }


def test_best_non_rl_excludes_oracles_and_rl_and_the_margin_is_paired():
    n = 200
    base = np.arange(n) < 140  # ctr_rating keeps 70%
    config = hand_made_config({"mlp": "mlp", "ctr_rating": "ctr_rating", "ppo": "ppo", "oracle": "long_term_oracle"})
    shoppers = hand_made_lifetimes(
        {
            "mlp": np.arange(n) < 100,  # 50%
            "ctr_rating": base,
            "ppo": np.arange(n) < 160,  # ctr_rating's shoppers and 20 more: +0.10, paired
            "oracle": np.arange(n) < 190,  # 95%, but it reads hidden state
        }
    )
    assert agent_roles(config) == {"mlp": NON_RL, "ctr_rating": NON_RL, "ppo": RL, "oracle": ORACLE}
    tables = paired_tables(config, shoppers)
    (best,) = tables.best.to_dict(orient="records")
    assert best["best_non_rl"] == "ctr_rating" and best["retention_day30"] == pytest.approx(0.70)
    (margin,) = tables.margins.to_dict(orient="records")
    assert margin["agent"] == "ppo" and margin["best_non_rl"] == "ctr_rating"
    assert margin["retention_day30_margin"] == pytest.approx(0.10)
    # paired: ppo keeps every shopper ctr_rating keeps, so no resample can show it behind
    assert 0.0 < margin["retention_day30_margin_low"] <= 0.10 <= margin["retention_day30_margin_high"] < 0.2
    # the same draws as the summary table's intervals: ppo's own interval is the wider, unpaired one
    row = tables.table.set_index("agent").loc["ppo"]
    assert row["retention_day30_high"] - row["retention_day30_low"] > (
        margin["retention_day30_margin_high"] - margin["retention_day30_margin_low"]
    )


def test_a_tie_goes_to_the_first_non_rl_agent_and_no_rl_agent_means_no_margins():
    n = 50
    config = hand_made_config({"a": "random", "b": "ctr_rating"})
    tables = paired_tables(config, hand_made_lifetimes({"a": np.arange(n) < 20, "b": np.arange(n) >= 30}))
    assert tables.best["best_non_rl"].tolist() == ["a"]
    assert tables.margins.empty
    only_oracles = hand_made_config({"o": "long_term_oracle", "p": "ppo"})
    tables = paired_tables(only_oracles, hand_made_lifetimes({"o": np.ones(n, bool), "p": np.ones(n, bool)}))
    assert tables.best.empty and tables.margins.empty
