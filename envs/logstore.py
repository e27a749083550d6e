"""The impression log: every slate position shown to a shopper, with what she did, in a store analysts can query.

One row per **impression** (one slate position shown on one step). The schema, ``IMPRESSION_SCHEMA``:

============  ========  ===========================================================================================
column        type      meaning
============  ========  ===========================================================================================
run_id        string    the collection run (``[A-Za-z0-9][A-Za-z0-9_.:@+=/-]*``, at most 128 characters)
shopper       int64     the shopper's index within the run (0 .. n_shoppers - 1; her env seed is ``seed + shopper``)
day           int32     simulated day of the impression (floor of the session's start time)
session       int32     the shopper's session number, from 0 (her first visit)
step          int32     impression step within the shopper's life, from 0 (one step = one slate shown)
position      int16     slate position, from 0 (the most examined)
item_id       int64     catalog id of the item shown
clicked       bool      she clicked this item (at most one position per step)
purchased     bool      she bought this item after clicking it
revenue       float64   money earned on this impression (price * margin on a purchase, else 0)
returned      bool      step-level: this step ended the session and she came back later (a return visit)
churned       bool      step-level: this step ended the session and she is gone for good
policy        string    name of the acting policy
propensity    float64   probability the policy had of showing this item at this position; NULL when unknown
============  ========  ===========================================================================================

``returned`` and ``churned`` are properties of the step, repeated on its ``k`` positions: count events over steps
(``WHERE position = 0``), not rows. A shopper's last session that ended neither returned nor churned reached the
horizon. Rows are identified by ``(run_id, shopper, step, position)``.

Backends
--------
* **Embedded default: one DuckDB file** (``DuckDBLogStore``; ``DEFAULT_STORE``). Chosen over a folder of Parquet
  files because the store must be *transactional*: a batch of sessions and nothing else is committed atomically (DuckDB
  writes its WAL only at commit; a killed writer leaves the last committed state), where a Parquet folder would need
  hand-made atomic renames, a manifest for re-runs and compaction of thousands of small files. Analysts still get
  columnar speed and SQL with nothing to start (``duckdb results/logs/impressions.duckdb``, ``read_impressions``),
  and Parquet is one statement away (``COPY impressions TO 'log.parquet'``). Appends go in as Arrow tables built
  from numpy column arrays (several million rows/s); the table carries no unique index, which would cut the insert
  rate about sevenfold (measured: 4.0 M rows/s without, 0.6 M with) and grow the file tenfold. Limitation: one
  process writes a DuckDB file at a time; other processes get ``StoreConnectionError`` until the writer closes it.
* **Any SQLAlchemy URL** (``SQLLogStore``): MySQL/MariaDB (``mysql+pymysql://``), PostgreSQL
  (``postgresql+psycopg://``), SQLite. Rows go in as multi-row ``INSERT ... VALUES`` statements of
  ``SQL_ROWS_PER_STATEMENT`` rows whose number literals are written by Arrow's CSV writer (run ids and policy names
  are restricted to a safe alphabet, checked before any work): 100-160 k rows/s into MariaDB over loopback, three
  to four times pymysql's ``executemany`` (40 k rows/s). The table's primary key is ``(run_id, shopper, step,
  position)``. Reading back goes through the pure-Python driver (about 60 k rows/s with pymysql).

Transactions and re-runs
------------------------
``ImpressionLogger`` buffers impressions and commits, one transaction per flush, only **complete sessions** (a
session is complete once its last step, ``session_ended``, has been logged); the open sessions stay in the buffer.
A flush happens every ``flush_rows`` impressions or ``flush_seconds`` seconds, so a crash or kill loses at most
what was buffered since the last commit (and the sessions still open), never leaves a half-written session.

Re-runs do not duplicate rows because the impressions table is its own ledger: a session is in the store only if all
of it is (the invariant above). ``collect`` reads the run's committed ``(shopper, session) -> row count`` once when it
starts, simulates the run again from its seed, skips every session already committed and writes the rest. It also
checks that each skipped session has exactly the stored number of rows, so a run that does not reproduce raises
``RunMismatchError`` instead of mixing two trajectories. The ``impression_runs`` table records each run's
parameters (policy, seed, shoppers, config hash): a re-run with other parameters raises ``RunMismatchError`` before
any work; a re-run of a finished run returns at once. On SQL servers the primary key guards further (two writers of
one run at once fail instead of duplicating).

Errors (all ``LogStoreError``, a ``ValueError``) are raised before any write: ``StoreConnectionError`` (unreachable
server, missing driver, a DuckDB file locked by another process), ``SchemaMismatchError`` (an existing table with
other columns; it is never altered), ``EmptyLogError`` (nothing to read), ``UnknownItemError`` (item ids outside the
catalog), ``RunMismatchError``. Passwords never appear in messages: URLs are rendered with the password hidden and
driver messages are scrubbed. Stores only ever append, in transactions: a failed write leaves what was there.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

IMPRESSIONS_TABLE = "impressions"
RUNS_TABLE = "impression_runs"
DEFAULT_STORE = Path("results") / "logs" / "impressions.duckdb"
SQL_ROWS_PER_STATEMENT = 10_000  # rows per multi-row INSERT (about 0.5 MB of SQL; servers allow 16 MB or more)
DEFAULT_FLUSH_ROWS = 1_000_000  # impressions buffered before a flush of the complete sessions
DEFAULT_FLUSH_SECONDS = 10.0  # ... or seconds since the last flush: what a crash may lose
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=/-]{0,127}")


@dataclasses.dataclass(frozen=True)
class LogColumn:
    """One column of the impression log: numpy dtype, DuckDB type, nullability and meaning."""

    name: str
    dtype: str  # pandas dtype of the column read back ("str": pandas' string dtype)
    duckdb_type: str
    nullable: bool
    description: str


IMPRESSION_SCHEMA: tuple[LogColumn, ...] = (
    LogColumn("run_id", "str", "VARCHAR", False, "the collection run"),
    LogColumn("shopper", "int64", "BIGINT", False, "shopper index within the run (env seed = seed + shopper)"),
    LogColumn("day", "int32", "INTEGER", False, "simulated day of the impression"),
    LogColumn("session", "int32", "INTEGER", False, "the shopper's session number, from 0"),
    LogColumn("step", "int32", "INTEGER", False, "impression step within the shopper's life, from 0"),
    LogColumn("position", "int16", "SMALLINT", False, "slate position, from 0"),
    LogColumn("item_id", "int64", "BIGINT", False, "catalog id of the item shown"),
    LogColumn("clicked", "bool", "BOOLEAN", False, "she clicked this item"),
    LogColumn("purchased", "bool", "BOOLEAN", False, "she bought this item"),
    LogColumn("revenue", "float64", "DOUBLE", False, "money earned on this impression"),
    LogColumn("returned", "bool", "BOOLEAN", False, "step-level: the session ended and she came back"),
    LogColumn("churned", "bool", "BOOLEAN", False, "step-level: the session ended and she is gone for good"),
    LogColumn("policy", "str", "VARCHAR", False, "the acting policy"),
    LogColumn("propensity", "float64", "DOUBLE", True, "the policy's probability of this item at this position"),
)
IMPRESSION_COLUMNS: tuple[str, ...] = tuple(c.name for c in IMPRESSION_SCHEMA)
KEY_COLUMNS: tuple[str, ...] = ("run_id", "shopper", "step", "position")
_STRING_COLUMNS = ("run_id", "policy")
_NUMERIC_COLUMNS = tuple(c for c in IMPRESSION_COLUMNS if c not in _STRING_COLUMNS)
_DTYPES = {c.name: c.dtype for c in IMPRESSION_SCHEMA}
_KINDS = {"str": "string", "bool": "bool", "float64": "float"} | {t: "int" for t in ("int16", "int32", "int64")}
RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "policy",
    "seed",
    "n_shoppers",
    "config_hash",
    "config",
    "started_at",
    "finished_at",
    "impressions",
)


# --- errors ------------------------------------------------------------------------------------------------------
class LogStoreError(ValueError):
    """Base class of the impression store's errors."""


class StoreConnectionError(LogStoreError):
    """The store cannot be opened: unreachable server, bad URL, missing driver, locked or foreign file."""


class SchemaMismatchError(LogStoreError):
    """An existing table (or a DataFrame) does not have the impression log's columns and types."""


class EmptyLogError(LogStoreError):
    """There are no impressions to read (or to write)."""


class UnknownItemError(LogStoreError):
    """Item ids outside the catalog (negative, or at least its size)."""


class RunMismatchError(LogStoreError):
    """A re-run whose parameters or trajectories differ from the run already stored under that id."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _scrub(text: str, secrets: Sequence[str | None] = ()) -> str:
    """``text`` with passwords in URLs and the given secrets replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\1***@", str(text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def check_name(value: str, what: str) -> str:
    """A run id or policy name, or ``ValueError``: it is written into SQL, so only a safe alphabet passes."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not allowed; allowed: 1-128 characters of letters, digits and"
            f" _ . : @ + = / - starting with a letter or digit"
        )
    return value


# --- batches -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ImpressionBatch:
    """Impressions of one run and policy as column arrays (every schema column but ``run_id`` and ``policy``).

    ``columns["propensity"]`` may be ``None`` (all NULL); NaN entries are NULL.
    """

    run_id: str
    policy: str
    columns: dict[str, np.ndarray | None]

    def __len__(self) -> int:
        return int(self.columns["shopper"].shape[0])

    def numeric_arrow(self, with_propensity: bool = True):
        """The numeric columns as an Arrow table (propensity NaN -> null)."""
        import pyarrow as pa

        arrays, names = [], []
        for name in _NUMERIC_COLUMNS:
            if name == "propensity":
                if not with_propensity:
                    continue
                values = self.columns.get("propensity")
                arrays.append(
                    pa.nulls(len(self), pa.float64())
                    if values is None
                    else pa.array(np.asarray(values, np.float64), from_pandas=True)
                )
            else:
                arrays.append(pa.array(np.asarray(self.columns[name], dtype=_DTYPES[name])))
            names.append(name)
        return pa.table(arrays, names=names)

    def to_arrow(self):
        """All schema columns, in schema order; run id and policy as one-word dictionary arrays."""
        import pyarrow as pa

        table = self.numeric_arrow()
        n = len(self)
        for name, value in (("run_id", self.run_id), ("policy", self.policy)):
            column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))
            table = table.append_column(name, column)
        return table.select(list(IMPRESSION_COLUMNS))

    def propensity_missing(self) -> np.ndarray | None:
        """Bool mask of NULL propensities, or None when the column is absent (all NULL)."""
        values = self.columns.get("propensity")
        return None if values is None else np.isnan(np.asarray(values, np.float64))


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A row of the runs table: what a collection was, to refuse re-runs with other parameters."""

    run_id: str
    policy: str
    seed: int
    n_shoppers: int
    config_hash: str
    config: str  # JSON
    started_at: _dt.datetime
    finished_at: _dt.datetime | None = None
    impressions: int | None = None


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None, microsecond=0)


# --- backends ----------------------------------------------------------------------------------------------------
class LogStore(ABC):
    """Where impressions go: an append-only, transactional table plus the runs table."""

    description: str  # for messages: a path, or a URL with its password hidden

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
        expected = {c.name: _KINDS[c.dtype] for c in IMPRESSION_SCHEMA}
        if IMPRESSIONS_TABLE in tables:
            _compare_columns(
                f"table {IMPRESSIONS_TABLE!r} in {self.description}",
                tables[IMPRESSIONS_TABLE],
                expected,
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
            self._create_tables()

    @abstractmethod
    def _create_tables(self) -> None: ...

    @abstractmethod
    def write(self, batches: Sequence[ImpressionBatch]) -> None:
        """Append the batches in one transaction: all of them or, on any error, none."""

    @abstractmethod
    def committed_sessions(self, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shopper, session, impressions) of every session of the run in the store."""

    @abstractmethod
    def read(self, run_id: str | None) -> pd.DataFrame:
        """The run's impressions (all runs with None) ordered by run, shopper, step, position; raw dtypes."""

    @abstractmethod
    def run_ids(self) -> list[str]: ...

    @abstractmethod
    def get_run(self, run_id: str) -> RunInfo | None: ...

    @abstractmethod
    def start_run(self, info: RunInfo) -> None: ...

    @abstractmethod
    def finish_run(self, run_id: str, impressions: int) -> None: ...

    @abstractmethod
    def count(self, run_id: str | None = None) -> int: ...

    _before_commit: Callable[[], None] | None = None  # test seam: runs inside the transaction, before COMMIT


def _compare_columns(what: str, found: dict[str, str], expected: dict[str, str], bool_as_int: bool) -> None:
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    wrong = [
        f"{c} is {found[c]}, expected {kind}"
        for c, kind in expected.items()
        if c in found and found[c] != kind and not (bool_as_int and kind == "bool" and found[c] == "int")
    ]
    if missing or extra or wrong:
        parts = (
            ([f"missing column(s) {missing}"] if missing else [])
            + ([f"unexpected column(s) {extra}"] if extra else [])
            + wrong
        )
        raise SchemaMismatchError(
            f"{what} does not have the impression log's schema: {'; '.join(parts)}."
            f" Expected columns {list(expected)}. Nothing was changed; use another store or"
            f" database, or rename that table."
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

    def _create_tables(self) -> None:
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
            if self._before_commit is not None:
                self._before_commit()
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

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
            [_now(), int(impressions), run_id],
        )


_CONNECT_TIMEOUT_ARG = {
    "pymysql": "connect_timeout",
    "mysqldb": "connect_timeout",
    "mariadbconnector": "connect_timeout",
    "mysqlconnector": "connection_timeout",
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pg8000": "timeout",
}


class SQLLogStore(LogStore):
    """Impressions in a database server (or SQLite file) through SQLAlchemy, with multi-row INSERTs."""

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        import sqlalchemy as sa

        try:
            self.url = sa.engine.make_url(url)
        except Exception as exc:  # any parse failure: report it without the password
            raise StoreConnectionError(f"not a valid SQLAlchemy URL: {_scrub(url)} ({_scrub(exc)})") from None
        self._password = self.url.password if isinstance(self.url.password, str) else None
        self.description = self.url.render_as_string(hide_password=True)
        connect_args: dict[str, Any] = {}
        try:
            timeout_arg = _CONNECT_TIMEOUT_ARG.get(self.url.get_driver_name())
            if timeout_arg:
                connect_args[timeout_arg] = max(1, math.ceil(connect_timeout))
            self.engine = sa.create_engine(
                self.url, connect_args=connect_args, hide_parameters=True, pool_pre_ping=True
            )
        except (ImportError, sa.exc.NoSuchModuleError, sa.exc.ArgumentError) as exc:
            raise StoreConnectionError(
                f"cannot use {self.description}: {self._clean(exc)} (is the database driver"
                f" installed? e.g. pip install pymysql, or psycopg)"
            ) from None
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise StoreConnectionError(f"cannot connect to {self.description}: {self._clean(exc)}") from None
        self._sa = sa
        self._quote = self.engine.dialect.identifier_preparer.quote
        self._metadata = _sql_tables(sa)

    def _clean(self, exc: BaseException, limit: int = 400) -> str:
        """The driver's own message (not SQLAlchemy's, which repeats the statement), without secrets."""
        message = str(getattr(exc, "orig", None) or exc)
        message = _scrub(message, [self._password])
        return message if len(message) <= limit else message[:limit] + " ..."

    def _fail(self, action: str, exc: BaseException) -> LogStoreError:
        return LogStoreError(f"{action} {self.description} failed: {self._clean(exc)}")

    def close(self) -> None:
        self.engine.dispose()

    def tables(self) -> dict[str, dict[str, str]]:
        sa = self._sa
        try:
            inspector = sa.inspect(self.engine)
            names = set(inspector.get_table_names())
            out = {}
            for table in (IMPRESSIONS_TABLE, RUNS_TABLE):
                if table in names:
                    out[table] = {c["name"]: _sql_kind(c["type"]) for c in inspector.get_columns(table)}
            return out
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("inspecting", exc) from None

    def _create_tables(self) -> None:
        try:
            self._metadata.create_all(self.engine, checkfirst=True)
        except self._sa.exc.SQLAlchemyError as exc:
            raise self._fail("creating the tables in", exc) from None

    def _statements(self, batch: ImpressionBatch):
        """Multi-row INSERT statements for a batch (number literals by Arrow's CSV writer)."""
        import pyarrow.csv as pacsv

        missing = batch.propensity_missing()
        table = batch.numeric_arrow(with_propensity=missing is not None)
        if missing is not None and missing.any() and not missing.all():  # mixed: NULLs and values apart
            parts = [table.filter(missing).drop_columns(["propensity"]), table.filter(~missing)]
        elif missing is not None and missing.all():
            parts = [table.drop_columns(["propensity"])]
        else:
            parts = [table]
        prefix = f"('{check_name(batch.run_id, 'run_id')}','{check_name(batch.policy, 'policy')}',"
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        for part in parts:
            names = ["run_id", "policy"] + part.column_names
            head = f"INSERT INTO {self._quote(IMPRESSIONS_TABLE)} ({', '.join(self._quote(n) for n in names)}) VALUES "
            for start in range(0, part.num_rows, SQL_ROWS_PER_STATEMENT):
                sink = io.BytesIO()
                pacsv.write_csv(part.slice(start, SQL_ROWS_PER_STATEMENT), sink, options)
                body = sink.getvalue().decode("ascii").rstrip("\n")
                yield head + prefix + body.replace("\n", "),\n" + prefix) + ")"

    def write(self, batches: Sequence[ImpressionBatch]) -> None:
        sa = self._sa
        try:
            with self.engine.begin() as conn:
                for batch in batches:
                    for statement in self._statements(batch):
                        conn.exec_driver_sql(statement)
                if self._before_commit is not None:
                    self._before_commit()
        except sa.exc.IntegrityError as exc:
            raise LogStoreError(
                f"writing to {self.description} failed: rows with the same (run_id, shopper, step,"
                f" position) are already stored (is another process writing this run?);"
                f" nothing was written: {self._clean(exc, 200)}"
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("writing to", exc) from None

    def _query(self, sql: str, params: dict | None = None):
        sa = self._sa
        try:
            with self.engine.connect() as conn:
                return conn.execute(sa.text(sql), params or {}).all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("reading", exc) from None

    def committed_sessions(self, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = self._quote
        rows = self._query(
            f"SELECT {q('shopper')}, {q('session')}, COUNT(*) FROM {q(IMPRESSIONS_TABLE)}"
            f" WHERE {q('run_id')} = :run_id GROUP BY {q('shopper')}, {q('session')}",
            {"run_id": run_id},
        )
        array = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
        return array[:, 0], array[:, 1], array[:, 2]

    def read(self, run_id: str | None) -> pd.DataFrame:
        sa, q = self._sa, self._quote
        where = f" WHERE {q('run_id')} = :run_id" if run_id is not None else ""
        sql = (
            f"SELECT {', '.join(q(c) for c in IMPRESSION_COLUMNS)} FROM {q(IMPRESSIONS_TABLE)}{where}"
            f" ORDER BY {', '.join(q(c) for c in KEY_COLUMNS)}"
        )
        try:
            with self.engine.connect() as conn:
                result = conn.execute(sa.text(sql), {"run_id": run_id} if run_id is not None else {})
                return pd.DataFrame(result.all(), columns=list(IMPRESSION_COLUMNS))
        except sa.exc.SQLAlchemyError as exc:
            raise self._fail("reading", exc) from None

    def run_ids(self) -> list[str]:
        q = self._quote
        return [
            r[0]
            for r in self._query(f"SELECT DISTINCT {q('run_id')} FROM {q(IMPRESSIONS_TABLE)} ORDER BY {q('run_id')}")
        ]

    def count(self, run_id: str | None = None) -> int:
        q = self._quote
        where = f" WHERE {q('run_id')} = :run_id" if run_id is not None else ""
        return int(
            self._query(
                f"SELECT COUNT(*) FROM {q(IMPRESSIONS_TABLE)}{where}",
                {"run_id": run_id} if run_id is not None else None,
            )[0][0]
        )

    def get_run(self, run_id: str) -> RunInfo | None:
        runs = self._metadata.tables[RUNS_TABLE]
        try:
            with self.engine.connect() as conn:
                row = conn.execute(
                    self._sa.select(*[runs.c[n] for n in RUN_COLUMNS]).where(runs.c.run_id == run_id)
                ).first()
        except self._sa.exc.SQLAlchemyError as exc:
            raise self._fail("reading", exc) from None
        return None if row is None else RunInfo(*row)

    def start_run(self, info: RunInfo) -> None:
        runs = self._metadata.tables[RUNS_TABLE]
        try:
            with self.engine.begin() as conn:
                conn.execute(runs.insert().values(**dataclasses.asdict(info)))
        except self._sa.exc.SQLAlchemyError as exc:
            raise self._fail("writing to", exc) from None

    def finish_run(self, run_id: str, impressions: int) -> None:
        runs = self._metadata.tables[RUNS_TABLE]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id)
                    .values(finished_at=_now(), impressions=int(impressions))
                )
        except self._sa.exc.SQLAlchemyError as exc:
            raise self._fail("writing to", exc) from None


def _sql_kind(sql_type) -> str:
    import sqlalchemy as sa

    for kind, types in (("bool", sa.Boolean), ("float", sa.Float), ("int", sa.Integer), ("string", sa.String)):
        if isinstance(sql_type, types):
            return kind
    return "other"


def _sql_tables(sa):
    """SQLAlchemy Core tables (impressions with its primary key, and the runs table)."""
    from sqlalchemy.dialects import mysql

    metadata = sa.MetaData()

    def name_type():  # ASCII, compared case-sensitively on MySQL/MariaDB too ('R1' and 'r1' are two runs)
        return sa.String(128).with_variant(
            mysql.VARCHAR(128, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
        )

    types = {
        "str": name_type,
        "int64": sa.BigInteger,
        "int32": sa.Integer,
        "int16": sa.SmallInteger,
        "bool": sa.Boolean,
        "float64": sa.Double,
    }
    sa.Table(
        IMPRESSIONS_TABLE,
        metadata,
        *[sa.Column(c.name, types[c.dtype](), nullable=c.nullable) for c in IMPRESSION_SCHEMA],
        sa.PrimaryKeyConstraint(*KEY_COLUMNS, name="pk_impressions"),
        mysql_engine="InnoDB",
    )
    sa.Table(
        RUNS_TABLE,
        metadata,
        sa.Column("run_id", name_type(), primary_key=True),
        sa.Column("policy", name_type(), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("n_shoppers", sa.BigInteger, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config", sa.Text),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("impressions", sa.BigInteger),
        mysql_engine="InnoDB",
    )
    return metadata


def open_store(
    store: str | os.PathLike | LogStore | None = None, *, read_only: bool = False, connect_timeout: float = 5.0
) -> LogStore:
    """A store from a DuckDB path (``None``: ``DEFAULT_STORE``; ``":memory:"``), a SQLAlchemy URL, or a store."""
    if isinstance(store, LogStore):
        return store
    if store is None:
        store = DEFAULT_STORE
    text = os.fspath(store)
    if text.startswith("duckdb:///"):
        return DuckDBLogStore(text[len("duckdb:///") :], read_only=read_only)
    if "://" in text:
        return SQLLogStore(text, connect_timeout=connect_timeout)
    return DuckDBLogStore(text, read_only=read_only)


class _Opened:
    """Context manager: open a store if given a path or URL; close only what it opened."""

    def __init__(self, store, **kwargs) -> None:
        self.owned = not isinstance(store, LogStore)
        self.store = open_store(store, **kwargs)

    def __enter__(self) -> LogStore:
        return self.store

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.store.close()


# --- reading and validating --------------------------------------------------------------------------------------
def _as_schema_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    if list(frame.columns) == list(IMPRESSION_COLUMNS) and all(
        str(frame[c.name].dtype) == c.dtype for c in IMPRESSION_SCHEMA
    ):
        return frame.reset_index(drop=True)  # already right (DuckDB's frames): no copy
    out = {}
    for column in IMPRESSION_SCHEMA:
        values = frame[column.name].reset_index(drop=True)
        if column.dtype == "str":
            out[column.name] = values.astype(str)
        elif column.name == "propensity":
            out[column.name] = pd.to_numeric(values, errors="coerce").astype("float64")
        else:
            out[column.name] = values.to_numpy().astype(column.dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def read_impressions(store: str | os.PathLike | LogStore | None = None, run_id: str | None = None) -> pd.DataFrame:
    """The impressions of ``run_id`` (every run with None) as a DataFrame in schema dtypes, ordered by
    run, shopper, step and position. ``EmptyLogError`` when there are none (the message lists the runs stored)."""
    with _Opened(store, read_only=True) as opened:
        tables = opened.tables()
        if IMPRESSIONS_TABLE not in tables:
            raise EmptyLogError(f"{opened.description} holds no impression log (no {IMPRESSIONS_TABLE!r} table)")
        opened.check_schema(create=False)
        frame = opened.read(run_id)
        if frame.empty:
            runs = opened.run_ids()
            what = f"run {run_id!r}" if run_id is not None else "any run"
            shown = ", ".join(repr(r) for r in runs[:20]) + (" ..." if len(runs) > 20 else "")
            raise EmptyLogError(f"no impressions for {what} in {opened.description}; runs stored: {shown or 'none'}")
    return _as_schema_dtypes(frame)


def _n_items(catalog) -> int:
    if isinstance(catalog, (int, np.integer)) and not isinstance(catalog, bool):
        return int(catalog)
    if hasattr(catalog, "n_items"):  # a Catalog or a RetentionConfig
        return int(catalog.n_items)
    raise ValueError(f"catalog must be a Catalog, a RetentionConfig or a number of items; got {type(catalog).__name__}")


def validate_impressions(frame: pd.DataFrame, catalog=None) -> pd.DataFrame:
    """Check a log against the schema (and a catalog: a ``Catalog``, ``RetentionConfig`` or item count).

    Returns the log in schema dtypes. Raises ``EmptyLogError`` (no rows), ``SchemaMismatchError`` (columns or
    types), ``UnknownItemError`` (item ids outside the catalog) or ``ValueError`` (NULLs, duplicate keys, bad names,
    two clicks on one step, purchases without clicks).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"an impression log must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise EmptyLogError("the impression log is empty: nothing to validate or write")
    found = {}
    for name in frame.columns:
        values = frame[name]
        if pd.api.types.is_bool_dtype(values):
            found[name] = "bool"
        elif pd.api.types.is_integer_dtype(values):
            found[name] = "int"
        elif pd.api.types.is_float_dtype(values):
            found[name] = "float"
        elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            found[name] = "string"
        else:
            found[name] = str(values.dtype)
    expected = {c.name: _KINDS[c.dtype] for c in IMPRESSION_SCHEMA}
    expected_loose = dict(expected, propensity="float")
    if found.get("propensity") in ("int", "string") and frame["propensity"].isna().all():
        found["propensity"] = "float"
    _compare_columns("the impression log", found, expected_loose, bool_as_int=False)
    for column in IMPRESSION_SCHEMA:
        if not column.nullable and frame[column.name].isna().any():
            raise ValueError(
                f"column {column.name!r} has {int(frame[column.name].isna().sum())} missing value(s);"
                " only 'propensity' may be NULL"
            )
    out = _as_schema_dtypes(frame)
    for name in _STRING_COLUMNS:
        for value in out[name].unique():
            check_name(value, name)
    for name in ("shopper", "day", "session", "step", "position"):
        if (out[name] < 0).any():
            raise ValueError(f"column {name!r} has negative values; allowed: 0 or more")
    if catalog is not None:
        n_items = _n_items(catalog)
        items = out["item_id"].to_numpy()
        unknown = (items < 0) | (items >= n_items)
        if unknown.any():
            examples = sorted(set(items[unknown].tolist()))[:5]
            raise UnknownItemError(
                f"{int(unknown.sum())} impression(s) show item ids outside the catalog of"
                f" {n_items} items (allowed: 0..{n_items - 1}), e.g. {examples}"
            )
        slate_size = getattr(catalog, "slate_size", None)
        if slate_size is not None and (out["position"] >= slate_size).any():
            raise ValueError(f"positions must be below slate_size={slate_size}")
    if out.duplicated(list(KEY_COLUMNS)).any():
        raise ValueError(
            f"the log repeats {int(out.duplicated(list(KEY_COLUMNS)).sum())} key(s)"
            f" {KEY_COLUMNS}: each impression must appear once"
        )
    clicks = out.groupby(["run_id", "shopper", "step"], sort=False)["clicked"].sum()
    if (clicks > 1).any():
        raise ValueError("some steps have more than one click; a shopper clicks at most one position per step")
    if (out["purchased"] & ~out["clicked"]).any():
        raise ValueError("some impressions are purchased without a click")
    return out


def write_impressions(store: str | os.PathLike | LogStore | None, frame: pd.DataFrame, catalog=None) -> int:
    """Append a log (complete sessions) after validating it; sessions of a run already stored are skipped.

    One transaction: all new rows or none. Returns the number of rows written.
    """
    log = validate_impressions(frame, catalog)
    with _Opened(store) as opened:
        opened.check_schema(create=True)
        batches, written = [], 0
        for (run_id, policy), group in log.groupby(["run_id", "policy"], sort=True):
            shoppers, sessions, _ = opened.committed_sessions(run_id)
            keep = ~np.isin(
                _session_keys(group["shopper"].to_numpy(), group["session"].to_numpy()),
                _session_keys(shoppers, sessions),
            )
            if keep.any():
                part = group[keep]
                columns = {c: part[c].to_numpy() for c in _NUMERIC_COLUMNS}
                batches.append(ImpressionBatch(run_id, policy, columns))
                written += int(keep.sum())
        if batches:
            opened.write(batches)
    return written


def _session_keys(shopper: np.ndarray, session: np.ndarray) -> np.ndarray:
    return np.asarray(shopper, np.int64) * (1 << 31) + np.asarray(session, np.int64)


# --- the logger ----------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Steps:
    """Step-level buffer: one entry per (shopper, step), items and propensities as (n, k)."""

    slot: np.ndarray
    day: np.ndarray
    session: np.ndarray
    step: np.ndarray
    clicked_position: np.ndarray
    purchased: np.ndarray
    revenue: np.ndarray
    returned: np.ndarray
    churned: np.ndarray
    ended: np.ndarray
    items: np.ndarray
    propensity: np.ndarray | None

    def take(self, index: np.ndarray) -> _Steps:
        return _Steps(
            **{
                f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
                for f in dataclasses.fields(self)
            }
        )

    @classmethod
    def concat(cls, parts: Sequence[_Steps]) -> _Steps:
        if len(parts) == 1:
            return parts[0]
        with_propensity = [p.propensity is not None for p in parts]
        if any(with_propensity) and not all(with_propensity):
            for p in parts:
                if p.propensity is None:
                    p.propensity = np.full(p.items.shape, np.nan)
        return cls(
            **{
                f.name: (
                    None if getattr(parts[0], f.name) is None else np.concatenate([getattr(p, f.name) for p in parts])
                )
                for f in dataclasses.fields(cls)
            }
        )

    def __len__(self) -> int:
        return int(self.slot.shape[0])


@dataclasses.dataclass
class LoggerStats:
    """What an ``ImpressionLogger`` wrote: rows and sessions new, rows already stored (a re-run), commits."""

    impressions_written: int = 0
    impressions_skipped: int = 0
    sessions_written: int = 0
    sessions_skipped: int = 0
    commits: int = 0
    write_seconds: float = 0.0


class ImpressionLogger:
    """Buffers the impressions of a cohort stepped together and commits complete sessions to a store.

    Slot ``i`` of the batch is shopper ``shopper_offset + i`` for the whole run (``AutoresetMode.DISABLED``).
    Call ``log_step`` after every ``env.step``; ``close`` at the end flushes what remains (only complete sessions
    are ever written). ``committed`` holds the sessions already in the store for this run (a re-run): they are
    skipped, after checking the re-simulated session has the stored number of rows.

    Args:
        store: an open ``LogStore`` (its schema already checked).
        run_id, policy: written on every row (safe alphabet, see ``NAME_PATTERN``).
        n_shoppers, slate_size: the batch (B) and slate (k) sizes.
        n_items: when given, item ids are checked to be below it before every write.
        shopper_offset: global index of slot 0.
        committed: ``(shopper, session, rows)`` arrays from ``LogStore.committed_sessions``.
        flush_rows: flush once this many impressions are buffered.
        flush_seconds: ... or once this many seconds passed since the last flush.
    """

    def __init__(
        self,
        store: LogStore,
        run_id: str,
        policy: str,
        n_shoppers: int,
        slate_size: int,
        *,
        n_items: int | None = None,
        shopper_offset: int = 0,
        committed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.run_id = check_name(run_id, "run_id")
        self.policy = check_name(policy, "policy")
        if flush_rows < 1 or flush_seconds <= 0:
            raise ValueError(
                f"flush_rows must be at least 1 and flush_seconds positive; got {flush_rows}, {flush_seconds}"
            )
        self.n_shoppers, self.slate_size, self.n_items = int(n_shoppers), int(slate_size), n_items
        self.shopper_offset = int(shopper_offset)
        self.flush_rows, self.flush_seconds = int(flush_rows), float(flush_seconds)
        self._step = np.zeros(self.n_shoppers, np.int32)
        self._sessions_done = np.zeros(self.n_shoppers, np.int32)
        self._buffer: list[_Steps] = []
        self._buffered_steps = 0
        self._flush_at_steps = max(1, self.flush_rows // self.slate_size)
        self._last_flush = time.monotonic()
        self._positions = np.arange(self.slate_size, dtype=np.int16)
        self.stats = LoggerStats()
        self._committed_keys = np.zeros(0, np.int64)
        self._committed_rows = np.zeros(0, np.int64)
        self._committed_seen = 0
        if committed is not None and len(committed[0]):
            keys = _session_keys(committed[0], committed[1])
            order = np.argsort(keys)
            self._committed_keys, self._committed_rows = keys[order], np.asarray(committed[2], np.int64)[order]

    @property
    def buffered_impressions(self) -> int:
        return self._buffered_steps * self.slate_size

    def log_step(
        self, active: np.ndarray, items: np.ndarray, info: dict[str, np.ndarray], propensity: np.ndarray | None = None
    ) -> None:
        """Record one step: ``active`` (B,) the shoppers live *before* the step, ``items`` (B, k) the catalog ids
        shown, ``info`` the step's infos (``clicked_position``, ``purchased``, ``revenue``, ``session_ended``,
        ``returned``, ``churned``, ``day``), ``propensity`` (B, k) or (B,) probabilities when the policy knows them."""
        rows = np.flatnonzero(active)
        if rows.size == 0:
            return
        if propensity is not None:
            propensity = np.asarray(propensity, np.float64)
            if propensity.ndim == 1:
                propensity = np.broadcast_to(propensity[:, None], items.shape)
            propensity = propensity[rows]
        ended = info["session_ended"][rows]
        self._buffer.append(
            _Steps(
                slot=rows,
                day=info["day"][rows].astype(np.int32),
                session=self._sessions_done[rows],
                step=self._step[rows],
                clicked_position=info["clicked_position"][rows],
                purchased=info["purchased"][rows],
                revenue=info["revenue"][rows],
                returned=info["returned"][rows],
                churned=info["churned"][rows],
                ended=ended,
                items=items[rows],
                propensity=propensity,
            )
        )
        self._step[rows] += 1
        self._sessions_done[rows] += ended
        self._buffered_steps += rows.size
        if self._buffered_steps >= self._flush_at_steps or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> int:
        """Commit the buffered complete sessions (one transaction); returns the impressions written."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return 0
        steps = _Steps.concat(self._buffer)
        self._buffer = [steps]  # until the write succeeds: a failed flush loses nothing
        complete = steps.session < self._sessions_done[steps.slot]
        keep = steps.take(np.flatnonzero(~complete))
        done = steps.take(np.flatnonzero(complete))
        written = 0
        if len(done):
            done = done.take(np.argsort(done.slot, kind="stable"))  # shopper, then step order
            skipped = self._skip_committed(done) if self._committed_keys.size else None
            if skipped is not None:
                done = skipped[0]
            if len(done):
                batch = self._batch(done)
                if self.n_items is not None:
                    _check_items(batch.columns["item_id"], self.n_items)
                started = time.perf_counter()
                self.store.write([batch])
                self.stats.write_seconds += time.perf_counter() - started
                self.stats.commits += 1
                written = len(batch)
                self.stats.impressions_written += written
                self.stats.sessions_written += int(done.ended.sum())
            if skipped is not None:
                self._count_skipped(*skipped[1:])
        self._buffer = [keep] if len(keep) else []
        self._buffered_steps = len(keep)
        # the next flush waits for flush_rows new impressions, even when long sessions stay open
        self._flush_at_steps = self._buffered_steps + max(1, self.flush_rows // self.slate_size)
        return written

    def _count_skipped(self, sessions: int, rows: int) -> None:
        self._committed_seen += sessions
        self.stats.sessions_skipped += sessions
        self.stats.impressions_skipped += rows

    def _skip_committed(self, done: _Steps) -> tuple[_Steps, int, int]:
        keys = _session_keys(done.slot + self.shopper_offset, done.session)
        at = np.minimum(np.searchsorted(self._committed_keys, keys), self._committed_keys.size - 1)
        stored = self._committed_keys[at] == keys
        if stored.any():
            seen, counts = np.unique(keys[stored], return_counts=True)
            expected = self._committed_rows[np.searchsorted(self._committed_keys, seen)]
            if not np.array_equal(counts * self.slate_size, expected):
                bad = int(np.flatnonzero(counts * self.slate_size != expected)[0])
                shopper, session = divmod(int(seen[bad]), 1 << 31)
                raise RunMismatchError(
                    f"run {self.run_id!r} does not reproduce: shopper {shopper} session {session} has"
                    f" {int(expected[bad])} impressions stored but {int(counts[bad]) * self.slate_size} now."
                    f" A re-run must use the same policy (deterministic), seed, shoppers and config; use a new"
                    f" run_id for a different collection"
                )
            return done.take(np.flatnonzero(~stored)), int(seen.size), int(stored.sum()) * self.slate_size
        return done, 0, 0

    def _batch(self, done: _Steps) -> ImpressionBatch:
        n, k = len(done), self.slate_size
        clicked = done.clicked_position[:, None] == self._positions[None, :]
        columns = {
            "shopper": np.repeat(done.slot.astype(np.int64) + self.shopper_offset, k),
            "day": np.repeat(done.day, k),
            "session": np.repeat(done.session, k),
            "step": np.repeat(done.step, k),
            "position": np.tile(self._positions, n),
            "item_id": done.items.astype(np.int64, copy=False).ravel(),
            "clicked": clicked.ravel(),
            "purchased": (clicked & done.purchased[:, None]).ravel(),
            "revenue": np.where(clicked, done.revenue[:, None], 0.0).ravel(),
            "returned": np.repeat(done.returned, k),
            "churned": np.repeat(done.churned, k),
            "propensity": None if done.propensity is None else done.propensity.ravel(),
        }
        return ImpressionBatch(self.run_id, self.policy, columns)

    def close(self) -> LoggerStats:
        """Flush the complete sessions; open sessions (an interrupted cohort) are dropped, never half-written.
        Raises ``RunMismatchError`` when a re-run did not meet every session already stored."""
        self.flush()
        if self._committed_seen != self._committed_keys.size:
            raise RunMismatchError(
                f"run {self.run_id!r} does not reproduce: {self._committed_keys.size - self._committed_seen} of its"
                f" stored sessions did not occur in the re-run (same policy, seed, shoppers and config needed)"
            )
        return self.stats


def _check_items(item_ids: np.ndarray, n_items: int) -> None:
    if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= n_items):
        bad = item_ids[(item_ids < 0) | (item_ids >= n_items)]
        raise UnknownItemError(
            f"{bad.size} impression(s) show item ids outside the catalog of {n_items} items"
            f" (allowed: 0..{n_items - 1}), e.g. {sorted(set(bad[:100].tolist()))[:5]}"
        )


# --- collection --------------------------------------------------------------------------------------------------
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

    The cohort runs like ``experiments.simulate.simulate_cohort``: ``RetentionVectorEnv`` with autoreset disabled,
    ``policy.bind(env)``, ``policy.act(obs)`` each step. If the policy has ``slate_propensity(obs, slate)``
    returning (B, k) or (B,) probabilities, they fill ``propensity``; otherwise it is NULL.

    ``store``: a DuckDB path (``None``: ``DEFAULT_STORE``), a SQLAlchemy URL or an open ``LogStore``. ``run_id``
    defaults to ``{policy}__{seed}__{UTC time}``. Re-running a run id resumes it without duplicates (see the module
    docstring); a finished run returns at once. Every error that can be known in advance (store, schema, names,
    a run id reused with other parameters) is raised before the simulation starts.

    ``contexts``: also write a Parquet file of serve-time features (feature logging, as production recommenders
    do to avoid train/serve skew), one row per step: ``shopper``, ``step``, the observation's shopper vector as
    ``s0 .. s{F-1}``, and — for analysis only, never for agents — the simulator's true click probability of each
    slate position, ``true_click_prob_0 .. true_click_prob_{k-1}``. Written atomically when the run ends.
    """
    from gymnasium.vector import AutoresetMode
    from tqdm.auto import tqdm

    from stickyrec.envs.config import make_config
    from stickyrec.envs.vector import RetentionVectorEnv

    config = make_config(config)
    if isinstance(n_shoppers, bool) or not isinstance(n_shoppers, (int, np.integer)) or n_shoppers < 1:
        raise ValueError(f"n_shoppers must be a positive integer, got {n_shoppers!r}")
    policy_name = check_name(getattr(policy, "name", type(policy).__name__), "policy name")
    if run_id is None:
        run_id = f"{policy_name}__{seed}__{_now().strftime('%Y%m%dT%H%M%S')}"
    check_name(run_id, "run_id")
    config_hash, config_json = config_fingerprint(config)
    started = time.perf_counter()
    with _Opened(store, connect_timeout=connect_timeout) as opened:
        opened.check_schema(create=True)
        info = RunInfo(run_id, policy_name, int(seed), int(n_shoppers), config_hash, config_json, _now())
        stored = opened.get_run(run_id)
        if stored is not None:
            differ = [
                f"{name}: stored {getattr(stored, name)!r}, now {getattr(info, name)!r}"
                for name in ("policy", "seed", "n_shoppers", "config_hash")
                if getattr(stored, name) != getattr(info, name)
            ]
            if differ:
                raise RunMismatchError(
                    f"run {run_id!r} is already in {opened.description} with other parameters"
                    f" ({'; '.join(differ)}); re-run it with the same ones or pick a new run_id"
                )
            if stored.finished_at is not None:
                total = opened.count(run_id)
                return CollectResult(
                    run_id,
                    opened.description,
                    total,
                    0,
                    total,
                    0,
                    0,
                    time.perf_counter() - started,
                    0.0,
                    already_complete=True,
                )
            committed = opened.committed_sessions(run_id)
        else:
            if opened.count(run_id):
                raise RunMismatchError(
                    f"{opened.description} holds impressions of run {run_id!r} but no record of"
                    f" its parameters in {RUNS_TABLE!r}; pick a new run_id"
                )
            opened.start_run(info)
            committed = None

        env = RetentionVectorEnv(int(n_shoppers), config=config, autoreset_mode=AutoresetMode.DISABLED)
        policy.bind(env)
        propensity_of = getattr(policy, "slate_propensity", None)
        update = getattr(policy, "update", None)
        logger = ImpressionLogger(
            opened,
            run_id,
            policy_name,
            int(n_shoppers),
            config.slate_size,
            n_items=config.n_items,
            committed=committed,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
        )
        obs, _ = env.reset(seed=int(seed))
        active = np.ones(int(n_shoppers), dtype=bool)
        rows = np.arange(int(n_shoppers))[:, None]
        bar = tqdm(total=int(config.horizon_days), desc=f"collecting {policy_name}", unit="day", disable=not progress)
        logged = 0
        recorder = _ContextRecorder(int(n_shoppers)) if contexts is not None else None
        try:
            while active.any():
                slate = policy.act(obs)
                propensity = propensity_of(obs, slate) if callable(propensity_of) else None
                if recorder is not None:
                    recorder.record(active, obs["shopper"], env.simulator.click_probabilities(slate)[:, :-1])
                next_obs, _, _, _, step_info = env.step(slate)
                if callable(update):  # what the policy records about its own traffic (CF's click history)
                    update(obs, slate, step_info)
                items = obs["candidate_ids"][rows, np.asarray(slate, dtype=np.int64)]
                logger.log_step(active, items, step_info, propensity)
                logged += int(active.sum()) * config.slate_size
                active = step_info["active"]
                obs = next_obs
                if progress:
                    day = int(np.min(step_info["day"][active])) if active.any() else int(config.horizon_days)
                    if day > bar.n:  # whole days only: no redraw on every step
                        bar.set_postfix(impressions=f"{logged:,}", refresh=False)
                        bar.update(day - bar.n)
        except KeyboardInterrupt:  # keep the sessions that did complete; a re-run resumes from them
            logger.flush()
            raise
        finally:
            bar.close()
        stats = logger.close()
        if recorder is not None:
            recorder.write(contexts)
        total = opened.count(run_id)
        opened.finish_run(run_id, total)
    return CollectResult(
        run_id,
        opened.description,
        total,
        stats.impressions_written,
        stats.impressions_skipped,
        stats.sessions_written,
        stats.commits,
        time.perf_counter() - started,
        stats.write_seconds,
    )


class _ContextRecorder:
    """Serve-time shopper features and true click probabilities of every live step, for ``collect(contexts=)``."""

    def __init__(self, n_shoppers: int) -> None:
        self.steps = np.zeros(n_shoppers, dtype=np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def record(self, active: np.ndarray, shopper_features: np.ndarray, click_probabilities: np.ndarray) -> None:
        live = np.flatnonzero(active)
        self.parts.append((live, self.steps[live], shopper_features[live], click_probabilities[live]))
        self.steps[live] += 1

    def frame(self) -> pd.DataFrame:
        shopper, step, features, probabilities = (np.concatenate(column) for column in zip(*self.parts))
        columns = {"shopper": shopper.astype(np.int64), "step": step.astype(np.int32)}
        columns.update({f"s{j}": features[:, j] for j in range(features.shape[1])})
        columns.update({f"true_click_prob_{j}": probabilities[:, j] for j in range(probabilities.shape[1])})
        return pd.DataFrame(columns)

    def write(self, path: str | os.PathLike) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from stickyrec.io import write_bytes_atomic

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(self.frame(), preserve_index=False), sink)
        write_bytes_atomic(path, sink.getvalue().to_pybytes())


def read_contexts(path: str | os.PathLike) -> pd.DataFrame:
    """The serve-time features written by ``collect(contexts=path)``."""
    if not os.path.isfile(path):
        raise ValueError(f"contexts file {str(path)!r} does not exist; collect with contexts=... to write it")
    return pd.read_parquet(path)


def list_runs(store: str | os.PathLike | LogStore | None = None) -> pd.DataFrame:
    """The runs table: one row per collection (parameters, start and finish times, impressions)."""
    with _Opened(store, read_only=True) as opened:
        if RUNS_TABLE not in opened.tables():
            return pd.DataFrame(columns=list(RUN_COLUMNS))
        if isinstance(opened, DuckDBLogStore):
            return opened.con.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM {RUNS_TABLE} ORDER BY started_at").df()
        rows = opened._query(
            f"SELECT {', '.join(opened._quote(c) for c in RUN_COLUMNS)} FROM"
            f" {opened._quote(RUNS_TABLE)} ORDER BY {opened._quote('started_at')}"
        )
        return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


__all__ = [
    "DEFAULT_STORE",
    "IMPRESSIONS_TABLE",
    "IMPRESSION_COLUMNS",
    "IMPRESSION_SCHEMA",
    "KEY_COLUMNS",
    "RUNS_TABLE",
    "CollectResult",
    "DuckDBLogStore",
    "EmptyLogError",
    "ImpressionBatch",
    "ImpressionLogger",
    "LogColumn",
    "LogStore",
    "LogStoreError",
    "LoggerStats",
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
    "read_impressions",
    "validate_impressions",
    "write_impressions",
]
