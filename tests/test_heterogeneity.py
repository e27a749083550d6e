"""Issue 13's heterogeneous shoppers and latent vs observed churn (``envs.traits``), opt-in through config fields.

The population laws are checked on the simulator's own arrival draws (KS tests), the dropout rule on hand-derived
one-shopper cases through both step paths, the infinite churn window on a population, and the point of it all on
retention curves: a heterogeneous population's hazard falls over time, the homogeneous default's stays nearly flat.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from gymnasium.vector import AutoresetMode
from scipy import stats

from stickyrec import envs
from stickyrec.envs.rng import key_from_seed, keys_from_seeds
from stickyrec.envs.traits import churn_events
from tests.helpers import random_slate, random_slates

STEP_METHODS = {"step": envs.RetentionSimulator.step, "step_one": envs.RetentionSimulator.step_one}
GAMMA = {"visit_rate_distribution": "gamma", "visit_rate_gamma_shape": 1.7, "visit_rate_gamma_rate": 20.0}
BETA = {"dropout_distribution": "beta", "dropout_beta_a": 0.4, "dropout_beta_b": 1.3}
# one impression per session, a click on every slate, and (with BUY) a purchase on every click
ONE_CLICK_SESSIONS = {"no_click_utility": -100.0, "temperature": 0.05, "leave_base": 100.0, "churn_base": -100.0}
BUY, NEVER_BUY = {"purchase_bias": 100.0}, {"purchase_bias": -100.0}


def _arrivals(config: envs.RetentionConfig, n: int, seed: int = 0) -> envs.RetentionSimulator:
    simulator = envs.RetentionSimulator(config, n)
    simulator.reset_rows(np.arange(n), keys_from_seeds(np.arange(seed, seed + n)))
    return simulator


# --- the population laws -----------------------------------------------------------------------------------------
def test_gamma_visit_rates_follow_gamma_r_alpha(small_config):
    """lambda_i ~ Gamma(r, alpha) (rate alpha per day) over 3,000 arrivals; a 20% wrong alpha is rejected."""
    config = small_config.replace(**GAMMA)
    rates = _arrivals(config, 3000).state.visit_rate
    r, alpha = config.visit_rate_gamma_shape, config.visit_rate_gamma_rate
    assert stats.kstest(rates, stats.gamma(r, scale=1.0 / alpha).cdf).pvalue > 0.01
    assert stats.kstest(rates, stats.gamma(r, scale=1.0 / (1.2 * alpha)).cdf).pvalue < 1e-3
    assert abs(rates.mean() - r / alpha) < 4 * math.sqrt(r) / alpha / math.sqrt(rates.size)


def test_beta_dropout_propensities_follow_beta_a_b(small_config):
    """p_i ~ Beta(a, b) over 3,000 arrivals; Beta(a, 1.3 b) is rejected; no latent dropout gives p_i = 0."""
    config = small_config.replace(**BETA)
    p = _arrivals(config, 3000).state.dropout_probability
    a, b = config.dropout_beta_a, config.dropout_beta_b
    assert np.all((p >= 0.0) & (p <= 1.0))
    assert stats.kstest(p, stats.beta(a, b).cdf).pvalue > 0.01
    assert stats.kstest(p, stats.beta(a, 1.3 * b).cdf).pvalue < 1e-3
    assert np.all(_arrivals(small_config.replace(**GAMMA), 50).state.dropout_probability == 0.0)


def test_optional_traits_leave_the_other_arrival_draws_alone(small_config):
    """The extra uniforms come after the arrival's normals: interest, satisfaction, price sensitivity and patience
    are the default world's for the same seeds, and beta dropout alone keeps the log-normal visit rate."""
    default = _arrivals(small_config, 40, seed=7).state
    both = _arrivals(small_config.replace(**GAMMA, **BETA), 40, seed=7).state
    dropout_only = _arrivals(small_config.replace(**BETA), 40, seed=7).state
    for name in ("interest", "satisfaction", "price_sensitivity", "patience"):
        assert np.array_equal(getattr(both, name), getattr(default, name)), name
    assert np.array_equal(dropout_only.visit_rate, default.visit_rate)
    assert not np.array_equal(both.visit_rate, default.visit_rate)
    assert np.array_equal(both.dropout_probability, dropout_only.dropout_probability)


# --- the dropout rule, by hand ------------------------------------------------------------------------------------
def _one_shopper(config: envs.RetentionConfig, p: float) -> envs.RetentionSimulator:
    simulator = envs.RetentionSimulator(config, 1)
    simulator.reset_rows(np.zeros(1, dtype=np.int64), np.array([key_from_seed(3)]))
    simulator.state.dropout_probability[0] = p  # her propensity, set by hand
    return simulator


def _first_finish(simulator: envs.RetentionSimulator, method: str, rng, max_steps: int = 400) -> tuple[int, dict]:
    """Steps until her episode ends (one session per step here) and the last response as Python scalars."""
    k, m = simulator.config.slate_size, simulator.config.n_candidates
    for step in range(1, max_steps + 1):
        response = STEP_METHODS[method](simulator, random_slate(rng, m, k)[None, :])
        out = {name: np.asarray(value).reshape(-1)[0].item() for name, value in response._asdict().items()}
        assert out["session_ended"], "every session is one impression here"
        if out["churned"] or out["horizon_reached"]:
            return step, out
    raise AssertionError(f"no end within {max_steps} steps")


@pytest.mark.parametrize("method", STEP_METHODS)
def test_dropout_after_a_purchase_session(small_config, rng, method):
    """dropout_after=purchase_session, no churn hazard, no gap churn: p = 1 ends her after her first session,
    which had a purchase (dropped out, not gap-churned); p = 0 never (she reaches the horizon); p = 1 without
    purchases never either."""
    config = small_config.replace(**BETA, **ONE_CLICK_SESSIONS, **BUY, churn_window_days=math.inf, horizon_days=30.0)
    step, out = _first_finish(_one_shopper(config, 1.0), method, rng)
    assert step == 1 and out["purchased"]
    assert out["churned"] and out["dropped_out"] and not out["gap_churned"] and not out["horizon_reached"]
    step, out = _first_finish(_one_shopper(config, 0.0), method, rng)
    assert step > 1 and out["horizon_reached"] and not out["churned"] and not out["dropped_out"]
    no_purchase = config.replace(**NEVER_BUY)
    step, out = _first_finish(_one_shopper(no_purchase, 1.0), method, rng)
    assert step > 1 and out["horizon_reached"] and not out["dropped_out"]


@pytest.mark.parametrize("method", STEP_METHODS)
def test_dropout_after_every_session(small_config, rng, method):
    """dropout_after=session: p = 1 ends her after her first session even without a purchase."""
    config = small_config.replace(
        **BETA, **ONE_CLICK_SESSIONS, **NEVER_BUY, dropout_after="session", churn_window_days=math.inf
    )
    step, out = _first_finish(_one_shopper(config, 1.0), method, rng)
    assert step == 1 and not out["purchased"] and out["dropped_out"] and out["churned"]


def test_churn_events_combine_the_hazard_and_the_dropout_independently(small_config):
    """Hand-derived rows: dropped out iff u' < sigma(c0 - c1 s), or u'' < p on a qualifying session; gap-churned iff
    not dropped out and g > W. At s = 0.5, c0 = 0, c1 = 2: hazard sigma(-1) = 0.2689."""
    config = small_config.replace(**BETA, churn_base=0.0, churn_satisfaction=2.0, churn_window_days=10.0)
    #                    gap   u'    u''
    uniform = np.array(
        [
            [0.0, 0.20, 0.99],  # hazard fires
            [0.0, 0.30, 0.10],  # hazard misses, dropout 0.10 < p = 0.5 on a purchase session
            [0.0, 0.30, 0.10],  # same draws, no purchase: she stays (purchase_session rule)
            [0.0, 0.30, 0.60],  # both miss, gap 12 > 10: gap-churned
            [0.0, 0.30, 0.60],  # both miss, gap 8: still here
            [0.0, 0.20, 0.60],  # hazard fires and gap 12: dropped out only (the causes are exclusive)
        ]
    )
    satisfaction = np.full(6, 0.5)
    gap = np.array([1.0, 1.0, 1.0, 12.0, 8.0, 12.0])
    p = np.full(6, 0.5)
    purchase_session = np.array([True, True, False, True, True, True])
    dropped, gap_churned = churn_events(uniform, satisfaction, gap, p, purchase_session, config)
    assert dropped.tolist() == [True, True, False, False, False, True]
    assert gap_churned.tolist() == [False, False, False, True, False, False]
    every = config.replace(dropout_after="session")
    assert churn_events(uniform, satisfaction, gap, p, purchase_session, every)[0][2]
    no_dropout = config.replace(dropout_distribution="none")  # the default rule reads two uniforms only
    dropped, _ = churn_events(uniform[:, :2], satisfaction, gap, p, purchase_session, no_dropout)
    assert dropped.tolist() == [True, False, False, False, False, True]
    infinite = config.replace(churn_window_days=math.inf)
    assert not churn_events(uniform, satisfaction, gap * 1e6, p, purchase_session, infinite)[1].any()


# --- the observed churn rule ---------------------------------------------------------------------------------------
def _run(config: envs.RetentionConfig, batch_size: int, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Totals of the info flags over a rollout with autoreset (random slates)."""
    vec = envs.RetentionVectorEnv(batch_size, config)
    vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    totals: dict[str, float] = {}
    longest_gap = 0.0
    for _ in range(steps):
        _, _, terminated, _, info = vec.step(random_slates(rng, batch_size, config.n_candidates, config.slate_size))
        for key in ("churned", "dropped_out", "gap_churned", "returned"):
            if key in info:
                totals[key] = totals.get(key, 0) + int(info[key].sum())
        assert np.array_equal(terminated, info["churned"])
        longest_gap = max(longest_gap, float(info["return_gap_days"].max()))
    return {**totals, "longest_gap": longest_gap}


def test_infinite_churn_window_never_churns_by_a_gap(small_config):
    """With churn_window_days = inf and no churn hazard nobody is terminated, though many gaps exceed 14 days; the
    same world with a 14-day window gap-churns many (so the check could fail)."""
    rare_visits = small_config.replace(visit_rate_median=0.01, churn_base=-100.0, leave_base=2.0, horizon_days=200.0)
    off = _run(rare_visits.replace(churn_window_days=math.inf), 64, 300)
    assert off["churned"] == 0 and off["gap_churned"] == 0 and off["dropped_out"] == 0
    assert off["longest_gap"] > 14.0 and off["returned"] > 0
    on = _run(rare_visits.replace(dropout_distribution="beta"), 64, 300)  # finite window, causes reported
    assert on["gap_churned"] > 10 and on["churned"] == on["gap_churned"] + on["dropped_out"]


def test_churn_causes_are_reported_only_where_the_options_are_on(small_config):
    """The default world's infos keep their keys; each option adds dropped_out and gap_churned."""
    assert not small_config.reports_churn_causes
    assert "dropped_out" not in _run(small_config, 4, 3)
    for option in (GAMMA, BETA, {"churn_window_days": math.inf}):
        config = small_config.replace(**option)
        assert config.reports_churn_causes
        assert "dropped_out" in _run(config, 4, 3) and "gap_churned" in _run(config, 4, 3)


# --- config ---------------------------------------------------------------------------------------------------------
def test_config_accepts_an_infinite_window_and_named_choices_from_yaml(tmp_path):
    """YAML .inf and the choice names load; wrong names, -inf and nan are refused, naming the field."""
    path = tmp_path / "world.yaml"
    path.write_text(
        "session: {churn_window_days: .inf, dropout_after: session}\n"
        "shoppers: {visit_rate_distribution: gamma, dropout_distribution: beta}\n"
    )
    config = envs.RetentionConfig.from_yaml(path)
    assert math.isinf(config.churn_window_days) and config.dropout_after == "session"
    assert envs.RetentionConfig.from_dict(yaml.safe_load(config.to_yaml())) == config
    for bad, field in (
        ({"visit_rate_distribution": "weibull"}, "visit_rate_distribution"),
        ({"dropout_distribution": 1.0}, "dropout_distribution"),
        ({"dropout_after": "transaction"}, "dropout_after"),
        ({"churn_window_days": -math.inf}, "churn_window_days"),
        ({"churn_window_days": math.nan}, "churn_window_days"),
        ({"dropout_beta_a": 0.0}, "dropout_beta_a"),
        ({"visit_rate_gamma_rate": math.inf}, "visit_rate_gamma_rate"),
    ):
        with pytest.raises(ValueError, match=field):
            envs.RetentionConfig(**bad)


# --- retention curves ------------------------------------------------------------------------------------------------
def _hazard_ratio(config: envs.RetentionConfig, batch_size: int, seed: int) -> float:
    """Late over early churn hazard of a cohort followed to the horizon: (1 - S(60)/S(40)) / (1 - S(20)/S(0)), with
    S(d) the share still active after day d (churned shoppers leave; those past the horizon are censored at it)."""
    vec = envs.RetentionVectorEnv(batch_size, config, autoreset_mode=AutoresetMode.DISABLED)
    vec.reset(seed=seed)
    rng = np.random.default_rng(seed)
    churn_day = np.full(batch_size, np.inf)
    live = np.ones(batch_size, dtype=bool)
    while live.any():
        slates = np.argsort(rng.random((batch_size, config.n_candidates)), axis=1)[:, : config.slate_size]
        _, _, terminated, truncated, info = vec.step(slates)
        churn_day[terminated] = info["day"][terminated] + 1
        live &= ~(terminated | truncated)
    survival = [float((churn_day > day).mean()) for day in (0, 20, 40, 60)]
    return (1.0 - survival[3] / survival[2]) / (1.0 - survival[1] / survival[0])


def test_heterogeneous_retention_curves_bend_while_the_default_stays_straight(small_config):
    """A population mixing gamma visit rates and Beta(0.3, 0.6) dropout (after purchase sessions, the gap rule
    off): the fragile leave first, so the late hazard is well under the early one (measured: 0.39-0.50 over
    three seeds). The homogeneous default's hazard barely moves (0.75-0.87)."""
    hetero = small_config.replace(
        visit_rate_distribution="gamma",
        visit_rate_gamma_shape=1.0,
        visit_rate_gamma_rate=12.5,
        dropout_distribution="beta",
        dropout_beta_a=0.3,
        dropout_beta_b=0.6,
        churn_window_days=math.inf,
    )
    bent, straight = _hazard_ratio(hetero, 2000, 10_000), _hazard_ratio(small_config, 2000, 10_000)
    assert bent < 0.65
    assert straight > 0.7
    assert straight - bent > 0.2
