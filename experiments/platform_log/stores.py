"""Opening a store from a path or URL, and reading, appending and listing what it holds.

``open_store`` picks the backend (``stickyrec.credentials.store_target``): a DuckDB path ending in ``.duckdb`` or an
existing DuckDB file (``None``: ``DEFAULT_STORE``; ``":memory:"``; ``duckdb:///path``) opens the embedded store
(``duckdb_store``), a URL with a scheme SQLAlchemy knows the SQLAlchemy one (``sql_store``); anything else (a CSV
or Parquet file, a folder, a malformed URL) is a ``StoreConnectionError`` with any password masked. Every function here
also takes an open ``LogStore``, which it leaves open.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import pandas as pd

from stickyrec.credentials import store_target
from stickyrec.experiments.platform_log.backend import DEFAULT_STORE, LogStore
from stickyrec.experiments.platform_log.duckdb_store import DuckDBLogStore
from stickyrec.experiments.platform_log.errors import EmptyLogError, StoreConnectionError
from stickyrec.experiments.platform_log.schema import (
    IMPRESSIONS_TABLE,
    NUMERIC_COLUMNS,
    RUN_COLUMNS,
    RUNS_TABLE,
    ImpressionBatch,
    as_schema_dtypes,
    session_keys,
    validate_impressions,
)
from stickyrec.experiments.platform_log.sql_store import SQLLogStore

StoreLike = str | os.PathLike | LogStore | None


def open_store(store: StoreLike = None, *, read_only: bool = False, connect_timeout: float = 5.0) -> LogStore:
    """A store from a DuckDB path (``None``: ``DEFAULT_STORE``; ``":memory:"``), a SQLAlchemy URL, or a store."""
    if isinstance(store, LogStore):
        return store
    if store is None:
        store = DEFAULT_STORE
    try:  # a malformed URL, a CSV or a folder is refused here, before anything is made
        kind, target = store_target(store)
    except StoreConnectionError:
        raise
    except ValueError as exc:
        raise StoreConnectionError(str(exc)) from None
    if kind == "url":
        return SQLLogStore(target, connect_timeout=connect_timeout)
    return DuckDBLogStore(target, read_only=read_only)


@contextlib.contextmanager
def opened(store: StoreLike, **kwargs) -> Iterator[LogStore]:
    """``open_store(store, **kwargs)`` for a ``with`` block; closes the store afterwards only if it opened it."""
    owned = not isinstance(store, LogStore)
    handle = open_store(store, **kwargs)
    try:
        yield handle
    finally:
        if owned:
            handle.close()


def read_impressions(store: StoreLike = None, run_id: str | None = None) -> pd.DataFrame:
    """The impressions of ``run_id`` (every run with None) as a DataFrame in schema dtypes, ordered by
    run, shopper, step and position. ``EmptyLogError`` when there are none (the message lists the runs stored)."""
    with opened(store, read_only=True) as handle:
        tables = handle.tables()
        if IMPRESSIONS_TABLE not in tables:
            raise EmptyLogError(f"{handle.description} holds no impression log (no {IMPRESSIONS_TABLE!r} table)")
        handle.check_schema(create=False)
        frame = handle.read(run_id)
        if frame.empty:
            runs = handle.run_ids()
            what = f"run {run_id!r}" if run_id is not None else "any run"
            shown = ", ".join(repr(r) for r in runs[:20]) + (" ..." if len(runs) > 20 else "")
            raise EmptyLogError(f"no impressions for {what} in {handle.description}; runs stored: {shown or 'none'}")
    return as_schema_dtypes(frame)


def write_impressions(store: StoreLike, frame: pd.DataFrame, catalog=None) -> int:
    """Append a log (complete sessions) after validating it; sessions of a run already stored are skipped.

    One transaction: all new rows or none. Returns the number of rows written.
    """
    log = validate_impressions(frame, catalog)
    with opened(store) as handle:
        handle.check_schema(create=True)
        batches, written = [], 0
        for (run_id, policy), group in log.groupby(["run_id", "policy"], sort=True):
            shoppers, sessions, _ = handle.committed_sessions(run_id)
            keep = ~np.isin(
                session_keys(group["shopper"].to_numpy(), group["session"].to_numpy()),
                session_keys(shoppers, sessions),
            )
            if keep.any():
                part = group[keep]
                columns = {c: part[c].to_numpy() for c in NUMERIC_COLUMNS}
                batches.append(ImpressionBatch(run_id, policy, columns))
                written += int(keep.sum())
        if batches:
            handle.write(batches)
    return written


def list_runs(store: StoreLike = None) -> pd.DataFrame:
    """The runs table: one row per collection (parameters, start and finish times, impressions)."""
    with opened(store, read_only=True) as handle:
        if RUNS_TABLE not in handle.tables():
            return pd.DataFrame(columns=list(RUN_COLUMNS))
        return handle.runs()
