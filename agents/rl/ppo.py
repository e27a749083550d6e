"""PPO (stable-baselines3) on slates, with a Plackett-Luce policy over candidates.

**Parameterisation.** The policy network scores every candidate from shopper and item features
(``agents.rl.networks.CandidateScorer``: one MLP shared over candidates, so it generalises across candidate sets).
The slate is a draw *without replacement* from the softmax of those scores: position 1 from all M candidates,
position 2 from the other M - 1, and so on (a Plackett-Luce ranking of length k). Why this and not a score vector
(a Gaussian over M scores whose top k form the slate):

* the action PPO sees is the slate itself (``MultiDiscrete([M] * k)``, the env's base action), and its
  log-probability is exact: sum over positions of log softmax over the candidates still open;
* sampling is one Gumbel-top-k draw (the top k of scores plus Gumbel noise is exactly a Plackett-Luce sample);
* the greedy slate (acting for evaluation) is the top k of the scores, best first, which the position-decaying
  examination rewards;
* a Gaussian over 100 scores puts PPO's ratio on a 100-dimensional density that moves with scores that never reach
  the slate, and its exploration noise is spent on them.

The entropy bonus uses the sum over positions of the entropy of each position's choice given the positions above
it (an unbiased estimate of the ranking's entropy under the sampled prefix).

The critic is a small MLP over the shopper vector. Everything else is SB3's PPO (clipped objective, GAE, advantage
normalisation, minibatches) on ``agents.rl.sb3_adapter.SB3VecEnv``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.policies import ActorCriticPolicy

from stickyrec.agents.hyperparameters import MAX_ENVS, MAX_WIDTH, Hyperparameters, choice, integer, number
from stickyrec.agents.rl.base import RLAgent, TrainProgress
from stickyrec.agents.rl.checkpoint import env_spaces
from stickyrec.agents.rl.networks import (
    CandidateFeatures,
    CandidateScorer,
    catalog_tables,
    empty_tables,
    shopper_mlp,
    split_observation,
)
from stickyrec.agents.rl.sb3_adapter import SB3VecEnv


def gumbel_top_k(scores: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """(N, k) a Plackett-Luce sample of k distinct candidates from softmax(scores), in order of draw."""
    uniform = torch.rand(scores.shape, generator=generator, dtype=scores.dtype).clamp_(1e-12, 1.0 - 1e-7)
    return torch.topk(scores - torch.log(-torch.log(uniform)), k, dim=1, sorted=True).indices


def plackett_luce(scores: torch.Tensor, slates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability (N,) of each ordered slate (N, k) under Plackett-Luce(softmax(scores)), and the sum over
    positions of each position's conditional entropy (N,)."""
    n, m = scores.shape
    chosen = torch.nn.functional.one_hot(slates, m).to(torch.bool)  # (N, k, M)
    taken_before = (torch.cumsum(chosen, dim=1) > 0) & ~chosen  # candidates already on the slate above position t
    logits = scores[:, None, :].masked_fill(taken_before, float("-inf"))
    log_p = torch.log_softmax(logits, dim=2)
    log_prob = torch.gather(log_p, 2, slates[:, :, None]).squeeze(2).sum(dim=1)
    entropy = -(log_p.exp() * log_p.masked_fill(taken_before, 0.0)).sum(dim=(1, 2))
    return log_prob, entropy


class PPONet(torch.nn.Module):
    """The actor (candidate scorer) and the critic (shopper MLP), with the catalog's public table as buffers."""

    def __init__(
        self,
        spaces: dict[str, Any],
        tables: dict[str, np.ndarray] | None,
        hidden: int,
        embed: int,
        score_scale: float = 1.0,
    ):
        super().__init__()
        self.score_scale = score_scale  # multiplies the scorer's output: the policy's logits
        if tables is None:  # shapes only: a checkpoint's state fills them
            tables = empty_tables(spaces)
        self.features = CandidateFeatures(tables, spaces["n_categories"], spaces["embedding_dim"])
        self.scorer = CandidateScorer(spaces["shopper_dim"], self.features.item_dim, hidden, embed)
        self.value = shopper_mlp(spaces["shopper_dim"], hidden)

    def scores(self, shopper: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.scores_and_values(shopper, ids)[0]

    def scores_and_values(self, shopper: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shopper_in = self.features.shopper(shopper)
        cross = self.features.cross(shopper, ids)
        return self.score_scale * self.scorer(self.features, shopper_in, cross, ids), self.value(shopper_in)


class SlatePolicy(ActorCriticPolicy):
    """SB3 actor-critic policy over flat observations ``[ids ; shopper]`` and ``MultiDiscrete([M] * k)`` slates."""

    def __init__(
        self, observation_space, action_space, lr_schedule, net: PPONet | None = None, sample_seed: int = 0, **kwargs
    ) -> None:
        self._pending = {"net": net}  # a plain dict: modules cannot be assigned before nn.Module.__init__
        self._sample_seed = sample_seed
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule) -> None:
        self.net = self._pending.pop("net")
        self.n_candidates = int(self.action_space.nvec[0])
        self.slate_size = len(self.action_space.nvec)
        self.generator = torch.Generator().manual_seed(int(self._sample_seed))
        self.optimizer = self.optimizer_class(self.net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, shopper = split_observation(obs.float(), self.n_candidates)
        return shopper, ids

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        scores, values = self.net.scores_and_values(*self._split(obs))
        if deterministic:
            slates = torch.topk(scores, self.slate_size, dim=1, sorted=True).indices
        else:
            slates = gumbel_top_k(scores, self.slate_size, self.generator)
        log_prob, _ = plackett_luce(scores, slates)
        return slates, values, log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        scores, values = self.net.scores_and_values(*self._split(obs))
        log_prob, entropy = plackett_luce(scores, actions.long())
        return values, log_prob, entropy

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        shopper, _ = self._split(obs)
        return self.net.value(self.net.features.shopper(shopper))

    def get_distribution(self, obs: torch.Tensor):
        raise NotImplementedError(
            "the slate policy samples Plackett-Luce slates in forward(); it has no SB3 Distribution object"
        )

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.forward(observation, deterministic)[0]


class TimeDiscountedRolloutBuffer(RolloutBuffer):
    """SB3's rollout buffer with a discount per transition: ``gamma * gamma_day ** gap_days``.

    A step is one impression, but time is what retention is about: a session of 20 impressions and one of 5 take
    the same day. With a fixed per-impression discount, a return-visit reward arrives "sooner" when the session is
    cut short, so the agent is paid to end sessions (fatigue and dull slates raise the leave hazard). Discounting
    by simulated days between impressions (``gap_days``, 0 within a session) removes that bias; a per-impression
    ``gamma`` just below 1 keeps values finite. GAE is otherwise SB3's, with the per-transition discount.
    """

    gap_source = None  # the SB3VecEnv whose ``last_gap_days`` belongs to the step being added
    gamma_day = 1.0

    def reset(self) -> None:
        super().reset()
        self.discounts = np.ones((self.buffer_size, self.n_envs), dtype=np.float32)

    def add(self, *args, **kwargs) -> None:
        self.discounts[self.pos] = self.gamma * self.gamma_day**self.gap_source.last_gap_days
        super().add(*args, **kwargs)

    def compute_returns_and_advantage(self, last_values: torch.Tensor, dones: np.ndarray) -> None:
        last_values = last_values.clone().cpu().numpy().flatten()
        last_gae_lam = 0
        for step in reversed(range(self.buffer_size)):
            if step == self.buffer_size - 1:
                next_non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last_values
            else:
                next_non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.values[step + 1]
            discount = self.discounts[step]
            delta = self.rewards[step] + discount * next_values * next_non_terminal - self.values[step]
            last_gae_lam = delta + discount * self.gae_lambda * next_non_terminal * last_gae_lam
            self.advantages[step] = last_gae_lam
        self.returns = self.advantages + self.values


class _TrainCallback(BaseCallback):
    """Progress bar, env statistics for TensorBoard, periodic checkpoints, and the optional wall-clock cap."""

    def __init__(
        self,
        agent: PPOAgent,
        venv: SB3VecEnv,
        progress: TrainProgress,
        checkpoint_dir,
        checkpoint_every: int,
        max_seconds: float | None,
    ) -> None:
        super().__init__()
        self.agent, self.venv, self.progress = agent, venv, progress
        self.checkpoint_dir, self.checkpoint_every = checkpoint_dir, checkpoint_every
        self.max_seconds = max_seconds
        self.t0 = time.perf_counter()
        self.last_stats = venv.stats()
        self.last_checkpoint = 0
        self.stopped_early = False

    def _on_step(self) -> bool:
        self.progress.update(self.training_env.num_envs)
        if self.max_seconds is not None and time.perf_counter() - self.t0 > self.max_seconds:
            self.stopped_early = True
            return False
        return True

    def _on_rollout_end(self) -> None:
        stats = self.venv.stats()
        delta = {key: stats[key] - self.last_stats[key] for key in stats}
        self.last_stats = stats
        steps = max(delta["steps"], 1.0)
        figures = {
            "click_rate": delta["clicks"] / steps,
            "purchases_per_1k_steps": 1000 * delta["purchases"] / steps,
            "returns_per_1k_steps": 1000 * delta["returns"] / steps,
            "churn_share_of_episodes": delta["churns"] / max(delta["episodes"], 1.0),
            "steps_per_second": self.num_timesteps / max(time.perf_counter() - self.t0, 1e-9),
        }
        for key, value in figures.items():
            self.logger.record(f"env/{key}", value)
        self.progress.update(
            0,
            click_rate=figures["click_rate"],
            returns_1k=figures["returns_per_1k_steps"],
            churn=figures["churn_share_of_episodes"],
        )
        if self.checkpoint_dir is not None and self.num_timesteps - self.last_checkpoint >= self.checkpoint_every:
            self.last_checkpoint = self.num_timesteps
            self.agent.save(f"{self.checkpoint_dir}/{self.agent.name}_{self.num_timesteps}_steps.pt")


@dataclasses.dataclass(frozen=True)
class PPOConfig(Hyperparameters):
    """PPO's hyperparameters (saved with the checkpoint); SB3's names where SB3 has the setting."""

    n_envs: int = integer(256, low=1, high=MAX_ENVS, doc="shoppers stepped together")
    n_steps: int = integer(32, low=1, high=100_000, doc="env steps per shopper per rollout")
    batch_size: int = integer(
        1024, low=2, high=10_000_000, doc="minibatch size (at most one rollout, n_envs * n_steps)"
    )
    n_epochs: int = integer(1, low=1, high=10_000, doc="passes over each rollout")
    learning_rate: float = number(1e-3, low=1e-8, high=1.0)
    gamma: float = number(0.99, low=0.0, high=1.0, doc="discount per impression")
    gamma_day: float = number(1.0, low=0.0, high=1.0, doc="discount per simulated day between impressions")
    gae_lambda: float = number(0.95, low=0.0, high=1.0)
    clip_range: float = number(0.2, low=1e-6, high=10.0)
    ent_coef: float = number(0.0005, low=0.0, high=10.0)
    vf_coef: float = number(0.5, low=0.0, high=100.0)
    score_scale: float = number(1.0, low=1e-3, high=1e3, doc="multiplies the scorer's output: the policy's logits")
    lr_schedule: str = choice("constant", ("constant", "linear"), note="decays to 0")
    hidden: int = integer(64, low=1, high=MAX_WIDTH, doc="the towers' hidden width")
    embed: int = integer(32, low=1, high=MAX_WIDTH, doc="the towers' embedding size")
    seed: int = integer(0, low=0, doc="training seed (env, network, sampling, minibatches)")


class PPOAgent(RLAgent):
    """PPO with a Plackett-Luce slate policy; acts greedily (top k of the learned scores) once trained.

    Arguments (all saved with the checkpoint): ``reward`` (a name from ``envs.rewards.REWARDS`` or a mapping of
    weights) and the fields of ``PPOConfig`` as keyword arguments (or ``params=PPOConfig(...)``): ``n_envs``
    shoppers stepped together, SB3's ``n_steps``, ``batch_size``, ``n_epochs``, ``learning_rate``, ``gamma``,
    ``gae_lambda``, ``clip_range``, ``ent_coef``, ``vf_coef``, the towers' ``hidden`` width and ``embed`` size, and
    the training ``seed``.
    """

    kind = "ppo"
    default_steps = 3_000_000  # under 5 minutes on one core here
    params_class = PPOConfig
    policy_class: type[SlatePolicy] = SlatePolicy  # the SB3 policy over this agent's action space

    def build_net(self, spaces, tables) -> PPONet:
        return PPONet(spaces, tables, self.params.hidden, self.params.embed, self.params.score_scale)

    def sb3_model(self, venv) -> PPO:
        """SB3's PPO over ``venv`` with this agent's settings and network (training and ``bench_rl`` share it)."""
        rate = self.params.learning_rate
        learning_rate = rate if self.params.lr_schedule == "constant" else (lambda remaining: rate * remaining)
        model = PPO(
            self.policy_class,
            venv,
            learning_rate=learning_rate,
            n_steps=self.params.n_steps,
            batch_size=self.params.batch_size,
            n_epochs=self.params.n_epochs,
            gamma=self.params.gamma,
            gae_lambda=self.params.gae_lambda,
            clip_range=self.params.clip_range,
            ent_coef=self.params.ent_coef,
            vf_coef=self.params.vf_coef,
            rollout_buffer_class=TimeDiscountedRolloutBuffer,
            policy_kwargs={"net": self.net, "sample_seed": self.params.seed},
            seed=self.params.seed,
            device="cpu",
            verbose=0,
        )
        model.rollout_buffer.gap_source = venv
        model.rollout_buffer.gamma_day = self.params.gamma_day
        return model

    def make_venv(self, config) -> SB3VecEnv:
        """The training env: ``n_envs`` shoppers of ``config`` behind SB3's interface, this agent's reward."""
        return SB3VecEnv(config, self.params.n_envs, self.reward, seed=self.params.seed)

    def step_unit(self) -> tuple[int, str]:
        return self.params.n_envs * self.params.n_steps, "rollouts (n_envs x n_steps)"

    def _check_training(self) -> None:
        rollout = self.params.n_envs * self.params.n_steps
        if self.params.batch_size > rollout:
            raise ValueError(f"batch_size={self.params.batch_size} exceeds one rollout (n_envs * n_steps = {rollout})")

    def _train(self, config, steps, log_dir, checkpoint_dir, checkpoint_every, max_seconds, progress) -> None:
        """``train`` (``RLAgent.train``) rounds ``steps`` up to whole rollouts of ``n_envs * n_steps``; the logs
        hold SB3's losses beside the env's figures."""
        venv = self.make_venv(config)
        spaces = env_spaces(config, venv.catalog)
        if self.net is None:
            self.net = self.build_net(spaces, catalog_tables(venv.catalog))
        elif self.spaces != spaces:
            raise ValueError("this PPO agent was trained on other env spaces; train a new agent for this config")
        self.spaces = spaces
        model = self.sb3_model(venv)
        formats = ["tensorboard", "csv"] if log_dir is not None else []
        model.set_logger(configure(None if log_dir is None else str(log_dir), formats))
        bar = self.progress_bar(steps, progress)
        callback = _TrainCallback(self, venv, bar, checkpoint_dir, checkpoint_every, max_seconds)
        t0 = time.perf_counter()
        try:
            model.learn(total_timesteps=steps, callback=callback)
        finally:
            bar.close()
        seconds = time.perf_counter() - t0
        self.net.eval()
        stats = venv.stats()
        self.history = {
            "steps": int(model.num_timesteps),
            "seconds": seconds,
            "steps_per_second": model.num_timesteps / max(seconds, 1e-9),
            "stopped_early": callback.stopped_early,
            "reward": self.reward.describe(),
            "click_rate": stats["clicks"] / max(stats["steps"], 1.0),
            "reward_per_step": stats["reward"] / max(stats["steps"], 1.0),
        }
        if "decisions" in stats:  # the offer env's (agents.rl.ppo_offers): the share of decisions that contacted
            self.history["contact_share"] = stats["contacts"] / max(stats["decisions"], 1.0)
