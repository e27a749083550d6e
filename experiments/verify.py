"""``stickyrec verify RUN_DIR``: is a committed result what the shipped code produces? Re-run some of its cells from
scratch and compare them, shopper for shopper, with the run's committed ``lifetimes.parquet``.

By default one cell per agent kind (the first label of each kind, seed 0, first scenario): every code path that
makes numbers (the env, the logged data, each baseline's fit and tuning, each RL agent's training) runs once. The
cells run in a throw-away run directory with the run's own resolved ``config.yaml`` (so the same seeds and
settings) and are compared on every column the committed table and the fresh cell share, exactly (no tolerance:
"same config and seed, same numbers"). Exit status 0 when every cell is identical, 1 naming the cells and columns
that differ. CI runs it on ``results/reference`` (``.ci/run``); run it before committing results.

Torch and BLAS kernels differ between CPU families, so a trained agent's cell reproduces on the machine kind the
results were made on (and CI's); the env, data and non-torch baselines reproduce everywhere.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stickyrec.experiments.cells import cell_name
from stickyrec.experiments.experiment import ExperimentConfig
from stickyrec.inputs import load_yaml, short_repr

KEYS = ("scenario", "agent", "seed", "shopper")


def load_committed(run_dir: Path) -> tuple[ExperimentConfig, pd.DataFrame]:
    """(the run's experiment, its committed per-shopper table); a clear ``ValueError`` when either is missing."""
    config_path, table_path = run_dir / "config.yaml", run_dir / "lifetimes.parquet"
    for path in (config_path, table_path):
        if not path.is_file():
            raise ValueError(f"{run_dir} has no {path.name}; allowed: a finished stickyrec run directory")
    raw = load_yaml(config_path, source=str(config_path))
    if not isinstance(raw, dict):
        raise ValueError(f"{config_path} is not a stickyrec run config")
    experiment = ExperimentConfig.from_dict({k: v for k, v in raw.items() if k != "resolved_env"}, str(config_path))
    return experiment, pd.read_parquet(table_path)


def default_cells(experiment: ExperimentConfig, seed: int = 0, agents: Sequence[str] | None = None) -> list[str]:
    """The cells to re-run: ``agents`` (labels), or the first label of each kind; in seed ``seed`` of the first
    scenario."""
    labels = [a.label for a in experiment.agents]
    if agents:
        unknown = [a for a in agents if a not in labels]
        if unknown:
            raise ValueError(f"agent {short_repr(unknown[0])} is not in this run; allowed: {', '.join(labels)}")
        chosen = list(agents)
    else:
        first: dict[str, str] = {}
        for spec in experiment.agents:
            first.setdefault(spec.kind, spec.label)
        chosen = list(first.values())
    if not 0 <= seed < experiment.seeds:
        raise ValueError(f"--seed {seed} is not in this run; allowed: 0 to {experiment.seeds - 1}")
    return [cell_name(experiment.scenarios[0].name, label, seed) for label in chosen]


def compare_cell(committed: pd.DataFrame, fresh: pd.DataFrame, scenario: str, agent: str, seed: int) -> list[str]:
    """The differences between a committed cell's rows and a fresh cell's ``shoppers.parquet`` (empty: identical)."""
    rows = committed[
        (committed["scenario"] == scenario) & (committed["agent"] == agent) & (committed["seed"] == seed)
    ].sort_values("shopper")
    if len(rows) != len(fresh):
        return [f"{len(rows)} committed shoppers, {len(fresh)} re-run"]
    shared = [c for c in fresh.columns if c in rows.columns and c not in KEYS]
    problems = []
    for column in shared:
        a = rows[column].to_numpy()
        b = fresh.sort_values("shopper")[column].to_numpy()
        if not np.array_equal(a.astype(float), b.astype(float), equal_nan=True):
            differ = np.flatnonzero(a.astype(float) != b.astype(float))
            problems.append(
                f"{column}: {differ.size} shoppers differ (first: shopper {differ[0]}, {a[differ[0]]} vs"
                f" {b[differ[0]]})"
            )
    return problems


def verify_run(
    run_dir: str | Path,
    seed: int = 0,
    agents: Sequence[str] | None = None,
    workers: int = 2,
    work_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Re-run the chosen cells (``default_cells``) and compare; cell name -> its differences (empty: identical)."""
    from stickyrec.experiments.runner import run_experiment

    run_dir = Path(run_dir)
    experiment, committed = load_committed(run_dir)
    names = default_cells(experiment, seed, agents)
    scenario = experiment.scenarios[0].name
    with tempfile.TemporaryDirectory(prefix="stickyrec-verify-", dir=work_dir) as scratch:
        t0 = time.perf_counter()
        result = run_experiment(experiment, Path(scratch) / "run", workers=workers, progress=progress, only=names)
        if result.failed:
            raise RuntimeError(f"cells failed while verifying: {result.failed}")
        out = {}
        for spec in experiment.agents:
            name = cell_name(scenario, spec.label, seed)
            if name in names:
                fresh = pd.read_parquet(Path(scratch) / "run" / "cells" / name / "shoppers.parquet")
                out[name] = compare_cell(committed, fresh, scenario, spec.label, seed)
        if progress:
            print(f"verify: re-ran {len(names)} cells in {time.perf_counter() - t0:.0f} s")
    return out


__all__ = ["compare_cell", "default_cells", "load_committed", "verify_run"]
