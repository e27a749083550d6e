"""The impression log's schema: every slate position shown to a shopper, with what she did, and its validation.

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

Also here: ``ImpressionBatch`` (impressions as column arrays, the unit a store writes), ``RunInfo`` (a row of the
runs table) and ``validate_impressions`` (a DataFrame checked against the schema and a catalog).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re

import numpy as np
import pandas as pd

from stickyrec.experiments.platform_log.errors import EmptyLogError, SchemaMismatchError, UnknownItemError

IMPRESSIONS_TABLE = "impressions"
RUNS_TABLE = "impression_runs"
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
STRING_COLUMNS: tuple[str, ...] = ("run_id", "policy")
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in IMPRESSION_COLUMNS if c not in STRING_COLUMNS)
COLUMN_KINDS: dict[str, str] = {  # column -> kind compared with a table's ("int", "float", "bool", "string")
    c.name: {"str": "string", "bool": "bool", "float64": "float"}.get(c.dtype, "int") for c in IMPRESSION_SCHEMA
}
_DTYPES = {c.name: c.dtype for c in IMPRESSION_SCHEMA}
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


# The offer events (``offers.OfferLogObserver``), a table of their own, made only by runs with offers on (a run
# without offers leaves the store's tables as they were). One row per offer sent; its outcome is what she did while
# that coupon was in force (the rest of the session for a visit offer, her next session for a between-visits one)
# and how the session in which it was sent ended.
OFFERS_TABLE = "offer_events"
OFFER_SCHEMA: tuple[LogColumn, ...] = (
    LogColumn("run_id", "str", "VARCHAR", False, "the collection run"),
    LogColumn("shopper", "int64", "BIGINT", False, "shopper index within the run (joins the impressions)"),
    LogColumn("day", "int32", "INTEGER", False, "simulated day the offer was sent"),
    LogColumn("session", "int32", "INTEGER", False, "the session it was sent in (or at the end of), from 0"),
    LogColumn("step", "int32", "INTEGER", False, "the step it was sent on (joins the impressions' step)"),
    LogColumn("kind", "str", "VARCHAR", False, "'visit' (during a session) or 'between' (at its end, for the next)"),
    LogColumn("discount", "float64", "DOUBLE", False, "the discount in [0, 1]; 0 is a reminder"),
    LogColumn("propensity", "float64", "DOUBLE", True, "the sending policy's probability of this offer decision"),
    LogColumn("policy", "str", "VARCHAR", False, "the sending policy"),
    LogColumn("purchased", "bool", "BOOLEAN", False, "she bought with this coupon (while it was in force)"),
    LogColumn("coupon_cost", "float64", "DOUBLE", False, "what this coupon cost: discount x price of those buys"),
    LogColumn("returned", "bool", "BOOLEAN", False, "the session it was sent in ended with a return visit"),
    LogColumn("churned", "bool", "BOOLEAN", False, "the session it was sent in ended with her churning"),
)
OFFER_COLUMNS: tuple[str, ...] = tuple(c.name for c in OFFER_SCHEMA)


def check_name(value: str, what: str) -> str:
    """A run id or policy name, or ``ValueError``: it is written into SQL, so only a safe alphabet passes."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not allowed; allowed: 1-128 characters of letters, digits and"
            f" _ . : @ + = / - starting with a letter or digit"
        )
    return value


def utc_now() -> _dt.datetime:
    """The current UTC time to the second, without a time zone (what the runs table stores)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def session_keys(shopper: np.ndarray, session: np.ndarray) -> np.ndarray:
    """One int64 per (shopper, session), ordered like the pairs: shopper * 2**31 + session."""
    return np.asarray(shopper, np.int64) * (1 << 31) + np.asarray(session, np.int64)


# --- batches and runs ----------------------------------------------------------------------------------------------
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
        for name in NUMERIC_COLUMNS:
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


# --- validation ----------------------------------------------------------------------------------------------------
def compare_columns(what: str, found: dict[str, str], expected: dict[str, str], bool_as_int: bool) -> None:
    """``SchemaMismatchError`` naming the missing, unexpected and mistyped columns of ``what``, if any."""
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


def as_schema_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """The log's columns in schema order and dtypes (no copy when they already are)."""
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


def check_item_ids(item_ids: np.ndarray, n_items: int) -> None:
    """``UnknownItemError`` when an item id is negative or at least ``n_items``."""
    item_ids = np.asarray(item_ids)
    if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= n_items):
        bad = item_ids[(item_ids < 0) | (item_ids >= n_items)]
        raise UnknownItemError(
            f"{bad.size} impression(s) show item ids outside the catalog of {n_items} items"
            f" (allowed: 0..{n_items - 1}), e.g. {sorted(set(bad[:100].tolist()))[:5]}"
        )


def _n_items(catalog) -> int:
    if isinstance(catalog, (int, np.integer)) and not isinstance(catalog, bool):
        return int(catalog)
    if hasattr(catalog, "n_items"):  # a Catalog or a RetentionConfig
        return int(catalog.n_items)
    raise ValueError(f"catalog must be a Catalog, a RetentionConfig or a number of items; got {type(catalog).__name__}")


def _column_kinds(frame: pd.DataFrame) -> dict[str, str]:
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
    if found.get("propensity") in ("int", "string") and frame["propensity"].isna().all():
        found["propensity"] = "float"
    return found


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
    compare_columns("the impression log", _column_kinds(frame), dict(COLUMN_KINDS), bool_as_int=False)
    for column in IMPRESSION_SCHEMA:
        if not column.nullable and frame[column.name].isna().any():
            raise ValueError(
                f"column {column.name!r} has {int(frame[column.name].isna().sum())} missing value(s);"
                " only 'propensity' may be NULL"
            )
    out = as_schema_dtypes(frame)
    for name in STRING_COLUMNS:
        for value in out[name].unique():
            check_name(value, name)
    for name in ("shopper", "day", "session", "step", "position"):
        if (out[name] < 0).any():
            raise ValueError(f"column {name!r} has negative values; allowed: 0 or more")
    if catalog is not None:
        _check_catalog(out, catalog)
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


def _check_catalog(log: pd.DataFrame, catalog) -> None:
    n_items = _n_items(catalog)
    items = log["item_id"].to_numpy()
    unknown = (items < 0) | (items >= n_items)
    if unknown.any():
        examples = sorted(set(items[unknown].tolist()))[:5]
        raise UnknownItemError(
            f"{int(unknown.sum())} impression(s) show item ids outside the catalog of"
            f" {n_items} items (allowed: 0..{n_items - 1}), e.g. {examples}"
        )
    slate_size = getattr(catalog, "slate_size", None)
    if slate_size is not None and (log["position"] >= slate_size).any():
        raise ValueError(f"positions must be below slate_size={slate_size}")
