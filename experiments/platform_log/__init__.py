"""The platform's side of the simulation: the impression log, its stores, its logger and feature recorder.

The simulated world (``stickyrec.envs``) knows nothing of this: a platform logs what it showed and what shoppers did.
Modules, from the bottom up:

* ``schema``: the impression log's columns (``IMPRESSION_SCHEMA``, documented there), run ids and policy names,
  ``ImpressionBatch``, ``RunInfo``, and ``validate_impressions``.
* ``errors``: ``LogStoreError`` and its kind; ``EmptyLogError`` and ``UnknownItemError`` (from
  ``stickyrec.agents.errors``); password masking.
* ``backend``: ``LogStore``, what every store offers; ``duckdb_store`` (the embedded default, one DuckDB file) and
  ``sql_store`` (any SQLAlchemy URL: MariaDB/MySQL, PostgreSQL, SQLite) implement it; ``stores``: ``open_store``,
  ``read_impressions``, ``write_impressions``, ``list_runs``.
* ``logger``: ``ImpressionLogger``, which commits only complete sessions, one transaction per flush (crash-safe,
  resumable without duplicates).
* ``recorder``: serve-time features of every step (``ContextRecorder``, ``read_contexts``).
* ``collect``: a cohort under a logging policy, through the one rollout loop (``experiments.rollout``), into a
  store.
* ``offers``: logged campaigns (worlds with ``offers: on``): ``OfferLogObserver`` writes one row per offer sent
  (``OFFER_SCHEMA``: shopper, day, discount, propensity, what she did next) to the store's ``offer_events`` table;
  ``read_offer_events`` reads them back.
"""

from stickyrec.experiments.platform_log.backend import DEFAULT_STORE, LogStore
from stickyrec.experiments.platform_log.collect import CollectResult, ImpressionLogObserver, collect, config_fingerprint
from stickyrec.experiments.platform_log.duckdb_store import DuckDBLogStore
from stickyrec.experiments.platform_log.errors import (
    EmptyLogError,
    LogError,
    LogStoreError,
    RunMismatchError,
    SchemaMismatchError,
    StoreConnectionError,
    UnknownItemError,
)
from stickyrec.experiments.platform_log.logger import (
    DEFAULT_FLUSH_ROWS,
    DEFAULT_FLUSH_SECONDS,
    ImpressionLogger,
    LoggerStats,
)
from stickyrec.experiments.platform_log.offers import OfferLogObserver, read_offer_events
from stickyrec.experiments.platform_log.recorder import ContextRecorder, read_contexts
from stickyrec.experiments.platform_log.schema import (
    IMPRESSION_COLUMNS,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_TABLE,
    KEY_COLUMNS,
    OFFER_SCHEMA,
    OFFERS_TABLE,
    RUNS_TABLE,
    ImpressionBatch,
    LogColumn,
    RunInfo,
    check_name,
    validate_impressions,
)
from stickyrec.experiments.platform_log.sql_store import SQLLogStore
from stickyrec.experiments.platform_log.stores import list_runs, open_store, read_impressions, write_impressions

__all__ = [
    "DEFAULT_FLUSH_ROWS",
    "DEFAULT_FLUSH_SECONDS",
    "DEFAULT_STORE",
    "IMPRESSIONS_TABLE",
    "IMPRESSION_COLUMNS",
    "IMPRESSION_SCHEMA",
    "KEY_COLUMNS",
    "OFFERS_TABLE",
    "OFFER_SCHEMA",
    "RUNS_TABLE",
    "CollectResult",
    "ContextRecorder",
    "DuckDBLogStore",
    "EmptyLogError",
    "ImpressionBatch",
    "ImpressionLogObserver",
    "ImpressionLogger",
    "LogColumn",
    "LogError",
    "LogStore",
    "LogStoreError",
    "LoggerStats",
    "OfferLogObserver",
    "RunInfo",
    "RunMismatchError",
    "SQLLogStore",
    "SchemaMismatchError",
    "StoreConnectionError",
    "UnknownItemError",
    "check_name",
    "collect",
    "config_fingerprint",
    "list_runs",
    "open_store",
    "read_contexts",
    "read_impressions",
    "read_offer_events",
    "validate_impressions",
    "write_impressions",
]
