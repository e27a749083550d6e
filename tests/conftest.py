"""Shared fixtures and the hypothesis profile of the suite (strategies live in ``tests/strategies.py``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from stickyrec import envs

# Modest example counts keep the default suite fast; HYPOTHESIS_PROFILE=thorough digs deeper on purpose.
settings.register_profile("default", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def small_config() -> envs.RetentionConfig:
    """The ``small`` preset: same dynamics as the default, a few hundred items."""
    return envs.get_preset("small")


@pytest.fixture(scope="session")
def short_config(small_config) -> envs.RetentionConfig:
    """The small preset with a 5-day horizon, so shoppers finish (and are reset) within a few dozen steps."""
    return small_config.replace(horizon_days=5.0)


@pytest.fixture
def small_env(small_config) -> envs.RetentionEnv:
    return envs.RetentionEnv(small_config)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for actions (tests never touch numpy's global generator)."""
    return np.random.default_rng(20240601)
