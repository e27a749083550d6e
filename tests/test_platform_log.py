"""The platform's impression log (``stickyrec.experiments.platform_log``): exact round trips (DuckDB, SQLite, real
MariaDB), crash safety under SIGKILL, re-runs without duplicates, and clear errors on bad input that leave stored
data intact.

The MariaDB tests use ``STICKYREC_TEST_MYSQL_URL`` (``source .ci/mariadb.sh`` sets it) or start a throw-away server
with ``.ci/mariadb.sh``; they are skipped, saying why, only when no server can be started.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stickyrec import envs
from stickyrec.agents import errors as agent_errors
from stickyrec.experiments import platform_log as platform
from stickyrec.experiments.platform_log import (
    IMPRESSION_COLUMNS,
    IMPRESSION_SCHEMA,
    KEY_COLUMNS,
    EmptyLogError,
    LogStoreError,
    RunMismatchError,
    SchemaMismatchError,
    StoreConnectionError,
    UnknownItemError,
    collect,
    open_store,
    read_impressions,
    validate_impressions,
    write_impressions,
)

REPO = Path(__file__).resolve().parents[1]
N_SHOPPERS = 200
SEED = 11


class SeededRandomPolicy:
    """k distinct random candidates from the policy's own generator: deterministic for a seed (duck-typed agent)."""

    name = "seeded_random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def bind(self, env):
        self.config = env.unwrapped.config
        return self

    def act(self, observation):
        keys = self.rng.random(observation["candidate_ids"].shape)
        return np.argsort(keys, axis=1, kind="stable")[:, : self.config.slate_size]


class PropensityPolicy(SeededRandomPolicy):
    """Also reports a (made-up, position-dependent) propensity per slate position."""

    def slate_propensity(self, observation, slate):
        k = self.config.slate_size
        return np.broadcast_to(np.arange(1, k + 1) / k / self.config.n_candidates, slate.shape)


@pytest.fixture(scope="module")
def config():
    return envs.get_preset("small").replace(horizon_days=6.0)


@pytest.fixture(scope="module")
def reference(config) -> pd.DataFrame:
    """The full log of the standard test run, collected into an in-memory store."""
    store = open_store(":memory:")
    collect(SeededRandomPolicy(0), config, N_SHOPPERS, store, "ref", seed=SEED, progress=False)
    frame = read_impressions(store, "ref")
    store.close()
    return frame


def _same_rows(frame: pd.DataFrame, reference: pd.DataFrame, run_id: str) -> None:
    expected = reference.assign(run_id=run_id).reset_index(drop=True)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected)


def _sessions(frame: pd.DataFrame) -> pd.Series:
    return frame.groupby(["shopper", "session"]).size()


# --- MariaDB ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mysql_server_url() -> str:
    """URL of a MariaDB database: from STICKYREC_TEST_MYSQL_URL, else a server started by .ci/mariadb.sh."""
    pytest.importorskip("pymysql", reason="pymysql is not installed: pip install pymysql")
    url = os.environ.get("STICKYREC_TEST_MYSQL_URL")
    if not url:
        if os.environ.get("STICKYREC_TEST_NO_MARIADB"):
            pytest.skip("MariaDB tests disabled by STICKYREC_TEST_NO_MARIADB")
        script = REPO / ".ci" / "mariadb.sh"
        try:
            done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"no MariaDB server: could not run {script}: {exc}")
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("export STICKYREC_TEST_MYSQL_URL=")]
        if done.returncode != 0 or not lines:
            pytest.skip(
                f"no MariaDB server could be started by {script} (set STICKYREC_TEST_MYSQL_URL to use one):"
                f" {done.stderr.strip()[-500:]}"
            )
        url = lines[-1].split("=", 1)[1]
    try:
        open_store(url).close()
    except StoreConnectionError as exc:
        pytest.skip(f"no MariaDB server answers at the test URL: {exc}")
    return url


@pytest.fixture
def mysql_url(mysql_server_url):
    """A fresh database (stickyrec_test_<random>) on the test server, dropped afterwards."""
    import sqlalchemy as sa

    base = sa.engine.make_url(mysql_server_url)
    name = f"{base.database or 'stickyrec_test'}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        pytest.skip(f"the test user may not create databases named {name}: {exc.orig}")
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        engine.dispose()


@pytest.fixture(params=["duckdb", "sqlite", "mariadb"])
def any_store(request, tmp_path):
    """A fresh, empty store of each backend (path or URL)."""
    if request.param == "duckdb":
        return str(tmp_path / "log.duckdb")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.sqlite'}"
    return request.getfixturevalue("mysql_url")


# --- schema and round trips ---------------------------------------------------------------------------------------
def test_schema_constant_lists_every_column_once_and_only_propensity_is_nullable():
    assert IMPRESSION_COLUMNS == (
        "run_id",
        "shopper",
        "day",
        "session",
        "step",
        "position",
        "item_id",
        "clicked",
        "purchased",
        "revenue",
        "returned",
        "churned",
        "policy",
        "propensity",
    )
    assert [c.name for c in IMPRESSION_SCHEMA if c.nullable] == ["propensity"]
    for column in IMPRESSION_COLUMNS:
        assert f"\n{column} " in platform.schema.__doc__, f"{column} is not documented in the schema's docstring"


def test_round_trip_exact_counts_on_every_backend(any_store, config, reference):
    """Rows in = rows out, exactly, and the same rows on DuckDB, SQLite and MariaDB."""
    result = collect(
        SeededRandomPolicy(0), config, N_SHOPPERS, any_store, "run-a", seed=SEED, progress=False, flush_rows=5_000
    )
    frame = read_impressions(any_store, "run-a")
    assert result.impressions == result.impressions_written == len(frame) == len(reference)
    assert result.commits > 1
    _same_rows(frame, reference, "run-a")
    assert not frame.duplicated(list(KEY_COLUMNS)).any()
    assert list(frame.dtypes.astype(str)) == [c.dtype for c in IMPRESSION_SCHEMA]
    # a second run in the same store: each run reads back alone, and both together
    other = collect(SeededRandomPolicy(0), config, 20, any_store, "run-b", seed=SEED, progress=False)
    both = read_impressions(any_store)
    assert len(both) == len(reference) + other.impressions
    assert (both["run_id"] == "run-a").sum() == len(reference)
    runs = platform.list_runs(any_store)
    assert sorted(runs["run_id"]) == ["run-a", "run-b"]
    assert runs.set_index("run_id").loc["run-a", "impressions"] == len(reference)


def test_log_agrees_with_simulate_cohort(config, reference):
    """Per shopper, the log has the impressions, clicks, purchases, revenue and sessions simulate_cohort counts."""
    from stickyrec.experiments.simulate import simulate_cohort

    cohort = simulate_cohort(SeededRandomPolicy(0), config, N_SHOPPERS, seed=SEED)
    k = config.slate_size
    per = reference.groupby("shopper")
    np.testing.assert_array_equal(per.size().to_numpy(), cohort.impressions * k)
    np.testing.assert_array_equal(per["clicked"].sum().to_numpy(), cohort.clicks)
    np.testing.assert_array_equal(per["purchased"].sum().to_numpy(), cohort.purchases)
    np.testing.assert_allclose(per["revenue"].sum().to_numpy(), cohort.revenue)
    np.testing.assert_array_equal(per["session"].max().to_numpy() + 1, cohort.sessions)
    first = reference[reference["position"] == 0].groupby("shopper")
    np.testing.assert_array_equal(first["churned"].any().to_numpy(), cohort.churned)
    np.testing.assert_array_equal(first["returned"].sum().to_numpy(), cohort.sessions - 1)


def test_each_commit_holds_whole_sessions_only(config, reference):
    """A flush writes only sessions whose last step was logged, each session in exactly one transaction."""
    store = open_store(":memory:")
    batches = []
    original = store.write

    def record(parts):
        batches.extend(parts)
        original(parts)

    store.write = record
    collect(SeededRandomPolicy(0), config, N_SHOPPERS, store, "ref", seed=SEED, progress=False, flush_rows=1_000)
    store.close()
    assert len(batches) > 10
    expected = _sessions(reference)
    seen = []
    for batch in batches:
        part = pd.DataFrame({c: batch.columns[c] for c in ("shopper", "session")})
        sizes = part.groupby(["shopper", "session"]).size()
        pd.testing.assert_series_equal(sizes, expected.loc[sizes.index])
        seen.append(sizes)
    assert pd.concat(seen).index.is_unique
    assert len(pd.concat(seen)) == len(expected)


def test_propensities_are_stored_when_the_policy_gives_them(any_store, config):
    collect(PropensityPolicy(0), config, 30, any_store, "p", seed=1, progress=False)
    frame = read_impressions(any_store, "p")
    k, m = config.slate_size, config.n_candidates
    assert frame["propensity"].notna().all()
    np.testing.assert_allclose(frame["propensity"], (frame["position"] + 1) / k / m)
    # a log mixing known and unknown propensities keeps the NULLs
    mixed = frame.assign(run_id="mixed", propensity=np.where(frame["shopper"] % 2 == 0, frame["propensity"], np.nan))
    assert write_impressions(any_store, mixed) == len(mixed)
    back = read_impressions(any_store, "mixed")
    pd.testing.assert_series_equal(back["propensity"].isna(), mixed["propensity"].isna().reset_index(drop=True))


# --- crashes and re-runs ------------------------------------------------------------------------------------------
CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
import numpy as np
from stickyrec import envs
from stickyrec.experiments import platform_log as platform

{policy}

store = platform.open_store(sys.argv[1])
state = {{"committed": 0, "pending": 0, "calls": 0}}
write = store.write

def counting_write(batches):
    state["pending"] = sum(len(b) for b in batches)
    write(batches)
    state["committed"] += state["pending"]

def pause_inside_third_transaction():
    state["calls"] += 1
    if state["calls"] == 3:
        print(f"IN_TRANSACTION committed={{state['committed']}} pending={{state['pending']}}", flush=True)
        time.sleep(300)

store.write = counting_write
store.before_commit = pause_inside_third_transaction
config = envs.get_preset("small").replace(horizon_days=6.0)
platform.collect(SeededRandomPolicy(0), config, {n}, store, "killed", seed={seed}, progress=False, flush_rows=3_000,
                 flush_seconds=1e9)
print("FINISHED", flush=True)
"""


def _run_until_killed(store: str, while_paused=None) -> tuple[int, int]:
    """Run a collection in a child process, SIGKILL it inside its third transaction; (committed, pending) rows."""
    script = CHILD.format(
        repo=str(REPO), policy=textwrap.dedent(inspect.getsource(SeededRandomPolicy)), n=N_SHOPPERS, seed=SEED
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, store], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    watchdog = threading.Timer(120, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line.startswith("IN_TRANSACTION"), f"child did not pause: {line!r} {child.stderr.read()[-2000:]}"
        if while_paused is not None:
            while_paused()
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    fields = dict(part.split("=") for part in line.split()[1:])
    return int(fields["committed"]), int(fields["pending"])


@pytest.mark.parametrize("backend", ["duckdb", "mariadb"])
def test_sigkill_mid_collection_leaves_no_partial_session_and_rerun_completes(
    backend, tmp_path, config, reference, request
):
    store = str(tmp_path / "log.duckdb") if backend == "duckdb" else request.getfixturevalue("mysql_url")

    def locked_while_writing():
        if backend == "duckdb":  # one process writes a DuckDB file: others get a clear error, not a hang
            with pytest.raises(StoreConnectionError, match="another process"):
                read_impressions(store, "killed")

    committed, pending = _run_until_killed(store, locked_while_writing)
    assert committed > 0 and pending > 0
    partial = read_impressions(store, "killed")
    assert len(partial) == committed  # the transaction in flight is gone, the two before it are whole
    assert len(partial) < len(reference)
    expected = _sessions(reference)
    got = _sessions(partial)
    pd.testing.assert_series_equal(got, expected.loc[got.index])  # every stored session is complete
    keys = ["shopper", "step", "position"]
    merged = partial.merge(reference, on=keys, suffixes=("", "_ref"))
    assert len(merged) == len(partial)
    for column in ("item_id", "clicked", "purchased", "revenue", "session", "day"):
        np.testing.assert_array_equal(merged[column], merged[f"{column}_ref"])

    result = collect(SeededRandomPolicy(0), config, N_SHOPPERS, store, "killed", seed=SEED, progress=False)
    assert result.impressions_skipped == committed
    assert result.impressions_written == len(reference) - committed
    final = read_impressions(store, "killed")
    assert not final.duplicated(keys).any()
    _same_rows(final, reference, "killed")
    again = collect(SeededRandomPolicy(0), config, N_SHOPPERS, store, "killed", seed=SEED, progress=False)
    assert again.already_complete and again.impressions_written == 0
    assert len(read_impressions(store, "killed")) == len(reference)


class _Crash(Exception):
    pass


def _crash_on_commit(store_obj, number: int):
    calls = {"n": 0}

    def hook():
        calls["n"] += 1
        if calls["n"] == number:
            raise _Crash("simulated crash inside a transaction")

    store_obj.before_commit = hook


def test_failed_transaction_rolls_back_and_a_different_policy_cannot_resume(any_store, config, reference):
    store = open_store(any_store)
    _crash_on_commit(store, 4)
    with pytest.raises(_Crash):
        collect(SeededRandomPolicy(0), config, N_SHOPPERS, store, "crash", seed=SEED, progress=False, flush_rows=2_000)
    store.close()
    partial = read_impressions(any_store, "crash")
    got = _sessions(partial)
    pd.testing.assert_series_equal(got, _sessions(reference).loc[got.index])
    # same name, seed and config but another random stream: the stored sessions do not reproduce
    with pytest.raises(RunMismatchError, match="does not reproduce"):
        collect(SeededRandomPolicy(1), config, N_SHOPPERS, any_store, "crash", seed=SEED, progress=False)
    pd.testing.assert_frame_equal(read_impressions(any_store, "crash"), partial)
    # other parameters are refused before any work
    with pytest.raises(RunMismatchError, match="seed"):
        collect(SeededRandomPolicy(0), config, N_SHOPPERS, any_store, "crash", seed=SEED + 1, progress=False)
    with pytest.raises(RunMismatchError, match="config_hash"):
        collect(
            SeededRandomPolicy(0),
            config.replace(horizon_days=7.0),
            N_SHOPPERS,
            any_store,
            "crash",
            seed=SEED,
            progress=False,
        )
    pd.testing.assert_frame_equal(read_impressions(any_store, "crash"), partial)
    # the right re-run completes it
    collect(SeededRandomPolicy(0), config, N_SHOPPERS, any_store, "crash", seed=SEED, progress=False)
    _same_rows(read_impressions(any_store, "crash"), reference, "crash")


def test_write_impressions_skips_sessions_already_stored(any_store, reference):
    first = reference[reference["shopper"] < 100]
    assert write_impressions(any_store, first) == len(first)
    assert write_impressions(any_store, reference) == len(reference) - len(first)
    assert write_impressions(any_store, reference) == 0
    _same_rows(read_impressions(any_store, "ref"), reference, "ref")


# --- bad inputs ---------------------------------------------------------------------------------------------------
SECRET = "Sup3r-s3cret-pw"


def _all_text(exc: BaseException) -> str:
    return str(exc) + repr(exc) + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@pytest.mark.parametrize(
    "url",
    [
        f"mysql+pymysql://someone:{SECRET}@127.0.0.1:1/stickyrec",  # nothing listens on port 1
        f"mysql+pymysql://someone:{SECRET}@192.0.2.1:3306/stickyrec",  # TEST-NET-1: never answers
    ],
)
def test_unreachable_url_fails_fast_with_masked_password(url, config, tmp_path):
    pytest.importorskip("pymysql")
    started = time.monotonic()
    with pytest.raises(StoreConnectionError, match=r"cannot connect to mysql\+pymysql://someone:\*\*\*@") as info:
        collect(SeededRandomPolicy(0), config, 10, url, "x", progress=False, connect_timeout=1)
    assert time.monotonic() - started < 15
    assert SECRET not in _all_text(info.value)
    with pytest.raises(StoreConnectionError) as info:
        read_impressions(url)
    assert SECRET not in _all_text(info.value)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql+pymysql://someone:{SECRET}@127.0.0.1:notaport/db",  # unparsable
        f"postgresql+nosuchdriver://someone:{SECRET}@127.0.0.1/db",  # no such driver
        f"nosuchdb://someone:{SECRET}@127.0.0.1/db",  # no such dialect
    ],
)
def test_password_never_appears_in_url_errors(url):
    with pytest.raises(StoreConnectionError) as info:
        open_store(url)
    assert SECRET not in _all_text(info.value)
    assert isinstance(info.value, ValueError)


def test_wrong_password_on_a_real_server_is_masked(mysql_server_url):
    import sqlalchemy as sa

    url = sa.engine.make_url(mysql_server_url).set(password=SECRET).render_as_string(hide_password=False)
    with pytest.raises(StoreConnectionError, match="Access denied") as info:
        open_store(url)
    assert SECRET not in _all_text(info.value)
    assert "***" in str(info.value)


def _wrong_schema_store(store: str) -> None:
    """A store whose ``impressions`` table is somebody else's: other columns, two rows."""
    if "://" in store:
        import sqlalchemy as sa

        engine = sa.create_engine(store)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE impressions (id INTEGER PRIMARY KEY, label VARCHAR(20))")
            conn.exec_driver_sql("INSERT INTO impressions VALUES (1, 'keep'), (2, 'me')")
        engine.dispose()
    else:
        import duckdb

        with duckdb.connect(store) as con:
            con.execute("CREATE TABLE impressions (id INTEGER, label VARCHAR)")
            con.execute("INSERT INTO impressions VALUES (1, 'keep'), (2, 'me')")


def _foreign_rows(store: str) -> list:
    if "://" in store:
        import sqlalchemy as sa

        engine = sa.create_engine(store)
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.exec_driver_sql("SELECT id, label FROM impressions ORDER BY id")]
        engine.dispose()
        return rows
    import duckdb

    with duckdb.connect(store, read_only=True) as con:
        return con.execute("SELECT id, label FROM impressions ORDER BY id").fetchall()


def test_wrong_schema_is_refused_before_any_work_and_left_intact(any_store, config, reference):
    _wrong_schema_store(any_store)
    with pytest.raises(SchemaMismatchError, match="missing column") as info:
        collect(SeededRandomPolicy(0), config, 20, any_store, "x", progress=False)
    assert "Nothing was changed" in str(info.value)
    with pytest.raises(SchemaMismatchError):
        read_impressions(any_store)
    with pytest.raises(SchemaMismatchError):
        write_impressions(any_store, reference.head(50))
    assert _foreign_rows(any_store) == [(1, "keep"), (2, "me")]


def test_wrong_column_type_is_refused(tmp_path):
    import duckdb

    path = str(tmp_path / "typed.duckdb")
    columns = ", ".join(f"{c.name} {'VARCHAR' if c.name == 'item_id' else c.duckdb_type}" for c in IMPRESSION_SCHEMA)
    with duckdb.connect(path) as con:
        con.execute(f"CREATE TABLE impressions ({columns})")
    with pytest.raises(SchemaMismatchError, match="item_id is string, expected int"):
        read_impressions(path)


def test_empty_logs_give_clear_errors(tmp_path, config, reference):
    missing = tmp_path / "nothing-here.duckdb"
    with pytest.raises(EmptyLogError, match="does not exist"):
        read_impressions(str(missing))
    assert not missing.exists()  # reading never creates a store
    store = str(tmp_path / "log.duckdb")
    collect(SeededRandomPolicy(0), config, 10, store, "only-run", seed=1, progress=False)
    with pytest.raises(EmptyLogError, match="no impressions for run 'other'.*'only-run'"):
        read_impressions(store, "other")
    with pytest.raises(EmptyLogError, match="empty"):
        write_impressions(store, reference.head(0))
    with pytest.raises(EmptyLogError):
        validate_impressions(reference.head(0))
    assert len(read_impressions(store, "only-run")) > 0


def test_unknown_item_ids_are_refused_and_the_store_keeps_its_rows(any_store, config, reference):
    good = reference[reference["shopper"] < 50]
    write_impressions(any_store, good, config)
    before = read_impressions(any_store)
    bad = reference[reference["shopper"] >= 50].copy()
    bad.loc[bad.index[7], "item_id"] = config.n_items  # one id past the catalog
    with pytest.raises(UnknownItemError, match=f"outside the catalog of {config.n_items} items.*{config.n_items}"):
        validate_impressions(bad, config)
    with pytest.raises(UnknownItemError):
        write_impressions(any_store, bad, envs.make_catalog(config))
    pd.testing.assert_frame_equal(read_impressions(any_store), before)


def test_malformed_logs_and_names_are_refused(tmp_path, reference):
    store = str(tmp_path / "log.duckdb")
    with pytest.raises(SchemaMismatchError, match="missing column"):
        write_impressions(store, reference.drop(columns=["revenue"]))
    with pytest.raises(ValueError, match="repeats"):
        write_impressions(store, pd.concat([reference.head(10), reference.head(10)]))
    with pytest.raises(ValueError, match="run_id"):
        write_impressions(store, reference.head(10).assign(run_id="x'); DROP TABLE impressions; --"))
    with pytest.raises(ValueError, match="run_id"):
        collect(SeededRandomPolicy(0), None, 10, store, "bad run id", progress=False)
    with pytest.raises(ValueError, match="n_shoppers"):
        collect(SeededRandomPolicy(0), None, 0, store, "r", progress=False)
    assert not Path(store).exists()  # every error came before the store was opened


def test_log_errors_are_the_agents_classes_and_value_errors():
    """Agents raise the same empty-log and unknown-item errors without importing the platform."""
    assert EmptyLogError is agent_errors.EmptyLogError
    assert UnknownItemError is agent_errors.UnknownItemError
    for cls in (EmptyLogError, UnknownItemError, LogStoreError, RunMismatchError, SchemaMismatchError):
        assert issubclass(cls, agent_errors.LogError) and issubclass(cls, ValueError)
    assert issubclass(StoreConnectionError, LogStoreError)
