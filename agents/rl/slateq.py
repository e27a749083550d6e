"""SlateQ (Ie et al., 2019): slate Q-learning decomposed into item-wise long-term values under a learned choice model.

With a choice model P(j | s, A) over the slate's items and the no-click option, the value of showing slate A is::

    Q(s, A) = sum_{j in A} P(j | s, A) Q(s, j) + P(none | s, A) Q(s, none)

so the agent learns one value per *item* (what it is worth that she clicks it), not one per slate. Here:

* **Choice model, learned from the agent's own traffic** (never the simulator's probabilities): a conditional logit
  P(j | s, A) = softmax over [g(s, A_1) + b_1, ..., g(s, A_k) + b_k, g0(s)], with a candidate scorer g, learned
  position biases b (examination falls down the slate) and a no-click score g0, fitted by maximum likelihood on the
  clicked position (or none) of replayed slates.
* **Item-wise Q** Q(s, i) (a candidate scorer, ``agents.rl.networks``) and Q(s, none) (a shopper MLP), learned by
  SARSA-style backups on the consumed item: for a transition (s, A, clicked j or none, r, s')::

      y = r + discount * (1 - churned) * [sum_{j' in A'} P(j' | s', A') Qt(s', j') + P(none | s', A') Qt(s', none)]

  with A' the slate the *online* network would show at s' and Qt the *target* network (double Q-learning); the
  horizon is a truncation, so it bootstraps. ``discount = gamma * gamma_day ** gap_days``: per impression, and per
  simulated day between impressions (0 within a session), see ``agents.rl.ppo.TimeDiscountedRolloutBuffer``.
  Huber loss, Adam, Polyak-averaged target network (SB3's ``polyak_update``), a replay buffer of recent
  transitions.
* **Slate choice: the exact optimum of the decomposition**, by Dinkelbach's method (``SlateQNet.ranking_key``).
  The paper's top-k rule ranks by v(s, i) (Q(s, i) - Q(s, none)), v = exp(g); it is the first round here. It
  over-rewards clickable items: an item whose click is worth a little more than no click, but less than the other
  items' clicks, still ranks high if it is very clickable, and steals clicks from better items. Re-ranking by
  v (Q - lam) with lam the slate's own value, until the slate stops changing, gives the slate of greatest expected
  Q under the learned choice model (the LP the paper solves exactly, in a few top-k calls; a test checks it
  against every ordered slate). It picks both the acted slate and A' in the backup. Exploration is epsilon-greedy
  per shopper (a uniformly random slate), epsilon decaying linearly.
* **Optional n-step returns** (``n_step``): the buffer follows each sampled transition's shopper for n - 1 more
  env steps (stopping at her episode's end). Measured on seed 2, they did not help (n = 3, 5: day-30 retention
  0.758, 0.772 against 0.775 for one step), so the default is 1.

The replay buffer draws from the agent's own ``np.random.Generator``; the env, the exploration and the network
initialisation are seeded from ``seed``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import polyak_update
from torch import nn
from torch.nn import functional as F

from stickyrec.agents.hyperparameters import MAX_ENVS, MAX_WIDTH, Hyperparameters, integer, number
from stickyrec.agents.rl.base import RLAgent
from stickyrec.agents.rl.checkpoint import env_spaces
from stickyrec.agents.rl.networks import CandidateFeatures, CandidateScorer, catalog_tables, empty_tables, shopper_mlp
from stickyrec.envs.spaces import top_k
from stickyrec.envs.vector import RetentionVectorEnv


class SlateQNet(nn.Module):
    """Item-wise Q, no-click Q, and the learned conditional-logit choice model, over one feature table."""

    def __init__(self, spaces: dict[str, Any], tables: dict[str, np.ndarray] | None, hidden: int, embed: int):
        super().__init__()
        self.features = CandidateFeatures(
            tables if tables is not None else empty_tables(spaces), spaces["n_categories"], spaces["embedding_dim"]
        )
        f_user, f_item = spaces["shopper_dim"], self.features.item_dim
        self.q_item = CandidateScorer(f_user, f_item, hidden, embed)
        self.q_none = shopper_mlp(f_user, hidden)
        self.choice_item = CandidateScorer(f_user, f_item, hidden, embed)
        self.choice_none = shopper_mlp(f_user, hidden)
        self.position_bias = nn.Parameter(torch.zeros(spaces["slate_size"]))

    def inputs(self, shopper: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The scorers' shared inputs: the shopper vector (N, F) and the crosses (N, M, N_CROSS) of ``ids``."""
        return self.features.shopper(shopper), self.features.cross(shopper, ids)

    def q_values(self, shopper_in, cross, ids) -> tuple[torch.Tensor, torch.Tensor]:
        """Q(s, i) for candidates ``ids`` (N, M) and Q(s, none) (N,)."""
        return self.q_item(self.features, shopper_in, cross, ids), self.q_none(shopper_in).squeeze(1)

    def choice_logits(self, shopper_in, cross, ids) -> tuple[torch.Tensor, torch.Tensor]:
        """Choice scores g(s, i) for candidates ``ids`` (N, M), before position biases, and g0(s) (N,)."""
        return self.choice_item(self.features, shopper_in, cross, ids), self.choice_none(shopper_in).squeeze(1)

    def slate_choice_probabilities(self, on_slate: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
        """(N, k + 1) probabilities of clicking each slate position (choice scores ``on_slate`` (N, k) in slate
        order), the last column no click."""
        return torch.softmax(self.slate_choice_logits(on_slate, none), dim=1)

    def slate_choice_logits(self, on_slate: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
        return torch.cat([on_slate + self.position_bias, none[:, None]], dim=1)

    def ranking_key(self, q, q_none, g, g0, iterations: int = 8) -> torch.Tensor:
        """(N, M) keys whose top k, best first, is the slate of greatest expected Q under the choice model.

        The slate value is a ratio, V(A) = (sum_p w_p v_p Q_p + v0 Q0) / (sum_p w_p v_p + v0), with v = exp(g),
        v0 = exp(g0) and position weights w = exp(position bias). Dinkelbach's method maximises it exactly: at a
        level lam, the best slate maximises sum_p w_p v_p (Q_p - lam), i.e. the top k of v (Q - lam), best in the
        most-examined position; then lam = V(that slate), until the slate stops changing (a few rounds; each
        round's value is at least the last one's). The first round, lam = Q0, is the paper's top-k rule; later
        rounds drop items whose click is worth less than the slate already earns, however clickable they are.
        """
        k = self.position_bias.shape[0]
        shift = torch.maximum(g.max(dim=1).values, g0)[:, None]
        v, v0 = torch.exp(g - shift), torch.exp(g0[:, None] - shift)[:, 0]
        weight = torch.exp(self.position_bias - self.position_bias.max())
        level, slate = q_none, None
        for _ in range(iterations):
            key = v * (q - level[:, None])
            top = torch.topk(key, k, dim=1, sorted=True).indices
            if slate is not None and torch.equal(top, slate):
                break
            slate = top
            shown = torch.gather(v, 1, slate) * weight
            level = ((shown * torch.gather(q, 1, slate)).sum(dim=1) + v0 * q_none) / (shown.sum(dim=1) + v0)
        return key

    def scores(self, shopper: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The slate-ranking key of every candidate (N, M)."""
        shopper_in, cross = self.inputs(shopper, ids)
        q, q_none = self.q_values(shopper_in, cross, ids)
        g, g0 = self.choice_logits(shopper_in, cross, ids)
        return self.ranking_key(q, q_none, g, g0)


class ReplayBuffer:
    """Circular arrays of transitions; sampling from the owner's seeded generator.

    Every ``add`` writes one env step: the same ``n_envs`` slots in the same order. So the transition of slot j
    one step after row r sits at row ``(r + n_envs) % capacity``, and ``sample(..., n_step=n)`` can follow each
    sampled transition for up to n - 1 more steps of the same shopper (stopping where her episode ended) to
    build an n-step return without storing trajectories.
    """

    def __init__(self, capacity: int, n_candidates: int, slate_size: int, shopper_dim: int, n_envs: int) -> None:
        self.capacity, self.size, self.pos, self.n_envs = capacity, 0, 0, n_envs
        self.shopper = np.zeros((capacity, shopper_dim), np.float32)
        self.ids = np.zeros((capacity, n_candidates), np.int32)
        self.slate = np.zeros((capacity, slate_size), np.int64)
        self.clicked = np.zeros(capacity, np.int64)  # slate position, or slate_size for no click
        self.reward = np.zeros(capacity, np.float32)
        self.next_shopper = np.zeros((capacity, shopper_dim), np.float32)
        self.next_ids = np.zeros((capacity, n_candidates), np.int32)
        self.discount = np.zeros(capacity, np.float32)  # of the next state's value: 0 where she churned
        self.done = np.zeros(capacity, bool)  # churned or past the horizon: the slot holds a new shopper next

    def add(self, shopper, ids, slate, clicked, reward, next_shopper, next_ids, churned, discount, done) -> None:
        n = len(reward)
        if n != self.n_envs:
            raise ValueError(f"a replay buffer for {self.n_envs} env slots got {n} transitions")
        rows = (self.pos + np.arange(n)) % self.capacity
        for name, value in (
            ("shopper", shopper),
            ("ids", ids),
            ("slate", slate),
            ("clicked", clicked),
            ("reward", reward),
            ("next_shopper", next_shopper),
            ("next_ids", next_ids),
            ("discount", discount * (1.0 - np.asarray(churned))),
            ("done", done),
        ):
            getattr(self, name)[rows] = value
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator, n_step: int = 1) -> dict[str, torch.Tensor]:
        """A batch of transitions; with ``n_step`` > 1, ``reward`` is the discounted sum of up to n rewards of
        the same shopper, ``discount`` the product of their discounts (0 once she churned) and ``next_*`` the
        state after the last of them (earlier where her episode ended)."""
        lookahead = (n_step - 1) * self.n_envs
        oldest = self.pos if self.size == self.capacity else 0
        rows = (oldest + rng.integers(0, self.size - lookahead, size=batch_size)) % self.capacity
        last, reward, discount = rows, self.reward[rows], self.discount[rows]
        going = ~self.done[rows]
        for i in range(1, n_step):
            later = (rows + i * self.n_envs) % self.capacity
            reward = reward + np.where(going, discount * self.reward[later], 0.0).astype(np.float32)
            last = np.where(going, later, last)
            discount = np.where(going, discount * self.discount[later], discount)
            going &= ~self.done[later]
        out = {
            "reward": torch.from_numpy(np.ascontiguousarray(reward, dtype=np.float32)),
            "discount": torch.from_numpy(np.ascontiguousarray(discount, dtype=np.float32)),
        }  # 0 after a churn
        for name, at in (
            ("shopper", rows),
            ("ids", rows),
            ("slate", rows),
            ("clicked", rows),
            ("next_shopper", last),
            ("next_ids", last),
        ):
            value = torch.from_numpy(getattr(self, name)[at])
            out[name] = value.long() if value.dtype == torch.int32 else value
        return out


@dataclasses.dataclass(frozen=True)
class SlateQConfig(Hyperparameters):
    """SlateQ's hyperparameters (saved with the checkpoint)."""

    n_envs: int = integer(256, low=1, high=MAX_ENVS, doc="shoppers stepped together")
    buffer_size: int = integer(200_000, low=1, high=100_000_000, doc="transitions the replay buffer keeps")
    batch_size: int = integer(256, low=1, high=10_000_000)
    gradient_steps: int = integer(2, low=1, high=10_000, doc="updates per env step")
    learning_rate: float = number(5e-4, low=1e-8, high=1.0)
    gamma: float = number(0.99, low=0.0, high=1.0, doc="discount per impression")
    tau: float = number(0.01, low=0.0, high=1.0, doc="Polyak rate of the target network")
    exploration_fraction: float = number(0.2, low=0.0, high=1.0, doc="share of training over which epsilon falls")
    epsilon_start: float = number(1.0, low=0.0, high=1.0)
    epsilon_end: float = number(0.05, low=0.0, high=1.0)
    learning_starts: int = integer(5_000, low=0, doc="transitions before the first update")
    gamma_day: float = number(1.0, low=0.0, high=1.0, doc="discount per simulated day between impressions")
    hidden: int = integer(64, low=1, high=MAX_WIDTH, doc="the scorers' hidden width")
    embed: int = integer(32, low=1, high=MAX_WIDTH, doc="the scorers' embedding size")
    n_step: int = integer(1, low=1, high=10_000, doc="returns over this many env steps")
    seed: int = integer(0, low=0, doc="training seed (env, network, exploration, replay)")

    def check(self) -> None:
        if self.buffer_size < self.n_step * self.n_envs:
            raise ValueError(
                f"buffer_size={self.buffer_size} cannot hold n_step={self.n_step} env steps of"
                f" n_envs={self.n_envs} shoppers; allowed: buffer_size >= n_step * n_envs"
            )


class SlateQAgent(RLAgent):
    """SlateQ; once trained, shows the best slate under its learned choice model (``SlateQNet.ranking_key``).

    Arguments (all saved with the checkpoint): ``reward`` (a name from ``envs.rewards.REWARDS`` or a mapping of
    weights) and the fields of ``SlateQConfig`` as keyword arguments (or ``params=SlateQConfig(...)``): ``n_envs``
    shoppers stepped together, ``buffer_size`` transitions, ``batch_size``, ``gradient_steps`` per env step,
    ``learning_rate``, ``gamma``, ``tau`` (Polyak rate of the target network), ``exploration_fraction`` of training
    over which epsilon falls from ``epsilon_start`` to ``epsilon_end``, ``learning_starts`` transitions before the
    first update, the scorers' ``hidden``/``embed`` widths, ``n_step`` (returns over that many env steps, see the
    module docstring) and ``seed``.
    """

    kind = "slateq"
    default_steps = 1_200_000  # under 5 minutes on one core here
    params_class = SlateQConfig

    def build_net(self, spaces, tables) -> SlateQNet:
        return SlateQNet(spaces, tables, self.params.hidden, self.params.embed)

    def epsilon(self, progress: float) -> float:
        """Exploration rate at a fraction ``progress`` of training."""
        if self.params.exploration_fraction == 0.0 or progress >= self.params.exploration_fraction:
            return self.params.epsilon_end
        return (
            self.params.epsilon_start
            + (self.params.epsilon_end - self.params.epsilon_start) * progress / self.params.exploration_fraction
        )

    def _greedy(self, net: SlateQNet, shopper: np.ndarray, ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            key = net.scores(torch.from_numpy(shopper), torch.from_numpy(ids.astype(np.int64))).numpy()
        return top_k(key, self.spaces["slate_size"])

    def _update(self, net: SlateQNet, target: SlateQNet, optimizer, batch: dict[str, torch.Tensor]) -> dict:
        k = self.spaces["slate_size"]
        with torch.no_grad():  # the backup: the online net picks A' and weighs it, the target net values it
            next_in, next_cross = net.inputs(batch["next_shopper"], batch["next_ids"])
            q, q_none = net.q_values(next_in, next_cross, batch["next_ids"])
            g, g0 = net.choice_logits(next_in, next_cross, batch["next_ids"])
            next_slate = torch.topk(net.ranking_key(q, q_none, g, g0), k, dim=1, sorted=True).indices
            p_next = net.slate_choice_probabilities(torch.gather(g, 1, next_slate), g0)
            slate_ids = torch.gather(batch["next_ids"], 1, next_slate)
            slate_cross = torch.gather(next_cross, 1, next_slate[:, :, None].expand(-1, -1, next_cross.shape[2]))
            q_t, q_none_t = target.q_values(next_in, slate_cross, slate_ids)
            value_next = (p_next * torch.cat([q_t, q_none_t[:, None]], dim=1)).sum(dim=1)
            y = batch["reward"] + batch["discount"] * value_next
        shown = torch.gather(batch["ids"], 1, batch["slate"])  # only the k items shown matter here
        shopper_in, cross = net.inputs(batch["shopper"], shown)
        q, q_none = net.q_values(shopper_in, cross, shown)
        clicked = batch["clicked"]
        q_taken = torch.gather(torch.cat([q, q_none[:, None]], dim=1), 1, clicked[:, None]).squeeze(1)
        q_loss = F.smooth_l1_loss(q_taken, y)
        g, g0 = net.choice_logits(shopper_in, cross, shown)
        choice_loss = F.cross_entropy(net.slate_choice_logits(g, g0), clicked)
        optimizer.zero_grad(set_to_none=True)
        (q_loss + choice_loss).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        optimizer.step()
        polyak_update(net.parameters(), target.parameters(), self.params.tau)
        return {
            "q_loss": q_loss.item(),
            "choice_loss": choice_loss.item(),
            "q_mean": q_taken.detach().mean().item(),
            "click_share": (clicked < k).float().mean().item(),
        }

    def step_unit(self) -> tuple[int, str]:
        return self.params.n_envs, "env steps (n_envs)"

    def _train(self, config, steps, log_dir, checkpoint_dir, checkpoint_every, max_seconds, progress):
        """``train`` (``RLAgent.train``) rounds ``steps`` up to whole env steps of ``n_envs``."""
        rng = np.random.default_rng(np.random.SeedSequence([self.params.seed, 0x51A7E0]))
        env = RetentionVectorEnv(self.params.n_envs, config=config)
        net, target, optimizer, buffer = self._learner(config, env)
        logger = configure(
            None if log_dir is None else str(log_dir), ["tensorboard", "csv"] if log_dir is not None else []
        )
        reward_fn = self.reward.bind(env.catalog)
        obs, _ = env.reset(seed=self.params.seed)
        b = self.params.n_envs
        bar = self.progress_bar(steps, progress)
        t0 = time.perf_counter()
        stats = TrainStats(b)
        done_steps, updates, stopped_early = 0, 0, False
        last_log = last_checkpoint = 0
        try:
            while done_steps < steps:
                obs = self._env_step(env, net, buffer, obs, rng, reward_fn, done_steps / steps, stats)
                done_steps += b
                if buffer.size >= max(self.params.learning_starts, self.params.batch_size, self.params.n_step * b):
                    for _ in range(self.params.gradient_steps):
                        batch = buffer.sample(self.params.batch_size, rng, self.params.n_step)
                        stats.losses.append(self._update(net, target, optimizer, batch))
                        updates += 1
                bar.update(b)
                if done_steps - last_log >= 50_000 or done_steps >= steps:
                    last_log = done_steps
                    figures = self._log(logger, stats, done_steps, updates, t0)
                    bar.update(
                        0,
                        click_rate=figures["env/click_rate"],
                        returns_1k=figures["env/returns_per_1k_steps"],
                        q=figures.get("train/q_mean", float("nan")),
                    )
                    stats.reset_window()
                if checkpoint_dir is not None and done_steps - last_checkpoint >= checkpoint_every:
                    last_checkpoint = done_steps
                    self.save(f"{checkpoint_dir}/{self.name}_{done_steps}_steps.pt")
                if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                    stopped_early = True
                    break
        finally:
            bar.close()
            logger.close()
        seconds = time.perf_counter() - t0
        net.eval()
        self.history = {
            "steps": done_steps,
            "seconds": seconds,
            "steps_per_second": done_steps / max(seconds, 1e-9),
            "updates": updates,
            "stopped_early": stopped_early,
            "reward": self.reward.describe(),
            "click_rate": stats.total_clicks / max(done_steps, 1),
            "reward_per_step": stats.total_reward / max(done_steps, 1),
        }
        return self

    def _learner(self, config, env) -> tuple[SlateQNet, SlateQNet, torch.optim.Optimizer, ReplayBuffer]:
        """The online network (built for this env, or the one trained so far), its frozen target copy, the
        optimiser and an empty replay buffer."""
        spaces = env_spaces(config, env.catalog)
        if self.net is None:
            self.net = self.build_net(spaces, catalog_tables(env.catalog))
        elif self.spaces != spaces:
            raise ValueError("this SlateQ agent was trained on other env spaces; train a new agent for this config")
        self.spaces = spaces
        net = self.net
        net.train()
        target = copy.deepcopy(net)
        target.requires_grad_(False)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.params.learning_rate)
        buffer = ReplayBuffer(
            self.params.buffer_size, config.n_candidates, config.slate_size, spaces["shopper_dim"], self.params.n_envs
        )
        return net, target, optimizer, buffer

    def _env_step(self, env, net, buffer, obs, rng, reward_fn, progress: float, stats: TrainStats):
        """Act epsilon-greedily at a fraction ``progress`` of training, step the env, store the transitions and
        count them; returns the next observation."""
        m, k, b = self.spaces["n_candidates"], self.spaces["slate_size"], self.params.n_envs
        slates = self._greedy(net, obs["shopper"], obs["candidate_ids"])
        explore = rng.random(b) < self.epsilon(progress)
        if explore.any():
            slates[explore] = np.argsort(rng.random((int(explore.sum()), m)), axis=1)[:, :k]
        next_obs, _, terminated, truncated, info = env.step(slates)
        reward = np.asarray(reward_fn(info), dtype=np.float32)
        done = terminated | truncated
        next_shopper, next_ids = next_obs["shopper"], next_obs["candidate_ids"]
        if done.any():  # the finished shoppers' last observation, not the newcomers'
            next_shopper, next_ids = next_shopper.copy(), next_ids.copy()
            next_shopper[done] = info["final_obs"]["shopper"][done]
            next_ids[done] = info["final_obs"]["candidate_ids"][done]
        clicked = np.where(info["clicked_position"] >= 0, info["clicked_position"], k)
        gap = np.where(info["returned"], info["return_gap_days"], 0.0)
        buffer.add(
            obs["shopper"],
            obs["candidate_ids"],
            slates,
            clicked,
            reward,
            next_shopper,
            next_ids,
            terminated.astype(np.float32),
            self.params.gamma * self.params.gamma_day**gap,
            done,
        )
        stats.record(reward, info, terminated, done)
        return next_obs

    def _log(self, logger, stats: TrainStats, done_steps, updates, t0) -> dict[str, float]:
        window, losses = stats.window, stats.losses
        steps = max(window["steps"], 1.0)
        figures = {
            "env/click_rate": window["clicks"] / steps,
            "env/returns_per_1k_steps": 1000 * window["returns"] / steps,
            "env/churn_share_of_episodes": window["churns"] / max(window["episodes"], 1.0),
            "rollout/ep_rew_mean": window["episode_return"] / max(window["episodes"], 1.0),
            "time/steps_per_second": done_steps / max(time.perf_counter() - t0, 1e-9),
            "train/updates": float(updates),
        }
        if losses:
            for key in losses[0]:
                figures[f"train/{key}"] = float(np.mean([entry[key] for entry in losses]))
        for key, value in figures.items():
            logger.record(key, value)
        logger.dump(done_steps)
        return figures


class TrainStats:
    """Running totals of a SlateQ training run, and the figures of the window since the last log line."""

    def __init__(self, n_envs: int) -> None:
        self.total_reward, self.total_clicks = 0.0, 0
        self.episode_return = np.zeros(n_envs)
        self.reset_window()

    def reset_window(self) -> None:
        self.window = dict.fromkeys(("steps", "clicks", "returns", "churns", "episodes", "episode_return"), 0.0)
        self.losses: list[dict] = []

    def record(self, reward: np.ndarray, info: dict, terminated: np.ndarray, done: np.ndarray) -> None:
        """One env step of every shopper: its rewards, clicks, returns, churns and finished episodes."""
        clicks = int(np.count_nonzero(info["clicked_position"] >= 0))
        self.total_reward += float(reward.sum(dtype=np.float64))
        self.total_clicks += clicks
        window = self.window
        window["steps"] += len(reward)
        window["clicks"] += clicks
        window["returns"] += int(np.count_nonzero(info["returned"]))
        window["churns"] += int(np.count_nonzero(terminated))
        window["episodes"] += int(np.count_nonzero(done))
        self.episode_return += reward
        if done.any():
            window["episode_return"] += float(self.episode_return[done].sum())
            self.episode_return[done] = 0.0
