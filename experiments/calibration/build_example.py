"""Build the shipped compact Online Retail II example: one row per customer-invoice, gzip CSV, bit-reproducible.

    python -m stickyrec.experiments.calibration.build_example --source ../shared/data/online_retail_ii \\
        --out experiments/datasets/online_retail_ii.csv.gz

Reads the two Parquet files of UCI Online Retail II (Chen 2019, CC BY 4.0; see experiments/datasets/README.md),
whose column names differ, and:

1. renames the second file's columns to the first's (InvoiceNo -> Invoice, UnitPrice -> Price, CustomerID ->
   Customer ID) and parses InvoiceDate (a string in the first file, a datetime in the second);
2. drops the second file's lines of invoices the first file already holds (the files overlap on 2010-12-01..09;
   those lines are identical in both);
3. drops lines without a customer id, cancellations (invoice starting with C) and lines of zero or negative
   quantity;
4. writes one row per customer-invoice: ``customer_id``, ``invoice``, ``invoice_date`` (the invoice's earliest
   line time, to the minute) and ``value`` (the sum of quantity x price over its lines, in pounds, 2 decimals),
   sorted by time, invoice and customer; gzip with a zero timestamp so that a re-run writes the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.io import write_bytes_atomic

FILES = ("online_retail_II_2009-12_2010-12.parquet", "online_retail_2010-12_2011-12.parquet")
RENAME = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
COLUMNS = ["Invoice", "Quantity", "InvoiceDate", "Price", "Customer ID"]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "datasets" / "online_retail_ii.csv.gz"


def read_lines(source: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Both files' invoice lines in the first file's column names, the overlap counted once."""
    frames = []
    for name in FILES:
        path = source / name
        if not path.exists():
            raise ValueError(f"{path} not found; --source must be the folder holding {', '.join(FILES)}")
        frame = pd.read_parquet(path).rename(columns=RENAME)
        missing = set(COLUMNS) - set(frame.columns)
        if missing:
            raise ValueError(f"{path} lacks columns {sorted(missing)}; columns found: {list(frame.columns)}")
        frame = frame[COLUMNS].copy()
        frame["Invoice"] = frame["Invoice"].astype("string")
        frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"], format="ISO8601").astype("datetime64[ns]")
        frames.append(frame)
    first, second = frames
    overlap = second["Invoice"].isin(set(first["Invoice"].dropna()))
    lines = pd.concat([first, second[~overlap.to_numpy()]], ignore_index=True)
    return lines, {"lines_read": int(len(first) + len(second)), "overlap_lines": int(overlap.sum())}


def invoices(lines: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per customer-invoice, from cleaned lines (see the module docstring)."""
    no_customer = lines["Customer ID"].isna().to_numpy()
    cancelled = lines["Invoice"].str.startswith("C").fillna(False).to_numpy(dtype=bool)
    non_positive = (lines["Quantity"] <= 0).to_numpy()
    keep = ~(no_customer | cancelled | non_positive)
    counts = {
        "no_customer": int(no_customer.sum()),
        "cancelled_or_non_positive": int(((cancelled | non_positive) & ~no_customer).sum()),
    }
    kept = lines[keep]
    frame = pd.DataFrame(
        {
            "customer_id": kept["Customer ID"].to_numpy().astype(np.int64),
            "invoice": kept["Invoice"].to_numpy(),
            "time": kept["InvoiceDate"].to_numpy(),
            "value": kept["Quantity"].to_numpy(dtype=float) * kept["Price"].to_numpy(dtype=float),
        }
    )
    grouped = frame.groupby(["customer_id", "invoice"], sort=True)
    out = grouped.agg(invoice_date=("time", "min"), value=("value", "sum")).reset_index()
    out["value"] = out["value"].round(2)
    out = out.sort_values(["invoice_date", "invoice", "customer_id"], kind="stable").reset_index(drop=True)
    counts["invoices"] = int(len(out))
    counts["customers"] = int(out["customer_id"].nunique())
    return out[["customer_id", "invoice", "invoice_date", "value"]], counts


def to_gzip_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes, gzip-compressed with mtime 0 and no file name: the same frame always gives the same bytes."""
    text = frame.to_csv(index=False, date_format="%Y-%m-%d %H:%M", float_format="%.2f", lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def build(source: str | Path, out: str | Path) -> dict[str, int]:
    """Write the example to ``out``; returns the counts of what was read, dropped and written."""
    lines, counts = read_lines(Path(source))
    table, more = invoices(lines)
    data = to_gzip_csv(table)
    write_bytes_atomic(out, data)
    return {**counts, **more, "bytes": len(data)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="folder with the two Online Retail II Parquet files")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output .csv.gz (default: the shipped example)")
    args = parser.parse_args(argv)
    try:
        counts = build(args.source, args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{key}={value}" for key, value in counts.items()) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
