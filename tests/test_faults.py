"""The standing fault campaign (issue 14): bad paths, bad arguments, bad stores, damaged files and processes.

Every case is a one-line error (``stickyrec: error: ...``, exit 2) with no traceback, given before any work, and
nothing created. Most cases call ``cli.main`` in-process (fast); a few run the CLI as a subprocess where a real
process is the point (signals, parent death). The input layer's own cases and its fuzz are in ``test_inputs.py``.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from stickyrec.credentials import mask_secrets, parse_url, password_from_environment, store_target
from stickyrec.experiments.cli import main
from stickyrec.inputs import check_output_path
from tests.helpers import interactive_sigint, proc_stats

SECRET = "s3cr@t:pa/ss%word"


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """``stickyrec ARGV`` in-process: (exit code, stderr)."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert lines and lines[-1].startswith("stickyrec: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder holding a file ``afile``, a folder ``adir`` and a CSV and Parquet file; the cwd of each case."""
    import pandas as pd

    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    pd.DataFrame({"a": [1, 2]}).to_csv(tmp_path / "log.csv", index=False)
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "log.parquet")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------------------------------------------
# Output paths and arguments: refused up front, nothing created
# --------------------------------------------------------------------------------------------------------------
UNWRITABLE = "/proc/stickyrec-test/out"  # /proc takes no new files, even from root
OUTPUT_CASES = [
    (["run", "quick", "--out", "afile"], "is a file"),
    (["run", "quick", "--out", "afile/sub"], "is a file, not a folder"),
    (["run", "quick", "--out", UNWRITABLE], "not writable"),
    (["train", "--agent", "ppo", "--out", "afile"], "is a file"),
    (["train", "--agent", "ppo", "--out", UNWRITABLE], "not writable"),
    (["baselines", "--out", "afile"], "is a file"),
    (["baselines", "--out", UNWRITABLE], "not writable"),
    (["rl-benchmark", "--out", "afile"], "is a file"),
    (["report", "afile"], "is a file"),
    (["report", "adir", "adir", "--out", "afile"], "is a file"),
    (["compare", "adir", "a", "b", "--out", "adir"], "is a folder"),
    (["compare", "afile", "a", "b"], "is a file, not a folder"),
    (["compare", "adir", "a", "b", "--out", f"{UNWRITABLE}.png"], "not writable"),
    (["simulate", "--shoppers", "5", "--json", "adir"], "is a folder"),
    (["simulate", "--shoppers", "5", "--json", "afile/x.json"], "is a file, not a folder"),
    (["collect", "--shoppers", "5", "--contexts", "adir"], "is a folder"),
    (["collect", "--shoppers", "5", "--contexts", f"{UNWRITABLE}.parquet"], "not writable"),
    (["collect", "--shoppers", "5", "--store", "afile/x.duckdb"], "is a file, not a folder"),
]
ARGUMENT_CASES = [
    (["train", "--agent", "ppo", "--eval-shoppers", "-3", "--out", "new"], "--eval-shoppers"),
    (["train", "--agent", "ppo", "--max-seconds", "-1", "--out", "new"], "--max-seconds"),
    (["train", "--agent", "ppo", "--max-seconds", "nan", "--out", "new"], "--max-seconds"),
    (["train", "--agent", "ppo", "--steps", "0", "--out", "new"], "--steps"),
    (["train", "--agent", "ppo", "--reward", "click=abc", "--out", "new"], "click"),
    (["baselines", "--mlp-epochs", "0", "--out", "new"], "--mlp-epochs"),
    (["baselines", "--seeds", "0", "--out", "new"], "--seeds"),
    (["rl-benchmark", "--steps", "ppo=abc", "--out", "new"], "--steps ppo="),
    (["rl-benchmark", "--steps", "ppo=-5", "--out", "new"], "--steps ppo="),
    (["rl-benchmark", "--steps", "nobody=5", "--out", "new"], "--steps expects AGENT=N"),
    (["rl-benchmark", "--workers", "0", "--out", "new"], "--workers"),
    (["run", "quick", "--workers", "0", "--out", "new"], "--workers"),
    (["simulate", "--policies", "", "--shoppers", "5", "--json", "new.json"], "--policies"),
    (["simulate", "--policies", ",, ,", "--shoppers", "5"], "--policies"),
    (["simulate", "--shoppers", "0", "--json", "new.json"], "--shoppers"),
    (["collect", "--shoppers", "-1", "--contexts", "new.parquet"], "--shoppers"),
    (["simulate", "--shoppers", "100000000000", "--json", "new.json"], "--shoppers must be at most"),
    (["run", "quick", "--workers", "100000", "--out", "new"], "--workers"),
    (["bench", "--seconds", "-1"], "--seconds"),
    (["bench", "--batches", "0"], "--batches"),
    (["train", "--agent", "ppo", "--param", "hidden=1e9", "--out", "new"], "hidden must be an integer"),
    (["train", "--agent", "slateq", "--param", "buffer_size=1e12", "--out", "new"], "buffer_size"),
]


@pytest.mark.parametrize(("argv", "message"), OUTPUT_CASES + ARGUMENT_CASES, ids=lambda v: " ".join(v)[:60])
def test_paths_and_arguments_are_refused_before_any_work(workdir, capsys, argv, message):
    before = snapshot(workdir)
    started = time.monotonic()
    code, err = run_cli(capsys, *argv)
    assert_refused(code, err, message)
    assert snapshot(workdir) == before  # nothing created: no folder, no record, no probe file
    assert time.monotonic() - started < 10  # refused up front, not after a simulation or a training


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_check_output_path_accepts_new_and_existing_paths(tmp_path, kind):
    assert check_output_path(tmp_path / "a" / "b", kind) == tmp_path / "a" / "b"
    existing = tmp_path / ("adir" if kind == "dir" else "afile")
    existing.mkdir() if kind == "dir" else existing.write_text("")
    check_output_path(existing, kind)
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing.name]  # nothing made by the checks


# --------------------------------------------------------------------------------------------------------------
# Stores: a URL SQLAlchemy knows or a DuckDB file; passwords masked, never a path
# --------------------------------------------------------------------------------------------------------------
BAD_STORES = [
    ("", "empty"),
    ("log.csv", "not a DuckDB database"),
    ("log.parquet", "not a DuckDB database"),
    ("adir", "is a folder"),
    ("impressions.db", "neither a database URL nor a .duckdb path"),
    (f"mysql+pymysql//u:{SECRET}@host/db", "malformed database URL"),
    (f"mysql+pymysql:/u:{SECRET}@host/db", "malformed database URL"),
    (f"mysql+pymysql:u:{SECRET}@host/db", "malformed database URL"),
    (f"mysql+pymysql:u:{SECRET}@host/db.duckdb", "malformed database URL"),
    (f"u:{SECRET}@host/db.duckdb", "malformed database URL"),
    (f"nosuchdb://u:{SECRET}@host/db", "SQLAlchemy knows no database"),
    (f"mysql+pymysql://u:{SECRET}@host:notaport/db", "not a valid database URL"),
]


@pytest.mark.parametrize(("store", "message"), BAD_STORES, ids=lambda v: str(v)[:40])
def test_bad_stores_are_refused_masked_and_nothing_created(workdir, capsys, store, message):
    before = snapshot(workdir)
    code, err = run_cli(capsys, "collect", "--shoppers", "5", "--store", store)
    assert_refused(code, err, message)
    for part in (SECRET, SECRET.split(":")[0], "pa/ss"):
        assert part not in err
    assert snapshot(workdir) == before  # in particular no folder named after a credential


def test_existing_duckdb_file_is_accepted_by_its_magic_bytes(tmp_path):
    import duckdb

    path = tmp_path / "log.data"
    duckdb.connect(str(path)).close()
    assert store_target(str(path)) == ("duckdb", str(path))
    assert store_target(str(tmp_path / "new.duckdb"))[0] == "duckdb"
    assert store_target("sqlite:///x.sqlite") == ("url", "sqlite:///x.sqlite")


@pytest.mark.parametrize(
    "password", ["pa@ssTAIL", "p:a:s", "p/a?s#s", "p%40ss", "with space", "@@@", "ünï©ødé", "a@b:c/d@e"]
)
def test_any_password_is_parsed_at_the_last_at_and_masked(password):
    from urllib.parse import unquote

    url = parse_url(f"mysql+pymysql://someone:{password}@db.example:3306/shop")
    assert (url.username, url.host, url.port, url.database) == ("someone", "db.example", 3306, "shop")
    assert url.password == unquote(password)
    text = f"cannot connect to mysql+pymysql://someone:{password}@db.example:3306/shop on '{password}@db.example'"
    masked = mask_secrets(text, [url.password])
    assert password not in masked and url.password not in masked
    assert "someone:***@db.example:3306/shop" in masked


def test_password_from_environment_and_passfile(tmp_path, monkeypatch):
    passfile = tmp_path / "pass"
    passfile.write_text("# comment\nother:*:*:someone:nope\ndb.example:*:shop:someone:fr\\:om@file\n")
    monkeypatch.delenv("STICKYREC_DB_PASSWORD", raising=False)
    monkeypatch.setenv("STICKYREC_DB_PASSFILE", str(passfile))
    assert parse_url("mysql+pymysql://someone@db.example/shop").password == "fr:om@file"
    assert parse_url("mysql+pymysql://someone@elsewhere/shop").password is None
    assert parse_url("mysql+pymysql://someone:given@db.example/shop").password == "given"  # the URL's own wins
    monkeypatch.setenv("STICKYREC_DB_PASSWORD", "fromenv")
    assert parse_url("mysql+pymysql://someone@db.example/shop").password == "fromenv"
    monkeypatch.delenv("STICKYREC_DB_PASSWORD")
    monkeypatch.setenv("STICKYREC_DB_PASSFILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="STICKYREC_DB_PASSFILE"):
        password_from_environment("h", None, "d", "u")


def _silent_server() -> socket.socket:
    """A local socket that accepts connections (the kernel does) and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


@pytest.mark.parametrize("where", ["closed port", "silent server", "TEST-NET"])
def test_connect_timeout_holds(where, monkeypatch):
    pytest.importorskip("pymysql")
    from stickyrec.experiments.platform_log import StoreConnectionError, open_store

    server = _silent_server() if where == "silent server" else None
    host = {"closed port": "127.0.0.1:1", "TEST-NET": "192.0.2.1:3306"}.get(where)
    host = host or f"127.0.0.1:{server.getsockname()[1]}"
    monkeypatch.setenv("STICKYREC_DB_PASSWORD", SECRET)
    started = time.monotonic()
    with pytest.raises(StoreConnectionError, match=r"cannot connect to .*timeout 1 s") as info:
        open_store(f"mysql+pymysql://someone@{host}/db", connect_timeout=1)
    assert time.monotonic() - started < 3.5
    assert SECRET not in str(info.value)
    if server is not None:
        server.close()


def test_no_store_folder_is_created_for_a_malformed_url_through_the_library(tmp_path, monkeypatch):
    from stickyrec.experiments.platform_log import StoreConnectionError, open_store

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreConnectionError) as info:
        open_store(f"mysql+pymysql//u:{SECRET}@host/db")
    assert SECRET not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_url_in_free_text_is_masked_whatever_the_shape():
    for text in (
        f"mysql+pymysql://u:{SECRET}@h/db",
        f"mysql+pymysql//u:{SECRET}@h/db",
        f"x mysql+pymysql:u:{SECRET}@h/db y",
        f"'postgresql://u:{SECRET}@h'",
    ):
        masked = mask_secrets(text)
        assert "s3cr" not in masked and "word" not in masked, masked
    assert mask_secrets("mail me at someone@example.com") == "mail me at someone@example.com"
    assert "XYZ" not in mask_secrets("postgresql://u@h/db?sslmode=require&password=XYZ")
    from stickyrec.credentials import shown_url

    assert "XYZ" not in shown_url(parse_url("postgresql://u@h/db?password=XYZ"))


def test_environment_password_is_used_when_the_url_has_none(monkeypatch):
    monkeypatch.setenv("STICKYREC_DB_PASSWORD", SECRET)
    assert parse_url("postgresql+psycopg://someone@h/db").password == SECRET
    assert os.environ["STICKYREC_DB_PASSWORD"] not in parse_url("sqlite:///x.sqlite").render_as_string()


# --------------------------------------------------------------------------------------------------------------
# Integrity: checkpoints and run cells carry content hashes; sizes are bounded before allocation
# --------------------------------------------------------------------------------------------------------------
TINY_RUN = """\
name: tiny
env: {preset: small, horizon_days: 10}
agents:
  random: {}
  mlp: {params: {epochs: 1, embed_dim: 8, hidden_dim: 8}}
  ppo: {steps: 256, params: {n_envs: 16, n_steps: 16, batch_size: 128}}
  slateq: {steps: 256, params: {n_envs: 16, learning_starts: 64, batch_size: 32}}
seeds: 1
data: {shoppers: 20}
evaluation: {shoppers: 20}
report: {reference: random, resamples: 20, cohort_days: [1, 3, 7]}
"""
CHECKPOINTS = {
    "ppo": "cells/default__ppo__s0/agent.pt",
    "slateq": "cells/default__slateq__s0/agent.pt",
    "mlp": "cells/default__mlp__s0/mlp.pt",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished run of every kind of trained agent on a tiny world (about 10 s): its config and run folder."""
    from stickyrec.experiments.experiment import load_experiment
    from stickyrec.experiments.runner import run_experiment

    folder = tmp_path_factory.mktemp("tiny")
    config = folder / "tiny.yaml"
    config.write_text(TINY_RUN)
    result = run_experiment(load_experiment(str(config)), folder / "run", workers=2, progress=False)
    assert not result.failed
    return config, folder / "run"


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    import shutil

    config, run = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return config, copy


def flip_bits(data: bytes, count: int):
    """``count`` copies of ``data``, each with one bit flipped, at offsets spread over the whole file."""
    for position in sorted({int(p) for p in [i * (len(data) * 8 - 1) // (count - 1) for i in range(count)]}):
        damaged = bytearray(data)
        damaged[position // 8] ^= 1 << (position % 8)
        yield position, bytes(damaged)


@pytest.mark.parametrize("kind", list(CHECKPOINTS))
def test_every_single_bit_flip_in_a_checkpoint_is_refused(tiny_run, tmp_path, kind):
    from stickyrec.agents.registry import load_agent

    source = tiny_run[1] / CHECKPOINTS[kind]
    load_agent(source)  # the undamaged file loads
    target = tmp_path / source.name
    offsets = 0
    for _, damaged in flip_bits(source.read_bytes(), 60):
        target.write_bytes(damaged)
        with pytest.raises(ValueError, match=str(target)):
            load_agent(target)
        offsets += 1
    assert offsets == 60


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("ppo", ("hyperparameters", "hidden", 1e9), "hidden must be an integer"),
        ("slateq", ("hyperparameters", "embed", 10**9), "embed must be an integer"),
        ("ppo", ("spaces", "n_items", 10**9), "n_items"),
        ("slateq", ("spaces", "shopper_dim", 10**8), "shopper_dim"),
        ("mlp", ("hyperparameters", "hidden_dim", 1e9), "hidden_dim must be an integer"),
        ("mlp", (None, "n_positions", 10**9), "n_positions"),
    ],
)
def test_crafted_checkpoint_sizes_are_refused_before_allocation(tiny_run, tmp_path, kind, change, message):
    """A crafted file has a valid hash (the hash finds damage, not forgery): its sizes are bounded instead."""
    from stickyrec.agents.checkpoint import decode_checkpoint, encode_checkpoint
    from stickyrec.agents.registry import load_agent

    payload = decode_checkpoint(tiny_run[1] / CHECKPOINTS[kind])
    section, key, value = change
    (payload[section] if section else payload)[key] = value
    crafted = tmp_path / "crafted.pt"
    crafted.write_bytes(encode_checkpoint(payload))
    started = time.monotonic()
    with pytest.raises(ValueError, match=message):
        load_agent(crafted)
    assert time.monotonic() - started < 2  # refused, not a 260 GB allocation


def test_flipped_bits_in_a_cell_file_are_found_by_the_report(run_copy):
    from stickyrec.experiments.report_data import load_run

    _, run = run_copy
    load_run(run)
    for name in ("shoppers.parquet", "daily.parquet"):
        path = run / "cells" / "default__random__s0" / name
        original = path.read_bytes()
        for _, damaged in flip_bits(original, 20):
            path.write_bytes(damaged)
            with pytest.raises(ValueError, match=f"{path} is damaged"):
                load_run(run)
        path.write_bytes(original)
    load_run(run)


def test_cells_of_another_config_are_not_reused_without_config_yaml(run_copy, capsys):
    config, run = run_copy
    (run / "config.yaml").unlink()
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    code, err = run_cli(capsys, "run", str(config), "--out", str(run), "--set", "env.clickbait_share=0.3", "--quiet")
    assert_refused(code, err, "was computed from another config")
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing written, nothing lost
    assert main(["run", str(config), "--out", str(run), "--quiet", "--no-report"]) == 0  # the same config: reused
    assert "0 run now, 4 already done" in capsys.readouterr().out


DAMAGES = [
    ("config.yaml", b"name: [\n", "config.yaml is not valid YAML"),
    ("config.yaml", b"just text\n", "config.yaml is not a stickyrec run config"),
    ("cells/default__mlp__s0/cell.json", b"{bad", "cell.json is damaged"),
    ("cells/default__mlp__s0/cell.json", b"[]", "cell.json is not a sealed"),
    ("cells/default__random__s0/daily.parquet", b"PAR1 garbage", "daily.parquet is damaged"),
    ("data/default__s0/done.json", b"\xff\xfe", "done.json is damaged"),
]


@pytest.mark.parametrize("command", ["run", "report"])
@pytest.mark.parametrize(("name", "content", "message"), DAMAGES, ids=[f"{d[0]}:{d[1][:6]!r}" for d in DAMAGES])
def test_a_damaged_run_directory_is_one_line_naming_the_file(run_copy, capsys, command, name, content, message):
    config, run = run_copy
    (run / name).write_bytes(content)
    argv = ["run", str(config), "--out", str(run), "--quiet"] if command == "run" else ["report", str(run)]
    code, err = run_cli(capsys, *argv)
    if command == "report" and name.startswith("data/"):
        assert code == 0  # the report reads no logged data
        return
    assert_refused(code, err, message)


# --------------------------------------------------------------------------------------------------------------
# Numbers in exponent form, and config --describe with --set
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [("1e3", 1000), ("2E3", 2000), ("1.5e3", 1500), ("3000.0", 3000)])
def test_integral_exponent_numbers_are_integers_where_an_integer_is_wanted(text, expected):
    from stickyrec.agents.rl import make_rl_agent
    from stickyrec.envs.config import make_config
    from stickyrec.inputs import load_yaml

    value = load_yaml(text, source="test")
    assert make_config("small", n_items=value).n_items == expected
    assert isinstance(make_config("small", n_items=value).n_items, int)
    assert make_rl_agent("ppo", n_envs=value).params.n_envs == expected


@pytest.mark.parametrize("text", ["1.5", "1e-3", "1e400", ".inf", "'1e3'"])
def test_fractional_or_huge_numbers_are_still_refused_for_integers(text):
    from stickyrec.envs.config import make_config
    from stickyrec.inputs import load_yaml

    with pytest.raises(ValueError, match="n_items"):
        make_config("small", n_items=load_yaml(text, source="test"))


def test_experiment_integers_accept_exponent_form(tmp_path):
    from stickyrec.experiments.experiment import load_experiment

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN)
    experiment = load_experiment(str(config), ["seeds=2e0", "evaluation.shoppers=1e3", "agents.ppo.steps=1e4"])
    assert (experiment.seeds, experiment.eval_shoppers, experiment.agent("ppo").steps) == (2, 1000, 10000)


def test_config_describe_honours_set(capsys):
    assert main(["config", "--describe", "--set", "clickbait_share=0.3", "--set", "n_items=1e3"]) == 0
    rows = {line.split()[1]: line.split()[2] for line in capsys.readouterr().out.splitlines()}
    assert rows["clickbait_share"] == "0.3*" and rows["n_items"] == "1000*" and "*" not in rows["slate_size"]
    code, err = run_cli(capsys, "config", "--describe", "--set", "n_items=1.5")
    assert_refused(code, err, "n_items")


# --------------------------------------------------------------------------------------------------------------
# Processes: workers die with their parent; Ctrl-C leaks nothing; the bar shows the budget that runs
# --------------------------------------------------------------------------------------------------------------
SLOW_RUN = """\
name: slow
env: {preset: small, horizon_days: 10}
agents:
  ppo: {steps: 400000, params: {n_envs: 16, n_steps: 16, batch_size: 128}}
seeds: 2
evaluation: {shoppers: 20}
report: {reference: ppo, resamples: 20, cohort_days: [1, 3, 7]}
"""


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (Linux /proc)."""
    return [child for child, _, parent, _ in proc_stats() if parent == pid]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["SIGKILL to the main process alone", "Ctrl-C to the process group"])
def test_workers_die_with_the_run_and_nothing_leaks(tmp_path, how):
    import signal
    import subprocess
    import sys

    config = tmp_path / "slow.yaml"
    config.write_text(SLOW_RUN)
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "stickyrec.experiments.cli", "run", str(config), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interactive_sigint,  # SIGINT handled as in a terminal, whatever the pytest process inherited
    )
    try:
        deadline = time.monotonic() + 90
        while len(list(out.glob("cells/*/started.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(out.glob("cells/*/started.json")), "no cell started"
        time.sleep(0.5)  # both workers inside their cells (training)
        children = _children(process.pid)  # two workers and the resource tracker
        assert len(children) >= 2
        if how.startswith("SIGKILL"):
            os.kill(process.pid, signal.SIGKILL)
        else:
            os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)  # once no process holds the pipes (loaded machines are slow)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    assert not list(out.glob(f"cells/*/{'cell.json'}"))  # no worker finished its cell after the run was stopped
    if how.startswith("Ctrl-C"):
        assert process.returncode == 130
        assert "leaked" not in stderr and "Traceback" not in stderr, stderr
        assert "stickyrec: interrupted" in stderr


@pytest.mark.parametrize(("kind", "unit"), [("ppo", 16 * 16), ("slateq", 16)])
def test_the_bar_shows_the_budget_that_is_trained(kind, unit, capsys):
    from stickyrec.agents.rl import make_rl_agent

    params = {"n_envs": 16, "n_steps": 16, "batch_size": 128} if kind == "ppo" else {"n_envs": 16}
    agent = make_rl_agent(kind, seed=0, **params)
    assert agent.budget(100) == unit * -(-100 // unit)
    agent.train("small", 100, progress=True)
    err = capsys.readouterr().err
    assert agent.history["steps"] == agent.budget(100)
    assert f"100 steps rounded up to {agent.budget(100):,}" in err
    assert f"/{agent.budget(100)}" in err.replace(" ", "")  # the bar's total is the budget, e.g. 256/256
