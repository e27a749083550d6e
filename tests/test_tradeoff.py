"""The trade-off the project exists for: chasing clicks wins the first week and loses the customers.

Measured over 2,000 simulated shoppers per policy with the default config (60-day horizon).
"""

import pytest

from stickyrec.agents import ClickChaserPolicy, RelevanceQualityPolicy
from stickyrec.envs import RetentionConfig
from stickyrec.experiments.simulate import simulate_cohort

N_SHOPPERS = 2000


@pytest.fixture(scope="module")
def outcomes():
    config = RetentionConfig()
    return {
        policy.name: simulate_cohort(policy, config, N_SHOPPERS, seed=12345).summary()
        for policy in (ClickChaserPolicy(), RelevanceQualityPolicy())
    }


def test_click_chaser_gets_more_first_week_clicks(outcomes):
    """Filling slates with the most appealing items raises the first-week click rate by a wide margin."""
    chaser, quality = outcomes["click_chaser"], outcomes["relevance_quality"]
    assert chaser["click_rate_week1"] > quality["click_rate_week1"] + 0.10


def test_click_chaser_loses_shoppers_by_day_30(outcomes):
    """...but keeps far fewer shoppers at day 30: tens of percentage points, not a few."""
    chaser, quality = outcomes["click_chaser"], outcomes["relevance_quality"]
    assert quality["retention_day30"] - chaser["retention_day30"] >= 0.20


def test_click_chaser_sells_less_over_60_days(outcomes):
    """...and sells less per shopper over the 60-day horizon."""
    chaser, quality = outcomes["click_chaser"], outcomes["relevance_quality"]
    assert quality["purchases_per_shopper"] >= 2.0 * chaser["purchases_per_shopper"]
    assert quality["revenue_per_shopper"] > chaser["revenue_per_shopper"]


def test_defaults_land_in_the_design_ranges(outcomes):
    """The founding design's intent: 20-40% of slates clicked by a decent policy, sessions of 5-15 impressions."""
    quality = outcomes["relevance_quality"]
    assert 0.15 <= quality["click_rate"] <= 0.40
    impressions_per_session = quality["impressions_per_shopper"] / quality["sessions_per_shopper"]
    assert 5 <= impressions_per_session <= 15
