"""The one rollout loop (``stickyrec.experiments.rollout``) and its observers: cohort statistics, the impression log
and serve-time features, and the click-model probe all see the same steps, and observing changes nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stickyrec import envs
from stickyrec.agents import RandomPolicy
from stickyrec.experiments.mlp_auc_probe import collect_random_log
from stickyrec.experiments.platform_log import collect, read_contexts, read_impressions
from stickyrec.experiments.rollout import RolloutObserver, rollout
from stickyrec.experiments.simulate import CohortStats, simulate_cohort

N_SHOPPERS = 60
SEED = 5


@pytest.fixture(scope="module")
def config():
    return envs.get_preset("small").replace(horizon_days=8.0)


class StepCounter(RolloutObserver):
    """Counts the hooks' calls and the impressions shown, checking the masks it is given."""

    def __init__(self) -> None:
        self.resets = self.before = self.after = self.shown = 0

    def on_reset(self, env, obs, info) -> None:
        self.resets += 1
        self.n = env.num_envs

    def before_step(self, obs, slates, active) -> None:
        assert active.shape == (self.n,) and active.any()
        self.before += 1

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        assert not (info["active"] & ~active).any()  # nobody comes back once done
        self.after += 1
        self.shown += int(active.sum())

    def finish(self):
        return self.resets, self.before, self.after, self.shown


def _same_cohort(a, b) -> None:
    for field in ("impressions", "clicks", "purchases", "revenue", "sessions", "churned", "last_day"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for name, values in a.daily.items():
        np.testing.assert_array_equal(values, b.daily[name])


def test_observers_see_every_step_and_change_nothing(config):
    reference = simulate_cohort(RandomPolicy(0), config, N_SHOPPERS, seed=SEED)
    counter = StepCounter()
    stats = CohortStats("random", config, N_SHOPPERS)
    cohort, (resets, before, after, shown) = rollout(RandomPolicy(0), config, N_SHOPPERS, SEED, [stats, counter])
    _same_cohort(cohort, reference)
    assert resets == 1 and before == after > 0
    assert shown == int(reference.impressions.sum())


def test_rollout_calls_the_policy_update_hook_after_each_step(config):
    class Recording(RandomPolicy):
        def __init__(self, seed):
            super().__init__(seed)
            self.updates = 0

        def update(self, obs, slates, info):
            assert "clicked_position" in info
            self.updates += 1

    policy = Recording(0)
    (counts,) = rollout(policy, config, N_SHOPPERS, SEED, [StepCounter()])
    assert policy.updates == counts[2]


def test_collect_logs_and_records_what_simulate_counts(config, tmp_path):
    """One loop: the collected log and its contexts agree with the cohort statistics of the same run."""
    cohort = simulate_cohort(RandomPolicy(0), config, N_SHOPPERS, seed=SEED)
    store, contexts = tmp_path / "log.duckdb", tmp_path / "contexts.parquet"
    collect(RandomPolicy(0), config, N_SHOPPERS, store, "r", seed=SEED, progress=False, contexts=contexts)
    log = read_impressions(store, "r")
    per = log.groupby("shopper")
    np.testing.assert_array_equal(per.size().to_numpy(), cohort.impressions * config.slate_size)
    np.testing.assert_array_equal(per["clicked"].sum().to_numpy(), cohort.clicks)
    steps = read_contexts(contexts)
    assert len(steps) == int(cohort.impressions.sum())
    np.testing.assert_array_equal(steps.groupby("shopper").size().to_numpy(), cohort.impressions)


def test_probe_table_keeps_whole_steps_with_true_click_probabilities(config):
    table = collect_random_log(config, N_SHOPPERS, seed=SEED, keep_fraction=0.5, progress=False)
    k = config.slate_size
    per_step = table.groupby(["shopper", "step"]).size()
    assert (per_step == k).all()
    assert table["true_click_prob"].between(0, 1).all()
    assert (
        isinstance(table, pd.DataFrame) and table["clicked"].groupby([table["shopper"], table["step"]]).sum().max() <= 1
    )
