"""PPO that chooses slates and a one-shot retention coupon together (the world's ``offers: on``).

The campaign is the one ``experiments.campaigns`` runs (``docs/marketing.md``): no offer before day
``decision_day`` (T); at each shopper's first session from T the platform decides once whether to contact her; a
contacted shopper gets a between-visits coupon of ``discount`` at the end of that session and of her next
``coupons - 1`` sessions. Here PPO makes that decision beside the slates:

* **Action.** ``MultiDiscrete([M] * k + [2])``: the slate (a Plackett-Luce draw over candidates, as ``agents.rl.ppo``)
  and a contact bit from a Bernoulli head over the shopper vector (``OfferPPONet.offer_logit``).
* **Where the bit counts.** ``OfferSB3VecEnv`` appends a 0/1 column to each observation: 1 on a shopper's decision
  step (``agents.offers.campaign_deciding``). Only there is the bit read (the env then sends the campaign's coupons
  by ``agents.offers.campaign_coupons``) and only there does it enter the action's log-probability and entropy; on
  every other step it is drawn and ignored, so PPO's ratio and entropy bonus see the decisions that were made.
* **What it pays for.** The training reward is any ``envs.rewards`` mix; the default (``OFFER_REWARD``) is the
  reference PPO's ``quality_stickiness`` less the coupon's cost (``coupon_cost``: the discount on what she buys with
  it), so a coupon earns its keep only through the visits, purchases and satisfied clicks it brings.

Acting greedily, the slate is the top k of the scores and the offer logit is the campaign's score for the shopper
(``experiments.campaigns.CampaignPPO`` contacts at an equal-budget threshold on it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from gymnasium import spaces

from stickyrec.agents.hyperparameters import integer, number
from stickyrec.agents.offers import campaign_coupons, campaign_deciding
from stickyrec.agents.rl.networks import shopper_mlp, split_observation
from stickyrec.agents.rl.ppo import PPOAgent, PPOConfig, PPONet, SlatePolicy, gumbel_top_k, plackett_luce
from stickyrec.agents.rl.sb3_adapter import SB3VecEnv
from stickyrec.envs.shoppers import SHOPPER_FEATURES

OFFER_REWARD = {"return_visit": 1.0, "purchase": 1.0, "rated_click": 3.0, "coupon_cost": -1.0}


@dataclasses.dataclass(frozen=True)
class OfferPPOConfig(PPOConfig):
    """``PPOConfig`` plus the campaign's rules (saved with the checkpoint)."""

    discount: float = number(0.2, low=0.0, high=1.0, doc="the coupon's discount (0: a reminder)")
    decision_day: int = integer(14, low=1, high=10_000, doc="T: the campaign decides at the first session from T")
    coupons: int = integer(1, low=1, high=10_000, doc="coupons a contacted shopper gets (one per session from T)")


class OfferSB3VecEnv(SB3VecEnv):
    """``SB3VecEnv`` with the campaign: actions ``[slate ; contact bit]``, observations
    ``[ids ; shopper ; deciding]``."""

    def __init__(self, config, num_envs: int, reward_fn, seed: int, rules: OfferPPOConfig) -> None:
        if not config.offers_on:
            raise ValueError("PPO with offers needs an env whose config has offers: on; allowed: offers: on")
        super().__init__(config, num_envs, reward_fn, seed)
        self.rules = rules
        box = self.observation_space
        low, high = np.append(box.low, np.float32(0.0)), np.append(box.high, np.float32(1.0))
        self.observation_space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(np.append(self.action_space.nvec, 2))
        self.decided = np.zeros(self.num_envs, dtype=bool)
        self.contacted = np.zeros(self.num_envs, dtype=bool)
        self.sent = np.zeros(self.num_envs, dtype=np.int64)
        self.between = np.full(self.num_envs, np.nan)
        self.deciding = np.zeros(self.num_envs, dtype=bool)
        self.contacts = 0  # shoppers contacted since construction (the training logs' contact share)
        self.decisions = 0
        self._shopper = np.zeros((self.num_envs, len(SHOPPER_FEATURES)), dtype=np.float32)

    def stats(self) -> dict[str, float]:
        return {**super().stats(), "decisions": float(self.decisions), "contacts": float(self.contacts)}

    def _observe(self, flat: np.ndarray) -> np.ndarray:
        self._shopper = flat[:, self.config.n_candidates :]
        everyone = np.ones(self.num_envs, dtype=bool)
        self.deciding = campaign_deciding(
            self._shopper, everyone, self.decided, self.rules.decision_day, self.config.horizon_days
        )
        return np.concatenate([flat, self.deciding[:, None].astype(np.float32)], axis=1)

    def reset(self) -> np.ndarray:
        self.decided[:], self.contacted[:], self.sent[:], self.between[:] = False, False, 0, np.nan
        return self._observe(super().reset())

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions).astype(np.int64, copy=False)
        rows = self.deciding
        self.contacted[rows] = actions[rows, -1] == 1
        self.decided |= rows
        self.decisions += int(rows.sum())
        self.contacts += int((rows & self.contacted).sum())
        campaign_coupons(
            self._shopper, self.contacted, self.sent, self.between, self.rules.coupons, self.rules.discount
        )
        self._actions = {"slate": actions[:, :-1], "offer_between": self.between.copy()}

    def _step(self):
        flat, reward, done, infos = super()._step()
        self.decided[done], self.contacted[done], self.sent[done], self.between[done] = False, False, 0, np.nan
        for row in np.flatnonzero(done).tolist():  # the finished shopper's last observation: no decision there
            infos[row]["terminal_observation"] = np.append(infos[row]["terminal_observation"], np.float32(0.0))
        return self._observe(flat), reward, done, infos


class OfferPPONet(PPONet):
    """``PPONet`` plus the contact head: a logit over the shopper vector."""

    def __init__(self, spaces, tables, hidden: int, embed: int, score_scale: float = 1.0) -> None:
        super().__init__(spaces, tables, hidden, embed, score_scale)
        self.offer = shopper_mlp(spaces["shopper_dim"], hidden)

    def offer_logit(self, shopper: torch.Tensor) -> torch.Tensor:
        return self.offer(self.features.shopper(shopper)).squeeze(-1)


def bernoulli(logit: torch.Tensor, bit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of ``bit`` (0/1) under Bernoulli(sigmoid(logit)), and the distribution's entropy."""
    log_one, log_zero = torch.nn.functional.logsigmoid(logit), torch.nn.functional.logsigmoid(-logit)
    log_prob = torch.where(bit > 0, log_one, log_zero)
    return log_prob, -(log_one.exp() * log_one + log_zero.exp() * log_zero)


class OfferSlatePolicy(SlatePolicy):
    """``SlatePolicy`` over ``[ids ; shopper ; deciding]`` rows and ``[slate ; contact bit]`` actions."""

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.slate_size = len(self.action_space.nvec) - 1

    def _parts(self, obs: torch.Tensor):
        obs = obs.float()
        ids, shopper = split_observation(obs[:, :-1], self.n_candidates)
        return shopper, ids, obs[:, -1]

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        shopper, ids, deciding = self._parts(obs)
        scores, values = self.net.scores_and_values(shopper, ids)
        logit = self.net.offer_logit(shopper)
        if deterministic:
            slates, bit = torch.topk(scores, self.slate_size, dim=1, sorted=True).indices, logit > 0
        else:
            slates = gumbel_top_k(scores, self.slate_size, self.generator)
            bit = torch.rand(logit.shape, generator=self.generator, dtype=logit.dtype) < torch.sigmoid(logit)
        log_prob = plackett_luce(scores, slates)[0] + deciding * bernoulli(logit, bit)[0]
        return torch.cat([slates, bit.long()[:, None]], dim=1), values, log_prob

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        shopper, ids, deciding = self._parts(obs)
        scores, values = self.net.scores_and_values(shopper, ids)
        actions = actions.long()
        log_prob, entropy = plackett_luce(scores, actions[:, :-1])
        bit_log_prob, bit_entropy = bernoulli(self.net.offer_logit(shopper), actions[:, -1])
        return values, log_prob + deciding * bit_log_prob, entropy + deciding * bit_entropy

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        shopper, _, _ = self._parts(obs)
        return self.net.value(self.net.features.shopper(shopper))


class OfferPPOAgent(PPOAgent):
    """PPO over slates and the campaign's contact decision; ``offer_logits`` scores shoppers for the campaign.

    Used by the ``campaign_ppo`` arm (``experiments.campaigns``), which trains it and acts with it; it is not an
    agent kind of its own, since acting needs the campaign's per-shopper state."""

    kind = "ppo_offers"
    params_class = OfferPPOConfig
    policy_class = OfferSlatePolicy

    def __init__(self, reward=None, params=None, **kwargs) -> None:
        super().__init__(reward=OFFER_REWARD if reward is None else reward, params=params, **kwargs)

    def build_net(self, spaces, tables) -> OfferPPONet:
        return OfferPPONet(spaces, tables, self.params.hidden, self.params.embed, self.params.score_scale)

    def make_venv(self, config) -> OfferSB3VecEnv:
        return OfferSB3VecEnv(config, self.params.n_envs, self.reward, self.params.seed, self.params)

    @torch.no_grad()
    def offer_logits(self, shopper: np.ndarray) -> np.ndarray:
        """(B,) the contact head's logit for a batch of shopper vectors (positive: PPO would rather contact)."""
        self._require_trained("score offers")
        shopper = np.asarray(shopper, dtype=np.float32)
        if shopper.ndim != 2 or shopper.shape[1] != self.spaces["shopper_dim"]:
            raise ValueError(f"shopper has shape {shopper.shape}; allowed: (B, {self.spaces['shopper_dim']})")
        self.net.eval()
        return self.net.offer_logit(torch.from_numpy(shopper.copy())).numpy().astype(np.float64)
