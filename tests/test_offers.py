"""The coupon lever (``envs.offers``, config ``offers: on``) and logged campaigns (``platform_log.offers``).

Effects are checked against their formulas on tiny cases with a fixed uplift type (docs/model.md, "Offers and
coupons"); with the lever off (or on, with no offer sent) every trajectory is today's; bad offers and an exhausted
budget raise before any state changes; the logged offer events match the env's infos.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import given
from hypothesis import strategies as st

from stickyrec import envs
from stickyrec.agents.heuristics import RandomPolicy
from stickyrec.agents.offers import RandomOfferPolicy
from stickyrec.envs.offers import (
    OFFER_INFO_KEYS,
    PERSUADABLE,
    SLEEPING_DOG,
    SURE_THING,
    UPLIFT_TYPE_KEY,
    OfferState,
    draw_types,
    type_weights,
)
from stickyrec.envs.rewards import RewardMix
from stickyrec.experiments.platform_log import collect, read_impressions
from stickyrec.experiments.platform_log.offers import OfferLogObserver, read_offer_events
from stickyrec.experiments.rollout import RolloutObserver, rollout
from tests.helpers import assert_info_equal, assert_obs_equal, assert_step_equal, random_slates

ONLY = {  # base shares that fix every shopper's type
    "persuadable": {"uplift_persuadable_share": 1.0, "uplift_sure_thing_share": 0.0, "uplift_sleeping_dog_share": 0.0},
    "sure_thing": {"uplift_persuadable_share": 0.0, "uplift_sure_thing_share": 1.0, "uplift_sleeping_dog_share": 0.0},
    "lost_cause": {"uplift_persuadable_share": 0.0, "uplift_sure_thing_share": 0.0, "uplift_sleeping_dog_share": 0.0},
    "sleeping_dog": {"uplift_persuadable_share": 0.0, "uplift_sure_thing_share": 0.0, "uplift_sleeping_dog_share": 1.0},
}


def _vector(config, n=4, **overrides):
    return envs.RetentionVectorEnv(n, config=config, autoreset_mode=AutoresetMode.DISABLED, **overrides)


def _run(env, seed, steps, actions):
    """(reset, step results) of ``steps`` steps; ``actions(t, slates)`` turns the step's slates into the action."""
    rng = np.random.default_rng(7)
    out = [env.reset(seed=seed)]
    for t in range(steps):
        slates = random_slates(rng, env.num_envs, env.config.n_candidates, env.config.slate_size)
        out.append(env.step(actions(t, slates)))
    return out


# --- the lever off: nothing changes ---------------------------------------------------------------------------------
def test_default_config_dumps_and_infos_as_before(small_config):
    assert "offers" not in small_config.to_dict() and "offers" not in small_config.to_dict(nested=True)
    assert "offers" in small_config.replace(offers="on").to_dict()
    env = _vector(small_config)
    assert isinstance(env.single_action_space, envs.SlateSpace)
    _, info = env.reset(seed=0)
    step_info = env.step(random_slates(np.random.default_rng(0), 4, 30, 5))[4]
    assert not set(step_info) & {*OFFER_INFO_KEYS, UPLIFT_TYPE_KEY} and UPLIFT_TYPE_KEY not in info


@pytest.mark.parametrize(
    "overrides",
    [
        {"offer_budget": 3.0, "uplift_persuadable_share": 0.5, "offer_sleeping_dog_effect": 4.0},  # off, other sizes
        {"offers": "on"},  # on, but nothing offered: the same draws and numbers
    ],
)
def test_trajectories_identical_to_a_plain_env(short_config, overrides):
    plain = _run(_vector(short_config), 11, 120, lambda t, s: s)
    other = _run(_vector(short_config, **overrides), 11, 120, lambda t, s: s)
    assert_obs_equal(plain[0][0], other[0][0])
    for a, b in zip(plain[1:], other[1:]):
        assert_obs_equal(a[0], b[0])
        for x, y in zip(a[1:4], b[1:4]):
            assert np.array_equal(x, y)
        assert_info_equal(a[4], {key: b[4][key] for key in a[4]})  # the plain env's keys, the same values


def test_single_env_with_the_lever_on_and_no_offer_is_today(short_config):
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    plain, lever = envs.RetentionEnv(short_config), envs.RetentionEnv(short_config, offers="on")
    a, b = plain.reset(seed=5), lever.reset(seed=5)
    assert_obs_equal(a[0], b[0])
    for _ in range(60):
        ra = plain.step(rng_a.permutation(30)[:5])
        rb = lever.step({"slate": rng_b.permutation(30)[:5]})
        assert_step_equal(ra, (*rb[:4], {key: rb[4][key] for key in ra[4]}))
        if ra[2] or ra[3]:
            break


def test_batched_equals_single_with_offers(short_config):
    config = short_config.replace(offers="on")
    vector = _vector(config, n=2)
    singles = [envs.RetentionEnv(config) for _ in range(2)]
    vector.reset(seed=40)
    live = [True, True]
    for i, env in enumerate(singles):
        env.reset(seed=40 + i)
    rng = np.random.default_rng(1)
    offer, between = np.array([0.3, np.nan]), np.array([np.nan, 0.0])
    for _ in range(40):
        slates = random_slates(rng, 2, 30, 5)
        obs, reward, _, _, info = vector.step({"slate": slates, "offer": offer, "offer_between": between})
        for i, env in enumerate(singles):
            if not live[i]:
                continue
            o, r, terminated, truncated, single = env.step(
                {"slate": slates[i], "offer": offer[i], "offer_between": between[i]}
            )
            assert r == reward[i] and np.array_equal(o["shopper"], obs["shopper"][i])
            for key in (*OFFER_INFO_KEYS, UPLIFT_TYPE_KEY, "purchased", "returned", "return_gap_days"):
                assert np.array_equal(single[key], info[key][i], equal_nan=True), key
            live[i] = not (terminated or truncated)


# --- uplift types ---------------------------------------------------------------------------------------------------
def test_type_draw_is_the_inverse_cdf_of_the_tilted_shares(small_config):
    weights = np.array([[1.0, 1.0, 1.0, 1.0]] * 4)
    assert draw_types(weights, np.array([0.0, 0.3, 0.6, 0.99])).tolist() == [0, 1, 2, 3]
    config = small_config.replace(uplift_trait_weight=2.0)
    w = type_weights(np.array([0.5]), np.array([-1.0]), np.array([0.25]), config)[0]
    expected = [0.30 * math.exp(1.0), 0.35 * math.exp(2.0 * (-0.75) / math.sqrt(2)), 0.25, 0.10 * math.exp(2.0)]
    np.testing.assert_allclose(w, expected, rtol=1e-12)


@pytest.mark.parametrize("kind", list(ONLY))
def test_shares_of_one_fix_the_type(small_config, kind):
    env = _vector(small_config.replace(offers="on", **ONLY[kind]), n=16)
    _, info = env.reset(seed=0)
    assert (info[UPLIFT_TYPE_KEY] == list(ONLY).index(kind)).all()


def test_types_come_from_their_own_stream(small_config):
    """The offer stream never moves the main stream: counters and traits are those of the lever off."""
    plain, lever = _vector(small_config, n=64), _vector(small_config.replace(offers="on"), n=64)
    plain.reset(seed=9)
    _, info = lever.reset(seed=9)
    assert np.array_equal(plain.simulator.streams.counters, lever.simulator.streams.counters)
    assert np.array_equal(plain.simulator.state.visit_rate, lever.simulator.state.visit_rate)
    assert len(np.unique(info[UPLIFT_TYPE_KEY])) == 4  # the default shares give every type in 64 shoppers


# --- effects, hand-derived ------------------------------------------------------------------------------------------
def _offer_state(config, kind: int, coupon: float) -> OfferState:
    state = OfferState(config, 1)
    state.uplift_type[:] = kind
    state.begin_step(np.array([coupon]), None, np.array([True]))
    return state


def test_purchase_lift_and_leave_shift_follow_the_formulas(small_config):
    config = small_config.replace(offers="on")
    b0, b1, k_d = config.offer_purchase_lift, config.offer_purchase_lift_per_discount, config.offer_sleeping_dog_effect
    assert _offer_state(config, PERSUADABLE, 0.2).purchase_lift()[0] == pytest.approx(b0 + b1 * 0.2, rel=1e-15)
    assert _offer_state(config, PERSUADABLE, 0.0).purchase_lift()[0] == b0  # a reminder
    assert _offer_state(config, PERSUADABLE, np.nan).purchase_lift()[0] == 0.0
    assert _offer_state(config, SURE_THING, 0.5).purchase_lift()[0] == 0.0
    assert _offer_state(config, SLEEPING_DOG, 0.5).leave_shift()[0] == k_d
    assert _offer_state(config, PERSUADABLE, 0.5).leave_shift()[0] == 0.0


def test_session_end_effects_follow_the_formulas(small_config):
    config = small_config.replace(offers="on")
    r0, r1, k_d = config.offer_return_lift, config.offer_return_lift_per_discount, config.offer_sleeping_dog_effect
    cases = [  # kind, visit offer, between offer -> log return-rate factor, churn-logit shift, next coupon
        (PERSUADABLE, np.nan, 0.25, r0 + r1 * 0.25, -(r0 + r1 * 0.25), 0.25),
        (PERSUADABLE, 0.1, np.nan, 0.0, 0.0, np.nan),
        (SLEEPING_DOG, np.nan, 0.0, -k_d, k_d, 0.0),
        (SLEEPING_DOG, 0.3, np.nan, 0.0, k_d, np.nan),  # contacted during the session
        (SURE_THING, 0.3, 0.3, 0.0, 0.0, 0.3),
    ]
    for kind, visit, between, log_factor, shift, coupon in cases:
        state = OfferState(config, 1)
        state.uplift_type[:] = kind
        state.begin_step(np.array([visit]), np.array([between]), np.array([True]))
        factor, churn_shift = state.end_sessions(np.array([0]))
        assert math.log(factor[0]) == pytest.approx(log_factor, abs=1e-12)
        assert churn_shift[0] == pytest.approx(shift, abs=1e-12)
        assert np.array_equal(state.coupon, [coupon], equal_nan=True) and not state.contacted[0]


def _first_return_gap(config, between):
    env = envs.RetentionEnv(config)
    env.reset(seed=21)
    rng = np.random.default_rng(0)
    while True:
        info = env.step({"slate": rng.permutation(30)[:5], "offer_between": between})[4]
        if info["session_ended"]:
            assert info["returned"]
            return info["return_gap_days"]


@pytest.mark.parametrize("kind, discount", [("persuadable", 0.25), ("persuadable", 0.0), ("sleeping_dog", 0.4)])
def test_between_visit_offer_scales_the_return_rate(small_config, kind, discount):
    """Same seed, same uniforms: the gap beyond the minimum shrinks by exactly the return-rate factor."""
    config = small_config.replace(offers="on", **ONLY[kind])
    g_min = config.min_return_gap_days
    plain, offered = _first_return_gap(config, math.nan), _first_return_gap(config, discount)
    if kind == "persuadable":
        factor = math.exp(config.offer_return_lift + config.offer_return_lift_per_discount * discount)
    else:
        factor = math.exp(-config.offer_sleeping_dog_effect)
    assert (offered - g_min) == pytest.approx((plain - g_min) / factor, rel=1e-12)


@pytest.mark.parametrize("kind, buys", [("persuadable", True), ("sure_thing", False), ("lost_cause", False)])
def test_visit_offer_moves_only_a_persuadables_purchase(small_config, kind, buys):
    """A purchase logit of -30 never converts; a persuadable's coupon lift of +60 always does."""
    config = small_config.replace(offers="on", purchase_bias=-30.0, offer_purchase_lift=60.0, **ONLY[kind])
    env = _vector(config, n=32)
    env.reset(seed=3)
    clicks = purchases = 0
    for slates in random_slates(np.random.default_rng(2), 20 * 32, 30, 5).reshape(20, 32, 5):
        info = env.step({"slate": slates, "offer": np.full(32, 0.0)})[4]
        clicks += int((info["clicked_position"] >= 0).sum())
        purchases += int(info["purchased"].sum())
        assert np.all(info["coupon_cost"] == 0.0)  # discount 0: a reminder costs nothing
    assert clicks > 0 and purchases == (clicks if buys else 0)


# --- bad offers and the budget --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "action, message",
    [
        ({"offer": np.array([0.1, -0.2])}, "offer for shopper 1 is -0.2"),
        ({"offer": np.array([1.5, 0.1])}, "not a discount"),
        ({"offer_between": np.array([np.inf, 0.1])}, "offer_between for shopper 0 is inf"),
        ({"offer": np.array([0.1, 0.1, 0.1])}, "shape (3,)"),
        ({"offer": np.array(["a", "b"])}, "dtype"),
        ({"coupon": np.array([0.1, 0.1])}, "allowed: 'slate' (required)"),
    ],
)
def test_bad_offers_raise_before_any_change(small_config, action, message):
    env = _vector(small_config.replace(offers="on"), n=2)
    env.reset(seed=1)
    counters = env.simulator.streams.counters.copy()
    features = env.simulator.features.copy()
    with pytest.raises(ValueError, match="allowed") as error:
        env.step({"slate": np.array([[0, 1, 2, 3, 4]] * 2), **action})
    assert message in str(error.value)
    assert np.array_equal(counters, env.simulator.streams.counters)
    assert np.array_equal(features, env.simulator.features)


def test_offers_need_the_lever_on(small_config, small_env):
    small_env.reset(seed=0)
    with pytest.raises(ValueError, match="offers: off"):
        small_env.step({"slate": np.arange(5), "offer": 0.1})
    with pytest.raises(ValueError, match="offers: off"):
        _vector(small_config).simulator.step(np.zeros((4, 5), int) + np.arange(5), offer=np.zeros(4))
    single = envs.RetentionEnv(small_config, offers="on")
    single.reset(seed=0)
    with pytest.raises(ValueError, match="one discount in"):
        single.step({"slate": np.arange(5), "offer": [0.1]})


def test_budget_exhausted_raises_and_reset_restores_it(small_config):
    config = small_config.replace(offers="on", offer_budget=5.0, purchase_bias=0.0, **ONLY["sure_thing"])
    env = _vector(config, n=16)
    env.reset(seed=2)
    rng = np.random.default_rng(4)
    for _ in range(200):  # sure things buy anyway: each purchase with a 50% coupon costs half its price
        env.step({"slate": random_slates(rng, 16, 30, 5), "offer": np.full(16, 0.5)})
        if env.simulator.offers.spent >= 5.0:
            break
    spent = env.simulator.offers.spent
    assert spent >= 5.0
    with pytest.raises(ValueError, match="offer budget exhausted"):
        env.step({"slate": random_slates(rng, 16, 30, 5), "offer_between": np.full(16, 0.1)})
    env.step({"slate": random_slates(rng, 16, 30, 5), "offer": np.zeros(16)})  # reminders cost nothing
    assert env.simulator.offers.spent == spent
    env.reset(seed=3)
    env.step({"slate": random_slates(rng, 16, 30, 5), "offer": np.full(16, 0.5)})


# --- invariants -----------------------------------------------------------------------------------------------------
@given(
    discount=st.floats(0.0, 1.0),
    p=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
    bias=st.floats(-6.0, 2.0),
)
def test_cost_and_net_revenue_invariants(short_config, discount, p, seed, bias):
    env = _vector(short_config.replace(offers="on", purchase_bias=bias), n=8)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(25):
        offer = np.where(rng.random(8) < p, discount, np.nan)
        info = env.step({"slate": random_slates(rng, 8, 30, 5), "offer": offer, "offer_between": offer})[4]
        cost, coupon = info["coupon_cost"], info["coupon_discount"]
        assert np.all(cost >= 0.0) and np.all(info["net_revenue"] <= info["revenue"])
        assert np.all(cost[np.isnan(coupon)] == 0.0) and np.all(cost[~info["purchased"]] == 0.0)
        np.testing.assert_array_equal(info["net_revenue"], info["revenue"] - cost)
        total += cost.sum()
    assert env.simulator.offers.spent == pytest.approx(total)
    net = RewardMix(revenue=1.0, coupon_cost=-1.0)(info)
    np.testing.assert_allclose(net, info["net_revenue"].astype(np.float32), rtol=1e-6)


# --- logged campaigns -----------------------------------------------------------------------------------------------
class _Infos(RolloutObserver):
    def __init__(self):
        self.steps = []

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active):
        self.steps.append((active.copy(), {key: np.asarray(info[key]).copy() for key in info if key != "final_info"}))


def test_offer_events_match_the_env(short_config):
    config = short_config.replace(offers="on", horizon_days=12.0)
    policy = RandomOfferPolicy(RandomPolicy(seed=1), p=0.4, discount=0.3, p_between=0.6, discount_between=0.0, seed=5)
    events, infos = OfferLogObserver(None, "run", policy.name, policy, 40), _Infos()
    rollout(policy, config, 40, 100, [events, infos])
    frame = events.frame()
    visit, between = frame[frame["kind"] == "visit"], frame[frame["kind"] == "between"]
    sent = [np.flatnonzero(a & ~np.isnan(i["offer"])) for a, i in infos.steps]
    assert len(visit) == sum(len(s) for s in sent) > 0
    assert set(visit["discount"]) == {0.3} and set(visit["propensity"]) == {0.4}
    assert set(between["discount"]) == {0.0} and set(between["propensity"]) == {0.6}
    ends = sum(int((a & i["session_ended"] & ~np.isnan(i["offer_between"])).sum()) for a, i in infos.steps)
    assert len(between) == ends > 0
    cost = sum(float(i["coupon_cost"][a].sum()) for a, i in infos.steps)
    assert frame["coupon_cost"].sum() == pytest.approx(cost) and cost > 0
    assert frame["purchased"].sum() >= (frame["coupon_cost"] > 0).sum()
    for event in visit.itertuples():  # each shopper steps every global step while live: her step is the step's
        active, info = infos.steps[event.step]
        assert active[event.shopper] and info["offer"][event.shopper] == event.discount
        assert info["day"][event.shopper] == event.day


def test_collect_writes_offer_events_and_leaves_offers_off_logs_alone(short_config, tmp_path):
    config = short_config.replace(offers="on", horizon_days=10.0)
    policy = RandomOfferPolicy(RandomPolicy(seed=1), p=0.5, discount=0.2, p_between=0.5, seed=2)
    store = tmp_path / "log.duckdb"
    collect(policy, config, n_shoppers=12, store=store, run_id="campaign", progress=False)
    logged = read_offer_events(store, "campaign")
    again = RandomOfferPolicy(RandomPolicy(seed=1), p=0.5, discount=0.2, p_between=0.5, seed=2)
    expected = OfferLogObserver(None, "campaign", again.name, again, 12)
    rollout(again, config, 12, 0, [expected])
    assert logged.equals(expected.frame())
    assert len(read_impressions(store, "campaign")) > 0
    plain = tmp_path / "plain.duckdb"
    collect(RandomPolicy(seed=1), short_config, n_shoppers=4, store=plain, run_id="plain", progress=False)
    with pytest.raises(Exception, match="no offer events"):
        read_offer_events(plain)


def test_random_offer_policy_checks_its_arguments_and_env(small_config, tmp_path):
    with pytest.raises(ValueError, match="probability in"):
        RandomOfferPolicy(RandomPolicy(), p=1.5)
    with pytest.raises(ValueError, match="offers: on"):
        RandomOfferPolicy(RandomPolicy()).bind(_vector(small_config))
    with pytest.raises(ValueError, match="sends offers"):
        collect(RandomOfferPolicy(RandomPolicy()), small_config, 2, store=tmp_path / "x.duckdb", progress=False)
    assert not (tmp_path / "x.duckdb").exists()
