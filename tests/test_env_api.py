"""The public API of ``stickyrec/Retention-v0``: checkers, registration, make/make_vec, pickling, obs and info."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from stickyrec import envs
from tests.helpers import assert_info_equal, assert_obs_equal, assert_step_equal, random_slate

# Our shopper features are unbounded counts and days: Gymnasium's checker flags any infinite Box bound.
KNOWN_CHECKER_WARNING = "Box observation space maximum value is infinity"


def _unexpected_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if KNOWN_CHECKER_WARNING not in str(w.message)]


@pytest.mark.parametrize("kwargs", [{}, {"config": "small"}], ids=["default", "small"])
def test_gymnasium_check_env_passes_without_warnings(kwargs):
    """Gymnasium's env checker passes on the registered env (default and small preset), warning-free."""
    env = gym.make(envs.ENV_ID, **kwargs).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert _unexpected_warnings(caught) == []


def test_stable_baselines3_check_env_passes_without_warnings():
    """stable-baselines3's env checker accepts the default RetentionEnv without a warning."""
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(envs.RetentionEnv(), warn=True)
    assert _unexpected_warnings(caught) == []


def test_make_vec_returns_the_batched_numpy_env():
    """gym.make_vec uses the registered vector_entry_point: a RetentionVectorEnv with batched spaces."""
    vec = gym.make_vec(envs.ENV_ID, num_envs=4)
    assert isinstance(vec, envs.RetentionVectorEnv)
    assert vec.num_envs == 4
    assert isinstance(vec.single_action_space, envs.SlateSpace)
    assert isinstance(vec.action_space, envs.SlateSpace)
    assert vec.action_space.shape == (4, vec.config.slate_size)
    obs, _ = vec.reset(seed=0)
    assert obs in vec.observation_space
    assert vec.action_space.sample() in vec.action_space


def test_make_vec_accepts_config_kwargs():
    """Config keyword arguments reach the batched env through gym.make_vec."""
    vec = gym.make_vec(envs.ENV_ID, num_envs=2, config="small", clickbait_share=0.3)
    assert vec.unwrapped.config == envs.get_preset("small").replace(clickbait_share=0.3)


def test_make_accepts_config_as_keyword_arguments():
    """gym.make(ID, field=value) overrides single config fields of the default preset."""
    env = gym.make(envs.ENV_ID, clickbait_share=0.3, slate_size=4)
    assert env.unwrapped.config == envs.RetentionConfig(clickbait_share=0.3, slate_size=4)
    assert env.action_space.shape == (4,)


def test_make_accepts_a_config_object_and_overrides(small_config):
    """gym.make(ID, config=RetentionConfig) uses that object; extra kwargs override its fields."""
    assert gym.make(envs.ENV_ID, config=small_config).unwrapped.config == small_config
    env = gym.make(envs.ENV_ID, config=small_config, horizon_days=7.0)
    assert env.unwrapped.config == small_config.replace(horizon_days=7.0)


def test_make_accepts_a_preset_name_and_a_mapping(small_config):
    """config may also be a preset name or a (group-nested) mapping."""
    assert gym.make(envs.ENV_ID, config="small").unwrapped.config == small_config
    env = gym.make(envs.ENV_ID, config={"preset": "small", "catalog": {"clickbait_share": 0.4}})
    assert env.unwrapped.config == small_config.replace(clickbait_share=0.4)


def test_pickle_round_trip_mid_episode_continues_identically(small_env, rng):
    """A pickled-and-restored env mid-episode steps exactly like the original from then on."""
    k, m = small_env.config.slate_size, small_env.config.n_candidates
    small_env.reset(seed=7)
    for _ in range(6):
        _, _, terminated, truncated, _ = small_env.step(random_slate(rng, m, k))
        assert not (terminated or truncated)
    clone = pickle.loads(pickle.dumps(small_env))
    for _ in range(300):
        action = random_slate(rng, m, k)
        original, restored = small_env.step(action), clone.step(action)
        assert_step_equal(original, restored)
        if original[2] or original[3]:
            break
    else:
        pytest.fail("the episode never ended; the test wants to compare a whole episode")
    # and the next shopper (reset without a seed continues the slot's stream) matches too
    (obs_a, info_a), (obs_b, info_b) = small_env.reset(), clone.reset()
    assert_obs_equal(obs_a, obs_b)
    assert_info_equal(info_a, info_b)


def test_catalog_is_reachable_through_unwrapped_with_one_entry_per_item():
    """env.unwrapped.catalog holds category/embedding/price/quality/appeal arrays of length n_items."""
    env = gym.make(envs.ENV_ID, config="small")
    catalog, config = env.unwrapped.catalog, env.unwrapped.config
    assert isinstance(catalog, envs.Catalog)
    for name in ("category", "embedding", "price", "quality", "appeal"):
        assert getattr(catalog, name).shape[0] == config.n_items, name
    assert catalog.embedding.shape == (config.n_items, config.embedding_dim)
    assert np.allclose(np.linalg.norm(catalog.embedding, axis=1), 1.0)
    assert set(np.unique(catalog.category)) == set(range(config.n_categories))
    assert np.all(catalog.price > 0)
    assert np.all((catalog.quality >= 0) & (catalog.quality <= 1))
    assert np.all((catalog.appeal >= 0) & (catalog.appeal <= 1))
    public = catalog.public_features()
    assert public.dtype == np.float32 and public.shape[0] == config.n_items


def _rollout(env, rng, seed: int, steps: int):
    """(obs, info, action, previous obs) of the reset and of up to ``steps`` steps under random slates."""
    k, m = env.config.slate_size, env.config.n_candidates
    obs, info = env.reset(seed=seed)
    out = [(obs, info, None, None)]
    for _ in range(steps):
        action = random_slate(rng, m, k)
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, info, action, out[-1][0]))
        if terminated or truncated:
            break
    return out


def test_observations_have_distinct_valid_candidates_and_float32_shopper(small_env, rng):
    """obs["candidate_ids"] are distinct catalog ids; obs["shopper"] is float32; obs is in the space."""
    n_items = small_env.config.n_items
    for seed in range(3):
        for obs, *_ in _rollout(small_env, rng, seed, 150):
            ids = obs["candidate_ids"]
            assert ids.shape == (small_env.config.n_candidates,)
            assert len(np.unique(ids)) == ids.size
            assert ids.min() >= 0 and ids.max() < n_items
            assert obs["shopper"].dtype == np.float32
            assert obs in small_env.observation_space


def test_step_info_has_every_documented_key(small_env, rng):
    """Each step's info carries every key of envs.INFO_KEYS plus the latent-satisfaction key."""
    for _, info, *_ in _rollout(small_env, rng, 0, 50)[1:]:
        assert set(envs.INFO_KEYS) | {envs.LATENT_SATISFACTION_KEY} <= set(info)
        assert 0.0 <= info[envs.LATENT_SATISFACTION_KEY] <= 1.0


def test_reset_info_starts_at_day_zero_with_latent_satisfaction(small_env):
    """reset() reports day 0 and the arriving shopper's latent satisfaction."""
    _, info = small_env.reset(seed=3)
    assert info["day"] == 0
    assert info[envs.LATENT_SATISFACTION_KEY] == small_env.simulator.state.satisfaction[0]


def test_clicked_position_and_item_agree_with_the_slate(small_env, rng):
    """clicked_position is -1 or a slate position, and clicked_item = candidate_ids[action[position]]."""
    k = small_env.config.slate_size
    clicks = 0
    for seed in range(4):
        for _, info, action, previous_obs in _rollout(small_env, rng, seed, 200)[1:]:
            position = info["clicked_position"]
            assert position == -1 or 0 <= position < k
            if position == -1:
                assert info["clicked_item"] == -1
                assert not info["purchased"] and info["revenue"] == 0.0
            else:
                clicks += 1
                assert info["clicked_item"] == previous_obs["candidate_ids"][action[position]]
    assert clicks > 0, "no click in four episodes: the check above never ran"


def test_returned_observations_are_not_aliased_to_env_state(small_env, rng):
    """An observation handed out is a snapshot: later steps do not mutate it."""
    k, m = small_env.config.slate_size, small_env.config.n_candidates
    obs, _ = small_env.reset(seed=1)
    snapshot = {key: value.copy() for key, value in obs.items()}
    for _ in range(5):
        small_env.step(random_slate(rng, m, k))
    for key in obs:
        assert np.array_equal(obs[key], snapshot[key])


def test_render_mode_other_than_none_is_refused():
    """Rendering is not supported: asking for a render mode is a ValueError."""
    with pytest.raises(ValueError, match="render_mode"):
        envs.RetentionEnv("small", render_mode="human")
    with pytest.raises(ValueError, match="render_mode"):
        envs.RetentionVectorEnv(2, "small", render_mode="human")


def test_vector_infos_carry_info_keys_and_active_flags(short_config, rng):
    """The batched env's infos are arrays over the batch with every INFO_KEY, latent satisfaction, active."""
    vec = envs.RetentionVectorEnv(3, short_config)
    vec.reset(seed=0)
    for _ in range(5):
        actions = np.stack([random_slate(rng, short_config.n_candidates, short_config.slate_size) for _ in range(3)])
        _, reward, terminated, truncated, infos = vec.step(actions)
        assert reward.shape == terminated.shape == truncated.shape == (3,)
        for key in (*envs.INFO_KEYS, envs.LATENT_SATISFACTION_KEY, "active"):
            assert np.asarray(infos[key]).shape == (3,), key


def test_recent_click_rating_is_the_recency_weighted_mean_rating_of_clicked_items(short_config):
    """The observable satisfaction proxy: 0 before any click, then the mean public rating of what she clicked,
    each click weighted like the recent clicks (7-day half-life across sessions)."""
    from stickyrec.envs.shoppers import RECENT_CLICKS_HALF_LIFE_DAYS, SHOPPER_FEATURES

    column = SHOPPER_FEATURES.index("recent_click_rating")
    env = envs.RetentionVectorEnv(64, config=short_config, autoreset_mode="Disabled")
    obs, _ = env.reset(seed=11)
    assert np.all(obs["shopper"][:, column] == 0.0)
    rating = env.catalog.rating
    weighted, weights = np.zeros(64), np.zeros(64)
    checked = 0
    for _ in range(60):
        active = env.simulator.state.alive.copy()
        obs, _, _, _, info = env.step(np.tile(np.arange(short_config.slate_size), (64, 1)))
        clicked = active & (info["clicked_position"] >= 0)
        weighted[clicked] += rating[info["clicked_item"][clicked]]
        weights[clicked] += 1.0
        returned = active & info["returned"]
        decay = np.exp2(-info["return_gap_days"][returned] / RECENT_CLICKS_HALF_LIFE_DAYS)
        weighted[returned] *= decay
        weights[returned] *= decay
        live = env.simulator.state.alive & (weights > 0)
        np.testing.assert_allclose(obs["shopper"][live, column], weighted[live] / weights[live], rtol=1e-5)
        assert np.all(obs["shopper"][env.simulator.state.alive & (weights == 0), column] == 0.0)
        checked += int(live.sum())
    assert checked > 100
