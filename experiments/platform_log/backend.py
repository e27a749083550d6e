"""``LogStore``: what every impression store offers (an append-only, transactional table plus the runs table).

Two backends implement it: the embedded DuckDB file (``duckdb_store.DuckDBLogStore``, the default) and any
SQLAlchemy URL (``sql_store.SQLLogStore``); ``stores.open_store`` picks one from a path or URL. Stores only ever
append, in transactions: a failed write leaves what was there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.experiments.platform_log.errors import SchemaMismatchError
from stickyrec.experiments.platform_log.schema import (
    COLUMN_KINDS,
    IMPRESSIONS_TABLE,
    RUN_COLUMNS,
    RUNS_TABLE,
    ImpressionBatch,
    RunInfo,
    compare_columns,
)

DEFAULT_STORE = Path("results") / "logs" / "impressions.duckdb"


class LogStore(ABC):
    """Where impressions go: an append-only, transactional table plus the runs table."""

    description: str  # for messages: a path, or a URL with its password hidden
    # Test seam: when set, runs inside every write's transaction, just before COMMIT (to simulate a crash there).
    before_commit: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description})"

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def tables(self) -> dict[str, dict[str, str]]:
        """Existing tables of ours: name -> {column: kind ("int", "float", "bool", "string", "other")}."""

    def check_schema(self, create: bool) -> None:
        """Raise ``SchemaMismatchError`` if an existing table differs; with ``create``, make missing tables."""
        tables = self.tables()
        if IMPRESSIONS_TABLE in tables:
            compare_columns(
                f"table {IMPRESSIONS_TABLE!r} in {self.description}",
                tables[IMPRESSIONS_TABLE],
                dict(COLUMN_KINDS),
                bool_as_int=True,
            )
        if RUNS_TABLE in tables:
            missing = sorted(set(RUN_COLUMNS) - set(tables[RUNS_TABLE]))
            if missing:
                raise SchemaMismatchError(
                    f"table {RUNS_TABLE!r} in {self.description} lacks column(s) {missing};"
                    f" expected {list(RUN_COLUMNS)}. Use another store or database."
                )
        if create and not {IMPRESSIONS_TABLE, RUNS_TABLE} <= set(tables):
            self.create_tables()

    @abstractmethod
    def create_tables(self) -> None:
        """Create the impressions and runs tables where missing (``check_schema(create=True)`` calls it)."""

    @abstractmethod
    def write(self, batches: Sequence[ImpressionBatch]) -> None:
        """Append the batches in one transaction: all of them or, on any error, none."""

    @abstractmethod
    def committed_sessions(self, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shopper, session, impressions) of every session of the run in the store."""

    @abstractmethod
    def read(self, run_id: str | None) -> pd.DataFrame:
        """The run's impressions (all runs with None) ordered by run, shopper, step, position; raw dtypes."""

    def write_offer_events(self, run_id: str, frame: pd.DataFrame) -> None:
        """Replace the run's offer events (``schema.OFFER_SCHEMA``) in one transaction, creating the
        ``offer_events`` table if needed (only runs with offers on call it)."""
        raise NotImplementedError(f"{type(self).__name__} does not store offer events")

    def read_offer_events(self, run_id: str | None) -> pd.DataFrame | None:
        """The offer events of the run (all runs with None), raw dtypes; None when there is no such table."""
        raise NotImplementedError(f"{type(self).__name__} does not store offer events")

    @abstractmethod
    def run_ids(self) -> list[str]: ...

    @abstractmethod
    def runs(self) -> pd.DataFrame:
        """The runs table (``RUN_COLUMNS``) ordered by start time; the table must exist."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunInfo | None: ...

    @abstractmethod
    def start_run(self, info: RunInfo) -> None: ...

    @abstractmethod
    def finish_run(self, run_id: str, impressions: int) -> None: ...

    @abstractmethod
    def count(self, run_id: str | None = None) -> int: ...
