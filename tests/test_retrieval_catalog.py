"""The catalog (drawn from catalog_seed alone) and candidate retrieval (M distinct items per session)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stickyrec import envs
from stickyrec.envs.catalog import make_catalog, normalise_rows
from stickyrec.envs.retrieval import CandidateRetriever
from tests.helpers import random_slate
from tests.strategies import configs

CATALOG_FIELDS = (
    "category",
    "embedding",
    "price",
    "quality",
    "appeal",
    "is_clickbait",
    "popularity",
    "rating",
    "ctr_estimate",
    "centroids",
    "items_by_category",
    "log_relative_price",
    "popularity_cdf",
    "permutation",
)


def _assert_catalogs_equal(a: envs.Catalog, b: envs.Catalog) -> None:
    for name in CATALOG_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _arrival_interests(config, catalog, n: int, seed: int) -> np.ndarray:
    """Interests drawn like arriving shoppers': a favourite category's centroid plus isotropic noise."""
    rng = np.random.default_rng(seed)
    favourite = rng.integers(catalog.n_categories, size=n)
    noise = rng.standard_normal((n, config.embedding_dim)) / np.sqrt(config.embedding_dim)
    return normalise_rows(config.interest_focus * catalog.centroids[favourite] + noise)


# --- catalog ---------------------------------------------------------------------------------------------------


def test_catalog_is_deterministic_from_catalog_seed(small_config):
    """Two catalogs drawn from the same config are identical, array for array."""
    _assert_catalogs_equal(make_catalog(small_config), make_catalog(small_config))


def test_catalog_changes_with_catalog_seed(small_config):
    """A different catalog_seed draws a different catalog."""
    a, b = make_catalog(small_config), make_catalog(small_config.replace(catalog_seed=1))
    assert not np.array_equal(a.embedding, b.embedding)
    assert not np.array_equal(a.quality, b.quality)


def test_catalog_is_independent_of_the_shopper_seed_and_of_non_catalog_fields(small_config, rng):
    """Envs reset with different shopper seeds, and configs differing only outside the catalog group,
    share one catalog (agents train on one population and are evaluated on others in the same store)."""
    first, second = envs.RetentionEnv(small_config), envs.RetentionEnv(small_config)
    first.reset(seed=0)
    second.reset(seed=12345)
    for env in (first, second):
        for _ in range(5):
            env.step(random_slate(rng, small_config.n_candidates, small_config.slate_size))
    _assert_catalogs_equal(first.catalog, second.catalog)
    _assert_catalogs_equal(first.catalog, envs.RetentionVectorEnv(3, small_config).catalog)
    other_world = small_config.replace(temperature=1.0, horizon_days=5.0, slate_size=3, churn_base=0.0)
    _assert_catalogs_equal(first.catalog, make_catalog(other_world))


@pytest.mark.parametrize("share", [0.0, 0.15, 0.333, 1.0])
def test_clickbait_share_matches_config(small_config, share):
    """round(clickbait_share * n_items) items are clickbait."""
    catalog = make_catalog(small_config.replace(clickbait_share=share))
    assert catalog.is_clickbait.dtype == bool
    assert catalog.is_clickbait.sum() == round(share * small_config.n_items)


def test_clickbait_items_look_better_and_are_worse():
    """Clickbait items have a higher mean appeal and a lower mean quality than regular items (default catalog)."""
    catalog = make_catalog(envs.RetentionConfig())
    bait, regular = catalog.is_clickbait, ~catalog.is_clickbait
    assert catalog.appeal[bait].mean() > catalog.appeal[regular].mean() + 0.2
    assert catalog.quality[bait].mean() < catalog.quality[regular].mean() - 0.2


def test_public_signals_reflect_the_latent_ones():
    """The public rating tracks quality and the CTR estimate tracks appeal, both noisily and bounded."""
    catalog = make_catalog(envs.RetentionConfig())
    assert np.corrcoef(catalog.rating, catalog.quality)[0, 1] > 0.5
    assert np.corrcoef(catalog.ctr_estimate, catalog.appeal)[0, 1] > 0.5
    assert not np.array_equal(catalog.rating, catalog.quality)
    assert np.all((catalog.rating >= 0) & (catalog.rating <= 1))
    assert np.all((catalog.ctr_estimate >= 0) & (catalog.ctr_estimate <= 0.3))


def test_catalog_tables_are_consistent(small_config):
    """Popularity is a distribution with a CDF ending in exactly 1; items_by_category lists each item once,
    under its category; embeddings are unit rows; categories are balanced within one item."""
    catalog = make_catalog(small_config)
    assert np.isclose(catalog.popularity.sum(), 1.0) and catalog.popularity_cdf[-1] == 1.0
    assert np.all(np.diff(catalog.popularity_cdf) >= 0)
    listed = catalog.items_by_category[catalog.items_by_category >= 0]
    assert np.array_equal(np.sort(listed), np.arange(small_config.n_items))
    for category, row in enumerate(catalog.items_by_category):
        assert np.all(catalog.category[row[row >= 0]] == category)
    assert np.allclose(np.linalg.norm(catalog.embedding, axis=1), 1.0)
    sizes = np.bincount(catalog.category, minlength=small_config.n_categories)
    assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(np.sort(catalog.permutation), np.arange(small_config.n_items))


# --- retrieval -------------------------------------------------------------------------------------------------


def _assert_distinct_valid(ids: np.ndarray, config) -> None:
    assert ids.shape[1] == config.n_candidates
    assert ids.min() >= 0 and ids.max() < config.n_items
    ordered = np.sort(ids, axis=1)
    assert not np.any(ordered[:, 1:] == ordered[:, :-1]), "a retrieval repeated an item"


def test_retrieval_returns_m_distinct_items_for_many_interests(small_config):
    """For thousands of random interests and block offsets (edge uniforms included), each retrieval is M
    distinct catalog ids."""
    catalog = make_catalog(small_config)
    retriever = CandidateRetriever(small_config, catalog)
    rng = np.random.default_rng(0)
    interests = np.concatenate(
        [
            _arrival_interests(small_config, catalog, 2000, 1),
            normalise_rows(rng.standard_normal((2000, small_config.embedding_dim))),
        ]
    )
    uniform = rng.random((interests.shape[0], retriever.uniforms_per_call))
    uniform[:4] = [[0.0, 0.0], [1.0 - 2**-53, 1.0 - 2**-53], [0.0, 1.0 - 2**-53], [1.0 - 2**-53, 0.0]]
    ids = retriever.retrieve(interests, uniform)
    assert ids.shape == (interests.shape[0], small_config.n_candidates) and ids.dtype == np.int32
    _assert_distinct_valid(ids, small_config)


@given(config=configs(), seed=st.integers(0, 2**31))
def test_retrieval_is_distinct_for_any_valid_config(config, seed):
    """Any valid retrieval split (nearest/popular/random shares, pool size, clusters) gives M distinct ids."""
    catalog = make_catalog(config)
    retriever = CandidateRetriever(config, catalog)
    rng = np.random.default_rng(seed)
    interests = normalise_rows(rng.standard_normal((64, config.embedding_dim)))
    uniform = rng.random((64, retriever.uniforms_per_call))
    uniform[0] = 1.0 - 2**-53
    _assert_distinct_valid(retriever.retrieve(interests, uniform), config)


def test_nearest_candidates_are_closer_to_the_interest_than_random_ones(small_config):
    """On average over shoppers (and for almost every one), the nearest block of candidates is more relevant
    (theta . e) than the random block and than the catalog at large."""
    catalog = make_catalog(small_config)
    retriever = CandidateRetriever(small_config, catalog)
    interests = _arrival_interests(small_config, catalog, 1000, 2)
    ids = retriever.retrieve(interests, np.random.default_rng(3).random((1000, 2)))
    relevance = np.einsum("emd,ed->em", catalog.embedding[ids], interests)
    n_nearest, n_popular = small_config.n_nearest, small_config.n_popular
    nearest = relevance[:, :n_nearest].mean()
    random_part = relevance[:, n_nearest + n_popular :].mean()
    chance = (interests @ catalog.embedding.T).mean()
    assert nearest > random_part + 0.2, (nearest, random_part)
    assert nearest > chance + 0.2
    # per shopper, too: the nearest block wins for the vast majority
    per_shopper = relevance[:, :n_nearest].mean(axis=1) > relevance[:, n_nearest + n_popular :].mean(axis=1)
    assert per_shopper.mean() > 0.9


def test_candidates_are_refreshed_only_when_a_session_starts(small_config, rng):
    """Within a session the candidate list stays put; it may change only on a return visit."""
    env = envs.RetentionEnv(small_config)
    obs, _ = env.reset(seed=8)
    changed_on_return = 0
    for _ in range(400):
        previous = obs["candidate_ids"]
        obs, _, terminated, truncated, info = env.step(
            random_slate(rng, small_config.n_candidates, small_config.slate_size)
        )
        if terminated or truncated:
            break
        if info["returned"]:
            changed_on_return += not np.array_equal(obs["candidate_ids"], previous)
        else:
            assert np.array_equal(obs["candidate_ids"], previous)
    assert changed_on_return > 0, "no return visit changed the candidates"
