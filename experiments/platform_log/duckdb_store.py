"""The embedded impression store: one DuckDB file (``DuckDBLogStore``; ``backend.DEFAULT_STORE``).

Chosen over a folder of Parquet files because the store must be *transactional*: a batch of sessions and nothing
else is committed atomically (DuckDB writes its WAL only at commit; a killed writer leaves the last committed state),
where a Parquet folder would need hand-made atomic renames, a manifest for re-runs and compaction of thousands of
small files. Analysts still get columnar speed and SQL with nothing to start (``duckdb
results/logs/impressions.duckdb``, ``read_impressions``), and Parquet is one statement away (``COPY impressions TO
'log.parquet'``). Appends go in as Arrow tables built from numpy column arrays (several million rows/s); the table
carries no unique index, which would cut the insert rate about sevenfold (measured: 4.0 M rows/s without, 0.6 M
with) and grow the file tenfold. Limitation: one process writes a DuckDB file at a time; other processes get
``StoreConnectionError`` until the writer closes it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.experiments.platform_log.backend import DEFAULT_STORE, LogStore
from stickyrec.experiments.platform_log.errors import EmptyLogError, StoreConnectionError
from stickyrec.experiments.platform_log.schema import (
    IMPRESSION_COLUMNS,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_TABLE,
    OFFER_COLUMNS,
    OFFER_SCHEMA,
    OFFERS_TABLE,
    RUN_COLUMNS,
    RUNS_TABLE,
    ImpressionBatch,
    RunInfo,
    utc_now,
)


def _duckdb_kind(type_name: str) -> str:
    t = type_name.upper()
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "int"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("VARCHAR") or t in ("TEXT", "STRING"):
        return "string"
    return "other"


class DuckDBLogStore(LogStore):
    """The embedded store: one DuckDB file (``":memory:"`` for a throw-away one)."""

    def __init__(self, path: str | os.PathLike = DEFAULT_STORE, read_only: bool = False) -> None:
        import duckdb

        self.path = str(path)
        self.description = f"DuckDB store {self.path}"
        in_memory = self.path == ":memory:"
        if not in_memory:
            if read_only and not Path(self.path).exists():
                raise EmptyLogError(f"no impression store at {self.path} (the file does not exist)")
            if Path(self.path).is_dir():
                raise StoreConnectionError(
                    f"{self.path} is a directory; give a DuckDB file path such as {DEFAULT_STORE}"
                )
            if not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path, read_only=read_only and not in_memory)
        except duckdb.Error as exc:
            hint = (
                " (another process may be writing to it: one process writes a DuckDB file at a time)"
                if "lock" in str(exc).lower()
                else ""
            )
            raise StoreConnectionError(f"cannot open {self.description}: {exc}{hint}") from None

    def close(self) -> None:
        self.con.close()

    def tables(self) -> dict[str, dict[str, str]]:
        rows = self.con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name IN (?, ?) ORDER BY ordinal_position",
            [IMPRESSIONS_TABLE, RUNS_TABLE],
        ).fetchall()
        out: dict[str, dict[str, str]] = {}
        for table, column, type_name in rows:
            out.setdefault(table, {})[column] = _duckdb_kind(type_name)
        return out

    def create_tables(self) -> None:
        columns = ", ".join(f'"{c.name}" {c.duckdb_type}{"" if c.nullable else " NOT NULL"}' for c in IMPRESSION_SCHEMA)
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {IMPRESSIONS_TABLE} ({columns})")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (run_id VARCHAR PRIMARY KEY, policy VARCHAR NOT NULL,"
            " seed BIGINT NOT NULL, n_shoppers BIGINT NOT NULL, config_hash VARCHAR NOT NULL, config VARCHAR,"
            " started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, impressions BIGINT)"
        )
        self.con.execute("COMMIT")

    def write(self, batches: Sequence[ImpressionBatch]) -> None:
        columns = ", ".join(f'"{c}"' for c in IMPRESSION_COLUMNS)
        self.con.execute("BEGIN TRANSACTION")
        try:
            for batch in batches:
                self.con.register("_stickyrec_batch", batch.to_arrow())
                try:
                    self.con.execute(
                        f"INSERT INTO {IMPRESSIONS_TABLE} ({columns}) SELECT {columns} FROM _stickyrec_batch"
                    )
                finally:
                    self.con.unregister("_stickyrec_batch")
            if self.before_commit is not None:
                self.before_commit()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def write_offer_events(self, run_id: str, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        columns = ", ".join(f'"{c.name}" {c.duckdb_type}{"" if c.nullable else " NOT NULL"}' for c in OFFER_SCHEMA)
        names = ", ".join(f'"{c}"' for c in OFFER_COLUMNS)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {OFFERS_TABLE} ({columns})")
            self.con.execute(f"DELETE FROM {OFFERS_TABLE} WHERE run_id = ?", [run_id])
            self.con.register("_stickyrec_offers", pa.Table.from_pandas(frame, preserve_index=False))
            try:
                self.con.execute(f"INSERT INTO {OFFERS_TABLE} ({names}) SELECT {names} FROM _stickyrec_offers")
            finally:
                self.con.unregister("_stickyrec_offers")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def read_offer_events(self, run_id: str | None) -> pd.DataFrame | None:
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
            [OFFERS_TABLE],
        ).fetchall()[0][0]
        if not found:
            return None
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        names = ", ".join(f'"{c}"' for c in OFFER_COLUMNS)
        return self.con.sql(f"SELECT {names} FROM {OFFERS_TABLE} {where}", params=params).df()

    def committed_sessions(self, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = self.con.execute(
            f"SELECT shopper, session, count(*) AS n FROM {IMPRESSIONS_TABLE} WHERE run_id = ?"
            " GROUP BY shopper, session",
            [run_id],
        ).fetchnumpy()
        return (
            np.asarray(table["shopper"], np.int64),
            np.asarray(table["session"], np.int64),
            np.asarray(table["n"], np.int64),
        )

    def read(self, run_id: str | None) -> pd.DataFrame:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        columns = ", ".join(f'"{c}"' for c in IMPRESSION_COLUMNS)
        query = f"SELECT {columns} FROM {IMPRESSIONS_TABLE} {where} ORDER BY run_id, shopper, step, position"
        return self.con.sql(query, params=params).to_arrow_table().to_pandas()  # via Arrow: 3x faster than .df()

    def run_ids(self) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(f"SELECT DISTINCT run_id FROM {IMPRESSIONS_TABLE} ORDER BY run_id").fetchall()
        ]

    def runs(self) -> pd.DataFrame:
        return self.con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM {RUNS_TABLE} ORDER BY started_at").df()

    def count(self, run_id: str | None = None) -> int:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
        return int(self.con.execute(f"SELECT count(*) FROM {IMPRESSIONS_TABLE} {where}", params).fetchone()[0])

    def get_run(self, run_id: str) -> RunInfo | None:
        row = self.con.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM {RUNS_TABLE} WHERE run_id = ?", [run_id]
        ).fetchone()
        return None if row is None else RunInfo(*row)

    def start_run(self, info: RunInfo) -> None:
        values = dataclasses.astuple(info)
        self.con.execute(
            f"INSERT INTO {RUNS_TABLE} ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(values))})", list(values)
        )

    def finish_run(self, run_id: str, impressions: int) -> None:
        self.con.execute(
            f"UPDATE {RUNS_TABLE} SET finished_at = ?, impressions = ? WHERE run_id = ?",
            [utc_now(), int(impressions), run_id],
        )
