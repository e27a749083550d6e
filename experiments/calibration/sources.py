"""Read a transaction log's raw rows from a CSV, a Parquet file, a DuckDB file or an SQLAlchemy URL.

Every message about a database names it with its password masked (``stickyrec.credentials``, which also reads a
password missing from the URL from ``STICKYREC_DB_PASSWORD`` or ``STICKYREC_DB_PASSFILE``); a server that does not
answer fails within ``connect_timeout`` seconds instead of hanging.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from stickyrec.credentials import connect_engine, mask_secrets, parse_url, shown_url, url_password

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
ALLOWED_SOURCES = (
    "a pandas DataFrame, a CSV file (.csv, .csv.gz, .tsv), a Parquet file (.parquet), a DuckDB file (.duckdb) with"
    " table= or query=, or an SQLAlchemy URL (e.g. mysql+pymysql://user:pass@host/db) with table= or query="
)
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def describe_source(source: object) -> str:
    """A short name of ``source`` for messages (never a password)."""
    if isinstance(source, pd.DataFrame):
        return f"a DataFrame of {len(source)} rows"
    return mask_secrets(os.fspath(source) if isinstance(source, os.PathLike) else source)


def is_url(source: object) -> bool:
    return isinstance(source, str) and "://" in source


def read_source(
    source: object, table: str | None = None, query: str | None = None, connect_timeout: float = 5.0
) -> pd.DataFrame:
    """All rows of ``source`` as a DataFrame (columns as stored), or ``ValueError`` saying what is allowed."""
    if table is not None and query is not None:
        raise ValueError("give table= or query=, not both")
    if isinstance(source, pd.DataFrame):
        _no_table_for_file(table, query, "a DataFrame")
        return source.copy()
    if is_url(source):
        return _read_sql_url(source, table, query, connect_timeout)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"cannot read a log from {type(source).__name__}; allowed: {ALLOWED_SOURCES}")
    path = Path(source)
    if not path.exists():
        raise ValueError(f"log file {describe_source(source)} does not exist; allowed: {ALLOWED_SOURCES}")
    if path.is_dir():
        raise ValueError(f"log {describe_source(source)} is a folder, not a file; allowed: {ALLOWED_SOURCES}")
    name = path.name.lower()
    if name.endswith(DUCKDB_SUFFIXES) or _is_duckdb_file(path):
        return _read_duckdb(path, table, query)
    _no_table_for_file(table, query, f"file {path}")
    if name.endswith(PARQUET_SUFFIXES):
        return _read_parquet(path)
    if name.endswith(CSV_SUFFIXES):
        return _read_csv(path)
    raise ValueError(f"cannot tell the format of {path.name!r} from its name; allowed: {ALLOWED_SOURCES}")


def _no_table_for_file(table: str | None, query: str | None, what: str) -> None:
    if table is not None or query is not None:
        raise ValueError(f"table= and query= apply to databases only, not to {what}")


def _is_duckdb_file(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(12)
    return head[8:12] == b"DUCK"


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise ValueError(f"cannot read Parquet file {path}: {exc}") from None


def _sniff_separator(path: Path) -> str:
    """The separator among , ; tab and | that appears most in the file's first line."""
    import bz2
    import gzip
    import lzma

    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(path.suffix.lower(), open)
    if path.suffix.lower() == ".zip":
        return ","
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read CSV file {path}: {exc}") from None
    counts = {sep: first.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) > 0 else ","


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        # Every column as text: customer and order ids keep their leading zeros; numbers and times are parsed
        # later, column by column, with errors that name the column.
        return pd.read_csv(path, sep=_sniff_separator(path), dtype=str)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read CSV file {path}: {exc}") from None


def _check_table_name(table: str) -> None:
    if not isinstance(table, str) or not TABLE_NAME.fullmatch(table):
        raise ValueError(
            f"table {table!r} is not allowed; allowed: a name of letters, digits, _ and $ (optionally schema.table);"
            " use query= for anything else"
        )


def _read_duckdb(path: Path, table: str | None, query: str | None) -> pd.DataFrame:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise ValueError(f"cannot open DuckDB file {path}: {exc}") from None
    try:
        if table is None and query is None:
            listed = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
            tables = sorted(row[0] for row in listed)
            raise ValueError(f"DuckDB file {path} needs table= or query=; tables found: {tables}")
        if table is not None:
            _check_table_name(table)
            query = "SELECT * FROM " + ".".join(f'"{part}"' for part in table.split("."))
        try:
            return con.execute(query).df()
        except duckdb.Error as exc:
            raise ValueError(f"cannot read from DuckDB file {path}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _with_available_mysql_driver(parsed):
    """``mysql://`` and ``mariadb://`` mean SQLAlchemy's default driver, MySQLdb; use PyMySQL when only it is here."""
    from importlib.util import find_spec

    if parsed.drivername in ("mysql", "mariadb") and find_spec("MySQLdb") is None and find_spec("pymysql"):
        return parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed


def _sql_engine(url: str, connect_timeout: float):
    """An engine for ``url``, after a probe connection that fails within about ``connect_timeout`` seconds."""

    parsed = _with_available_mysql_driver(parse_url(url))  # password masked in its errors; from the environment
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        if not Path(database).is_file():  # SQLite would create an empty file and then find no table
            raise ValueError(f"SQLite database file {database} does not exist")
    password, shown = url_password(parsed), shown_url(parsed)
    try:
        engine = connect_engine(parsed, connect_timeout)
    except ValueError as exc:
        raise ValueError(str(exc).replace("cannot connect to ", "cannot connect to database ", 1)) from None
    return engine, shown, password


def _read_sql_url(url: str, table: str | None, query: str | None, connect_timeout: float) -> pd.DataFrame:
    import sqlalchemy as sa

    if table is None and query is None:
        raise ValueError(f"database {mask_secrets(url)} needs table= or query= to say which rows are the log")
    engine, shown, password = _sql_engine(url, connect_timeout)
    try:
        if table is not None:
            _check_table_name(table)
            quote = engine.dialect.identifier_preparer.quote
            query = "SELECT * FROM " + ".".join(quote(part) for part in table.split("."))
        try:
            with engine.connect() as conn:
                return pd.read_sql_query(sa.text(query), conn)
        except sa.exc.OperationalError as exc:
            reason = mask_secrets(getattr(exc, "orig", None) or exc, (password,)).splitlines()[0]
            raise ValueError(f"cannot read from database {shown}: {reason}") from None
        except sa.exc.SQLAlchemyError as exc:
            reason = mask_secrets(getattr(exc, "orig", None) or exc, (password,)).splitlines()[0]
            raise ValueError(f"query on database {shown} failed: {reason}") from None
    finally:
        engine.dispose()
