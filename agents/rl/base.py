"""What the RL agents share: acting through ``agents.base.Agent``, checkpoints, and the training harness.

An RL agent is built from a reward and its typed hyperparameters (``params_class``: ``PPOConfig``,
``SlateQConfig``), given as keyword arguments (``PPOAgent(seed=0, n_envs=64)``) or as ``params=``; a checkpoint
saves both (``hyperparameters``) and loading builds the agent from them again.

A trained agent is a torch network that scores candidates (``scores(shopper, ids)``); acting is the top k of those
scores, best first, so trained agents are evaluated exactly like every baseline (``experiments.evaluate``).
Training owns its randomness: SB3 draws minibatches from numpy's and torch's global generators, so training runs
inside ``isolated_global_rng(seed)``, which seeds them for the run and restores the caller's states afterwards.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from stickyrec.agents.base import NEEDS_ENV, Agent
from stickyrec.agents.checkpoint import CHECKPOINT_SUFFIX, load_state, write_checkpoint
from stickyrec.agents.hyperparameters import Hyperparameters, check_integer, check_number
from stickyrec.agents.rl.checkpoint import SPACE_KEYS, check_saved_spaces, check_spaces, env_spaces, load_checkpoint
from stickyrec.envs.config import make_config
from stickyrec.envs.rewards import DEFAULT_REWARD, make_reward
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


def train_arguments(config, steps, max_seconds):
    """The resolved config and checked step count of a ``train`` call (checked before any work)."""
    if max_seconds is not None:
        check_number("max_seconds", max_seconds, 0.0)
    return make_config(config), check_integer("steps", steps, 1)


class RLAgent(Agent):
    """Base of the trained slate agents: a scoring network, ``bind``/``act``/``save``/``load``.

    ``reward``: a name from ``envs.rewards.REWARDS`` or a mapping of weights; the hyperparameters: keyword
    arguments (the fields of ``params_class``) or ``params=params_class(...)``, not both.
    """

    kind = "rl"
    needs = NEEDS_ENV
    priority = 0  # the longest cells: first in the run queue
    file_suffix = CHECKPOINT_SUFFIX
    params_class: ClassVar[type[Hyperparameters]] = Hyperparameters

    def __init__(self, reward=DEFAULT_REWARD, params: Hyperparameters | None = None, **kwargs) -> None:
        self.reward = make_reward(reward)
        if params is not None and kwargs:
            raise ValueError(f"pass either params={self.params_class.__name__}(...) or keyword arguments, not both")
        if params is not None and not isinstance(params, self.params_class):
            raise ValueError(f"params must be a {self.params_class.__name__}, got {type(params).__name__}")
        self.params = params if params is not None else self.params_class.from_kwargs(**kwargs)
        self.net: torch.nn.Module | None = None
        self.spaces: dict[str, Any] | None = None
        self.history: dict[str, Any] = {}

    @classmethod
    def from_spec(cls, params, seed: int, reward=None) -> RLAgent:
        """A config entry: its hyperparameters, the cell's training seed, its reward (the default when None)."""
        return cls(reward=DEFAULT_REWARD if reward is None else reward, seed=seed, **params)

    # --- training -----------------------------------------------------------------------------------------------
    def train(
        self,
        config=None,
        steps: int = 500_000,
        *,
        log_dir=None,
        checkpoint_dir=None,
        checkpoint_every: int = 250_000,
        max_seconds: float | None = None,
        progress: bool = True,
        threads: int | None = 1,
    ) -> RLAgent:
        """Train for ``steps`` shopper-steps (rounded up to whole env steps or rollouts: the agent's docstring says).

        ``log_dir``: TensorBoard and CSV logs (losses plus ``env/`` click rate, returns, churn, steps/s);
        ``checkpoint_dir``: a checkpoint every ``checkpoint_every`` steps; ``max_seconds``: stop early past this
        wall time (the run is then no longer a function of the seed alone, and ``history`` says so). Arguments are
        checked before any work; training runs with the agent's seed in numpy's, Python's and torch's global
        generators (restored afterwards) and ``threads`` torch threads.
        """
        config, steps = train_arguments(config, steps, max_seconds)
        self._check_training()
        with isolated_global_rng(self.params.seed), torch_threads(threads):
            self._train(config, steps, log_dir, checkpoint_dir, checkpoint_every, max_seconds, progress)
        return self

    def _check_training(self) -> None:
        """Refuse hyperparameters that cannot train together, before any work (none by default)."""

    def step_unit(self) -> tuple[int, str]:
        """Training runs in whole units of this many shopper-steps, and what the unit is (1: exact budgets)."""
        return 1, "step"

    def budget(self, steps: int) -> int:
        """The shopper-steps ``train(steps=steps)`` runs: ``steps`` rounded up to whole ``step_unit``s."""
        unit, _ = self.step_unit()
        return -(-int(steps) // unit) * unit

    def progress_bar(self, steps: int, enabled: bool) -> TrainProgress:
        """The training bar over the budget actually run; says so when ``steps`` was rounded up."""
        total = self.budget(steps)
        description = f"training {self.kind} ({self.reward.describe()})"
        bar = TrainProgress(total, description, enabled)
        if total != steps and enabled:
            unit, what = self.step_unit()
            note = f"{self.kind}: {steps:,} steps rounded up to {total:,}, whole {what} of {unit:,} steps"
            bar.bar.write(note, file=bar.bar.fp)  # where the bar is drawn
        return bar

    def _train(self, config, steps, log_dir, checkpoint_dir, checkpoint_every, max_seconds, progress) -> None:
        raise NotImplementedError

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
        """What a checkpoint saves to rebuild the agent: the reward's nonzero weights and every hyperparameter."""
        reward = {k: v for k, v in vars(self.reward).items() if v}
        return {"reward": reward, **self.params.to_dict()}

    def build_net(self, spaces: dict[str, Any], tables: dict[str, np.ndarray] | None) -> torch.nn.Module:
        """The agent's network for env ``spaces``; ``tables`` (the catalog's public features) or None (shapes only:
        a checkpoint's state fills them)."""
        raise NotImplementedError

    def save(self, path) -> None:
        self._require_trained("save")
        write_checkpoint(
            path,
            self.kind,  # the kind, not the display label: ``load`` reads it back
            {
                "hyperparameters": self.hyperparameters,
                "spaces": dict(self.spaces),
                "history": _plain(self.history),
                "state": {key: value.detach().clone() for key, value in self.net.state_dict().items()},
            },
        )

    @classmethod
    def load(cls, path) -> RLAgent:
        payload = load_checkpoint(path, cls.kind)
        try:
            agent = cls(**payload["hyperparameters"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {path!s} is a damaged {cls.kind!r} checkpoint: {exc}") from None
        spaces = payload["spaces"]
        missing = [key for key in (*SPACE_KEYS, "catalog_fingerprint") if key not in spaces]
        if missing:
            raise ValueError(f"checkpoint {path!s} is a damaged {cls.kind!r} checkpoint: spaces lack {missing}")
        check_saved_spaces(path, cls.kind, spaces)  # bounded before the network is allocated
        agent.spaces = dict(spaces)
        agent.net = agent.build_net(agent.spaces, None)
        load_state(agent.net, payload["state"], path, cls.kind)
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
