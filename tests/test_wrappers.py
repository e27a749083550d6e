"""RL wrappers: score/query actions become top-k slates; the flat observation fits SB3's MlpPolicy."""

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from stickyrec import envs
from stickyrec.envs.wrappers import (
    FlattenSlateObservation,
    FlattenSlateObservationVector,
    ScoreSlateAction,
    ScoreSlateActionVector,
)


@pytest.mark.parametrize("mode", ["scores", "query"])
def test_wrapped_env_passes_sb3_checker(mode):
    """ScoreSlateAction + FlattenSlateObservation give Box spaces that SB3 accepts."""
    env = FlattenSlateObservation(ScoreSlateAction(envs.RetentionEnv("small"), mode=mode))
    sb3_check_env(env)


def test_score_action_shows_the_top_k_candidates():
    """The slate shown is the k best-scored candidates, best first."""
    env = ScoreSlateAction(envs.RetentionEnv("small"))
    obs, _ = env.reset(seed=0)
    config = env.unwrapped.config
    scores = np.linspace(-1, 1, config.n_candidates, dtype=np.float32)[::-1].copy()
    assert env.action(scores).tolist() == list(range(config.slate_size))
    _, _, _, _, info = env.step(scores)
    if info["clicked_position"] >= 0:
        assert info["clicked_item"] == obs["candidate_ids"][info["clicked_position"]]


def test_query_action_scores_candidates_by_public_features():
    env = ScoreSlateAction(envs.RetentionEnv("small"), mode="query")
    obs, _ = env.reset(seed=0)
    features = env.unwrapped.catalog.public_features()
    query = np.zeros(features.shape[1], dtype=np.float32)
    query[features.shape[1] - env.unwrapped.config.n_categories - 2] = 1.0  # the rating column
    slate = env.action(query)
    ratings = env.unwrapped.catalog.rating[obs["candidate_ids"]]
    assert np.allclose(np.sort(ratings)[::-1][: len(slate)], ratings[slate])


@pytest.mark.parametrize("bad", [np.zeros(3, np.float32), np.full(30, np.nan, np.float32)])
def test_bad_score_actions_raise(bad):
    env = ScoreSlateAction(envs.RetentionEnv("small"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(bad)


def test_unknown_wrapper_mode_raises():
    with pytest.raises(ValueError, match="allowed: scores, query"):
        ScoreSlateAction(envs.RetentionEnv("small"), mode="logits")


def test_flat_observation_holds_shopper_then_candidate_features():
    env = FlattenSlateObservation(envs.RetentionEnv("small"))
    flat, _ = env.reset(seed=3)
    raw, _ = envs.RetentionEnv("small").reset(seed=3)
    features = env.unwrapped.catalog.public_features()
    n_shopper = raw["shopper"].shape[0]
    assert flat.dtype == np.float32 and flat.shape == env.observation_space.shape
    assert np.array_equal(flat[:n_shopper], raw["shopper"])
    assert np.array_equal(flat[n_shopper:].reshape(-1, features.shape[1]), features[raw["candidate_ids"]])


def test_vector_wrappers_match_single_wrappers_and_flatten_final_obs():
    config = envs.get_preset("small").replace(horizon_days=3.0)
    vec = FlattenSlateObservationVector(ScoreSlateActionVector(envs.RetentionVectorEnv(4, config)))
    singles = [FlattenSlateObservation(ScoreSlateAction(envs.RetentionEnv(config))) for _ in range(4)]
    obs, _ = vec.reset(seed=7)
    single_obs = [env.reset(seed=7 + i)[0] for i, env in enumerate(singles)]
    assert np.array_equal(obs, np.stack(single_obs))
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(200):
        actions = rng.uniform(-1, 1, size=vec.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, _ = env.step(actions[i])
            assert r == reward[i] and te == terminated[i] and tr == truncated[i]
            if te or tr:
                finished += 1
                assert np.array_equal(info["final_obs"][i], o)
                o, _ = env.reset()
            assert np.array_equal(obs[i], o)
    assert finished > 0
