"""``collect``: follow a cohort under a logging policy and write every impression to a store, resumably.

The cohort runs through the one rollout loop (``experiments.rollout``) with two observers: ``ImpressionLogObserver``
(the impressions, through the transactional ``ImpressionLogger``) and, with ``contexts=``, the serve-time feature
recorder (``recorder.ContextRecorder``).

The ``impression_runs`` table records each run's parameters (policy, seed, shoppers, config hash): a re-run with
other parameters raises ``RunMismatchError`` before any work; a re-run of a finished run returns at once; a re-run
of an interrupted one resumes it without duplicates (see ``logger``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time

import numpy as np

from stickyrec.envs.config import make_config
from stickyrec.experiments.platform_log.backend import LogStore
from stickyrec.experiments.platform_log.errors import RunMismatchError
from stickyrec.experiments.platform_log.logger import (
    DEFAULT_FLUSH_ROWS,
    DEFAULT_FLUSH_SECONDS,
    ImpressionLogger,
    LoggerStats,
)
from stickyrec.experiments.platform_log.offers import OfferLogObserver
from stickyrec.experiments.platform_log.recorder import ContextRecorder
from stickyrec.experiments.platform_log.schema import RUNS_TABLE, RunInfo, check_name, utc_now
from stickyrec.experiments.platform_log.stores import opened
from stickyrec.experiments.rollout import RolloutObserver, rollout
from stickyrec.inputs import check_output_path


@dataclasses.dataclass(frozen=True)
class CollectResult:
    """Summary of ``collect``: rows written now, rows found already stored (a re-run), time taken."""

    run_id: str
    store: str
    impressions: int  # in the store for this run, after the collection
    impressions_written: int
    impressions_skipped: int
    sessions_written: int
    commits: int
    seconds: float
    write_seconds: float
    already_complete: bool = False

    @property
    def impressions_per_second(self) -> float:
        return (self.impressions_written + self.impressions_skipped) / max(self.seconds, 1e-9)


def config_fingerprint(config) -> tuple[str, str]:
    """(sha256 hex, JSON) of a config's fields: a re-run must match it."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest(), text


class ImpressionLogObserver(RolloutObserver):
    """Rollout observer: every impression of the live shoppers into an ``ImpressionLogger``.

    If the policy has ``slate_propensity(obs, slate)`` returning (B, k) or (B,) probabilities, they fill
    ``propensity``; otherwise it is NULL. ``finish()`` closes the logger and returns its ``LoggerStats``.
    """

    def __init__(self, logger: ImpressionLogger, policy) -> None:
        self.logger = logger
        self.propensity_of = getattr(policy, "slate_propensity", None)
        self.propensity = None
        self.logged = 0  # impressions seen so far (for the progress bar)

    def before_step(self, obs, slates, active) -> None:  # the policy's view of the slates it just chose
        self.propensity = self.propensity_of(obs, slates) if callable(self.propensity_of) else None

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        rows = np.arange(active.shape[0])[:, None]
        items = obs["candidate_ids"][rows, np.asarray(slates, dtype=np.int64)]
        self.logger.log_step(active, items, info, self.propensity)
        self.logged += int(active.sum()) * self.logger.slate_size

    def postfix(self) -> dict[str, str]:
        return {"impressions": f"{self.logged:,}"}

    def finish(self):
        return self.logger.close()


def _resume_point(handle: LogStore, info: RunInfo, started: float):
    """(committed sessions or None, finished result or None) of a run id: what a (re-)run starts from.

    Raises ``RunMismatchError`` when the stored run has other parameters, or impressions without a run record.
    """
    stored = handle.get_run(info.run_id)
    if stored is None:
        if handle.count(info.run_id):
            raise RunMismatchError(
                f"{handle.description} holds impressions of run {info.run_id!r} but no record of"
                f" its parameters in {RUNS_TABLE!r}; pick a new run_id"
            )
        handle.start_run(info)
        return None, None
    differ = [
        f"{name}: stored {getattr(stored, name)!r}, now {getattr(info, name)!r}"
        for name in ("policy", "seed", "n_shoppers", "config_hash")
        if getattr(stored, name) != getattr(info, name)
    ]
    if differ:
        raise RunMismatchError(
            f"run {info.run_id!r} is already in {handle.description} with other parameters"
            f" ({'; '.join(differ)}); re-run it with the same ones or pick a new run_id"
        )
    if stored.finished_at is not None:
        total = handle.count(info.run_id)
        seconds = time.perf_counter() - started
        done = CollectResult(info.run_id, handle.description, total, 0, total, 0, 0, seconds, 0.0, True)
        return None, done
    return handle.committed_sessions(info.run_id), None


def _log_cohort(
    handle: LogStore,
    policy,
    config,
    info: RunInfo,
    committed,
    contexts,
    *,
    flush_rows: int,
    flush_seconds: float,
    progress: bool,
) -> LoggerStats:
    """Roll the cohort out with the impression logger (and the context recorder); the logger's stats."""
    logger = ImpressionLogger(
        handle,
        info.run_id,
        info.policy,
        info.n_shoppers,
        config.slate_size,
        n_items=config.n_items,
        committed=committed,
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
    )
    log = ImpressionLogObserver(logger, policy)
    observers = [log] if contexts is None else [log, ContextRecorder(info.n_shoppers, contexts)]
    if config.offers_on:  # a campaign: its offer events too, written once the cohort is done
        observers.append(OfferLogObserver(handle, info.run_id, info.policy, policy, info.n_shoppers))
    desc = f"collecting {info.policy}"
    try:
        return rollout(policy, config, info.n_shoppers, info.seed, observers, progress, desc, log.postfix)[0]
    except KeyboardInterrupt:  # keep the sessions that did complete; a re-run resumes from them
        logger.flush()
        raise


def collect(
    policy,
    config=None,
    n_shoppers: int = 1000,
    store: str | os.PathLike | LogStore | None = None,
    run_id: str | None = None,
    seed: int = 0,
    progress: bool = True,
    *,
    flush_rows: int = DEFAULT_FLUSH_ROWS,
    flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    connect_timeout: float = 5.0,
    contexts: str | os.PathLike | None = None,
) -> CollectResult:
    """Follow ``n_shoppers`` shoppers (seeds ``seed + i``) under ``policy`` to the horizon and log every impression.

    The cohort runs like ``experiments.simulate.simulate_cohort`` (the same ``experiments.rollout.rollout``:
    ``RetentionVectorEnv`` with autoreset disabled, ``policy.bind(env)``, ``policy.act(obs)`` each step). If the
    policy has ``slate_propensity(obs, slate)`` returning (B, k) or (B,) probabilities, they fill ``propensity``;
    otherwise it is NULL.

    ``store``: a DuckDB path (``None``: ``DEFAULT_STORE``), a SQLAlchemy URL or an open ``LogStore``. ``run_id``
    defaults to ``{policy}__{seed}__{UTC time}``. Re-running a run id resumes it without duplicates (see
    ``platform.logger``); a finished run returns at once. Every error that can be known in advance (store, schema,
    names, a run id reused with other parameters) is raised before the simulation starts.

    With ``offers: on`` in the config the policy may send offers (e.g. ``agents.offers.RandomOfferPolicy``); the
    run then also writes its offer events (``platform_log.offers``: shopper, day, discount, propensity, what she
    did next) to the store's ``offer_events`` table.

    ``contexts``: also write a Parquet file of serve-time features (feature logging, as production recommenders
    do to avoid train/serve skew), one row per step: ``shopper``, ``step``, the observation's shopper vector as
    ``s0 .. s{F-1}``, and — for analysis only, never for agents — the simulator's true click probability of each
    slate position, ``true_click_prob_0 .. true_click_prob_{k-1}`` (see ``platform.recorder``). Written
    atomically when the run ends.
    """
    config = make_config(config)
    if isinstance(n_shoppers, bool) or not isinstance(n_shoppers, (int, np.integer)) or n_shoppers < 1:
        raise ValueError(f"n_shoppers must be a positive integer, got {n_shoppers!r}")
    policy_name = check_name(getattr(policy, "name", type(policy).__name__), "policy name")
    if run_id is None:
        run_id = f"{policy_name}__{seed}__{utc_now().strftime('%Y%m%dT%H%M%S')}"
    check_name(run_id, "run_id")
    if callable(getattr(policy, "offer_propensity", None)) and not config.offers_on:  # before any store is made
        raise ValueError(f"policy {policy_name!r} sends offers but the config has offers: off; allowed: offers: on")
    if contexts is not None:  # a bad path fails now, not after the whole simulation
        check_output_path(contexts, "file", "contexts")
    config_hash, config_json = config_fingerprint(config)
    started = time.perf_counter()
    with opened(store, connect_timeout=connect_timeout) as handle:
        handle.check_schema(create=True)
        info = RunInfo(run_id, policy_name, int(seed), int(n_shoppers), config_hash, config_json, utc_now())
        committed, done = _resume_point(handle, info, started)
        if done is not None:
            return done
        options = {"flush_rows": flush_rows, "flush_seconds": flush_seconds, "progress": progress}
        stats = _log_cohort(handle, policy, config, info, committed, contexts, **options)
        total = handle.count(run_id)
        handle.finish_run(run_id, total)
    return CollectResult(
        run_id,
        handle.description,
        total,
        stats.impressions_written,
        stats.impressions_skipped,
        stats.sessions_written,
        stats.commits,
        time.perf_counter() - started,
        stats.write_seconds,
    )
