"""Every run is reproducible from (config, seed), and B batched shoppers are exactly B single envs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from stickyrec import envs
from tests.helpers import assert_info_equal, assert_obs_equal, assert_step_equal, random_slate, random_slates

# Issue 13's optional worlds (envs.traits), beside the default one: gamma visit rates and BG/NBD latent dropout
# after purchase sessions with the observed churn rule off, and dropout after every session with a short window.
WORLDS = {
    "default": {},
    "latent_churn": {
        "visit_rate_distribution": "gamma",
        "visit_rate_gamma_shape": 1.5,
        "visit_rate_gamma_rate": 20.0,
        "dropout_distribution": "beta",
        "dropout_beta_a": 0.6,
        "dropout_beta_b": 2.0,
        "churn_window_days": math.inf,
    },
    "dropout_every_session": {
        "dropout_distribution": "beta",
        "dropout_beta_a": 0.3,
        "dropout_beta_b": 3.0,
        "dropout_after": "session",
        "churn_window_days": 1.5,
    },
}


def _info_keys(config: envs.RetentionConfig) -> tuple[str, ...]:
    causes = envs.CHURN_CAUSE_KEYS if config.reports_churn_causes else ()
    return (*envs.INFO_KEYS, *causes, envs.LATENT_SATISFACTION_KEY)


def _episode(env: envs.RetentionEnv, seed: int, action_seed: int, max_steps: int = 5000):
    """The full trajectory of one episode: the reset, then every step result until it ends."""
    rng = np.random.default_rng(action_seed)
    k, m = env.config.slate_size, env.config.n_candidates
    trajectory = [env.reset(seed=seed)]
    for _ in range(max_steps):
        result = env.step(random_slate(rng, m, k))
        trajectory.append(result)
        if result[2] or result[3]:
            return trajectory
    raise AssertionError(f"episode did not end within {max_steps} steps")


def _assert_trajectories_equal(a: list, b: list) -> None:
    assert len(a) == len(b)
    assert_obs_equal(a[0][0], b[0][0])
    assert_info_equal(a[0][1], b[0][1])
    for step_a, step_b in zip(a[1:], b[1:]):
        assert_step_equal(step_a, step_b)


def test_same_seed_gives_identical_whole_episode():
    """Two default envs reset with the same seed and fed the same actions match exactly, step for step."""
    first = _episode(envs.RetentionEnv(), seed=123, action_seed=1)
    second = _episode(envs.RetentionEnv(), seed=123, action_seed=1)
    assert len(first) > 2
    _assert_trajectories_equal(first, second)


def test_same_env_reseeded_replays_its_episode(small_env):
    """Resetting the same env with the same seed replays the episode exactly (no hidden carried state)."""
    first = _episode(small_env, seed=5, action_seed=2)
    _episode(small_env, seed=99, action_seed=3)  # something else in between
    second = _episode(small_env, seed=5, action_seed=2)
    _assert_trajectories_equal(first, second)


def test_reset_without_seed_continues_reproducibly(small_config):
    """After a seeded reset, later unseeded resets draw the same next shoppers in both runs."""
    runs = []
    for _ in range(2):
        env = envs.RetentionEnv(small_config)
        first = _episode(env, seed=11, action_seed=4)
        rng = np.random.default_rng(5)
        obs, info = env.reset()
        steps = [env.step(random_slate(rng, small_config.n_candidates, small_config.slate_size)) for _ in range(3)]
        runs.append((first, obs, info, steps))
    _assert_trajectories_equal(runs[0][0], runs[1][0])
    assert_obs_equal(runs[0][1], runs[1][1])
    assert_info_equal(runs[0][2], runs[1][2])
    for a, b in zip(runs[0][3], runs[1][3]):
        assert_step_equal(a, b)


def test_different_seeds_give_different_shoppers(small_env):
    """Different seeds draw different shoppers: their trajectories differ."""
    first = _episode(small_env, seed=0, action_seed=1)
    second = _episode(small_env, seed=1, action_seed=1)
    with pytest.raises(AssertionError):
        _assert_trajectories_equal(first, second)
    # already at arrival: latent satisfaction differs
    assert first[0][1][envs.LATENT_SATISFACTION_KEY] != second[0][1][envs.LATENT_SATISFACTION_KEY]


def test_vector_env_same_seed_is_reproducible(short_config):
    """Two batched envs reset with the same seed and fed the same actions match exactly."""
    results = []
    for _ in range(2):
        vec = envs.RetentionVectorEnv(4, short_config)
        rng = np.random.default_rng(0)
        trajectory = [vec.reset(seed=3)]
        for _ in range(60):
            trajectory.append(vec.step(random_slates(rng, 4, short_config.n_candidates, short_config.slate_size)))
        results.append(trajectory)
    for step_a, step_b in zip(results[0][1:], results[1][1:]):
        assert_step_equal(step_a, step_b)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("batch_size, seed", [(4, 10), (7, 1000)])
def test_batched_env_equals_b_single_envs(short_config, batch_size, seed, world):
    """RetentionVectorEnv slot i reset with seed + i follows exactly the single env reset with seed + i,
    through several finished episodes (auto-reset in the same step; the single env reset without a seed),
    including final_obs of each finished shopper; in the default world and in the heterogeneous ones."""
    short_config = short_config.replace(**WORLDS[world])
    info_keys = _info_keys(short_config)
    k, m = short_config.slate_size, short_config.n_candidates
    vec = envs.RetentionVectorEnv(batch_size, short_config)
    singles = [envs.RetentionEnv(short_config) for _ in range(batch_size)]
    vec_obs, vec_info = vec.reset(seed=seed)
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=seed + i)
        for key in obs:
            assert np.array_equal(vec_obs[key][i], obs[key]), key
        for key in info:
            assert np.array_equal(vec_info[key][i], info[key]), key

    rng = np.random.default_rng(seed)
    finished = np.zeros(batch_size, dtype=np.int64)
    dropped_out = 0  # latent dropouts seen (the optional worlds must exercise them)
    for _ in range(250):
        actions = random_slates(rng, batch_size, m, k)
        vec_obs, vec_reward, vec_terminated, vec_truncated, infos = vec.step(actions)
        dropped_out += int(infos["dropped_out"].sum()) if "dropped_out" in infos else 0
        done = vec_terminated | vec_truncated
        if done.any():
            assert np.array_equal(infos["_final_obs"], done)
        else:
            assert "_final_obs" not in infos or not infos["_final_obs"].any()
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            assert vec_reward[i] == reward
            assert vec_terminated[i] == terminated
            assert vec_truncated[i] == truncated
            assert set(info) == set(info_keys)
            for key in info_keys:
                assert np.array_equal(infos[key][i], info[key]), key
            if terminated or truncated:
                finished[i] += 1
                for key in obs:  # the finished shopper's last observation
                    assert np.array_equal(infos["final_obs"][key][i], obs[key]), key
                    assert infos["final_obs"][key].dtype == obs[key].dtype
                assert infos["_final_info"][i]
                for key in info_keys:  # and her last info
                    assert np.array_equal(infos["final_info"][key][i], info[key]), key
                obs, _ = env.reset()
            for key in obs:
                assert np.array_equal(vec_obs[key][i], obs[key]), key
                assert vec_obs[key].dtype == obs[key].dtype
    assert finished.min() >= 2, f"want several finished episodes per slot, got {finished.tolist()}"
    assert dropped_out > 0 or not short_config.reports_churn_causes


@pytest.mark.parametrize("world", WORLDS)
def test_batched_env_in_disabled_mode_follows_single_envs_until_each_finishes(short_config, world):
    """With autoreset disabled, each slot follows its single env until it finishes, then stays frozen."""
    short_config = short_config.replace(**WORLDS[world])
    batch_size, seed = 5, 42
    k, m = short_config.slate_size, short_config.n_candidates
    vec = envs.RetentionVectorEnv(batch_size, short_config, autoreset_mode=AutoresetMode.DISABLED)
    singles = [envs.RetentionEnv(short_config) for _ in range(batch_size)]
    vec.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    live = np.ones(batch_size, dtype=bool)
    rng = np.random.default_rng(1)
    for _ in range(400):
        actions = random_slates(rng, batch_size, m, k)
        vec_obs, vec_reward, vec_terminated, vec_truncated, infos = vec.step(actions)
        for i in np.flatnonzero(live):
            obs, reward, terminated, truncated, info = singles[i].step(actions[i])
            assert (vec_reward[i], vec_terminated[i], vec_truncated[i]) == (reward, terminated, truncated)
            for key in obs:
                assert np.array_equal(vec_obs[key][i], obs[key]), key
            for key in _info_keys(short_config):
                assert np.array_equal(infos[key][i], info[key]), key
            live[i] = not (terminated or truncated)
        assert np.array_equal(infos["active"], live)
        if not live.any():
            break
    assert not live.any(), "some shopper never finished a 5-day horizon"


def test_batched_env_equals_single_envs_over_whole_default_episodes():
    """The default world (2000 items, 60-day horizon): 8 batched shoppers match 8 single envs over complete
    episodes, step for step, until every slot has finished at least one episode."""
    config = envs.RetentionConfig()
    batch_size, seed = 8, 2024
    k, m = config.slate_size, config.n_candidates
    vec = envs.RetentionVectorEnv(batch_size, config)
    singles = [envs.RetentionEnv(config) for _ in range(batch_size)]
    vec.reset(seed=seed)
    for i, env in enumerate(singles):
        env.reset(seed=seed + i)
    rng = np.random.default_rng(0)
    finished = np.zeros(batch_size, dtype=bool)
    for _ in range(20_000):
        actions = random_slates(rng, batch_size, m, k)
        vec_obs, vec_reward, vec_terminated, vec_truncated, infos = vec.step(actions)
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(actions[i])
            assert (vec_reward[i], vec_terminated[i], vec_truncated[i]) == (reward, terminated, truncated)
            for key in (*envs.INFO_KEYS, envs.LATENT_SATISFACTION_KEY):
                assert np.array_equal(infos[key][i], info[key]), key
            if terminated or truncated:
                finished[i] = True
                for key in obs:
                    assert np.array_equal(infos["final_obs"][key][i], obs[key]), key
                obs, _ = env.reset()
            for key in obs:
                assert np.array_equal(vec_obs[key][i], obs[key]), key
        if finished.all():
            break
    assert finished.all()


def test_drawing_for_no_rows_leaves_a_one_shopper_stream_untouched():
    """An empty row selection draws nothing, also on the one-shopper fast path."""
    from stickyrec.envs.rng import ShopperStreams, keys_from_seeds

    streams = ShopperStreams(keys_from_seeds([3]))
    assert streams.uniform(np.zeros(0, dtype=np.int64), 2).shape == (0, 2)
    assert int(streams.counters[0]) == 0
    assert np.array_equal(
        streams.uniform(slice(None), 2), ShopperStreams(keys_from_seeds([3])).uniform(np.array([0]), 2)
    )
