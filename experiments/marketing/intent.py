"""The ceiling of purchase intent: the simulator's own chance that a session still live ends with a purchase.

``SessionSnapshots`` (a rollout observer) copies the simulator state of each session still live after its first j
slates with no purchase yet (the rows of ``features.intent_examples``); ``true_intent`` re-simulates the rest of the
session from each copy under random slates (the logging policy) with independent streams. At each slate the chance
that she buys from it has a closed form given the latent state (``buy_probability``: the true click probabilities
times each item's purchase probability), so each re-simulation adds those chances up until she buys or leaves (a
Rao-Blackwell estimate of the probability; the plain share of re-simulations with a purchase is kept too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from stickyrec.envs import dynamics
from stickyrec.experiments.marketing.features import check_positive_int
from stickyrec.experiments.marketing.replay import capture_rows, fresh_copies, replay
from stickyrec.experiments.rollout import RolloutObserver


class SessionSnapshots(RolloutObserver):
    """Rollout observer: the state of each live, not yet converted session after j slates (j in ``slates``), for
    shoppers ``0 .. shoppers - 1`` (all with None)."""

    def __init__(self, slates=(1, 3, 5), shoppers: int | None = None) -> None:
        self.slates = tuple(check_positive_int(j, "slates") for j in slates)
        self.limit = None if shoppers is None else check_positive_int(shoppers, "shoppers")
        self.parts: list[tuple[int, np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self.simulator = None
        self.session: np.ndarray | None = None

    def on_reset(self, env, obs, info) -> None:
        self.simulator = env.simulator
        self.session = np.zeros(env.num_envs, dtype=np.int64)

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        st = self.simulator.state
        live = active & ~np.asarray(info["session_ended"], dtype=bool) & (st.purchases == st.session_start_purchases)
        if self.limit is not None:
            live[self.limit :] = False
        for j in self.slates:
            rows = np.flatnonzero(live & (st.session_step == j))
            if rows.size:
                self.parts.append((j, rows, self.session[rows], capture_rows(self.simulator, rows)))
        self.session += np.asarray(info["returned"], dtype=bool) & active

    def finish(self):
        """(``shopper``, ``session``, ``slates_seen`` frame, the states stacked in its row order) or None."""
        if not self.parts:
            return None
        keys = pd.DataFrame(
            {
                "shopper": np.concatenate([p[1] for p in self.parts]),
                "session": np.concatenate([p[2] for p in self.parts]),
                "slates_seen": np.concatenate([np.full(p[1].size, p[0]) for p in self.parts]),
            }
        )
        return keys, {k: np.concatenate([p[3][k] for p in self.parts]) for k in self.parts[0][3]}


def buy_probability(simulator, slates: np.ndarray) -> np.ndarray:
    """(B,) the true chance that each shopper buys from ``slates`` now: sum over positions of P(click) P(buy)."""
    config, catalog, st = simulator.config, simulator.catalog, simulator.state
    click = simulator.click_probabilities(slates)[:, : config.slate_size]
    items = np.take_along_axis(simulator.candidate_ids, slates, axis=1)
    embedding = catalog.embedding.astype(np.float32)  # the step's float32 relevance
    relevance = np.matmul(np.take(embedding, items, axis=0), st.interest[:, :, None])[:, :, 0].astype(np.float64)
    buy = dynamics.purchase_probability(
        relevance,
        catalog.quality[items],
        catalog.log_relative_price[items],
        st.price_sensitivity[:, None],
        config.purchase_bias,
        config.purchase_relevance,
        config.purchase_quality,
    )
    return np.einsum("bj,bj->b", click, buy)


class PurchaseTracker:
    """``replay`` hooks for intent: rows stop at a purchase or the session's end; ``bought`` (the draws) and
    ``expected`` (``buy_probability`` summed over the slates she saw before stopping)."""

    def __init__(self, n: int) -> None:
        self.bought = np.zeros(n, dtype=bool)
        self.expected = np.zeros(n)

    def begin(self, simulator, index) -> None:
        return None

    def before(self, simulator, slates, index) -> None:
        alive = np.flatnonzero(simulator.state.alive)
        self.expected[index[alive]] += buy_probability(simulator, slates)[alive]

    def after(self, simulator, response, index) -> None:
        self.bought[index[response.purchased]] = True
        simulator.state.alive &= ~(response.purchased | response.session_ended)


def true_intent(
    config, snapshots, replicates: int = 8, seed: int = 0, catalog=None, chunk: int = 131_072, progress: bool = False
) -> pd.DataFrame:
    """``shopper``, ``session``, ``slates_seen``, ``probability`` (Rao-Blackwell), ``probability_draws`` (the share
    of ``replicates`` re-simulations with a purchase): the chance she buys in the rest of the session."""
    replicates = check_positive_int(replicates, "replicates")
    if snapshots is None:
        empty = np.zeros(0, dtype=np.int64)
        return pd.DataFrame({"shopper": empty, "session": empty, "slates_seen": empty, "probability": empty * 0.0})
    keys, state = snapshots
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(keys)), replicates)
    bought, expected = np.zeros(rows.size, dtype=bool), np.zeros(rows.size)
    for start in tqdm(range(0, rows.size, chunk), desc="true intent", unit="chunk", disable=not progress):
        part = rows[start : start + chunk]
        copy = fresh_copies(state, part, rng)
        tracker = PurchaseTracker(part.size)
        replay(config, copy, tracker, rng, catalog)
        bought[start : start + part.size], expected[start : start + part.size] = tracker.bought, tracker.expected
    return keys.assign(
        probability=expected.reshape(len(keys), replicates).mean(axis=1),
        probability_draws=bought.reshape(len(keys), replicates).mean(axis=1),
    )
