"""Logging benchmark: impressions per second into the embedded DuckDB store and into a SQL server (MariaDB).

    python -m stickyrec.experiments.bench_logging            # embedded only, unless the env var is set
    python -m stickyrec.experiments.bench_logging --mysql-url mysql+pymysql://user:pw@127.0.0.1:33306/stickyrec_test
    STICKYREC_TEST_MYSQL_URL=... python -m stickyrec.experiments.bench_logging   # ``source .ci/mariadb.sh`` sets it

What is measured, on one realistic log (a cohort of the chosen preset under the random policy):

* **writer**: impressions/s of ``LogStore.write`` alone: the log's committed batches (complete sessions, about
  ``--flush-rows`` impressions each, one transaction each) replayed into a fresh store. This is the logging
  throughput the targets refer to (>= 1,000,000/s embedded, >= 50,000/s into MariaDB over loopback).
* **collect**: end-to-end ``platform_log.collect`` into a fresh DuckDB file (simulation, policy, buffering and
  writes), beside the same cohort simulated without logging: the difference is what logging costs a collection.
* **read**: ``read_impressions`` back into pandas.

The SQL run writes into a throw-away database ``<database>_bench_<random>`` when the user may create one (and drops
it), else into the URL's database under a fresh run id (its rows are deleted afterwards).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from stickyrec.envs.config import make_config
from stickyrec.experiments.platform_log import (
    DEFAULT_FLUSH_ROWS,
    IMPRESSIONS_TABLE,
    DuckDBLogStore,
    ImpressionBatch,
    LogStore,
    collect,
    open_store,
    read_impressions,
)


class _CaptureStore(DuckDBLogStore):
    """An in-memory store that also keeps every batch written (the log to replay)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.batches: list[ImpressionBatch] = []

    def write(self, batches):
        self.batches.extend(batches)


def _replay(store: LogStore, batches: list[ImpressionBatch], run_id: str, limit: int) -> tuple[int, float]:
    """Write up to ``limit`` impressions of the batches into ``store``, one transaction per batch; (rows, seconds)."""
    store.check_schema(create=True)
    rows, seconds = 0, 0.0
    for batch in batches:
        if rows >= limit:
            break
        if rows + len(batch) > limit:  # cut at a shopper boundary: whole sessions only
            shopper = batch.columns["shopper"]
            cut = int(np.searchsorted(shopper, shopper[limit - rows], side="left")) or len(batch)
            batch = ImpressionBatch(
                batch.run_id, batch.policy, {k: (None if v is None else v[:cut]) for k, v in batch.columns.items()}
            )
        batch = dataclasses.replace(batch, run_id=run_id)
        started = time.perf_counter()
        store.write([batch])
        seconds += time.perf_counter() - started
        rows += len(batch)
    return rows, seconds


def _sql_database(url: str):
    """(URL to write to, cleanup function): a fresh database if allowed, else the given one."""
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    name = f"{base.database}_bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.SQLAlchemyError:
        return url, lambda run_id: _delete_run(engine, run_id)

    def drop(_run_id):
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def _delete_run(engine, run_id: str) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {IMPRESSIONS_TABLE} WHERE run_id = :r"), {"r": run_id})
    engine.dispose()


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / max(seconds, 1e-9):>14,.0f} /s   ({rows:,} impressions in {seconds:.2f} s)"


def _bench_duckdb(args, config, batches: list[ImpressionBatch], total: int):
    """(writer, read, end-to-end collect result, file MB) into fresh DuckDB files."""
    from stickyrec.agents import RandomPolicy

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        with open_store(path) as store:
            rows, seconds = _replay(store, batches, "bench-writer", total)
        writer = (rows, seconds)
        started = time.perf_counter()
        frame = read_impressions(path, "bench-writer")
        read = (len(frame), time.perf_counter() - started)
        del frame
        end_to_end = collect(
            RandomPolicy(args.seed),
            config,
            args.shoppers,
            Path(tmp) / "e2e.duckdb",
            "bench-e2e",
            seed=args.seed,
            progress=False,
            flush_rows=args.flush_rows,
        )
        size_mb = path.stat().st_size / 1e6
    return writer, read, end_to_end, size_mb


def _bench_sql(url: str, batches: list[ImpressionBatch], limit: int) -> None:
    """Replay up to ``limit`` impressions into a throw-away database of ``url`` and read them back; print rates."""
    target, cleanup = _sql_database(url)
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        with open_store(target) as store:
            label = store.description
            rows, seconds = _replay(store, batches, run_id, limit)
        started = time.perf_counter()
        back = len(read_impressions(target, run_id))
        read_seconds = time.perf_counter() - started
    finally:
        cleanup(run_id)
    assert back == rows, f"wrote {rows} rows, read {back}"
    print(f"\nSQL: {label}")
    print(f"SQL writer                     {_rate(rows, seconds)}")
    print(f"SQL read_impressions           {_rate(back, read_seconds)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="default", help="scenario config: preset name or YAML path")
    parser.add_argument("--shoppers", type=int, default=10_000, help="cohort size")
    parser.add_argument("--horizon-days", type=float, default=30.0, help="simulated days")
    parser.add_argument(
        "--flush-rows",
        type=int,
        default=DEFAULT_FLUSH_ROWS,
        help="impressions per commit (the logger's flush size)",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("STICKYREC_TEST_MYSQL_URL"),
        help="SQLAlchemy URL of a MySQL/MariaDB (or other) database; default $STICKYREC_TEST_MYSQL_URL",
    )
    parser.add_argument(
        "--sql-impressions",
        type=int,
        default=1_000_000,
        help="impressions written into the SQL database (its insert rate is far below DuckDB's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from stickyrec.agents import RandomPolicy
    from stickyrec.experiments.simulate import simulate_cohort

    config = make_config(args.preset, horizon_days=args.horizon_days)
    print(
        f"preset {args.preset}: {args.shoppers:,} shoppers, {args.horizon_days:g} days, slate {config.slate_size},"
        f" {config.n_items:,} items; flush every {args.flush_rows:,} impressions"
    )

    started = time.perf_counter()
    simulate_cohort(RandomPolicy(args.seed), config, args.shoppers, seed=args.seed)
    simulate_seconds = time.perf_counter() - started

    capture = _CaptureStore()
    captured = collect(
        RandomPolicy(args.seed),
        config,
        args.shoppers,
        capture,
        "bench",
        seed=args.seed,
        progress=False,
        flush_rows=args.flush_rows,
    )
    batches = capture.batches
    total = sum(len(b) for b in batches)

    writer, read, end_to_end, size_mb = _bench_duckdb(args, config, batches, total)

    print(f"\nthe log: {total:,} impressions in {len(batches)} commits ({size_mb:.0f} MB as DuckDB)")
    print(f"simulate only (no logging)     {_rate(total, simulate_seconds)}")
    print(f"collect, logger without store  {_rate(total, captured.seconds)}")
    print(
        f"collect into DuckDB, e2e       {_rate(end_to_end.impressions, end_to_end.seconds)}"
        f"  [writes {end_to_end.write_seconds:.2f} s]"
    )
    print(f"DuckDB writer                  {_rate(*writer)}")
    print(f"DuckDB read_impressions        {_rate(*read)}")

    if args.mysql_url:
        _bench_sql(args.mysql_url, batches, args.sql_impressions)
    else:
        print("\nno SQL URL: pass --mysql-url or set STICKYREC_TEST_MYSQL_URL (source .ci/mariadb.sh) for MariaDB")


if __name__ == "__main__":
    main()
