"""The response dynamics (``envs.dynamics``), each against hand-derived values, and the simulator's use of them."""

from __future__ import annotations

import numpy as np
import pytest

from stickyrec import envs
from stickyrec.envs import dynamics
from stickyrec.envs.rewards import RewardMix
from stickyrec.envs.rng import key_from_seed
from tests.helpers import random_slate


def test_sigmoid_is_the_logistic_function_without_overflow():
    """sigmoid(0) = 1/2, sigmoid(1) = 1 / (1 + e^-1), and +-1000 saturate to 1 and 0 without warnings."""
    with np.errstate(all="raise"):
        values = dynamics.sigmoid(np.array([0.0, 1.0, -1.0, 1000.0, -1000.0]))
    assert np.allclose(values, [0.5, 1 / (1 + np.exp(-1.0)), 1 / (1 + np.e), 1.0, 0.0])


def test_purchase_probability_hand_derived():
    """sigmoid(g0 + g1 rel + g2 q - beta log p) on two hand-computed cases."""
    # g0 = -1, g1 = 2, g2 = 2, rel = 0.5, q = 0.5, beta = 1, log p = 0:
    #   logit = -1 + 2*0.5 + 2*0.5 - 1*0 = 1  ->  1 / (1 + e^-1) = 0.7310585786
    # same, but beta = 0.5 and log p = 2: logit = 1 - 0.5*2 = 0  ->  0.5
    p = dynamics.purchase_probability(
        relevance=np.array([0.5, 0.5]),
        quality=np.array([0.5, 0.5]),
        log_relative_price=np.array([0.0, 2.0]),
        price_sensitivity=np.array([1.0, 0.5]),
        bias=-1.0,
        w_relevance=2.0,
        w_quality=2.0,
    )
    assert np.allclose(p, [0.7310585786, 0.5])


def test_update_satisfaction_on_click_purchase_and_no_click():
    """A click moves s toward quality, a purchase further, a slate with no click shrinks s."""
    # s = 0.5, quality 0.9, click rate 0.25, purchase rate 0.5, no-click drop 0.1:
    #   click only:        0.5 + 0.25 * (0.9 - 0.5) = 0.6
    #   click + purchase:  0.6 + 0.5 * (0.9 - 0.6)  = 0.75
    #   no click:          0.5 * (1 - 0.1)          = 0.45
    s = dynamics.update_satisfaction(
        satisfaction=np.full(3, 0.5),
        clicked=np.array([True, True, False]),
        purchased=np.array([False, True, False]),
        quality=np.full(3, 0.9),
        click_rate=0.25,
        purchase_rate=0.5,
        no_click_drop=0.1,
    )
    assert np.allclose(s, [0.6, 0.75, 0.45])


def test_update_satisfaction_moves_down_toward_low_quality():
    """Clicking a poor item lowers satisfaction: s = 0.8, quality 0.2, click rate 0.5 -> 0.8 - 0.5*0.6 = 0.5."""
    s = dynamics.update_satisfaction(
        np.array([0.8]), np.array([True]), np.array([False]), np.array([0.2]), 0.5, 0.2, 0.1
    )
    assert np.allclose(s, [0.5])


def test_drift_interest_moves_toward_the_item_and_stays_unit():
    """theta = [1, 0], e = [0, 1], rho = 0.5 -> normalise([0.5, 0.5]) = [1/sqrt 2, 1/sqrt 2]; rho 0 and 1 are
    the end points."""
    theta, item = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert np.allclose(dynamics.drift_interest(theta, item, 0.5), [[2**-0.5, 2**-0.5]])
    assert np.allclose(dynamics.drift_interest(theta, item, 0.0), theta)
    assert np.allclose(dynamics.drift_interest(theta, item, 1.0), item)
    # rho = 0.2 toward [0.6, 0.8]: 0.8*[1, 0] + 0.2*[0.6, 0.8] = [0.92, 0.16], norm sqrt(0.872)
    drifted = dynamics.drift_interest(theta, np.array([[0.6, 0.8]]), 0.2)
    assert np.allclose(drifted, np.array([[0.92, 0.16]]) / np.sqrt(0.872))


def test_decay_factor_halves_every_half_life():
    """2^(-days / half-life): 2 days at half-life 1 -> 0.25; 3 days at 1.5 -> 0.25; 0 days -> 1."""
    assert np.allclose(dynamics.decay_factor(np.array([2.0, 0.0, 1.0]), 1.0), [0.25, 1.0, 0.5])
    assert np.allclose(dynamics.decay_factor(3.0, 1.5), 0.25)


def test_leave_probability_hand_derived():
    """sigmoid(base + wf f - ws s + wnc (1 - clicked) - patience)."""
    # base -1, wf 1, ws 2, wnc 0.5, f = 1, s = 0.5, patience 0.5:
    #   no click: -1 + 1*1 - 2*0.5 + 0.5*1 - 0.5 = -1   -> 1 / (1 + e) = 0.2689414214
    #   clicked:  -1 + 1   - 1     + 0     - 0.5 = -1.5 -> 1 / (1 + e^1.5) = 0.1824255238
    p = dynamics.leave_probability(
        mean_slate_fatigue=np.ones(2),
        satisfaction=np.full(2, 0.5),
        clicked=np.array([False, True]),
        patience=np.full(2, 0.5),
        base=-1.0,
        w_fatigue=1.0,
        w_satisfaction=2.0,
        w_no_click=0.5,
    )
    assert np.allclose(p, [0.2689414214, 0.1824255238])


def test_return_rate_grows_exponentially_with_satisfaction():
    """lambda exp(psi s): 0.1 * exp(2 * 0.5) = 0.1 e = 0.2718281828; at s = 0 it is lambda."""
    assert np.allclose(dynamics.return_rate(np.array([0.1, 0.1]), np.array([0.5, 0.0]), 2.0), [0.2718281828, 0.1])


def test_return_gap_days_inverts_the_exponential_cdf():
    """gap = min + (-ln(1 - u)) / rate: the exponential quantile plus the minimum gap."""
    # rate 0.5, min 0.1: u = 1 - e^-1 -> -ln(e^-1) / 0.5 = 2 -> 2.1;  u = 0 -> 0.1;  u = 0.5 -> 0.1 + 2 ln 2
    gaps = dynamics.return_gap_days(0.5, np.array([1.0 - np.exp(-1.0), 0.0, 0.5]), 0.1)
    assert np.allclose(gaps, [2.1, 0.1, 0.1 + 2.0 * np.log(2.0)])
    # and it is the quantile: P(gap <= g) = 1 - exp(-rate (g - min)) = u
    u = np.linspace(0.0, 0.99, 50)
    g = dynamics.return_gap_days(0.3, u, 0.2)
    assert np.allclose(1.0 - np.exp(-0.3 * (g - 0.2)), u)


def test_return_gap_days_has_the_exponential_mean():
    """Over many uniforms the mean gap is min + 1 / rate (2 + 0.25 = 2.25 for rate 0.5, min 0.25)."""
    u = np.random.default_rng(0).random(200_000)
    gaps = dynamics.return_gap_days(0.5, u, 0.25)
    assert gaps.min() >= 0.25
    assert abs(gaps.mean() - 2.25) < 5 * 2.0 / np.sqrt(u.size)  # sd of an exponential = its mean, 2


def test_churn_probability_hand_derived():
    """sigmoid(c0 - c1 s): c0 = -1, c1 = 4, s = 0.25 -> sigmoid(-2) = 0.1192029220; falls with s."""
    p = dynamics.churn_probability(np.array([0.25, 0.0, 1.0]), -1.0, 4.0)
    assert np.allclose(p, [0.1192029220, 1 / (1 + np.e), 1 / (1 + np.exp(5.0))])


def test_revert_satisfaction_relaxes_toward_the_baseline():
    """b + (s - b) exp(-gap / memory): 0.5 + 0.4 e^-1 = 0.6471517765 from 0.9 after 10 days of a 10-day memory."""
    s = dynamics.revert_satisfaction(np.array([0.9, 0.1, 0.9]), np.array([10.0, 10.0, 0.0]), 0.5, 10.0)
    assert np.allclose(s, [0.6471517765, 0.5 - 0.4 * np.exp(-1.0), 0.9])


# --- the simulator composes these functions ---------------------------------------------------------------
# Both stepping paths are checked: ``step`` (the batched engine, here with a batch of one) and, where the
# simulator has it, ``step_one`` (the single env's scalar fast path). Clicks are forced through the config
# (a no-click utility far below or above every item's), so these tests need no private hook.

# the batched step and the one-shopper kernel, as attributes (a renamed method fails here, it is never skipped)
STEP_METHODS = {"step": envs.RetentionSimulator.step, "step_one": envs.RetentionSimulator.step_one}
ALWAYS_CLICK = {"no_click_utility": -100.0, "temperature": 0.05}  # no-click logit -2000: never chosen
NEVER_CLICK = {"no_click_utility": 100.0, "temperature": 0.05}  # no-click logit 2000: always chosen
NEVER_LEAVE = {"leave_base": -100.0, "max_session_steps": 1000}


def _one_shopper(config: envs.RetentionConfig, seed: int = 0) -> envs.RetentionSimulator:
    simulator = envs.RetentionSimulator(config, 1)
    simulator.reset_rows(np.zeros(1, dtype=np.int64), np.array([key_from_seed(seed)]))
    return simulator


def _step(simulator: envs.RetentionSimulator, method: str, slate: np.ndarray) -> dict:
    """One impression through ``method``; the response as a dict of Python scalars."""
    response = STEP_METHODS[method](simulator, slate[None, :])
    return {name: np.asarray(value).reshape(-1)[0].item() for name, value in response._asdict().items()}


@pytest.mark.parametrize("method", STEP_METHODS)
def test_simulator_fatigue_rises_per_impression_and_click(small_config, rng, method):
    """After a step, each category's fatigue rose by fatigue_per_impression per shown item of it, plus
    fatigue_per_click on the clicked item's category (then decayed over the gap after a return visit)."""
    config = small_config.replace(fatigue_per_impression=0.03, fatigue_per_click=0.25, no_click_utility=1.0)
    simulator = _one_shopper(config, seed=3)
    catalog = simulator.catalog
    clicks = returns = 0
    for _ in range(400):
        slate = random_slate(rng, config.n_candidates, config.slate_size)
        fatigue = simulator.state.fatigue[0].copy()
        items = simulator.candidate_ids[0, slate]
        response = _step(simulator, method, slate)
        # expected: f + per_impression * (items shown of each category) + per_click on the clicked category
        fatigue += config.fatigue_per_impression * np.bincount(catalog.category[items], minlength=config.n_categories)
        if response["clicked_position"] >= 0:
            assert response["clicked_item"] == items[response["clicked_position"]]
            fatigue[catalog.category[response["clicked_item"]]] += config.fatigue_per_click
            clicks += 1
        if response["returned"]:  # ... times 2^(-gap / half-life) over the gap to the return visit
            fatigue *= dynamics.decay_factor(response["return_gap_days"], config.fatigue_half_life_days)
            returns += 1
        assert np.allclose(simulator.state.fatigue[0], fatigue, rtol=1e-12, atol=0.0)
        if response["churned"] or response["horizon_reached"]:
            break
    assert clicks > 0 and returns > 0, (clicks, returns)


@pytest.mark.parametrize("method", STEP_METHODS)
def test_click_updates_fatigue_satisfaction_and_interest(small_config, rng, method):
    """On a click within a session: fatigue, satisfaction and interest follow the documented updates for
    the clicked item, and the click counters and clicked-category history count it."""
    config = small_config.replace(**ALWAYS_CLICK, **NEVER_LEAVE)
    simulator = _one_shopper(config, seed=1)
    state, catalog = simulator.state, simulator.catalog
    for _ in range(5):
        slate = random_slate(rng, config.n_candidates, config.slate_size)
        items = simulator.candidate_ids[0, slate]
        fatigue, satisfaction = state.fatigue[0].copy(), state.satisfaction.copy()
        interest, recent = state.interest.copy(), state.recent_category_clicks[0].copy()
        clicks, session_step = state.clicks[0], state.session_step[0]

        response = _step(simulator, method, slate)

        assert not response["session_ended"]
        position, item = response["clicked_position"], response["clicked_item"]
        assert 0 <= position < config.slate_size and item == items[position]
        category = catalog.category[item]
        fatigue += config.fatigue_per_impression * np.bincount(catalog.category[items], minlength=config.n_categories)
        fatigue[category] += config.fatigue_per_click
        assert np.allclose(state.fatigue[0], fatigue)
        expected_satisfaction = dynamics.update_satisfaction(
            satisfaction,
            np.array([True]),
            np.array([response["purchased"]]),
            catalog.quality[item],
            config.satisfaction_click_rate,
            config.satisfaction_purchase_rate,
            config.satisfaction_no_click_drop,
        )
        assert np.allclose(state.satisfaction, expected_satisfaction)
        assert np.allclose(
            state.interest, dynamics.drift_interest(interest, catalog.embedding[item][None, :], config.interest_drift)
        )
        recent[category] += 1.0
        assert np.array_equal(state.recent_category_clicks[0], recent)
        assert state.clicks[0] == clicks + 1 and state.session_step[0] == session_step + 1
        assert response["revenue"] == (catalog.price[item] * config.margin if response["purchased"] else 0.0)


@pytest.mark.parametrize("method", STEP_METHODS)
def test_no_click_shrinks_satisfaction_and_leaves_interest(small_config, rng, method):
    """On a slate with no click: satisfaction shrinks by the no-click drop, interest stays, fatigue rises
    only per impression, and nothing is bought."""
    config = small_config.replace(**NEVER_CLICK, **NEVER_LEAVE, leave_no_click=0.0)
    simulator = _one_shopper(config, seed=2)
    state, catalog = simulator.state, simulator.catalog
    for _ in range(5):
        slate = random_slate(rng, config.n_candidates, config.slate_size)
        items = simulator.candidate_ids[0, slate]
        fatigue, satisfaction, interest = state.fatigue[0].copy(), state.satisfaction.copy(), state.interest.copy()

        response = _step(simulator, method, slate)

        assert response["clicked_position"] == -1 and response["clicked_item"] == -1
        assert not response["purchased"] and response["revenue"] == 0.0 and not response["session_ended"]
        shown = np.bincount(catalog.category[items], minlength=config.n_categories)
        assert np.allclose(state.fatigue[0], fatigue + config.fatigue_per_impression * shown)
        assert np.allclose(state.satisfaction, satisfaction * (1.0 - config.satisfaction_no_click_drop))
        assert np.array_equal(state.interest, interest)
        assert state.clicks[0] == 0


@pytest.mark.parametrize("method", STEP_METHODS)
def test_return_visit_reverts_satisfaction_and_decays_fatigue_over_the_gap(small_config, method):
    """When a session ends with a return visit, satisfaction relaxes toward the baseline and fatigue decays
    over the drawn gap; the day, visit count and session counters move to the new session."""
    config = small_config.replace(
        **NEVER_CLICK, leave_base=100.0, churn_base=-100.0, churn_window_days=1000.0, horizon_days=1000.0
    )  # every slate ends the session; she always returns
    simulator = _one_shopper(config, seed=4)
    state = simulator.state
    slate = np.arange(config.slate_size)
    shown = np.bincount(simulator.catalog.category[simulator.candidate_ids[0, slate]], minlength=config.n_categories)
    fatigue = state.fatigue[0] + config.fatigue_per_impression * shown
    satisfaction = state.satisfaction * (1.0 - config.satisfaction_no_click_drop)

    response = _step(simulator, method, slate)

    assert response["session_ended"] and response["returned"] and not response["churned"]
    assert response["day"] == 0
    gap = response["return_gap_days"]
    assert gap >= config.min_return_gap_days
    # fatigue * 2^(-gap / half-life); s -> b + (s - b) exp(-gap / memory)
    assert np.allclose(state.fatigue[0], fatigue * 2.0 ** (-gap / config.fatigue_half_life_days))
    assert np.allclose(
        state.satisfaction,
        dynamics.revert_satisfaction(satisfaction, gap, config.satisfaction_baseline, config.satisfaction_memory_days),
    )
    assert state.day[0] == gap and state.days_since_last_visit[0] == gap
    assert state.visits[0] == 2 and state.session_step[0] == 0 and state.session_clicks[0] == 0
    assert np.all(state.session_category_impressions[0] == 0)
    assert response["reward"] == config.reward_return_visit


@pytest.mark.parametrize("method", STEP_METHODS)
def test_gap_past_the_churn_window_is_churn(small_config, method):
    """A return gap longer than churn_window_days ends the shopper's life: churned, not returned."""
    config = small_config.replace(
        leave_base=100.0, churn_base=-100.0, min_return_gap_days=20.0, churn_window_days=14.0, reward_churn=-3.0
    )
    simulator = _one_shopper(config, seed=5)
    response = _step(simulator, method, np.arange(config.slate_size))
    assert response["session_ended"] and response["churned"] and not response["returned"]
    assert not response["horizon_reached"] and not simulator.state.alive[0]
    assert response["reward"] == -3.0


@pytest.mark.parametrize("method", STEP_METHODS)
def test_next_visit_past_the_horizon_is_truncation(small_config, method):
    """A next visit that would fall past horizon_days ends the episode as truncated, not churned."""
    config = small_config.replace(
        leave_base=100.0, churn_base=-100.0, min_return_gap_days=5.0, churn_window_days=1000.0, horizon_days=2.0
    )
    simulator = _one_shopper(config, seed=6)
    response = _step(simulator, method, np.arange(config.slate_size))
    assert response["session_ended"] and response["horizon_reached"]
    assert not response["churned"] and not response["returned"] and not simulator.state.alive[0]


@pytest.mark.parametrize("method", STEP_METHODS)
def test_the_env_reward_is_the_configs_reward_mix(small_config, rng, method):
    """The reward_* fields build an ``envs.rewards.RewardMix``; each step's reward is its weighted sum of the
    response: clicks, purchases, revenue, return visits, gap days and churns (here all six weighted)."""
    weights = {"click": 0.5, "purchase": 2.0, "revenue": 0.01, "return_visit": 1.5, "return_gap": -0.25, "churn": -4.0}
    config = small_config.replace(leave_base=2.0, **{f"reward_{name}": w for name, w in weights.items()})
    simulator = _one_shopper(config, seed=8)
    assert simulator.reward == RewardMix(**weights)
    for _ in range(200):
        if not simulator.state.alive[0]:
            break
        r = _step(simulator, method, random_slate(rng, config.n_candidates, config.slate_size))
        expected = (
            0.5 * (r["clicked_position"] >= 0)
            + 2.0 * r["purchased"]
            + 0.01 * r["revenue"]
            + 1.5 * r["returned"]
            - 0.25 * r["return_gap_days"]
            - 4.0 * r["churned"]
        )
        assert r["reward"] == pytest.approx(expected, abs=1e-12)


def test_an_all_zero_env_reward_pays_nothing(small_config):
    """An env config may weight nothing (unlike a training reward, which make_reward refuses)."""
    zero = {f"reward_{name}": 0.0 for name in ("click", "purchase", "revenue", "return_visit", "return_gap", "churn")}
    simulator = envs.RetentionSimulator(small_config.replace(**zero), 3)
    simulator.reset_rows(np.arange(3), np.array([key_from_seed(s) for s in range(3)]))
    response = simulator.step(np.tile(np.arange(small_config.slate_size), (3, 1)))
    assert response.reward.dtype == np.float64 and np.array_equal(response.reward, np.zeros(3))
