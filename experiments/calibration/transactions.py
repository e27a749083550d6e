"""A store's transaction log as purchase days, split into calibration and holdout weeks, in BG/NBD's RFM form.

``read_transactions`` reads purchase lines (one row per line of an order) from any source ``sources.read_source``
accepts, finds the customer, time, value and order columns (common names are recognised; pass them to be sure),
cleans the rows and collapses them to *purchase days*: all lines of one customer on one calendar day are one
purchase. ``split`` cuts the purchase days at a calibration end date and summarises each customer of the
calibration weeks as BG/NBD's ``x`` (repeat purchase days), ``t_x`` (time of the last purchase since the first)
and ``T`` (age at the calibration end), plus her purchase days in the held-out weeks.

Cleaning, and what it does with each kind of bad row:

- rows without a customer id, and cancellations (an order id starting with ``C``, or a quantity of zero or less)
  are dropped and counted in ``TransactionLog.dropped``: every real log has them, and they are not purchases;
- exact duplicate rows (every column equal) are dropped with a ``UserWarning`` saying how many, by default
  (``duplicates="drop"``). A duplicate cannot add a purchase day (the unit of the fit) since its day is already
  there; it can only inflate the day's value, and the usual cause is an export that overlaps another (Online
  Retail II's two files share nine days). ``duplicates="error"`` refuses such a log instead; ``"keep"`` keeps them;
- a missing or misnamed column, a missing, unparsable or future timestamp, a non-numeric, missing or negative value
  and a log with no purchase left are refused with a ``ValueError`` naming the problem and what is allowed.

Customers with one purchase only are valid (``x = 0``).
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stickyrec.experiments.calibration.sources import describe_source, read_source

# Candidate column names per role, compared after lower-casing and dropping everything but letters and digits
# ("Customer ID", "customer_id" and "CustomerID" are all "customerid"). Earlier candidates win.
ROLE_NAMES = {
    "customer": (
        "customerid", "customer", "custid", "customerno", "customernumber", "clientid", "client", "userid",
        "user", "buyerid", "shopperid", "memberid", "accountid",
    ),
    "time": (
        "invoicedate", "timestamp", "datetime", "orderdate", "purchasedate", "transactiondate", "date",
        "createdat", "ordertime", "purchasetime", "eventtime", "time", "ts", "day", "purchaseday",
    ),
    "order": (
        "invoice", "invoiceno", "invoiceid", "invoicenumber", "orderid", "order", "orderno", "ordernumber",
        "transactionid", "receiptid", "receipt", "basketid",
    ),
    "value": ("value", "amount", "revenue", "total", "sales", "monetary", "ordervalue", "totalprice", "linetotal"),
    "quantity": ("quantity", "qty", "units"),
    "price": ("price", "unitprice", "itemprice"),
}  # fmt: skip
FUTURE_TOLERANCE = pd.Timedelta(days=1)  # time zones: a log written "now" somewhere east of UTC is not future
DUPLICATE_POLICIES = ("drop", "error", "keep")


@dataclass(frozen=True)
class TransactionLog:
    """A cleaned log: purchase lines and purchase days, with what was read and what was dropped."""

    lines: pd.DataFrame  # customer (str), time (datetime64), value (float or NaN), order (str or None)
    days: pd.DataFrame  # one row per customer and calendar day: customer, day, value, lines, orders
    columns: dict[str, str | None]  # role -> the source's column (value may be "Quantity*Price")
    source: str  # the source's name for messages (password masked)
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)  # no_customer, cancelled, duplicates

    @property
    def customers(self) -> int:
        return int(self.days["customer"].nunique())

    @property
    def first_day(self) -> pd.Timestamp:
        return self.days["day"].min()

    @property
    def last_day(self) -> pd.Timestamp:
        return self.days["day"].max()


def normalise_name(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _suggest(given: str, columns: list[str]) -> str:
    same = [c for c in columns if normalise_name(c) == normalise_name(given)]
    close = same or difflib.get_close_matches(given, columns, n=3, cutoff=0.5)
    if not close:
        by_norm = {normalise_name(c): c for c in columns}
        close = [by_norm[n] for n in difflib.get_close_matches(normalise_name(given), list(by_norm), n=3, cutoff=0.6)]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def resolve_column(columns: list[str], role: str, given: str | None, source: str, required: bool = True) -> str | None:
    """The source column playing ``role``: ``given`` if present, else the first recognised name."""
    if given is not None:
        if given in columns:
            return given
        raise ValueError(
            f"{role} column {given!r} not found in {source}; columns found: {columns}{_suggest(given, columns)}"
        )
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(normalise_name(column), column)
    for candidate in ROLE_NAMES[role]:
        if candidate in by_norm:
            return by_norm[candidate]
    if required:
        raise ValueError(
            f"no {role} column recognised in {source}; columns found: {columns}; pass {role}=COLUMN"
            f" (recognised names: {', '.join(ROLE_NAMES[role][:6])}, ...)"
        )
    return None


def customer_ids(column: pd.Series) -> pd.Series:
    """Customer ids as strings, missing as <NA>; a whole float (``12346.0``, as a number or as text) becomes
    ``"12346"``, while text ids keep their leading zeros. Each distinct id is converted once."""
    if pd.api.types.is_bool_dtype(column):
        raise ValueError("customer column holds booleans; expected customer ids")
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    uniques = pd.Series(uniques)
    if pd.api.types.is_float_dtype(uniques) and np.all(uniques == np.round(uniques)):
        uniques = uniques.astype("Int64")
    text = uniques.astype("string").str.strip()
    text = text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)  # "12346.0", a float id written as text
    text = text.mask(text == "")
    ids = pd.Series(text.array.take(codes, allow_fill=True), index=column.index, dtype="string")
    return ids


def parse_times(column: pd.Series, name: str) -> pd.Series:
    """Timestamps as naive datetime64 (aware ones converted to UTC), or ``ValueError`` naming the bad ones."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_datetime64_any_dtype(column):
        raise ValueError(
            f"time column {name!r} holds numbers ({column.dtype}); expected dates or timestamps such as 2011-06-30"
            " or 2011-06-30 14:05 (convert epoch seconds before reading)"
        )
    missing = column.isna()
    if missing.any():
        raise ValueError(f"time column {name!r} has {int(missing.sum())} missing timestamps; every row needs one")
    if pd.api.types.is_datetime64_any_dtype(column):
        times = column
    else:
        text = column.astype("string").str.strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": handled below
            times = pd.to_datetime(text, errors="coerce", utc=True)
            bad = times.isna()
            if bad.any():  # mixed formats in one column: parse the leftovers one by one
                times = times.copy()
                times[bad] = pd.to_datetime(text[bad], errors="coerce", utc=True, format="mixed")
        bad = times.isna()
        if bad.any():
            examples = list(dict.fromkeys(text[bad].head(50).tolist()))[:3]
            raise ValueError(
                f"time column {name!r} has {int(bad.sum())} unparsable timestamps, e.g. {examples}; allowed: dates"
                " or date-times such as 2011-06-30, 2011-06-30 14:05:00 or 06/30/2011 14:05"
            )
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    times = times.astype("datetime64[ns]")
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = times > now + FUTURE_TOLERANCE
    if future.any():
        raise ValueError(
            f"time column {name!r} has {int(future.sum())} timestamps in the future (latest {times.max()}, now"
            f" {now:%Y-%m-%d %H:%M} UTC); allowed: times up to now"
        )
    return times


def _numeric(frame: pd.DataFrame, name: str, role: str) -> pd.Series:
    column = frame[name]
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        converted = pd.to_numeric(column, errors="coerce")
        bad = converted.isna() & column.notna()
        if bad.any():
            examples = list(dict.fromkeys(column[bad].astype(str).head(20)))[:3]
            raise ValueError(f"{role} column {name!r} has {int(bad.sum())} non-numeric entries, e.g. {examples}")
        column = converted
    return column.astype(float)


def _resolve_all(raw: pd.DataFrame, customer, time, value, order, source: str) -> dict[str, str | None]:
    columns = [str(c) for c in raw.columns]
    raw.columns = columns
    roles: dict[str, str | None] = {
        "customer": resolve_column(columns, "customer", customer, source),
        "time": resolve_column(columns, "time", time, source),
        "order": resolve_column(columns, "order", order, source, required=False),
        "quantity": resolve_column(columns, "quantity", None, source, required=False),
        "price": resolve_column(columns, "price", None, source, required=False),
    }
    roles["value"] = resolve_column(columns, "value", value, source, required=False)
    return roles


def exact_duplicates(frame: pd.DataFrame) -> np.ndarray:
    """Rows equal in every column to an earlier row (bool array). Rows are hashed first and only rows sharing a
    hash are compared, which is several times faster than ``DataFrame.duplicated`` on a million rows and exact."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    shared = pd.Series(hashes).duplicated(keep=False).to_numpy()
    duplicated = np.zeros(len(frame), dtype=bool)
    if shared.any():
        duplicated[np.flatnonzero(shared)] = frame[shared].duplicated(keep="first").to_numpy()
    return duplicated


def _drop_duplicates(raw: pd.DataFrame, policy: str, source: str) -> tuple[pd.DataFrame, int]:
    if policy not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates={policy!r} is not allowed; allowed: {', '.join(DUPLICATE_POLICIES)}")
    if policy == "keep":
        return raw, 0
    duplicated = exact_duplicates(raw)
    count = int(duplicated.sum())
    if count and policy == "error":
        raise ValueError(
            f"{source} has {count} duplicated rows (every column equal to an earlier row); remove them, or pass"
            " duplicates='drop' to drop them (they cannot add purchase days, only inflate values)"
        )
    if count:
        warnings.warn(
            f"dropped {count} duplicated rows of {source} (every column equal to an earlier row)", UserWarning, 2
        )
    return raw[~duplicated], count


def _line_values(raw: pd.DataFrame, roles: dict[str, str | None]) -> tuple[pd.Series | None, str | None]:
    if roles["value"] is not None:
        return _numeric(raw, roles["value"], "value"), roles["value"]
    if roles["quantity"] is not None and roles["price"] is not None:
        quantity = _numeric(raw, roles["quantity"], "quantity")
        price = _numeric(raw, roles["price"], "price")
        return quantity * price, f"{roles['quantity']}*{roles['price']}"
    return None, None


def _check_values(values: pd.Series | None, label: str | None, source: str) -> None:
    if values is None:
        return
    missing = values.isna()
    if missing.any():
        raise ValueError(f"value {label!r} is missing on {int(missing.sum())} purchase rows of {source}")
    negative = values < 0
    if negative.any():
        examples = sorted(values[negative].unique().tolist())[:3]
        raise ValueError(
            f"value {label!r} is negative on {int(negative.sum())} purchase rows of {source}, e.g. {examples};"
            " allowed: values of zero or more (returns and cancellations, marked by a negative quantity or an"
            " order id starting with C, are dropped before this check)"
        )


def _cancelled(raw: pd.DataFrame, roles: dict[str, str | None]) -> np.ndarray:
    cancelled = np.zeros(len(raw), dtype=bool)
    if roles["order"] is not None:
        order = raw[roles["order"]].astype("string").str.strip()
        cancelled |= order.str.startswith("C").fillna(False).to_numpy(dtype=bool)
    if roles["quantity"] is not None:
        quantity = _numeric(raw, roles["quantity"], "quantity")
        cancelled |= (quantity <= 0).to_numpy(dtype=bool)
    return cancelled


def _clean(raw: pd.DataFrame, roles: dict[str, str | None], source: str) -> tuple[pd.DataFrame, dict[str, int]]:
    customers = customer_ids(raw[roles["customer"]])
    no_customer = customers.isna().to_numpy()
    cancelled = _cancelled(raw, roles) & ~no_customer
    keep = ~(no_customer | cancelled)
    dropped = {"no_customer": int(no_customer.sum()), "cancelled": int(cancelled.sum())}
    if not keep.any():
        raise ValueError(
            f"{source} has no purchases left after dropping {dropped['no_customer']} rows without a customer id and"
            f" {dropped['cancelled']} cancellations (order id starting with C, or quantity of zero or less)"
        )
    raw = raw[keep]
    values, label = _line_values(raw, roles)
    _check_values(values, label, source)
    roles["value"] = label
    lines = pd.DataFrame(
        {
            "customer": customers[keep].to_numpy(),
            "time": parse_times(raw[roles["time"]], roles["time"]).to_numpy(),
            "value": np.nan if values is None else values.to_numpy(dtype=float),
            "order": None if roles["order"] is None else raw[roles["order"]].astype("string").to_numpy(),
        }
    )
    return lines, dropped


def purchase_days(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and calendar day: the day's summed value, its lines and its distinct orders."""
    frame = lines.assign(day=lines["time"].dt.floor("D"))
    grouped = frame.groupby(["customer", "day"], sort=True, observed=True)
    days = grouped.agg(value=("value", "sum"), lines=("time", "size"))
    if frame["order"].notna().any():
        days["orders"] = grouped["order"].nunique()
    else:
        days["orders"] = days["lines"]
    if frame["value"].isna().all():
        days["value"] = np.nan
    return days.reset_index()


def read_transactions(
    source,
    customer: str | None = None,
    time: str | None = None,
    value: str | None = None,
    order: str | None = None,
    table: str | None = None,
    query: str | None = None,
    *,
    duplicates: str = "drop",
    connect_timeout: float = 5.0,
) -> TransactionLog:
    """Read a transaction log (one row per purchase line) and collapse it to purchase days.

    ``source``: a DataFrame, a CSV or Parquet file, a DuckDB file with ``table`` or ``query``, or an SQLAlchemy URL
    with ``table`` or ``query``. Column arguments left at None are recognised by name (``Customer ID``,
    ``CustomerID``, ``customer_id``; ``InvoiceDate``, ``timestamp``, ``date``; ``Invoice``, ``InvoiceNo``,
    ``order_id``; ``value``, ``amount``, else quantity times price when both columns exist). Raises ``ValueError``
    on bad input (see the module docstring); ``duplicates`` is ``"drop"`` (with a warning), ``"error"`` or
    ``"keep"``.
    """
    name = describe_source(source)
    raw = read_source(source, table=table, query=query, connect_timeout=connect_timeout)
    rows_read = len(raw)
    if rows_read == 0:
        raise ValueError(f"log {name} is empty: it has no rows (columns found: {[str(c) for c in raw.columns]})")
    roles = _resolve_all(raw, customer, time, value, order, name)
    raw, duplicate_count = _drop_duplicates(raw, duplicates, name)
    lines, dropped = _clean(raw, roles, name)
    dropped["duplicates"] = duplicate_count
    columns = {role: roles[role] for role in ("customer", "time", "value", "order")}
    return TransactionLog(lines, purchase_days(lines), columns, name, rows_read, dropped)


@dataclass(frozen=True)
class Split:
    """Purchase days cut at ``calibration_end`` (the last day the fit may see), with each customer's RFM summary.

    ``summary`` has one row per customer whose first purchase day is on or before ``calibration_end`` (index:
    customer id), with BG/NBD's ``x`` (repeat purchase days in the calibration weeks), ``t_x`` and ``T`` in weeks
    (``t_x_days``, ``T_days`` in days): the last purchase day and the calibration end, counted from her first
    purchase day. ``x_holdout`` counts her purchase days in the held-out days ``calibration_end + 1 ..
    holdout_end`` (``holdout_days`` long). Customers whose first purchase is held out are in ``holdout`` only.
    """

    calibration: pd.DataFrame
    holdout: pd.DataFrame
    summary: pd.DataFrame
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    first_day: pd.Timestamp

    @property
    def holdout_days(self) -> int:
        return int((self.holdout_end - self.calibration_end).days)

    @property
    def holdout_weeks(self) -> float:
        return self.holdout_days / 7.0


def as_day(value, what: str) -> pd.Timestamp:
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ValueError(f"{what} {value!r} is not a date; allowed: YYYY-MM-DD") from None
    if pd.isna(day):
        raise ValueError(f"{what} {value!r} is not a date; allowed: YYYY-MM-DD")
    if day.tzinfo is not None:
        day = day.tz_convert("UTC").tz_localize(None)
    return day.floor("D").as_unit("ns")


def _days_of(log_or_days) -> pd.DataFrame:
    days = log_or_days.days if isinstance(log_or_days, TransactionLog) else log_or_days
    missing = {"customer", "day"} - set(days.columns)
    if missing:
        raise ValueError(f"purchase days need columns customer and day; missing: {sorted(missing)}")
    if len(days) == 0:
        raise ValueError("the log has no purchase days")
    return days


def rfm_summary(calibration: pd.DataFrame, holdout: pd.DataFrame, calibration_end: pd.Timestamp) -> pd.DataFrame:
    """Per-customer BG/NBD summary of the calibration days, with the held-out purchase days (see ``Split``)."""
    grouped = calibration.groupby("customer", sort=True, observed=True)
    first = grouped["day"].min()
    last = grouped["day"].max()
    count = grouped["day"].size()
    value = grouped["value"].sum(min_count=1) if "value" in calibration else pd.Series(np.nan, index=first.index)
    first_rows = calibration.sort_values(["customer", "day"]).drop_duplicates("customer").set_index("customer")
    first_value = first_rows["value"].reindex(first.index) if "value" in calibration else value * np.nan
    summary = pd.DataFrame({"first_day": first})
    summary["x"] = (count - 1).astype(np.int64)
    summary["t_x_days"] = (last - first).dt.days.astype(np.int64)
    summary["T_days"] = (calibration_end - first).dt.days.astype(np.int64)
    summary["t_x"] = summary["t_x_days"] / 7.0
    summary["T"] = summary["T_days"] / 7.0
    held = holdout[summary.index.get_indexer(holdout["customer"]) >= 0]  # (Series.isin is slow on arrow strings)
    held_grouped = held.groupby("customer", sort=True, observed=True)
    summary["x_holdout"] = held_grouped["day"].size().reindex(summary.index, fill_value=0).astype(np.int64)
    summary["value_calibration"] = value
    repeat_value = (value - first_value) / summary["x"].where(summary["x"] > 0)
    summary["repeat_value_mean"] = repeat_value
    if "value" in holdout:
        summary["value_holdout"] = held_grouped["value"].sum(min_count=1).reindex(summary.index).fillna(0.0)
    summary.index.name = "customer"
    return summary


def split(log_or_days, calibration_end, holdout_end=None, *, cohort_start=None) -> Split:
    """Cut purchase days (a ``TransactionLog`` or its ``days``) at ``calibration_end`` (inclusive).

    ``holdout_end`` (inclusive) defaults to the log's last day. ``cohort_start``, when given, leaves customers whose
    first purchase day is before it out of the summary (not out of the purchase days): in a log that starts
    mid-history, the first weeks' "new" customers include old ones (left-censored), against BG/NBD's assumption
    that the first purchase is the start. Raises ``ValueError`` when a date is outside the log: both parts must
    hold at least one day of it, and the cohort must start by the calibration end.
    """
    days = _days_of(log_or_days)
    first, last = days["day"].min(), days["day"].max()
    end = as_day(calibration_end, "calibration end")
    if not first <= end < last:
        raise ValueError(
            f"calibration end {end:%Y-%m-%d} is outside the log, which spans {first:%Y-%m-%d} to {last:%Y-%m-%d};"
            f" allowed: a date from {first:%Y-%m-%d} to {last - pd.Timedelta(days=1):%Y-%m-%d}, so that both the"
            " calibration and the held-out part hold days of the log"
        )
    stop = last if holdout_end is None else as_day(holdout_end, "holdout end")
    if not end < stop <= last:
        raise ValueError(
            f"holdout end {stop:%Y-%m-%d} is outside the log's held-out part; allowed: a date after the calibration"
            f" end {end:%Y-%m-%d} and no later than the log's last day {last:%Y-%m-%d}"
        )
    start = first if cohort_start is None else as_day(cohort_start, "cohort start")
    if not start <= end:
        raise ValueError(
            f"cohort start {start:%Y-%m-%d} is after the calibration end {end:%Y-%m-%d}; allowed: a date up to it"
        )
    in_calibration = (days["day"] <= end).to_numpy()
    in_holdout = ~in_calibration & (days["day"] <= stop).to_numpy()
    calibration = days[in_calibration].reset_index(drop=True)
    holdout = days[in_holdout].reset_index(drop=True)
    summary = rfm_summary(calibration, holdout, end)
    summary = summary[summary["first_day"] >= start]
    return Split(calibration, holdout, summary, end, stop, first)
