"""Invariants that hold for every valid config and every valid slate (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from gymnasium.vector import AutoresetMode
from hypothesis import given, settings
from hypothesis import strategies as st

from stickyrec import envs
from stickyrec.envs import choice, dynamics
from tests.helpers import float_leaves
from tests.strategies import batched_slates, config_overrides, configs

ROLLOUT_STEPS = 40


def _design_logits(simulator: envs.RetentionSimulator, slate: np.ndarray) -> np.ndarray:
    """(B, k + 1) choice logits of this slate from the latent state, as docs/model.md writes them:
    u = theta.e + w_a a - beta log p - w_f f_c, logit = u / tau + log eta_j, no click v0 / tau last."""
    cfg, catalog, state = simulator.config, simulator.catalog, simulator.state
    items = np.take_along_axis(simulator.candidate_ids, slate, axis=1)
    utility = (
        np.einsum("bkd,bd->bk", catalog.embedding[items], state.interest)
        + cfg.appeal_weight * catalog.appeal[items]
        - state.price_sensitivity[:, None] * catalog.log_relative_price[items]
        - cfg.fatigue_weight * np.take_along_axis(state.fatigue, catalog.category[items], axis=1)
    )
    return choice.slate_logits(
        utility,
        cfg.temperature,
        cfg.no_click_utility,
        choice.examination_log_weights(cfg.slate_size, cfg.position_decay),
    )


@st.composite
def rollouts(draw: st.DrawFn, autoreset_modes=(AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)):
    """(config, batch size, autoreset mode, seed, a cycle of batched slates) for a short rollout."""
    config = draw(configs())
    batch_size = draw(st.integers(1, 6))
    plan = draw(st.lists(batched_slates(batch_size, config.n_candidates, config.slate_size), min_size=1, max_size=6))
    return config, batch_size, draw(st.sampled_from(autoreset_modes)), draw(st.integers(0, 2**31)), plan


def _assert_finite(tree, what: str) -> None:
    for leaf in float_leaves(tree):
        assert np.all(np.isfinite(leaf)), f"non-finite value in {what}: {leaf}"


def _assert_candidates_valid(obs, config) -> None:
    ids = obs["candidate_ids"]
    assert ids.min() >= 0 and ids.max() < config.n_items
    ordered = np.sort(ids, axis=1)
    assert not np.any(ordered[:, 1:] == ordered[:, :-1]), "repeated candidate ids"


@given(rollouts())
def test_rollout_stays_finite_bounded_and_consistent(rollout):
    """Any valid config and slates: obs/reward/info floats finite, satisfaction in [0, 1], choice probabilities
    a distribution, candidates distinct and valid, days non-decreasing within an episode, clicks on the slate."""
    _check_rollout(rollout)


@pytest.mark.slow
@settings(max_examples=400)
@given(rollouts())
def test_rollout_invariants_thoroughly(rollout):
    """The rollout invariants above, over many more configs and slates (run with ``-m slow``)."""
    _check_rollout(rollout)


def _check_rollout(rollout) -> None:
    config, batch_size, mode, seed, plan = rollout
    vec = envs.RetentionVectorEnv(batch_size, config, autoreset_mode=mode)
    obs, info = vec.reset(seed=seed)
    _assert_finite((obs, info), "reset")
    _assert_candidates_valid(obs, config)
    last_day = np.zeros(batch_size, dtype=np.int64)
    for step in range(ROLLOUT_STEPS):
        slate = plan[step % len(plan)]
        probabilities = choice.choice_probabilities(_design_logits(vec.simulator, slate))
        assert np.all(np.isfinite(probabilities))
        assert np.all((probabilities >= 0.0) & (probabilities <= 1.0))
        assert np.allclose(probabilities.sum(axis=1), 1.0)
        previous = obs
        obs, reward, terminated, truncated, infos = vec.step(slate)

        _assert_finite((obs, reward, infos), f"step {step}")
        assert obs in vec.observation_space
        _assert_candidates_valid(obs, config)
        satisfaction = infos[envs.LATENT_SATISFACTION_KEY]
        assert np.all((satisfaction >= 0.0) & (satisfaction <= 1.0))
        assert not np.any(terminated & truncated)
        assert np.all(infos["day"] >= last_day), "the simulated day went backwards within an episode"
        assert np.all(infos["day"] <= config.horizon_days)
        position = infos["clicked_position"]
        assert np.all((position >= -1) & (position < config.slate_size))
        clicked = np.flatnonzero(position >= 0)
        expected_item = previous["candidate_ids"][clicked, slate[clicked, position[clicked]]]
        assert np.array_equal(infos["clicked_item"][clicked], expected_item)
        assert np.all(infos["clicked_item"][position < 0] == -1)
        assert np.all(infos["purchased"] <= (position >= 0)), "a purchase without a click"
        assert np.all(infos["revenue"] >= 0.0) and np.all((infos["revenue"] > 0) <= infos["purchased"])
        done = terminated | truncated
        last_day = np.where(done, 0, infos["day"]) if mode is AutoresetMode.SAME_STEP else infos["day"]


@given(rollouts(autoreset_modes=(AutoresetMode.DISABLED,)))
def test_finished_shopper_stays_gone_when_autoreset_is_disabled(rollout):
    """With autoreset disabled, once infos["active"] is False for a shopper it never turns True again, and
    she gets no more clicks, purchases, returns, rewards, terminations or truncations."""
    config, batch_size, mode, seed, plan = rollout
    vec = envs.RetentionVectorEnv(batch_size, config, autoreset_mode=mode)
    vec.reset(seed=seed)
    gone = np.zeros(batch_size, dtype=bool)
    frozen_obs = None
    for step in range(ROLLOUT_STEPS):
        obs, reward, terminated, truncated, infos = vec.step(plan[step % len(plan)])
        assert not np.any(infos["active"][gone]), "a finished shopper came back"
        assert np.all(infos["clicked_position"][gone] == -1)
        assert not np.any(infos["purchased"][gone]) and np.all(infos["revenue"][gone] == 0.0)
        assert not np.any(infos["returned"][gone] | infos["session_ended"][gone])
        assert np.all(reward[gone] == 0.0)
        assert not np.any(terminated[gone] | truncated[gone])
        if frozen_obs is not None:  # her observation is frozen too
            for key in obs:
                assert np.array_equal(obs[key][gone], frozen_obs[key][gone])
        done = terminated | truncated
        assert np.array_equal(infos["active"], ~(gone | done))
        gone |= done
        frozen_obs = obs


@given(
    satisfaction=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8).map(np.array),
    quality=st.floats(0.0, 1.0),
    rates=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
    clicked=st.booleans(),
    purchased=st.booleans(),
    gap=st.floats(0.0, 1e4),
    baseline=st.floats(0.0, 1.0),
    memory=st.floats(1e-3, 1e5),
)
def test_satisfaction_updates_stay_in_unit_interval(
    satisfaction, quality, rates, clicked, purchased, gap, baseline, memory
):
    """Every satisfaction update (click, purchase, no click, reversion over a gap) maps [0, 1] into [0, 1]."""
    n = satisfaction.size
    updated = dynamics.update_satisfaction(
        satisfaction, np.full(n, clicked), np.full(n, clicked and purchased), np.full(n, quality), *rates
    )
    reverted = dynamics.revert_satisfaction(updated, gap, baseline, memory)
    for s in (updated, reverted):
        assert np.all((s >= 0.0) & (s <= 1.0))


@given(config_overrides())
def test_config_round_trips_through_yaml(overrides):
    """A valid config written with to_yaml() (group-nested) and read back is the same config."""
    config = envs.RetentionConfig(**overrides)
    assert envs.RetentionConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
    assert envs.RetentionConfig.from_dict(config.to_dict()) == config
