"""What the RL agents share: acting through ``agents.base.Agent``, checkpoints, and the training harness.

A trained agent is a torch network that scores candidates (``scores(shopper, ids)``); acting is the top k of those
scores, best first, so trained agents are evaluated exactly like every baseline (``experiments.evaluate``).
Training owns its randomness: SB3 draws minibatches from numpy's and torch's global generators, so training runs
inside ``isolated_global_rng(seed)``, which seeds them for the run and restores the caller's states afterwards.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from stickyrec.agents.base import Agent
from stickyrec.agents.rl.checkpoint import check_spaces, env_spaces, load_checkpoint, load_state, save_checkpoint
from stickyrec.envs.config import make_config
from stickyrec.envs.rewards import make_reward
from stickyrec.envs.spaces import top_k

_ACT_CHUNK = 1024  # shoppers per forward pass at act time


@contextlib.contextmanager
def isolated_global_rng(seed: int):
    """Seed numpy's, Python's and torch's global generators for a block, then restore the caller's states."""
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002 (SB3 draws from it)
    with torch.random.fork_rng(devices=[]):
        np.random.seed(seed % 2**32)  # noqa: NPY002
        random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)  # noqa: NPY002
            random.setstate(py_state)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with ``n`` torch threads (one is fastest for these small networks on a 2-core machine)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_int(label: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_float(label: str, value, low: float, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ValueError(f"{label} must be a finite number in [{low}, {high}], got {value!r}")
    return float(value)


class RLAgent(Agent):
    """Base of the trained slate agents: a scoring network, ``bind``/``act``/``save``/``load``."""

    name = "rl"

    def __init__(self) -> None:
        self.net: torch.nn.Module | None = None
        self.spaces: dict[str, Any] | None = None
        self.history: dict[str, Any] = {}

    def _set_common(self, reward, n_envs, learning_rate, gamma, gamma_day, hidden, embed, seed) -> None:
        """Check and set the hyperparameters every RL agent has."""
        self.reward = make_reward(reward)
        self.n_envs = check_int("n_envs", n_envs, 1)
        self.learning_rate = check_float("learning_rate", learning_rate, 1e-8, 1.0)
        self.gamma = check_float("gamma", gamma, 0.0, 1.0)
        self.gamma_day = check_float("gamma_day", gamma_day, 0.0, 1.0)
        self.hidden = check_int("hidden", hidden, 1)
        self.embed = check_int("embed", embed, 1)
        self.seed = check_int("seed", seed, 0)

    @staticmethod
    def _train_arguments(config, steps, max_seconds):
        """The resolved config and checked step count of a ``train`` call (before any work)."""
        if max_seconds is not None:
            check_float("max_seconds", max_seconds, 0.0)
        return make_config(config), check_int("steps", steps, 1)

    # --- acting -------------------------------------------------------------------------------------------------
    def bind(self, env) -> RLAgent:
        super().bind(env)
        current = env_spaces(self.config, self.catalog)
        if self.spaces is not None:
            check_spaces(self.spaces, current, self.name)
        return self

    def _require_trained(self, what: str) -> None:
        if self.net is None:
            raise ValueError(f"cannot {what}: the {self.name} agent is not trained (call train, or load a checkpoint)")

    @torch.no_grad()
    def scores(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        """(B, M) the network's ranking score of every candidate."""
        self._require_trained("act")
        ids = np.asarray(observation["candidate_ids"])
        shopper = np.asarray(observation["shopper"], dtype=np.float32)
        if (
            ids.ndim != 2
            or ids.shape[1] != self.spaces["n_candidates"]
            or shopper.shape != (ids.shape[0], self.spaces["shopper_dim"])
        ):
            raise ValueError(
                f"observation has candidate_ids {ids.shape} and shopper {shopper.shape}; allowed: (B,"
                f" {self.spaces['n_candidates']}) and (B, {self.spaces['shopper_dim']})"
            )
        out = np.empty(ids.shape, dtype=np.float32)
        self.net.eval()
        for start in range(0, ids.shape[0], _ACT_CHUNK):
            rows = slice(start, start + _ACT_CHUNK)
            out[rows] = self.net.scores(
                torch.from_numpy(shopper[rows].copy()), torch.from_numpy(ids[rows].astype(np.int64))
            ).numpy()
        return out

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return top_k(self.scores(observation), self.spaces["slate_size"])

    # --- persistence --------------------------------------------------------------------------------------------
    @property
    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def _build_net(self, spaces: dict[str, Any], tables: dict[str, np.ndarray] | None) -> torch.nn.Module:
        raise NotImplementedError

    def save(self, path) -> None:
        self._require_trained("save")
        save_checkpoint(
            path,
            self.name,
            {
                "hyperparameters": self.hyperparameters,
                "spaces": dict(self.spaces),
                "history": _plain(self.history),
                "state": {key: value.detach().clone() for key, value in self.net.state_dict().items()},
            },
        )

    @classmethod
    def load(cls, path) -> RLAgent:
        payload = load_checkpoint(path, cls.name)
        try:
            agent = cls(**payload["hyperparameters"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {path!s} is a damaged {cls.name!r} checkpoint: {exc}") from None
        spaces = payload["spaces"]
        missing = [
            key
            for key in (
                "n_items",
                "n_candidates",
                "slate_size",
                "shopper_dim",
                "n_categories",
                "embedding_dim",
                "catalog_fingerprint",
            )
            if key not in spaces
        ]
        if missing:
            raise ValueError(f"checkpoint {path!s} is a damaged {cls.name!r} checkpoint: spaces lack {missing}")
        agent.spaces = dict(spaces)
        agent.net = agent._build_net(agent.spaces, None)
        load_state(agent.net, payload["state"], path, cls.name)
        agent.net.eval()
        agent.history = dict(payload.get("history", {}))
        return agent


def _plain(value):
    """History values as plain Python data (loadable with ``weights_only=True``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class TrainProgress:
    """A tqdm bar over environment steps, with the latest figures as its postfix; closes cleanly."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        self.bar = tqdm(
            total=total, desc=description, unit="step", unit_scale=True, disable=not enabled, dynamic_ncols=True
        )
        self.t0 = time.perf_counter()

    def update(self, steps: int, **postfix) -> None:
        self.bar.update(steps)
        if postfix:
            self.bar.set_postfix(
                {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()}, refresh=False
            )

    def close(self) -> None:
        self.bar.close()
