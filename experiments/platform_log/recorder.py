"""Serve-time features (feature logging): the context of every logged step, written as one Parquet file.

Production recommenders log the features a model was served with, so that training sees exactly those (no
train/serve skew). ``collect(contexts=path)`` records, through ``ContextRecorder``, one row per live step:

=======================  ========  =========================================================================
column                   type      meaning
=======================  ========  =========================================================================
shopper                  int64     the shopper's index within the run (joins the impressions' ``shopper``)
step                     int32     impression step within the shopper's life (joins the impressions' ``step``)
s0 .. s{F-1}             float32   the observation's shopper vector at serve time (what an agent saw)
true_click_prob_0 ..     float64   analysis only, never for agents: the simulator's true click probability of
true_click_prob_{k-1}              each slate position (the ceiling a click model can reach)
=======================  ========  =========================================================================

The file is written atomically (``stickyrec.io``) when the run ends; ``read_contexts`` reads it back.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from stickyrec.experiments.rollout import RolloutObserver
from stickyrec.io import write_bytes_atomic


class ContextRecorder(RolloutObserver):
    """Rollout observer: serve-time shopper features and true click probabilities of every live step.

    ``finish()`` writes them to ``path`` (Parquet, atomically) and returns the path.
    """

    def __init__(self, n_shoppers: int, path: str | os.PathLike) -> None:
        self.path = path
        self.steps = np.zeros(n_shoppers, dtype=np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.simulator = None

    def on_reset(self, env, obs, info) -> None:
        self.simulator = env.simulator

    def before_step(self, obs, slates, active) -> None:
        self.record(active, obs["shopper"], self.simulator.click_probabilities(slates)[:, :-1])

    def record(self, active: np.ndarray, shopper_features: np.ndarray, click_probabilities: np.ndarray) -> None:
        """One step: the features and click probabilities of the ``active`` shoppers."""
        live = np.flatnonzero(active)
        self.parts.append((live, self.steps[live], shopper_features[live], click_probabilities[live]))
        self.steps[live] += 1

    def frame(self) -> pd.DataFrame:
        """Everything recorded so far, one row per (shopper, step)."""
        shopper, step, features, probabilities = (np.concatenate(column) for column in zip(*self.parts))
        columns = {"shopper": shopper.astype(np.int64), "step": step.astype(np.int32)}
        columns.update({f"s{j}": features[:, j] for j in range(features.shape[1])})
        columns.update({f"true_click_prob_{j}": probabilities[:, j] for j in range(probabilities.shape[1])})
        return pd.DataFrame(columns)

    def write(self, path: str | os.PathLike) -> None:
        """The recorded frame as a Parquet file, written atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(self.frame(), preserve_index=False), sink)
        write_bytes_atomic(path, sink.getvalue().to_pybytes())

    def finish(self) -> str | os.PathLike:
        self.write(self.path)
        return self.path


def read_contexts(path: str | os.PathLike) -> pd.DataFrame:
    """The serve-time features written by ``collect(contexts=path)``."""
    if not os.path.isfile(path):
        raise ValueError(f"contexts file {str(path)!r} does not exist; collect with contexts=... to write it")
    return pd.read_parquet(path)
