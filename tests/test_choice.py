"""The choice model: the click utility, position examination, a multinomial logit with a no-click column, and
sampling; the one-shopper kernel against the click-utility function."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stickyrec.envs import choice
from stickyrec.envs.choice import click_utility, sample_choice
from stickyrec.envs.rng import key_from_seed
from stickyrec.envs.simulator import RetentionSimulator
from tests.strategies import utilities


def _probabilities(utility, temperature, no_click_utility, position_decay):
    log_examination = choice.examination_log_weights(utility.shape[1], position_decay)
    return choice.choice_probabilities(choice.slate_logits(utility, temperature, no_click_utility, log_examination))


def test_examination_weights_decay_geometrically_with_position():
    """log eta_j = j log(position_decay): eta = [1, 0.5, 0.25] for decay 0.5."""
    assert np.allclose(np.exp(choice.examination_log_weights(3, 0.5)), [1.0, 0.5, 0.25])
    assert np.array_equal(choice.examination_log_weights(4, 1.0), np.zeros(4))


def test_slate_logits_put_no_click_in_the_last_column():
    """logits = u / tau + log eta per position, then v0 / tau as the no-click column."""
    # u = [1, 2], tau = 0.5, eta = [1, 0.5], v0 = 1:
    # logits = [1/0.5 + 0, 2/0.5 + ln 0.5, 1/0.5] = [2, 4 - 0.693147..., 2]
    logits = choice.slate_logits(np.array([[1.0, 2.0]]), 0.5, 1.0, choice.examination_log_weights(2, 0.5))
    assert logits.shape == (1, 3)
    assert np.allclose(logits, [[2.0, 4.0 + np.log(0.5), 2.0]])


def test_hand_derived_two_item_slate_gives_equal_thirds():
    """k=2, tau=1, v0=0, u=[0, ln 2], decay 0.5 -> all three options 1/3."""
    # weights eta_j exp(u_j / tau): position 0: 1 * e^0 = 1; position 1: 0.5 * e^(ln 2) = 0.5 * 2 = 1;
    # no click: e^(v0 / tau) = e^0 = 1.  Denominator 1 + 1 + 1 = 3, so P = [1/3, 1/3, 1/3].
    probabilities = _probabilities(np.array([[0.0, np.log(2.0)]]), 1.0, 0.0, 0.5)
    assert np.allclose(probabilities, [[1 / 3, 1 / 3, 1 / 3]])


def test_hand_derived_three_item_slate_with_temperature():
    """k=3, tau=2, v0=0, u=[2 ln 3, 0, 0], decay 0.5 -> P = [3, 0.5, 0.25, 1] / 4.75."""
    # position 0: eta 1 * exp(2 ln 3 / 2) = 3; position 1: 0.5 * e^0 = 0.5; position 2: 0.25 * e^0 = 0.25;
    # no click: exp(0 / 2) = 1.  Denominator 3 + 0.5 + 0.25 + 1 = 4.75.
    probabilities = _probabilities(np.array([[2.0 * np.log(3.0), 0.0, 0.0]]), 2.0, 0.0, 0.5)
    assert np.allclose(probabilities, np.array([[3.0, 0.5, 0.25, 1.0]]) / 4.75)


@given(
    utility=utilities(),
    temperature=st.floats(1e-3, 100.0),
    no_click_utility=st.floats(-100.0, 100.0),
    position_decay=st.floats(1e-3, 1.0),
)
def test_choice_probabilities_are_a_distribution_even_for_extreme_utilities(
    utility, temperature, no_click_utility, position_decay
):
    """With the no-click column, each row is finite, in [0, 1] and sums to 1, whatever the utilities."""
    probabilities = _probabilities(utility, temperature, no_click_utility, position_decay)
    assert probabilities.shape == (utility.shape[0], utility.shape[1] + 1)
    assert np.all(np.isfinite(probabilities))
    assert np.all((probabilities >= 0.0) & (probabilities <= 1.0))
    assert np.allclose(probabilities.sum(axis=1), 1.0)


@given(logits=st.lists(st.floats(-1e300, 1e300), min_size=1, max_size=12))
def test_choice_weights_never_overflow(logits):
    """exp(logits - row max) is finite with the row's largest weight exactly 1, for any finite logits."""
    weights = choice.choice_weights(np.array([logits]))
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0.0)
    assert weights.max() == 1.0


def test_choose_inverts_the_cdf():
    """weights [1, 1, 2] (cdf [1, 2, 4]): uniform u picks the bin holding 4u."""
    weights = np.tile([1.0, 1.0, 2.0], (5, 1))
    # 4u = 0.8 -> 0; 1.2 -> 1; 1.96 -> 1; 2.4 -> 2 (no click); 3.96 -> 2
    uniform = np.array([0.2, 0.3, 0.49, 0.6, 0.99])
    assert choice.choose(weights, uniform).tolist() == [0, 1, 1, 2, 2]


def test_choose_empirical_frequencies_match_probabilities():
    """Over many uniforms, choose() picks each option with its softmax probability (within 5 sigma)."""
    utility = np.array([[0.3, -0.2, 1.1, 0.0, 0.5]])
    logits = choice.slate_logits(utility, 0.4, 2.1 * 0.4, choice.examination_log_weights(5, 0.85))
    probabilities = choice.choice_probabilities(logits)[0]
    n = 200_000
    uniform = np.random.default_rng(0).random(n)
    picks = choice.choose(np.repeat(choice.choice_weights(logits), n, axis=0), uniform)
    frequencies = np.bincount(picks, minlength=6) / n
    tolerance = 5.0 * np.sqrt(probabilities * (1.0 - probabilities) / n)
    assert np.all(np.abs(frequencies - probabilities) <= tolerance), (frequencies, probabilities)


def test_choose_accepts_unnormalised_weights():
    """Scaling a row of weights does not change which option a uniform selects (away from bin edges)."""
    weights = np.array([[0.2, 0.5, 0.3]])
    uniform = np.linspace(0.01, 0.99, 25)
    base = choice.choose(np.repeat(weights, 25, axis=0), uniform)
    scaled = choice.choose(np.repeat(weights * 1e-40, 25, axis=0), uniform)
    assert np.array_equal(base, scaled)


@pytest.mark.parametrize("item_logit", [-50.0, -1000.0])
def test_dominating_no_click_logit_always_wins(item_logit):
    """When the no-click logit dominates, choose() returns the no-click index k for every uniform in [0, 1)."""
    k = 4
    logits = np.full((1, k + 1), item_logit)
    logits[0, -1] = 0.0
    weights = choice.choice_weights(logits)
    uniform = np.concatenate([np.linspace(1e-12, 1.0 - 1e-12, 1001), [0.5, 0.999999]])
    picks = choice.choose(np.repeat(weights, uniform.size, axis=0), uniform)
    assert np.all(picks == k)
    assert np.allclose(choice.choice_probabilities(logits)[0, -1], 1.0)


def test_choose_never_picks_a_zero_weight_option_even_at_uniform_zero():
    """An option of weight 0 (exp underflow) is never chosen, even for the smallest uniform, exactly 0.0.

    The shoppers' streams return floats in [0, 1), so 0.0 is a possible draw; inverse-CDF sampling must put
    it in the first bin of positive weight, not in a zero-width first bin.
    """
    # no-click logit 0, items at -1000: exp(-1000) underflows to exactly 0, so weights = [0, 0, 0, 1]
    weights = choice.choice_weights(np.array([[-1000.0, -1000.0, -1000.0, 0.0]]))
    assert np.array_equal(weights, [[0.0, 0.0, 0.0, 1.0]])
    assert choice.choose(weights, np.array([0.0])).tolist() == [3]
    # same with a zero-weight item in front of a positive one: u = 0 must pick position 1, not 0
    assert choice.choose(np.array([[0.0, 1.0, 1.0]]), np.array([0.0])).tolist() == [1]


@given(
    weights=st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e6)), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
    uniform=st.floats(1e-12, 1.0, exclude_max=True),
)
def test_choose_returns_an_index_of_positive_weight(weights, uniform):
    """choose() returns an index in 0..k whose weight is positive, for uniforms in (0, 1).

    (The boundary uniform 0.0 has its own test above.)
    """
    row = np.array([weights])
    index = int(choice.choose(row, np.array([uniform]))[0])
    assert 0 <= index < row.shape[1]
    assert row[0, index] > 0.0


# --- the hot-path sampler (no (B, k + 1) array): same choices as choose() on the full weights ------------


@given(
    utility=utilities(max_slate=10, bound=50.0),
    no_click_utility=st.floats(-50.0, 50.0),
    temperature=st.floats(0.05, 5.0),
    position_decay=st.floats(0.05, 1.0),
    uniform=st.lists(st.floats(1e-9, 1.0, exclude_max=True), min_size=6, max_size=6),
)
def test_sample_choice_agrees_with_choose_on_the_same_uniforms(
    utility, no_click_utility, temperature, position_decay, uniform
):
    """sample_choice(item logits, no-click logit, u) picks exactly what choose(weights of all k + 1 options, u)
    picks, for the same uniforms."""
    logits = choice.slate_logits(
        utility, temperature, no_click_utility, choice.examination_log_weights(utility.shape[1], position_decay)
    )
    u = np.array(uniform[: utility.shape[0]])
    expected = choice.choose(choice.choice_weights(logits), u)
    assert np.array_equal(sample_choice(logits[:, :-1].copy(), logits[0, -1], u), expected)


def test_sample_choice_never_picks_a_zero_weight_item_even_at_uniform_zero():
    """The hot-path sampler, too, returns no click (k) when every item's weight underflows to 0, even for a
    uniform of exactly 0.0."""
    assert sample_choice(np.array([[-1000.0, -1000.0, -1000.0]]), 0.0, np.array([0.0])).tolist() == [3]


# --- the one click-utility function: the batched step, the one-shopper kernel and the oracles all use it ----------


def test_click_utility_is_relevance_plus_session_part_minus_weighted_fatigue():
    """u = theta.e + (w_a a - beta log(p / median p)) - w_f f_c, on arrays and on Python floats alike."""
    # relevance 0.5, appeal 0.8 at w_a = 1.5 (1.2), beta = 2, log relative price 0.25 (-0.5), fatigue 0.4 at w_f 0.5:
    # session part 1.2 - 0.5 = 0.7; u = 0.5 + 0.7 - 0.2 = 1.0
    session_part = choice.session_utility(1.5 * 0.8, 0.25, 2.0)
    assert session_part == pytest.approx(0.7)
    assert choice.click_utility(0.5, session_part, 0.4, 0.5) == pytest.approx(1.0)
    rows = choice.click_utility(np.array([0.5, -1.0]), np.array([session_part, 0.0]), np.array([0.4, 0.0]), 0.5)
    assert np.allclose(rows, [1.0, -1.0])


def _kernel_inputs(simulator: RetentionSimulator, slate: np.ndarray):
    """The click utility's inputs for one shopper's slate, gathered as the step gathers them."""
    items = simulator.candidate_ids[0, slate]
    embedding32 = simulator.catalog.embedding.astype(np.float32)
    relevance = np.matmul(embedding32[items][None], simulator.state.interest[:, :, None])[0, :, 0].astype(np.float64)
    fatigue = simulator.state.fatigue[0, simulator.catalog.category[items]]
    return relevance, simulator.candidate_utility[0, slate], fatigue


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"fatigue_weight": 1.5, "temperature": 0.3},
        {"appeal_weight": 2.0, "no_click_utility": -1.0, "position_decay": 0.6},
    ],
)
def test_kernel_matches_the_one_click_utility_function(small_config, monkeypatch, overrides):
    """The one-shopper kernel (``step_one``) computes its click utilities with ``choice.click_utility``, item by item
    on Python floats; they equal the function on arrays (the form the batched step and the oracles use) bit for bit,
    and its click is the one ``sample_choice`` picks from those logits with the same uniform, on random shoppers and
    slates."""
    config = small_config.replace(**overrides)
    k = config.slate_size
    calls = []

    def recording(*args):
        calls.append(click_utility(*args))
        return calls[-1]

    monkeypatch.setattr(choice, "click_utility", recording)
    log_examination = choice.examination_log_weights(k, config.position_decay)
    rng = np.random.default_rng(0)
    clicks = 0
    for seed in range(4):
        simulator = RetentionSimulator(config, 1)
        simulator.reset_rows(np.zeros(1, dtype=np.int64), np.array([key_from_seed(seed)]))
        for _ in range(80):
            if not simulator.state.alive[0]:
                break
            slate = rng.choice(config.n_candidates, k, replace=False)
            utility = click_utility(*_kernel_inputs(simulator, slate), config.fatigue_weight)
            logits = utility * (1.0 / config.temperature) + log_examination
            u_choice = copy.deepcopy(simulator.streams).uniform_one(3)[0]  # the uniform the kernel draws
            no_click_logit = config.no_click_utility / config.temperature
            position = int(sample_choice(logits[None], no_click_logit, np.array([u_choice]), simulator.logit_bound)[0])
            calls.clear()
            response = simulator.step_one(slate[None])
            assert len(calls) == k and np.array_equal(np.array(calls), utility)
            assert response.clicked_position == (position if position < k else -1)
            clicks += position < k
    assert clicks > 10  # the check saw clicks, not only empty slates
