"""Preprocessing: the training table, offline features that match serve-time ones, and leak-free splits."""

import numpy as np
import pandas as pd
import pytest

from stickyrec import envs
from stickyrec.agents import RandomPolicy
from stickyrec.envs.shoppers import SHOPPER_FEATURES
from stickyrec.experiments.data import (
    TRUE_CLICK_PROB,
    item_log_features,
    load_training_log,
    shopper_feature_columns,
    shopper_history_features,
    split_log,
)
from stickyrec.experiments.platform_log import collect


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("log")
    config = envs.get_preset("small").replace(horizon_days=20.0)
    store, contexts = folder / "log.duckdb", folder / "contexts.parquet"
    collect(RandomPolicy(0), config, 150, store=store, run_id="data", seed=3, progress=False, contexts=contexts)
    catalog = envs.make_catalog(config)
    return config, catalog, load_training_log(store, "data", contexts, catalog), store, contexts


def test_training_table_joins_every_impression_to_its_serve_time_features(logged):
    config, _, table, _, _ = logged
    features = shopper_feature_columns(table)
    assert len(features) == config.n_categories * 2 + len(SHOPPER_FEATURES) + config.embedding_dim
    assert not table[features].isna().any().any()
    assert table[TRUE_CLICK_PROB].between(0, 1).all()


def test_true_click_probabilities_match_the_observed_click_rate(logged):
    """The logged ceiling probabilities are calibrated: their mean is the click rate (within noise)."""
    table = logged[2]
    assert abs(table[TRUE_CLICK_PROB].mean() - table["clicked"].mean()) < 0.005


def test_offline_history_features_equal_the_serve_time_ones(logged):
    """Features rebuilt from the log with past rows only equal what the shopper observation carried."""
    config, catalog, table, _, _ = logged
    history = shopper_history_features(table, config.n_categories, catalog.category)
    steps = table[table["position"] == 0].merge(history, on=["shopper", "step"])
    assert np.allclose(np.log1p(steps["clicks_before"]), steps["s4"], atol=1e-6)
    assert np.allclose(np.log1p(steps["purchases_before"]), steps["s5"], atol=1e-6)
    assert np.allclose(np.log1p(steps["spend_before"]), steps["s6"], rtol=1e-5, atol=1e-5)
    assert np.allclose(np.log1p(steps["visits"]), steps["s1"], atol=1e-6)
    assert np.array_equal(steps["session_step"], steps["s2"])
    assert np.array_equal(steps["session_clicks_before"], steps["s3"])


def test_history_features_never_count_the_current_step(logged):
    """A step's own click is not in its features: the first step of every shopper starts from zero."""
    config, catalog, table, _, _ = logged
    history = shopper_history_features(table, config.n_categories, catalog.category)
    first = history[history["step"] == 0]
    recent = first[[c for c in history.columns if c.startswith("recent_clicks_c")]].to_numpy()
    assert (first[["clicks_before", "purchases_before", "spend_before"]].to_numpy() == 0).all()
    assert (recent == 0).all()


def test_split_is_by_shopper_and_by_time(logged):
    table = logged[2]
    splits = split_log(table, test_fraction=0.25, seed=1)
    test_shoppers = set(splits.test["shopper"])
    assert test_shoppers.isdisjoint(splits.train["shopper"]) and test_shoppers.isdisjoint(splits.validation["shopper"])
    assert splits.train["day"].max() < splits.cut_day <= splits.validation["day"].min()
    assert len(splits.train) + len(splits.validation) + len(splits.test) == len(table)


@pytest.mark.parametrize("kwargs", [{"test_fraction": 0.0}, {"validation_days_fraction": 1.5}])
def test_bad_split_fractions_raise(logged, kwargs):
    with pytest.raises(ValueError, match="out of range"):
        split_log(logged[2], **kwargs)


def test_empty_log_cannot_be_split():
    with pytest.raises(ValueError, match="empty"):
        split_log(pd.DataFrame({"shopper": [], "day": []}))


def test_contexts_of_another_run_are_refused(logged, tmp_path):
    config, catalog, _, store, _ = logged
    other = tmp_path / "other.parquet"
    collect(
        RandomPolicy(1),
        config,
        20,
        store=tmp_path / "other.duckdb",
        run_id="other",
        seed=99,
        progress=False,
        contexts=other,
    )
    with pytest.raises(ValueError, match="no logged features"):
        load_training_log(store, "data", other, catalog)


def test_missing_contexts_file_is_a_clear_error(logged, tmp_path):
    _, catalog, _, store, _ = logged
    with pytest.raises(ValueError, match="does not exist"):
        load_training_log(store, "data", tmp_path / "nope.parquet", catalog)


def test_item_log_features_shrink_rare_items_toward_the_mean(logged):
    config, _, table, _, _ = logged
    items = item_log_features(table, config.n_items)
    assert len(items) == config.n_items
    mean = items["clicks"].sum() / items["impressions"].sum()
    unseen = items[items["impressions"] == 0]
    assert np.allclose(unseen["click_rate"], mean)
