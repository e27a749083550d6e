"""Re-simulating shoppers from copies of their simulator state (the ceilings of ``experiments.marketing``).

``capture_rows`` copies a simulator's full state in some rows (latent traits, satisfaction, fatigue, interest,
history, candidates, random streams); ``load_rows`` writes such a copy into a fresh simulator; ``replay`` steps the
copies under random slates (the logging policy) with a tracker's hooks deciding what is recorded and when a row
stops. Only public attributes of ``envs`` objects are read and written; ``envs`` is not changed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stickyrec.envs.shoppers import ShopperState
from stickyrec.envs.simulator import RetentionSimulator
from stickyrec.envs.spaces import top_k

VIEW_FIELDS = ("recent_category_clicks", "session_category_impressions", "recent_click_direction")
STATE_FIELDS = tuple(f.name for f in dataclasses.fields(ShopperState) if f.name not in VIEW_FIELDS)
SIMULATOR_FIELDS = ("candidate_ids", "candidate_utility", "logit_bound")
MIN_COMPACT_ROWS = 4096  # below this, stepping dead rows is cheaper than building a smaller simulator


def capture_rows(simulator: RetentionSimulator, rows: np.ndarray) -> dict[str, np.ndarray]:
    """A copy of the simulator's state (shopper state, candidates, streams) in ``rows``."""
    state = {name: np.take(getattr(simulator.state, name), rows, axis=0) for name in STATE_FIELDS}
    state.update({name: np.take(getattr(simulator, name), rows, axis=0) for name in SIMULATOR_FIELDS})
    state["stream_keys"] = simulator.streams.keys[rows].copy()
    state["stream_counters"] = simulator.streams.counters[rows].copy()
    return state


def load_rows(simulator: RetentionSimulator, state: dict[str, np.ndarray]) -> None:
    """Write a ``capture_rows`` copy (as many rows as the simulator has) into every row of ``simulator``."""
    for name in STATE_FIELDS:
        getattr(simulator.state, name)[...] = state[name]  # in place: ``features`` keeps its views
    for name in SIMULATOR_FIELDS:
        getattr(simulator, name)[...] = state[name]
    simulator.streams.keys[...] = state["stream_keys"]
    simulator.streams.counters[...] = state["stream_counters"]


def fresh_copies(state: dict[str, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The captured states of ``rows`` (repeats allowed), each with a fresh random stream drawn from ``rng``: copies
    of the same shopper that live independent futures."""
    copy = {k: np.take(v, rows, axis=0) for k, v in state.items()}
    copy["stream_keys"] = rng.integers(0, 2**63, size=rows.size, dtype=np.int64).astype(np.uint64)
    copy["stream_counters"] = np.zeros(rows.size, dtype=np.uint64)
    return copy


def replay(config, state: dict[str, np.ndarray], tracker, rng: np.random.Generator, catalog=None) -> None:
    """Step the copied rows of ``state`` under random slates (from ``rng``) until the tracker stops every one.

    ``tracker`` has ``begin(simulator, index)``, ``before(simulator, slates, index)`` and
    ``after(simulator, response, index)``; ``index`` maps the simulator's rows to the rows of ``state``. A row stops
    when the tracker or the simulator (churn, horizon) clears ``simulator.state.alive``. Stopped rows leave the
    batch when it is large and at most half live (a smaller simulator is cheaper than stepping dead rows).
    """
    index = np.arange(state["day"].shape[0])
    while index.size:
        simulator = RetentionSimulator(config, index.size, catalog)
        catalog = simulator.catalog
        load_rows(simulator, state)
        tracker.begin(simulator, index)
        live = np.count_nonzero(simulator.state.alive)
        while live and (live * 2 > simulator.batch_size or simulator.batch_size <= MIN_COMPACT_ROWS):
            slates = top_k(rng.random((simulator.batch_size, config.n_candidates)), config.slate_size)
            tracker.before(simulator, slates, index)
            tracker.after(simulator, simulator.step(slates), index)
            live = np.count_nonzero(simulator.state.alive)
        keep = np.flatnonzero(simulator.state.alive)
        state, index = capture_rows(simulator, keep), index[keep]
