"""``stickyrec run CONFIG``: the grid of scenarios x agents x seeds, each cell independent, resumable, parallel.

A run directory (``results/<name>/`` by default) holds::

    config.yaml                 the fully resolved experiment (every scenario's env, every agent's spec)
    data/SCENARIO__sSEED/       logged impressions for the log-trained agents: impressions.duckdb, train/validation
                                splits as Parquet, done.json (written last)
    cells/SCENARIO__AGENT__sSEED/
        shoppers.parquet        one row per held-out shopper: engagement totals, churned, churn_day, lifetime_days
        daily.parquet           the cohort's sessions, impressions, clicks, purchases and revenue by day
        days.parquet            one row per (shopper, day) with a visit: sessions, clicks, purchases, revenue, rated
                                clicks, latent satisfaction (``experiments.activity``); shoppers.parquet also holds
                                each shopper's starting traits (activity level, price sensitivity, satisfaction,
                                interest category) for the report's segments
        cell.json               the cell's metrics and timings, written last: a cell is done once it exists; sealed
                                with the resolved config's hash and its files' sha256 (``experiments.cells``)
        (agent.pt, tb/, ...)    the trained agent, where there is one
    lifetimes.parquet, summary.*, report.md, report.html, figures/   (``experiments.report``)

Every file is written to a temporary name and renamed into place, so a kill at any moment leaves either the
whole file or none. A cell without its marker is wiped and recomputed on the next run; a cell's numbers depend
only on (resolved config, cell), so a resumed run gives the same numbers as an uninterrupted one. Re-running a
directory with a different resolved config is refused rather than mixing two experiments: by ``config.yaml``, and
cell by cell by the config hash each marker records (so a deleted or edited ``config.yaml`` cannot make a run reuse
cells of another config). A damaged marker or result file is refused, named, before any work.

Backends: ``local`` (default) runs cells in spawned worker processes; ``ray`` submits the same function as Ray
tasks, to a local Ray started here or to a cluster (``--ray-address``; the run directory must then be on
storage that every node shares). Each cell uses one thread (torch and BLAS), as is fastest on small networks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from stickyrec.experiments.cells import CELL_MARKER, DATA_MARKER, cell_name, config_hash, read_marker, seal
from stickyrec.experiments.experiment import AgentSpec, ExperimentConfig
from stickyrec.experiments.report import build_report
from stickyrec.inputs import dump_yaml, load_yaml
from stickyrec.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic

STARTED_MARKER = "started.json"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
DATA_FILES = ("train.parquet", "validation.parquet", "test.parquet", "contexts.parquet")  # hashed in done.json
CELL_FILES = ("shoppers.parquet", "daily.parquet", "days.parquet")  # hashed in cell.json (models: their own hash)
BACKENDS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What ``run_experiment`` did: cells run now, cells found done, failures, and the wall time."""

    run_dir: Path
    cells_total: int
    cells_run: int
    cells_reused: int
    failed: dict[str, str]
    seconds: float


def plan(experiment: ExperimentConfig, run_dir: Path) -> tuple[list[dict], list[dict]]:
    """The data tasks and agent tasks of the grid, as plain dicts a worker process (or Ray task) can take."""
    data_tasks, agent_tasks = [], []
    sealed_with = config_hash(resolved_config(experiment))  # every marker records the config that made it
    for scenario in experiment.scenarios:
        env = scenario.env.to_dict()
        if experiment.needs_data:
            for seed in range(experiment.seeds):
                data_tasks.append(
                    {
                        "type": "data",
                        "name": f"{scenario.name}__s{seed}",
                        "env": env,
                        "seed": seed,
                        "dir": str(run_dir / "data" / f"{scenario.name}__s{seed}"),
                        "shoppers": experiment.data_shoppers,
                        "population_seed": experiment.data_population_seed(seed),
                        "config_sha256": sealed_with,
                    }
                )
        for spec in experiment.agents:
            for seed in range(experiment.seeds):
                name = cell_name(scenario.name, spec.label, seed)
                agent_tasks.append(
                    {
                        "type": "agent",
                        "name": name,
                        "scenario": scenario.name,
                        "env": env,
                        "seed": seed,
                        "spec": dataclasses.asdict(spec),
                        "dir": str(run_dir / "cells" / name),
                        "data_dir": (
                            str(run_dir / "data" / f"{scenario.name}__s{seed}") if spec.needs == "data" else None
                        ),
                        "eval_shoppers": experiment.eval_shoppers,
                        "eval_seed": experiment.eval_population_seed(seed),
                        # weights tuned after training (experiments.tuning) are chosen on the logged population
                        "tune_seed": experiment.data_population_seed(seed),
                        "tune_shoppers": experiment.data_shoppers,
                        "config_sha256": sealed_with,
                    }
                )
    return data_tasks, agent_tasks


# --------------------------------------------------------------------------------------------------------------
# The cell functions: run in a worker process or a Ray task. Plain dict in, small dict out.
# --------------------------------------------------------------------------------------------------------------
def run_task(task: dict) -> dict:
    """Run one data or agent task (from scratch: a folder left by an interrupted attempt is wiped first)."""
    for variable in THREAD_VARIABLES:
        os.environ[variable] = "1"
    import torch

    torch.set_num_threads(1)
    out = Path(task["dir"])
    marker = out / (DATA_MARKER if task["type"] == "data" else CELL_MARKER)
    if marker.exists():
        return {**read_marker(marker, task["config_sha256"]), "reused": True}
    if out.exists():
        shutil.rmtree(out)  # an interrupted attempt: its files are incomplete by definition
    out.mkdir(parents=True)
    write_json_atomic(out / STARTED_MARKER, {"started": time.time(), "pid": os.getpid()})  # for live status
    t0 = time.perf_counter()
    summary = _run_data(task, out) if task["type"] == "data" else _run_agent(task, out)
    summary = {"name": task["name"], "seconds": round(time.perf_counter() - t0, 2), **summary}
    summary = seal(summary, out, task["config_sha256"], DATA_FILES if task["type"] == "data" else CELL_FILES)
    write_json_atomic(marker, summary)
    return summary


def _run_data(task: dict, out: Path) -> dict:
    from stickyrec.agents import RandomPolicy
    from stickyrec.envs.catalog import make_catalog
    from stickyrec.envs.config import RetentionConfig
    from stickyrec.experiments.data import load_training_log, split_log
    from stickyrec.experiments.platform_log import collect

    config = RetentionConfig(**task["env"])
    store, contexts = out / "impressions.duckdb", out / "contexts.parquet"
    collect(
        RandomPolicy(task["seed"]),
        config,
        task["shoppers"],
        store=store,
        run_id="logging",
        seed=task["population_seed"],
        progress=False,
        contexts=contexts,
    )
    table = load_training_log(store, "logging", contexts, make_catalog(config))
    splits = split_log(table, seed=task["seed"])
    for part in ("train", "validation", "test"):  # test: held-out shoppers' impressions, for the click AUC
        write_parquet_atomic(getattr(splits, part), out / f"{part}.parquet")
    return {"impressions": len(table), "train": len(splits.train), "validation": len(splits.validation)}


def _train(task: dict, spec: AgentSpec, config, out: Path):
    """The cell's agent, trained as its class says (``needs``): in the env, on the logged data, or not at all."""
    from stickyrec.agents.base import NEEDS_ENV, NEEDS_NOTHING
    from stickyrec.agents.registry import get_agent_class
    from stickyrec.envs.catalog import make_catalog
    from stickyrec.experiments.experiment import make_agent

    cls = get_agent_class(spec.kind)
    if cls.needs == NEEDS_ENV:
        from stickyrec.experiments.train import train_agent

        agent = train_agent(
            spec.kind,
            config,
            out,
            reward=spec.reward,
            steps=spec.steps,
            seed=task["seed"],
            hyperparameters=spec.params,
            progress=False,
        )
        agent.name = spec.label
        return agent, {"steps": agent.history["steps"], "steps_per_second": agent.history["steps_per_second"]}
    from stickyrec.experiments.tuning import tune_weights

    agent = make_agent(spec, task["seed"])
    if cls.needs == NEEDS_NOTHING:  # a campaign learns its targeting from a logged campaign on these shoppers
        fit = getattr(agent, "fit_population", None)
        training = fit(config, task["tune_seed"], task["tune_shoppers"]) if callable(fit) else {}
        tuning = tune_weights(agent, config, task["tune_seed"], task["tune_shoppers"])
        return agent, training if tuning is None else {**training, "tuning": tuning}
    import pandas as pd

    data = Path(task["data_dir"])
    if not (data / DATA_MARKER).exists():
        raise RuntimeError(f"{spec.label}: the logged data in {data} is not ready")
    train = pd.read_parquet(data / "train.parquet")
    validation = pd.read_parquet(data / "validation.parquet")
    training = agent.fit_log(train, validation, make_catalog(config), task["seed"])
    tuning = tune_weights(agent, config, task["tune_seed"], task["tune_shoppers"])
    if tuning is not None:  # on the training population: the log's own shoppers, never the evaluation ones
        training["tuning"] = tuning
    agent.save(out / f"{cls.kind}{cls.file_suffix}")  # the kind names the file, as it names the saved agent
    return agent, training


def _run_agent(task: dict, out: Path) -> dict:
    import pandas as pd

    from stickyrec.envs.config import RetentionConfig
    from stickyrec.experiments.activity import ActivityStats
    from stickyrec.experiments.campaigns import OfferStats
    from stickyrec.experiments.evaluate import click_auc
    from stickyrec.experiments.metrics import frame_metrics, per_shopper_frame
    from stickyrec.experiments.rollout import rollout
    from stickyrec.experiments.simulate import CohortStats

    spec = AgentSpec(**task["spec"])
    config = RetentionConfig(**task["env"])
    t0 = time.perf_counter()
    agent, training = _train(task, spec, config, out)
    train_seconds = time.perf_counter() - t0
    auc = {}
    test = Path(task["data_dir"]) / "test.parquet" if task["data_dir"] else None
    if test is not None and test.exists() and hasattr(agent, "predict_click"):  # a click model: its held-out AUC
        auc = {"click_auc": click_auc(agent, pd.read_parquet(test))}
    n = task["eval_shoppers"]
    observers = [CohortStats(agent.name, config, n), ActivityStats(config, n)]
    if config.offers_on:  # the coupon lever: each shopper's coupon cost, net revenue, offers, uplift type
        observers.append(OfferStats(n))
    result, (days, traits), *offers = rollout(agent, config, n, task["eval_seed"], observers)
    shoppers = per_shopper_frame(result)
    shoppers.insert(0, "shopper", range(len(shoppers)))
    shoppers["churned"] = result.churned
    # first day no longer a customer (a churned shopper's last session was the day before); censored at the horizon
    shoppers["churn_day"] = (result.last_day + 1).astype(float)
    shoppers.loc[~result.churned, "churn_day"] = float(config.horizon_days)
    shoppers = pd.concat([shoppers, traits, *offers], axis=1)
    if callable(getattr(agent, "shopper_columns", None)):  # a campaign: who decided, was contacted, their scores
        shoppers = shoppers.assign(**agent.shopper_columns())
    daily = pd.DataFrame({"day": range(len(result.daily["sessions"])), **result.daily})
    write_parquet_atomic(shoppers, out / "shoppers.parquet")
    write_parquet_atomic(daily, out / "daily.parquet")
    write_parquet_atomic(days, out / "days.parquet")
    return {
        "scenario": task["scenario"],
        "agent": spec.label,
        "kind": spec.kind,
        "seed": task["seed"],
        "eval_population_seed": task["eval_seed"],
        "train_seconds": round(train_seconds, 2),
        "training": training,
        "metrics": frame_metrics(shoppers),
        **auc,
    }


# --------------------------------------------------------------------------------------------------------------
# Backends: submit(task) -> handle; wait_any(handles) -> finished handles.
# --------------------------------------------------------------------------------------------------------------
HEARTBEAT_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_init(parent_pid: int) -> None:
    """A local worker dies with the run that started it: a kill -9 of the main process alone must not leave workers
    finishing their cells into the run directory. On Linux the kernel sends SIGKILL when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere a heartbeat thread exits once the parent is gone (the worker is then
    re-parented). Ctrl-C goes to the whole process group: workers ignore it, and the main process stops them, leaking
    nothing."""
    import signal
    import threading

    from tqdm import tqdm

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock is a named multiprocessing semaphore; a worker stopped with SIGTERM cannot unlink it, and
    # the resource tracker then warns of leaked semaphores. A worker's bars (none by default) need a thread lock only.
    tqdm.set_lock(threading.RLock())
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl here: the heartbeat alone
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)

    def heartbeat() -> None:
        while os.getppid() == parent_pid:
            time.sleep(HEARTBEAT_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=heartbeat, name="stickyrec-heartbeat", daemon=True).start()


class _LocalBackend:
    def __init__(self, workers: int) -> None:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import active_children, get_context

        self._others = set(active_children())  # child processes that are not this pool's workers
        self._saved = {v: os.environ.get(v) for v in THREAD_VARIABLES}
        for variable in THREAD_VARIABLES:  # spawned workers inherit these before numpy loads
            os.environ[variable] = "1"
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=worker_init, initargs=(os.getpid(),)
        )

    def submit(self, task: dict):
        return self.pool.submit(run_task, task)

    def wait_any(self, handles: list, timeout: float) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    @staticmethod
    def result(handle) -> dict:
        return handle.result()

    def close(self, abort: bool = False) -> None:
        if abort:  # Ctrl-C or an error here: stop the workers now (their unfinished cells are redone on resume)
            from multiprocessing import active_children

            processes = [p for p in active_children() if p not in self._others]
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(timeout=10)
        self.pool.shutdown(wait=not abort, cancel_futures=True)
        for variable, value in self._saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


class _RayBackend:
    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--backend ray needs Ray: pip install 'stickyrec[ray]' (or pip install ray)") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            env_vars = {v: "1" for v in THREAD_VARIABLES}
            kwargs: dict[str, Any] = {
                "log_to_driver": False,
                "include_dashboard": False,
                "runtime_env": {"env_vars": env_vars},
            }
            if address is None:
                kwargs["num_cpus"] = workers
            ray.init(address=address, **kwargs)
        self.remote = ray.remote(num_cpus=1, max_retries=0)(run_task)

    def submit(self, task: dict):
        return self.remote.remote(task)

    def wait_any(self, handles: list, timeout: float) -> list:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def result(self, handle) -> dict:
        return self.ray.get(handle)

    def close(self, abort: bool = False, handles: list | None = None) -> None:
        if abort and not self.started_here:  # on a cluster we do not own: cancel what is still queued or running
            for handle in handles or []:
                self.ray.cancel(handle, force=True)
        if self.started_here:
            self.ray.shutdown()


DATA_PRIORITY = 1  # the logged data: after the RL agents (0), before the agents that learn from it (2, 3)


def _priority(task: dict) -> int:
    """Order of the queue: each agent class's ``priority`` (RL training, the MLP, the other log-trained agents,
    then the rest), the logged data at ``DATA_PRIORITY``."""
    from stickyrec.agents.registry import get_agent_class

    return DATA_PRIORITY if task["type"] == "data" else get_agent_class(task["spec"]["kind"]).priority


def _live_status(tasks, queued: int) -> str:
    """``running: a 2:10, b 0:41 | 12 queued``: which cells are at work now, and for how long."""
    now, running = time.time(), []
    for task in tasks:
        out = Path(task["dir"])
        started = out / STARTED_MARKER
        if started.exists() and not (out / CELL_MARKER).exists() and not (out / DATA_MARKER).exists():
            try:
                seconds = now - json.loads(started.read_text())["started"]
            except (OSError, ValueError, KeyError):
                continue
            running.append(f"{task['name']} {int(seconds) // 60}:{int(seconds) % 60:02d}")
    queued += len(list(tasks)) - len(running)  # handed out, not started yet
    shown = ", ".join(running[:3]) + (f" +{len(running) - 3}" if len(running) > 3 else "")
    return f"running: {shown or '-'} | {queued} queued"


def _check_run_dir(run_dir: Path, resolved: dict) -> None:
    stored_path = run_dir / "config.yaml"
    if not stored_path.exists():
        return
    stored = load_yaml(stored_path, source=str(stored_path))
    if not isinstance(stored, dict):
        raise ValueError(f"{stored_path} is not a stickyrec run config (a mapping); choose another --out")
    if stored != resolved:
        changed = sorted(k for k in set(stored) | set(resolved) if stored.get(k) != resolved.get(k))
        raise ValueError(
            f"{run_dir} holds a run of a different config (differs in: {', '.join(changed)}); resume"
            " it with the same config and --set values, or choose another --out"
        )


def resolved_config(experiment: ExperimentConfig) -> dict:
    return {**experiment.to_dict(), "resolved_env": experiment.resolved_envs()}


def _finished(task: dict, handle, executor, queue: list, waiting: list, failed: dict, bar) -> None:
    """One task came back: report it, release the cells waiting on its data, or record its failure."""
    from tqdm.auto import tqdm

    try:
        result = executor.result(handle)
    except Exception as exc:  # a failed cell must not sink the others: report it at the end
        failed[task["name"]] = f"{type(exc).__name__}: {exc}"
        tqdm.write(f"FAILED {task['name']}: {failed[task['name']]}")
        if task["type"] == "data":
            for dependent in [w for w in waiting if w["data_dir"] == task["dir"]]:
                waiting.remove(dependent)
                failed[dependent["name"]] = f"its logged data ({task['name']}) failed"
                bar.update(1)
        else:
            bar.update(1)
        return
    if task["type"] == "data":
        tqdm.write(f"data  {task['name']}: {result['impressions']:,} impressions logged ({result['seconds']:.0f} s)")
        for dependent in [w for w in waiting if w["data_dir"] == task["dir"]]:
            waiting.remove(dependent)
            queue.append(dependent)
        queue.sort(key=_priority)
        return
    metrics = result["metrics"]
    tqdm.write(
        f"done  {task['name']}: d30 retention {metrics['retention_day30']:.3f}, CTR wk1"
        f" {metrics['click_rate_week1']:.3f} ({result['seconds']:.0f} s)"
    )
    bar.update(1)


def _only(agent_tasks: list[dict], only: Collection[str], name: str) -> list[dict]:
    """The agent tasks named in ``only``; a name that is not in the grid is a ``ValueError``."""
    unknown = sorted(set(only) - {t["name"] for t in agent_tasks})
    if unknown:
        raise ValueError(f"cells {', '.join(unknown)} are not in {name}'s grid")
    return [t for t in agent_tasks if t["name"] in set(only)]


def run_experiment(
    experiment: ExperimentConfig,
    run_dir: str | Path,
    backend: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
    progress: bool = True,
    report: bool = True,
    only: Collection[str] | None = None,
) -> RunResult:
    """Run (or resume) every cell of ``experiment`` into ``run_dir``, then write the report.

    ``only``: the names of the cells to run (``cells.cell_name``), with the data cells they need, and no report;
    ``None`` runs the whole grid."""
    from tqdm.auto import tqdm

    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is unknown; allowed: {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if ray_address is not None and backend != "ray":
        raise ValueError("--ray-address needs --backend ray")
    run_dir = Path(run_dir)
    resolved = resolved_config(experiment)
    _check_run_dir(run_dir, resolved)
    data_tasks, agent_tasks = plan(experiment, run_dir)
    if only is not None:
        agent_tasks, report = _only(agent_tasks, only, experiment.name), False
    for task in [*data_tasks, *agent_tasks]:  # a finished cell of another config, or a damaged one, is refused
        marker = Path(task["dir"]) / (DATA_MARKER if task["type"] == "data" else CELL_MARKER)
        if marker.exists():
            read_marker(marker, task["config_sha256"])
    write_bytes_atomic(run_dir / "config.yaml", dump_yaml(resolved, sort_keys=False).encode())

    t0 = time.perf_counter()
    done_cells = {t["name"] for t in agent_tasks if (Path(t["dir"]) / CELL_MARKER).exists()}
    pending = [t for t in agent_tasks if t["name"] not in done_cells]
    needed_data = {t["data_dir"] for t in pending if t["data_dir"] is not None}
    data_pending = [t for t in data_tasks if t["dir"] in needed_data and not (Path(t["dir"]) / DATA_MARKER).exists()]
    ready_data = needed_data - {t["dir"] for t in data_pending}
    waiting = [t for t in pending if t["data_dir"] is not None and t["data_dir"] not in ready_data]
    # The runner keeps the queue itself and hands out at most `workers` tasks at a time, longest first, so that a
    # slow cell that becomes ready late (the MLP, once its logged data exists) still overtakes the quick ones.
    queue = sorted([*data_pending, *(t for t in pending if t not in waiting)], key=_priority)
    failed: dict[str, str] = {}
    bar = tqdm(
        total=len(agent_tasks),
        initial=len(done_cells),
        desc=f"{experiment.name}: cells",
        unit="cell",
        disable=not progress,
        dynamic_ncols=True,
    )
    executor = None
    if pending:
        executor = _LocalBackend(workers) if backend == "local" else _RayBackend(workers, ray_address)
    running: dict[Any, dict] = {}
    aborted = True
    try:
        while queue or running:
            while queue and len(running) < workers:
                task = queue.pop(0)
                running[executor.submit(task)] = task
            bar.set_postfix_str(_live_status(running.values(), len(queue) + len(waiting)), refresh=True)
            for handle in executor.wait_any(list(running), timeout=2.0):
                _finished(running.pop(handle), handle, executor, queue, waiting, failed, bar)
        aborted = False
    finally:
        bar.close()
        if executor is not None:
            if isinstance(executor, _RayBackend):
                executor.close(abort=aborted, handles=list(running))
            else:
                executor.close(abort=aborted)
    seconds = time.perf_counter() - t0
    failed_cells = sum(1 for t in pending if t["name"] in failed)
    result = RunResult(run_dir, len(agent_tasks), len(pending) - failed_cells, len(done_cells), failed, seconds)
    if not failed and report:
        build_report(run_dir, progress=progress)
    return result


__all__ = ["BACKENDS", "RunResult", "plan", "resolved_config", "run_experiment", "run_task"]
