"""Transaction logs: every source reads to the same purchase days, bad input is a clear error, splits are exact."""

from __future__ import annotations

import gzip
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stickyrec.experiments.calibration import build_example, views
from stickyrec.experiments.calibration.examples import example_path, load_example
from stickyrec.experiments.calibration.transactions import exact_duplicates, read_transactions, split

ROOT = Path(__file__).resolve().parent.parent

# An Online-Retail-shaped log: two lines of one invoice, a second invoice the same day (one purchase day), a
# cancellation, a line without customer, a one-purchase customer and a customer first seen in the held-out weeks.
LINES = [
    ("536365", "A", 2, 1.50, "2011-01-01 08:26", 17850.0),
    ("536365", "B", 1, 3.00, "2011-01-01 08:26", 17850.0),
    ("536366", "A", 1, 1.50, "2011-01-01 17:00", 17850.0),
    ("536400", "C", 4, 0.50, "2011-01-08 10:00", 17850.0),
    ("C536401", "C", -4, 0.50, "2011-01-09 10:00", 17850.0),
    ("536402", "A", 3, 1.00, "2011-01-15 09:00", 17850.0),
    ("536403", "D", 10, 2.00, "2011-01-20 12:00", 13047.0),
    ("536404", "A", 5, 1.00, "2011-01-21 12:00", np.nan),
    ("536500", "B", 1, 3.00, "2011-02-03 11:00", 17850.0),
    ("536501", "B", 2, 3.00, "2011-02-05 11:00", 12583.0),
    ("536502", "A", 1, 1.50, "2011-02-06 11:00", 13047.0),
]
COLUMNS = ["Invoice", "StockCode", "Quantity", "Price", "InvoiceDate", "Customer ID"]


@pytest.fixture
def lines() -> pd.DataFrame:
    return pd.DataFrame(LINES, columns=COLUMNS)


def _days(log) -> list[tuple[str, str, float, int]]:
    d = log.days
    return list(zip(d["customer"], d["day"].dt.strftime("%Y-%m-%d"), d["value"].round(2), d["orders"]))


EXPECTED_DAYS = [
    ("12583", "2011-02-05", 6.0, 1),
    ("13047", "2011-01-20", 20.0, 1),
    ("13047", "2011-02-06", 1.5, 1),
    ("17850", "2011-01-01", 7.5, 2),
    ("17850", "2011-01-08", 2.0, 1),
    ("17850", "2011-01-15", 3.0, 1),
    ("17850", "2011-02-03", 3.0, 1),
]


def test_csv_lines_become_purchase_days_with_drops_counted(tmp_path, lines):
    path = tmp_path / "log.csv"
    lines.to_csv(path, index=False)
    log = read_transactions(path)
    assert log.columns == {
        "customer": "Customer ID",
        "time": "InvoiceDate",
        "value": "Quantity*Price",
        "order": "Invoice",
    }
    assert _days(log) == EXPECTED_DAYS
    assert log.dropped == {"no_customer": 1, "cancelled": 1, "duplicates": 0}
    assert log.rows_read == len(LINES) and log.customers == 3


def test_every_source_kind_reads_the_same_days(tmp_path, lines):
    import duckdb
    import sqlalchemy as sa

    lines.to_parquet(tmp_path / "log.parquet", index=False)
    semicolons = tmp_path / "log.csv.gz"
    with gzip.open(semicolons, "wt") as handle:
        lines.to_csv(handle, index=False, sep=";")
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.register("frame", lines)
    con.execute("CREATE TABLE lines AS SELECT * FROM frame")
    con.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.sqlite'}")
    lines.to_sql("lines", engine, index=False)
    engine.dispose()
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    query = 'SELECT * FROM lines WHERE "Customer ID" IS NOT NULL'
    reads = [
        read_transactions(lines),
        read_transactions(tmp_path / "log.parquet"),
        read_transactions(semicolons),
        read_transactions(tmp_path / "shop.duckdb", table="lines"),
        read_transactions(str(tmp_path / "shop.duckdb"), query=query),
        read_transactions(url, table="lines"),
        read_transactions(url, query=query),
    ]
    for log in reads:
        assert _days(log) == EXPECTED_DAYS


def test_explicit_columns_and_plain_names(tmp_path):
    frame = pd.DataFrame(
        {
            "shopper": ["a", "a", "b"],
            "when": ["2011-03-01 10:00", "2011-03-04", "2011-03-02T09:30:00"],  # mixed formats parse
            "spend": [10.0, 5.0, 0.0],
        }
    )
    log = read_transactions(frame, customer="shopper", time="when", value="spend")
    assert log.columns == {"customer": "shopper", "time": "when", "value": "spend", "order": None}
    assert log.days["day"].dt.strftime("%Y-%m-%d").tolist() == ["2011-03-01", "2011-03-04", "2011-03-02"]
    padded = tmp_path / "padded.csv"
    padded.write_text("customer_id,timestamp\n00123,2011-03-01\n123,2011-03-02\n")
    assert sorted(read_transactions(padded).days["customer"]) == ["00123", "123"]  # ids are text, not numbers
    snake = pd.DataFrame({"customer_id": [1, 2], "timestamp": ["2011-03-01", "2011-03-02"]})
    log = read_transactions(snake)
    assert log.columns["customer"] == "customer_id" and log.days["value"].isna().all()
    aware = pd.DataFrame({"CustomerID": ["x"], "date": ["2011-03-01T23:30:00-02:00"]})
    assert read_transactions(aware).days["day"].iloc[0] == pd.Timestamp("2011-03-02")  # converted to UTC


def _error(source, **kwargs) -> str:
    with pytest.raises(ValueError) as error:
        read_transactions(source, **kwargs)
    return str(error.value)


def test_missing_or_misnamed_columns_name_what_was_found(lines):
    message = _error(lines, customer="CustomerId")
    assert "'CustomerId' not found" in message and "'Customer ID'" in message and "did you mean" in message
    assert "columns found: ['Invoice', 'StockCode'" in message
    message = _error(lines.drop(columns=["InvoiceDate"]))
    assert "no time column recognised" in message and "pass time=COLUMN" in message
    assert "no customer column" in _error(lines.drop(columns=["Customer ID"]))


def test_timestamps_unparsable_numeric_missing_or_future(lines):
    bad = lines.assign(InvoiceDate=lines["InvoiceDate"].where(lines.index != 3, "31/31/2011 25:00"))
    message = _error(bad)
    assert "1 unparsable timestamps" in message and "31/31/2011 25:00" in message and "allowed" in message
    assert "holds numbers" in _error(lines.assign(InvoiceDate=np.arange(len(lines))))
    assert "missing timestamps" in _error(lines.assign(InvoiceDate=lines["InvoiceDate"].where(lines.index != 0)))
    future = (pd.Timestamp.now() + pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    message = _error(lines.assign(InvoiceDate=lines["InvoiceDate"].where(lines.index != 2, future)))
    assert "1 timestamps in the future" in message


def test_empty_log_and_nothing_left(tmp_path, lines):
    header_only = tmp_path / "empty.csv"
    header_only.write_text("Customer ID,InvoiceDate\n")
    assert "is empty" in _error(header_only)
    assert "is empty" in _error(lines.iloc[:0])
    cancelled = lines[lines["Invoice"].str.startswith("C") | lines["Customer ID"].isna()]
    message = _error(cancelled)
    assert "no purchases left" in message and "1 rows without a customer id" in message


def test_negative_and_non_numeric_values(lines):
    frame = pd.DataFrame({"customer": ["a", "b"], "date": ["2011-01-01", "2011-01-02"], "amount": [5.0, -2.0]})
    message = _error(frame)
    assert "negative on 1 purchase rows" in message and "-2.0" in message
    assert "non-numeric" in _error(frame.assign(amount=["5", "lots"]))
    # a negative price on a positive quantity is not a cancellation: refused
    assert "negative" in _error(lines.assign(Price=lines["Price"].where(lines.index != 0, -1.0)))


def test_duplicates_dropped_with_a_warning_or_refused(lines):
    doubled = pd.concat([lines, lines.iloc[:3]], ignore_index=True)
    with pytest.warns(UserWarning, match="dropped 3 duplicated rows"):
        log = read_transactions(doubled)
    assert _days(log) == EXPECTED_DAYS and log.dropped["duplicates"] == 3
    assert "3 duplicated rows" in _error(doubled, duplicates="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = read_transactions(doubled, duplicates="keep")
    assert kept.days["value"].sum() == pytest.approx(log.days["value"].sum() + 7.5)
    assert "allowed: drop, error, keep" in _error(lines, duplicates="maybe")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.integers(0, 4, 500), "b": rng.choice(["x", "y", None], 500), "c": rng.random(500)})
    frame.loc[::7, "c"] = 0.5
    assert np.array_equal(exact_duplicates(frame), frame.duplicated().to_numpy())


def test_bad_sources_and_unreachable_database(tmp_path, lines):
    assert "does not exist" in _error(tmp_path / "nope.csv")
    (tmp_path / "log.xlsx").write_bytes(b"x")
    assert "cannot tell the format" in _error(tmp_path / "log.xlsx")
    assert "apply to databases only" in _error(lines, table="t")
    assert "needs table= or query=" in _error("sqlite:///x.db")
    assert "does not exist" in _error(f"sqlite:///{tmp_path / 'none.db'}", table="t")
    assert not (tmp_path / "none.db").exists()  # nothing written
    import duckdb

    con = duckdb.connect(str(tmp_path / "two.duckdb"))
    con.execute("CREATE TABLE a (x INT); CREATE TABLE b (y INT)")
    con.close()
    assert "tables found: ['a', 'b']" in _error(tmp_path / "two.duckdb")
    assert "not allowed" in _error(tmp_path / "two.duckdb", table="a; DROP TABLE b")
    started = time.perf_counter()
    message = _error("mysql+pymysql://shop:s3cr3tpw@127.0.0.1:1/shop", table="orders", connect_timeout=2)
    assert time.perf_counter() - started < 10
    assert "cannot connect to database" in message and "s3cr3tpw" not in message and "***" in message
    assert "s3cr3tpw" not in _error("mysql+pymysql://shop:s3cr3tpw@[bad", table="orders")


def test_a_server_that_accepts_and_stalls_fails_within_the_timeout():
    """A listening socket that never answers MySQL's handshake (a stalled proxy): bounded, not a hang."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        started = time.perf_counter()
        message = _error(f"mysql://shop:s3cr3tpw@127.0.0.1:{port}/shop", query="SELECT 1", connect_timeout=1)
        assert time.perf_counter() - started < 8
    assert (
        "cannot connect to database mysql+pymysql://shop:***@127.0.0.1" in message
        and "timed out" in message
        and "s3cr3tpw" not in message
    )


def test_split_summary_in_bgnbd_form(lines):
    log = read_transactions(lines)
    cut = split(log, "2011-01-31")
    s = cut.summary
    assert list(s.index) == ["13047", "17850"]  # 12583 first buys in the held-out weeks
    row = s.loc["17850"]
    assert (row["x"], row["t_x_days"], row["T_days"], row["x_holdout"]) == (2, 14, 30, 1)
    assert row["t_x"] == pytest.approx(2.0) and row["T"] == pytest.approx(30 / 7)
    assert row["repeat_value_mean"] == pytest.approx(2.5)
    one = s.loc["13047"]  # one purchase in calibration: valid, x = t_x = 0
    assert (one["x"], one["t_x_days"], one["T_days"], one["x_holdout"]) == (0, 0, 11, 1)
    assert cut.holdout_days == 6 and len(cut.calibration) == 4 and len(cut.holdout) == 3
    short = split(log, "2011-01-31", holdout_end="2011-02-04")
    assert short.summary["x_holdout"].tolist() == [0, 1]
    later = split(log, "2011-01-31", cohort_start="2011-01-02")  # 17850 started before: left out of the cohort
    assert list(later.summary.index) == ["13047"] and len(later.calibration) == 4
    with pytest.raises(ValueError, match="cohort start 2011-02-01 is after the calibration end"):
        split(log, "2011-01-31", cohort_start="2011-02-01")


@pytest.mark.parametrize("end", ["2010-12-31", "2011-02-06", "2012-01-01"])
def test_split_date_outside_the_log(lines, end):
    with pytest.raises(ValueError, match=r"outside the log, which spans 2011-01-01 to 2011-02-06; allowed"):
        split(read_transactions(lines), end)


def test_split_bad_dates(lines):
    log = read_transactions(lines)
    with pytest.raises(ValueError, match="not a date"):
        split(log, "end of January")
    with pytest.raises(ValueError, match="holdout end 2011-03-01"):
        split(log, "2011-01-31", holdout_end="2011-03-01")


def test_views_on_a_tiny_log(lines):
    log = read_transactions(lines)
    cut = split(log, "2011-01-15")
    curve = views.tracking_curve(cut)
    # weeks end on 2011-01-15 + 7k; repeat days: 17850 on 01-08 and 01-15 (calibration), 02-03; 13047 on 02-06
    assert curve["week_end"].dt.strftime("%m-%d").tolist() == ["01-08", "01-15", "01-22", "01-29", "02-05"]
    assert curve["repeat_purchases"].tolist() == [1, 1, 0, 0, 1]
    assert curve["cumulative"].tolist() == [1, 2, 2, 2, 3]
    assert curve["cumulative_since_split"].tolist() == [0, 0, 0, 0, 1]
    assert views.purchase_gaps(log.days).tolist() == [17, 7, 7, 19]  # 13047, then 17850
    dist = views.repeat_distribution([0, 0, 1, 5, 7], cap=3)
    assert dist["customers"].tolist() == [2, 1, 0, 2]
    retention = views.cohort_retention(log.days)
    assert retention.loc[pd.Period("2011-01", "M"), "customers"] == 2
    assert retention.loc[pd.Period("2011-01", "M"), 1] == 1.0  # both January customers bought in February
    assert np.isnan(retention.loc[pd.Period("2011-02", "M"), 1])  # March is after the log's end
    assert views.auc([True, False, True], [0.9, 0.1, 0.5]) == 1.0
    assert views.auc([True, False], [0.5, 0.5]) == 0.5
    assert views.mape([100, 0, 50], [110, 3, 40]) == pytest.approx(15.0)


def test_shipped_example_loads_and_is_small_and_packaged():
    path = load_example("online_retail_ii")
    assert path == example_path("online_retail_ii") and path.stat().st_size < 2_000_000
    log = read_transactions(path)
    # the data README's facts about the merged, cleaned Online Retail II
    assert log.customers == 5881 and len(log.days) == 33112
    assert log.first_day == pd.Timestamp("2009-12-01") and log.last_day == pd.Timestamp("2011-12-09")
    frame = load_example("online_retail_ii", frame=True)
    assert list(frame.columns) == ["customer_id", "invoice", "invoice_date", "value"] and (frame["value"] >= 0).all()
    with pytest.raises(ValueError, match="allowed: online_retail_ii"):
        load_example("cdnow")
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; the project supports 3.10)
    assert '"stickyrec.experiments.calibration",' in pyproject
    package_data = pyproject.split("[tool.setuptools.package-data]")[1].split("\n[")[0]
    assert all(f'"{pattern}"' in package_data for pattern in ("datasets/*.csv.gz", "datasets/README.md"))


def _write_source(folder: Path) -> None:
    first = pd.DataFrame(
        {
            "Invoice": ["1", "1", "C2", "3", "4"],
            "StockCode": ["a", "b", "a", "c", "d"],
            "Quantity": [2, 1, -1, 1, 5],
            "InvoiceDate": ["2010-12-01 08:00", "2010-12-01 08:01", "2010-12-02", "2010-12-03", "2010-12-04"],
            "Price": [1.25, 3.0, 1.25, 2.0, 1.0],
            "Customer ID": [7.0, 7.0, 7.0, np.nan, 9.0],
        }
    )
    second = pd.DataFrame(
        {
            "InvoiceNo": ["4", "5"],  # invoice 4 is the overlap
            "StockCode": ["d", "e"],
            "Quantity": [5, 1],
            "InvoiceDate": pd.to_datetime(["2010-12-04 00:00", "2010-12-10 09:30"]),
            "UnitPrice": [1.0, 0.5],
            "CustomerID": [9.0, 7.0],
        }
    )
    first.to_parquet(folder / build_example.FILES[0])
    second.to_parquet(folder / build_example.FILES[1])


def test_build_example_merges_cleans_and_is_bit_reproducible(tmp_path):
    _write_source(tmp_path)
    counts = build_example.build(tmp_path, tmp_path / "a.csv.gz")
    assert counts["overlap_lines"] == 1 and counts["invoices"] == 3 and counts["customers"] == 2
    assert build_example.main(["--source", str(tmp_path), "--out", str(tmp_path / "b.csv.gz")]) == 0
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    text = gzip.decompress((tmp_path / "a.csv.gz").read_bytes()).decode()
    assert text.splitlines() == [
        "customer_id,invoice,invoice_date,value",
        "7,1,2010-12-01 08:00,5.50",
        "9,4,2010-12-04 00:00,5.00",
        "7,5,2010-12-10 09:30,0.50",
    ]
    assert build_example.main(["--source", str(tmp_path / "none"), "--out", str(tmp_path / "c.csv.gz")]) == 2


SHARED = ROOT.parent / "shared" / "data" / "online_retail_ii"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="the raw Online Retail II files are not on this machine")
def test_shipped_example_is_rebuilt_bit_identically(tmp_path):
    build_example.build(SHARED, tmp_path / "rebuilt.csv.gz")
    assert (tmp_path / "rebuilt.csv.gz").read_bytes() == example_path("online_retail_ii").read_bytes()


def synthetic_log(customers: int, rng: np.random.Generator) -> pd.DataFrame:
    """About 20 lines per customer over two years (several lines per purchase day)."""
    days = rng.poisson(6, customers) + 1
    customer = np.repeat(np.arange(customers), days)
    day = rng.integers(0, 730, customer.size)
    lines = rng.integers(1, 6, customer.size)
    customer, day = np.repeat(customer, lines), np.repeat(day, lines)
    return pd.DataFrame(
        {
            "customer_id": customer + 10_000,
            "timestamp": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(day * 86_400 + rng.integers(0, 86_400, day.size), "s"),
            "quantity": rng.integers(1, 10, day.size),
            "price": rng.uniform(0.5, 20, day.size).round(2),
        }
    )


@pytest.mark.slow
def test_fifty_thousand_customers_read_and_summarised_in_seconds():
    frame = synthetic_log(50_000, np.random.default_rng(5))
    assert len(frame) > 900_000
    started = time.perf_counter()
    log = read_transactions(frame)
    cut = split(log, "2021-06-30")
    views.tracking_curve(cut)
    views.cohort_retention(log.days)
    views.purchase_gaps(log.days)
    assert log.customers == 50_000 and time.perf_counter() - started < 60
