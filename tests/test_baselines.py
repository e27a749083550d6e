"""Log-trained baselines (popularity, item-item CF) and the oracles (myopic, long-term)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from gymnasium.vector import AutoresetMode

from stickyrec.agents.baselines import ItemCFPolicy, PopularityPolicy, item_cosine_similarity
from stickyrec.agents.oracles import LongTermOracle, MyopicOracle, capped_greedy_slate, true_click_probabilities
from stickyrec.envs.vector import RetentionVectorEnv
from tests.helpers import random_slates

N_SHOPPERS = 12


def fake_env(n_items: int, slate_size: int):
    """What ``Agent.bind`` reads from an env, for agents that need no simulator."""
    return SimpleNamespace(
        config=SimpleNamespace(slate_size=slate_size, n_items=n_items), catalog=SimpleNamespace(n_items=n_items)
    )


def step_info(clicked_item, active=None) -> dict:
    clicked_item = np.asarray(clicked_item, dtype=np.int64)
    return {
        "clicked_item": clicked_item,
        "active": np.ones(clicked_item.shape, dtype=bool) if active is None else np.asarray(active),
    }


def log_frame(rows: list[tuple[int, int, bool, bool]]) -> pd.DataFrame:
    shopper, item, clicked, purchased = zip(*rows)
    return pd.DataFrame(
        {
            "shopper": np.array(shopper, dtype=np.int64),
            "item_id": np.array(item, dtype=np.int64),
            "clicked": np.array(clicked),
            "purchased": np.array(purchased),
        }
    )


# The 3-item example. Clicks (shopper x item counts):  A: item 0 once, item 1 once;  B: item 0, item 2;
# C: item 1 twice. Item click vectors over (A, B, C): e0 = (1, 1, 0), e1 = (1, 0, 2), e2 = (0, 1, 0);
# |e0| = sqrt 2, |e1| = sqrt 5, |e2| = 1; e0.e1 = 1, e0.e2 = 1, e1.e2 = 0, so
# s(0,1) = 1/sqrt 10 = 0.316228, s(0,2) = 1/sqrt 2 = 0.707107, s(1,2) = 0, s(i,i) = 1.
THREE_ITEM_LOG = log_frame(
    [
        (0, 0, True, False),
        (0, 1, True, True),
        (0, 2, False, False),
        (1, 0, True, False),
        (1, 2, True, False),
        (1, 1, False, False),
        (2, 1, True, False),
        (2, 1, True, True),
        (2, 0, False, False),
    ]
)


@pytest.fixture(scope="module")
def small_log(small_config):
    """A random-policy log of a few short shopper lives on the small preset (shown items, clicks, purchases)."""
    config = small_config.replace(horizon_days=10.0)
    env = RetentionVectorEnv(40, config=config, autoreset_mode=AutoresetMode.DISABLED)
    obs, _ = env.reset(seed=7)
    rng = np.random.default_rng(3)
    rows = np.arange(40)[:, None]
    parts = []
    active = np.ones(40, dtype=bool)
    while active.any():
        slate = random_slates(rng, 40, config.n_candidates, config.slate_size)
        items = obs["candidate_ids"][rows, slate]
        obs, _, _, _, info = env.step(slate)
        clicked = np.arange(config.slate_size)[None, :] == info["clicked_position"][:, None]
        live = active
        parts.append(
            pd.DataFrame(
                {
                    "shopper": np.repeat(np.flatnonzero(live), config.slate_size),
                    "item_id": items[live].ravel(),
                    "clicked": clicked[live].ravel(),
                    "purchased": (clicked & info["purchased"][:, None])[live].ravel(),
                }
            )
        )
        active = info["active"]
    log = pd.concat(parts, ignore_index=True)
    assert log["clicked"].sum() > 50
    return log


def run_cohort(agents, config, n_steps: int = 30, seed: int = 11):
    """Step a small cohort under ``agents[0]``; every agent acts on each observation and gets ``update``.

    Returns each agent's slates per step. Every slate goes through ``env.step``'s checks on agent 0."""
    env = RetentionVectorEnv(N_SHOPPERS, config=config, autoreset_mode=AutoresetMode.SAME_STEP)
    for agent in agents:
        agent.bind(env)
    obs, _ = env.reset(seed=seed)
    slates = [[] for _ in agents]
    for _ in range(n_steps):
        chosen = [agent.act(obs) for agent in agents]
        for record, slate in zip(slates, chosen):
            record.append(slate)
            assert_valid_slates(slate, config)
        next_obs, _, _, _, info = env.step(chosen[0])
        for agent, slate in zip(agents, chosen):
            getattr(agent, "update", lambda *args: None)(obs, slate, info)
        obs = next_obs
    return slates


def assert_valid_slates(slates, config, batch: int = N_SHOPPERS) -> None:
    slates = np.asarray(slates)
    assert slates.shape == (batch, config.slate_size)
    assert slates.dtype.kind in "iu"
    assert slates.min() >= 0 and slates.max() < config.n_candidates
    assert all(len(set(row)) == config.slate_size for row in slates.tolist())


# --- popularity ---------------------------------------------------------------------------------------------
def test_popularity_counts_clicks_and_weighted_purchases():
    """score = clicks + purchase_weight * purchases per item; unclicked impressions count for nothing."""
    # clicks: item 0: 2, item 1: 3, item 2: 1; purchases: item 1: 2
    assert PopularityPolicy().fit(THREE_ITEM_LOG, 3).scores.tolist() == [2.0, 5.0, 1.0]
    assert PopularityPolicy(purchase_weight=0.0).fit(THREE_ITEM_LOG, 4).scores.tolist() == [2.0, 3.0, 1.0, 0.0]


def test_popularity_ranks_candidates_best_first_ties_to_lower_index():
    policy = PopularityPolicy().fit(THREE_ITEM_LOG, 4).bind(fake_env(4, 3))
    candidates = np.array([[3, 2, 1, 0], [0, 3, 2, 1]])  # item 3 was never clicked: score 0
    # scores by candidate: row 0: [0, 1, 5, 2] -> 2, 3, 1; row 1: [2, 0, 1, 5] -> 3, 0, 2
    assert policy.act({"candidate_ids": candidates}).tolist() == [[2, 3, 1], [3, 0, 2]]
    tied = PopularityPolicy().fit(THREE_ITEM_LOG.assign(clicked=False, purchased=False), 3).bind(fake_env(3, 2))
    assert tied.act({"candidate_ids": np.array([[2, 0, 1]])}).tolist() == [[0, 1]]


@pytest.mark.parametrize(
    "bad, match",
    [
        (THREE_ITEM_LOG.iloc[:0], "empty"),
        (THREE_ITEM_LOG.drop(columns="clicked"), "clicked"),
        (THREE_ITEM_LOG.assign(item_id=THREE_ITEM_LOG["item_id"] + 5), "outside the catalog"),
        (THREE_ITEM_LOG.assign(clicked=2), "boolean"),
    ],
)
def test_fit_rejects_bad_logs(bad, match):
    for agent in (PopularityPolicy(), ItemCFPolicy()):
        with pytest.raises(ValueError, match=match):
            agent.fit(bad, 3)


# --- item-item collaborative filtering ------------------------------------------------------------------------
def test_cosine_similarity_of_click_vectors():
    cf = ItemCFPolicy().fit(THREE_ITEM_LOG, 3)
    expected = np.array(
        [[1.0, 1 / math.sqrt(10), 1 / math.sqrt(2)], [1 / math.sqrt(10), 1.0, 0.0], [1 / math.sqrt(2), 0.0, 1.0]]
    )
    np.testing.assert_allclose(cf.similarity, expected, rtol=1e-6)
    assert cf.similarity.dtype == np.float32


def test_cosine_similarity_blocks_match_one_dense_matrix(monkeypatch):
    """Accumulating R^T R over blocks of shoppers gives the same matrix as all shoppers at once."""
    import stickyrec.agents.baselines as baselines

    rng = np.random.default_rng(0)
    shopper, items = rng.integers(0, 50, 400), rng.integers(0, 20, 400)
    whole = item_cosine_similarity(shopper, items, 20)
    monkeypatch.setattr(baselines, "_SHOPPER_BLOCK", 7)
    np.testing.assert_allclose(item_cosine_similarity(shopper, items, 20), whole, rtol=1e-6)
    dense = np.zeros((50, 20))
    np.add.at(dense, (shopper, items), 1.0)
    norm = np.linalg.norm(dense, axis=0)
    np.testing.assert_allclose(whole, dense.T @ dense / np.outer(norm, norm), rtol=1e-5)


def test_cf_reproduces_the_brief_formula_by_hand():
    """r_hat(u,i) = sum_j s(i,j) r(u,j) / sum_j |s(i,j)| over u's clicked items j.

    Shopper u clicked item 1 twice and item 2 once (r(u,1) = 2, r(u,2) = 1):
      r_hat(u,0) = (0.316228 * 2 + 0.707107 * 1) / (0.316228 + 0.707107) = 1.339563 / 1.023335 = 1.309017
      r_hat(u,1) = (1 * 2 + 0 * 1) / (1 + 0) = 2
      r_hat(u,2) = (0 * 2 + 1 * 1) / (0 + 1) = 1
    so the slate of 2 is items 1, 0.
    """
    cf = ItemCFPolicy().fit(THREE_ITEM_LOG, 3).bind(fake_env(3, 2))
    for clicked in (1, 2, 1):
        cf.update(None, None, step_info([clicked]))
    numerator, denominator, r_hat = cf.predict(np.array([[0, 1, 2]]))
    np.testing.assert_allclose(numerator[0], [1.339563, 2.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(denominator[0], [1.023335, 1.0, 1.0], rtol=1e-5)
    np.testing.assert_allclose(r_hat[0], [1.309017, 2.0, 1.0], rtol=1e-5)
    assert cf.act({"candidate_ids": np.array([[0, 1, 2]])}).tolist() == [[1, 0]]
    assert cf.act({"candidate_ids": np.array([[2, 0, 1]])}).tolist() == [[2, 1]]


def test_cf_breaks_r_hat_ties_by_similarity_mass_then_falls_back_to_popularity():
    """One click on item 0: r_hat = 1 for every item similar to it; the larger sum_j s(i,j) r(u,j) ranks first
    (item 0: 1, item 2: 0.707, item 1: 0.316). A shopper without clicks gets popularity (item 1: 5, 0: 2, 2: 1)."""
    cf = ItemCFPolicy().fit(THREE_ITEM_LOG, 3).bind(fake_env(3, 3))
    cf.update(None, None, step_info([0, -1]))
    _, _, r_hat = cf.predict(np.array([[0, 1, 2], [0, 1, 2]]))
    np.testing.assert_allclose(r_hat[0], [1.0, 1.0, 1.0])
    assert np.isnan(r_hat[1]).all()
    assert cf.act({"candidate_ids": np.array([[1, 2, 0], [0, 1, 2]])}).tolist() == [[2, 1, 0], [1, 0, 2]]


def test_cf_weighted_sum_ranking_uses_the_numerator():
    """Clicks: item 0 twice, item 2 once.
      numerator:   item 0: 1 * 2 + 0.707107 * 1 = 2.707107, item 1: 0.316228 * 2 = 0.632456, item 2: 0.707107 * 2 + 1
                   = 2.414214
      denominator: item 0: 1.707107, item 1: 0.316228, item 2: 1.707107
      r_hat:       item 0: 1.585786, item 1: 2 (a faint likeness to the item clicked twice), item 2: 1.414214
    r_hat ranks 1, 0, 2; the weighted sum ranks 0, 2, 1."""
    candidates = {"candidate_ids": np.array([[0, 1, 2]])}
    by_r_hat = ItemCFPolicy().fit(THREE_ITEM_LOG, 3).bind(fake_env(3, 3))
    by_sum = ItemCFPolicy(ranking="weighted_sum").fit(THREE_ITEM_LOG, 3).bind(fake_env(3, 3))
    for agent in (by_r_hat, by_sum):
        for clicked in (0, 2, 0):
            agent.update(None, None, step_info([clicked]))
    numerator, denominator, r_hat = by_sum.predict(candidates["candidate_ids"])
    np.testing.assert_allclose(numerator[0], [2.707107, 0.632456, 2.414214], rtol=1e-5)
    np.testing.assert_allclose(r_hat[0], [1.585786, 2.0, 1.414214], rtol=1e-5)
    assert by_r_hat.act(candidates).tolist() == [[1, 0, 2]]
    assert by_sum.act(candidates).tolist() == [[0, 2, 1]]
    with pytest.raises(ValueError, match="ranking"):
        ItemCFPolicy(ranking="mean")


def test_cf_history_keeps_last_clicked_items_with_counts_per_row():
    """L = 2: row 0 clicks 0, 1, 0, 2 -> item 1 (least recently clicked) is dropped, item 0 keeps count 2;
    row 1 clicks only on the second step; finished rows (inactive, or replaced under same-step autoreset) forget."""
    cf = ItemCFPolicy(history_length=2).fit(THREE_ITEM_LOG, 3).bind(fake_env(3, 2))
    for clicks in ([0, -1], [1, 2], [0, -1], [2, -1]):
        cf.update(None, None, step_info(clicks))
    items, counts = cf.click_history()
    assert sorted(zip(items[0].tolist(), counts[0].tolist())) == [(0, 2.0), (2, 1.0)]
    assert sorted(zip(items[1].tolist(), counts[1].tolist())) == [(-1, 0.0), (2, 1.0)]
    cf.update(None, None, step_info([-1, -1], active=[True, False]))
    items, counts = cf.click_history()
    assert items[1].tolist() == [-1, -1] and counts[1].tolist() == [0.0, 0.0]
    cf.update(None, None, {**step_info([1, -1]), "_final_obs": np.array([True, False])})
    assert (cf.click_history()[0] == -1).all()
    with pytest.raises(ValueError, match="batch of 3"):
        cf.update(None, None, step_info([0, 1, 2]))


# --- acting in the env, save and load -------------------------------------------------------------------------
def test_agents_act_distinct_valid_slates_in_the_env(small_config, small_log):
    agents = [
        PopularityPolicy().fit(small_log, small_config),
        ItemCFPolicy().fit(small_log, small_config),
        ItemCFPolicy(ranking="weighted_sum").fit(small_log, small_config),
        MyopicOracle(),
        LongTermOracle(),
    ]
    for lead in range(len(agents)):  # each one drives the env once (env.step checks its slates too)
        run_cohort(agents[lead:] + agents[:lead], small_config, n_steps=15)


@pytest.mark.parametrize("make", [PopularityPolicy, lambda: ItemCFPolicy(history_length=5, purchase_weight=0.5)])
def test_save_load_round_trip_gives_identical_actions(make, small_config, small_log, tmp_path):
    agent = make().fit(small_log, small_config)
    path = agent.save(tmp_path / "agent")
    assert path.name == "agent.npz" and path.is_file()
    loaded = type(agent).load(path, catalog=small_config)
    for key, value in agent.fitted_arrays().items():
        np.testing.assert_array_equal(loaded.fitted_arrays()[key], value)
    original, restored = run_cohort([agent, loaded], small_config, n_steps=25)
    np.testing.assert_array_equal(np.stack(original), np.stack(restored))
    assert type(agent).load(tmp_path / "agent").fitted_arrays().keys() == agent.fitted_arrays().keys()


def test_a_relabelled_baseline_saves_a_file_its_own_class_loads(small_config, small_log, tmp_path):
    from stickyrec.experiments.experiment import ExperimentConfig, make_agent

    experiment = ExperimentConfig.from_dict(
        {"name": "relabel", "seeds": 1, "agents": {"cf": {"kind": "item_cf"}, "top": {"kind": "popularity"}}}
    )
    for label, cls in (("cf", ItemCFPolicy), ("top", PopularityPolicy)):
        agent = make_agent(experiment.agent(label), seed=0)
        assert agent.name == label and type(agent) is cls
        assert agent.fit_log(small_log, small_log.iloc[:0], small_config, seed=0) == {}
        path = agent.save(tmp_path / f"{cls.kind}{cls.file_suffix}")
        loaded = cls.load(path, catalog=small_config)
        assert loaded.name == cls.kind
        for key, value in agent.fitted_arrays().items():
            np.testing.assert_array_equal(loaded.fitted_arrays()[key], value)


def test_load_refuses_another_agents_file_or_catalog_size(small_config, small_log, tmp_path):
    popularity_file = PopularityPolicy().fit(small_log, small_config).save(tmp_path / "popularity.npz")
    cf_file = ItemCFPolicy().fit(small_log, small_config).save(tmp_path / "cf.npz")
    with pytest.raises(ValueError, match="'popularity'.*'item_cf'"):
        ItemCFPolicy.load(popularity_file)
    with pytest.raises(ValueError, match="'item_cf'.*'popularity'"):
        PopularityPolicy.load(cf_file)
    with pytest.raises(ValueError, match="n_items=300.*n_items=2000"):
        ItemCFPolicy.load(cf_file, catalog=2000)
    bigger = RetentionVectorEnv(2, config=small_config.replace(n_items=400))
    with pytest.raises(ValueError, match="n_items=300.*n_items=400"):
        PopularityPolicy.load(popularity_file).bind(bigger)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved stickyrec agent"):
        PopularityPolicy.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="does not exist"):
        PopularityPolicy.load(tmp_path / "missing.npz")


def test_unfitted_agents_say_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        PopularityPolicy().save("unused.npz")
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemCFPolicy().bind(fake_env(3, 2))


# --- oracles ----------------------------------------------------------------------------------------------------
@pytest.fixture
def bound_env(small_config):
    env = RetentionVectorEnv(64, config=small_config)
    obs, _ = env.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(5):  # some clicks, fatigue and drift first
        obs, *_ = env.step(random_slates(rng, 64, small_config.n_candidates, small_config.slate_size))
    return env, obs


def test_true_click_probabilities_match_the_simulator(bound_env, rng):
    env, _ = bound_env
    config = env.config
    slates = random_slates(rng, 64, config.n_candidates, config.slate_size)
    probabilities = true_click_probabilities(env.simulator, slates)
    assert probabilities.shape == (64, config.slate_size + 1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities, env.simulator.click_probabilities(slates), rtol=1e-5, atol=1e-9)


def test_myopic_oracle_maximises_the_true_click_probability(bound_env, rng):
    """Its slate beats random slates on average, and in fact every one of them, row by row."""
    env, obs = bound_env
    config = env.config
    oracle = MyopicOracle().bind(env)
    assert oracle.uses_latent_state and oracle.simulator is env.simulator
    best = 1.0 - true_click_probabilities(env.simulator, oracle.act(obs))[:, -1]
    random_clicks = np.stack(
        [
            1.0
            - true_click_probabilities(env.simulator, random_slates(rng, 64, config.n_candidates, config.slate_size))[
                :, -1
            ]
            for _ in range(30)
        ]
    )
    assert best.mean() > random_clicks.mean() + 0.05
    assert (best[None, :] >= random_clicks - 1e-12).all()


def test_oracles_refuse_a_stale_observation(bound_env):
    env, obs = bound_env
    stale = {**obs, "candidate_ids": np.roll(obs["candidate_ids"], 1, axis=1)}
    for oracle in (MyopicOracle().bind(env), LongTermOracle().bind(env)):
        with pytest.raises(ValueError, match="current candidates"):
            oracle.act(stale)


def test_long_term_oracle_reads_latent_state(bound_env):
    """Its slates follow the latent interest, item quality and category fatigue, with at most
    max_per_category items of one category."""
    env, obs = bound_env
    sim, catalog = env.simulator, env.catalog
    oracle = LongTermOracle(max_per_category=2).bind(env)
    assert oracle.uses_latent_state and oracle.simulator is sim
    slate = oracle.act(obs)
    assert_valid_slates(slate, env.config, batch=64)
    categories = catalog.category[np.take_along_axis(obs["candidate_ids"], slate, axis=1)]
    assert max(np.bincount(row).max() for row in categories) <= 2

    interest = sim.state.interest.copy()
    sim.state.interest[:] = -interest  # the opposite taste: other slates
    assert (oracle.act(obs) != slate).any(axis=1).mean() > 0.9
    sim.state.interest[:] = interest

    top_category = categories[:, 0]
    fatigue = sim.state.fatigue.copy()
    sim.state.fatigue[np.arange(64), top_category] += 100.0  # exhausted by the category of the first pick
    tired = catalog.category[np.take_along_axis(obs["candidate_ids"], oracle.act(obs), axis=1)]
    assert not (tired == top_category[:, None]).any()
    sim.state.fatigue[:] = fatigue

    quality_only = LongTermOracle(
        relevance_weight=0.0,
        quality_weight=1.0,
        appeal_weight=0.0,
        price_weight=0.0,
        fatigue_weight=0.0,
        max_per_category=0,
    ).bind(env)
    picked = np.take_along_axis(obs["candidate_ids"], quality_only.act(obs), axis=1)
    assert (np.diff(catalog.quality[picked], axis=1) <= 0).all()  # latent quality, best first


def test_capped_greedy_slate_equals_the_greedy_fill():
    """The sort-based selection gives exactly the greedy fill: best open candidate whose category is not full,
    ties to the lower index, and the best of the rest once every open candidate's category is full."""

    def greedy(score, categories, k, cap):
        taken, counts = [], {}
        for _ in range(k):
            open_ = [i for i in range(len(score)) if i not in taken]
            allowed = [i for i in open_ if counts.get(categories[i], 0) < cap] or open_
            pick = max(allowed, key=lambda i: (score[i], -i))
            taken.append(pick)
            counts[categories[pick]] = counts.get(categories[pick], 0) + 1
        return taken

    rng = np.random.default_rng(0)
    for trial in range(200):
        m = int(rng.integers(3, 25))
        k, cap = int(rng.integers(1, m + 1)), int(rng.integers(1, 4))
        score = rng.integers(0, 4, (3, m)).astype(float) if trial % 2 else rng.random((3, m))
        categories = rng.integers(0, int(rng.integers(1, 6)), (3, m))
        expected = [greedy(s, c, k, cap) for s, c in zip(score.tolist(), categories.tolist())]
        assert capped_greedy_slate(score, categories, k, cap).tolist() == expected


def test_long_term_oracle_rejects_bad_weights():
    with pytest.raises(ValueError, match="quality_weight"):
        LongTermOracle(quality_weight=float("nan"))
    with pytest.raises(ValueError, match="max_per_category"):
        LongTermOracle(max_per_category=1.5)


def test_collect_calls_the_policy_update_hook(tmp_path):
    """A logging policy sees its own traffic through ``update`` (item CF builds its click history that way)."""
    from stickyrec.agents import RandomPolicy
    from stickyrec.envs.config import get_preset
    from stickyrec.experiments.platform_log import collect

    clicks_seen = []

    class Recording(RandomPolicy):
        def update(self, observation, slates, info):
            clicks_seen.append(int((info["clicked_item"] >= 0).sum()))

    result = collect(
        Recording(0),
        get_preset("small").replace(horizon_days=5.0),
        40,
        store=tmp_path / "log.duckdb",
        run_id="hook",
        seed=0,
        progress=False,
    )
    assert len(clicks_seen) > 0 and sum(clicks_seen) > 0
    assert result.impressions > 0
