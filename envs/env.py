"""``stickyrec/Retention-v0``: one shopper's life as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from stickyrec.envs.config import RetentionConfig, make_config
from stickyrec.envs.offers import UPLIFT_TYPE_KEY, OfferState, offer_action_space, split_action
from stickyrec.envs.rng import key_from_seed
from stickyrec.envs.shoppers import n_shopper_features
from stickyrec.envs.simulator import RetentionSimulator, StepResponse
from stickyrec.envs.spaces import SlateSpace

# info keys, per step (the vector env carries the same keys as arrays over the batch)
INFO_KEYS: tuple[str, ...] = (
    "clicked_position",
    "clicked_item",
    "purchased",
    "revenue",
    "session_ended",
    "returned",
    "return_gap_days",
    "churned",
    "day",
)
# Why an episode ended, in worlds where that is worth telling apart (``RetentionConfig.reports_churn_causes``: gamma
# visit rates, beta latent dropout or an infinite churn window; absent otherwise, so the default world's infos are
# unchanged): ``dropped_out`` is the latent event (she has left for good: the churn hazard or her latent dropout),
# ``gap_churned`` the observed rule (her next visit is more than ``churn_window_days`` away). ``churned`` is their or.
CHURN_CAUSE_KEYS: tuple[str, ...] = ("dropped_out", "gap_churned")
LATENT_SATISFACTION_KEY = "latent_satisfaction"  # analysis only: agents must not read it


def observation_space(config: RetentionConfig) -> spaces.Dict:
    n_features = n_shopper_features(config.n_categories, config.embedding_dim)
    n_counts = n_features - config.embedding_dim  # counts, days, logs: non-negative, unbounded
    low = np.concatenate([np.zeros(n_counts), -np.ones(config.embedding_dim)]).astype(np.float32)
    high = np.concatenate([np.full(n_counts, np.inf), np.ones(config.embedding_dim)]).astype(np.float32)
    return spaces.Dict(
        {
            "candidate_ids": spaces.MultiDiscrete(np.full(config.n_candidates, config.n_items), dtype=np.int32),
            "shopper": spaces.Box(low, high, dtype=np.float32),
        }
    )


def response_info(
    response: StepResponse, satisfaction: np.ndarray, churn_causes: bool = False, offers: OfferState | None = None
) -> dict[str, np.ndarray]:
    """The info dict of a step as arrays over the batch (the vector env's ``infos``); with ``churn_causes`` (the
    config's ``reports_churn_causes``), also ``CHURN_CAUSE_KEYS``; with the coupon lever's state ``offers``, also
    ``envs.offers.OFFER_INFO_KEYS`` and ``latent_uplift_type``."""
    keys = (*INFO_KEYS, *CHURN_CAUSE_KEYS) if churn_causes else INFO_KEYS
    info = {key: getattr(response, key) for key in keys}
    info[LATENT_SATISFACTION_KEY] = satisfaction.copy()
    if offers is not None:
        info.update(offers.last._asdict())
        info[UPLIFT_TYPE_KEY] = offers.uplift_type.copy()
    return info


def action_space(config: RetentionConfig) -> spaces.Space:
    """One shopper's action space: a ``SlateSpace``, or with offers on a ``Dict`` of the slate and two discounts."""
    slate = SlateSpace(config.n_candidates, config.slate_size)
    return offer_action_space(slate) if config.offers_on else slate


class RetentionEnv(gym.Env):
    """A shopper who visits a store, sees slates of items, clicks, buys, and comes back — or does not.

    ## Description
    Each step the policy shows one slate of ``slate_size`` (k) items chosen among the ``n_candidates`` (M)
    candidates that retrieval offered for the current session. The shopper clicks one item or none
    (position-aware multinomial logit), may buy what she clicked, grows tired of categories she sees too
    often, and her latent satisfaction follows the quality of what she consumes. Sessions end with a hazard;
    between sessions the clock jumps to her next visit, which comes sooner when she is satisfied. A long gap
    (observed churn), a per-session churn hazard or, when configured, her own latent dropout propensity ends her
    life with the store. See ``envs.simulator`` for the equations and ``envs.config.RetentionConfig`` for every
    parameter.

    ## Action Space
    ``SlateSpace(M, k)`` (a ``MultiDiscrete([M] * k)``): k **distinct** indices into
    ``observation["candidate_ids"]``, in slate order (position 0 is examined most). Repeated or
    out-of-range indices, or the wrong length, raise ``ValueError``. Wrappers in ``envs.wrappers`` adapt
    this for RL (a score vector whose top-k candidates form the slate).

    ## Observation Space
    | key             | space                              | meaning                                        |
    |-----------------|------------------------------------|------------------------------------------------|
    | candidate_ids   | MultiDiscrete([N] * M), int32      | catalog ids of this session's candidates       |
    | shopper         | Box((9 + 2C + d,), float32)        | observable history: ``SHOPPER_FEATURES``, then |
    |                 |                                    | recent clicks per category (7-day half-life),  |
    |                 |                                    | this session's impressions per category,       |
    |                 |                                    | recency-weighted sum of clicked embeddings     |

    Item features are not copied into the observation: the static catalog is ``env.unwrapped.catalog``
    (latent ``quality``/``appeal`` for oracles, ``public_features()`` for agents), gathered by id.

    ## Rewards
    A weighted mix of the step's response (``reward_*`` config fields, applied as an ``envs.rewards.RewardMix``):
    clicks, purchases, revenue, return visits, return gap days, churn. The default rewards each return visit
    (retention-aware).

    ## Starting State
    A new shopper drawn from the population at day 0, first session, fresh candidates.

    ## Episode End
    * terminated: the shopper churned: a gap past ``churn_window_days`` (the observed rule; off when the window is
      ``inf``), or she dropped out for good (the per-session churn hazard, or her latent dropout propensity after a
      qualifying session when ``dropout_distribution`` is ``beta``).
    * truncated: her next visit would fall past ``horizon_days``.

    ## Info
    ``clicked_position`` (-1 for none), ``clicked_item`` (-1), ``purchased``, ``revenue``,
    ``session_ended``, ``returned`` (a return visit started), ``return_gap_days``, ``churned``, ``day``
    (simulated day of the impression); ``latent_satisfaction`` is latent state for analysis only. Where
    ``config.reports_churn_causes`` (gamma visit rates, beta dropout or an infinite churn window): ``dropped_out``
    (the latent event) and ``gap_churned`` (the observed rule), exclusive, ``churned`` = either.

    ## Arguments
    ``config``: a ``RetentionConfig``, a preset name, a YAML path or a mapping; keyword arguments
    override single fields (``clickbait_share=0.3``).

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": []}

    def __init__(
        self, config: RetentionConfig | str | dict | None = None, render_mode: str | None = None, **overrides: Any
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode {render_mode!r} is not supported; allowed: None")
        self.config = make_config(config, **overrides)
        self.simulator = RetentionSimulator(self.config, 1)
        self.catalog = self.simulator.catalog
        self.action_space = action_space(self.config)
        self.observation_space = observation_space(self.config)
        self._seeded = False
        self._needs_reset = True
        self._churn_causes = self.config.reports_churn_causes

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.simulator.reset_rows(np.zeros(1, np.int64), np.array([key_from_seed(seed)]))
        elif not self._seeded:
            key = key_from_seed(int(self.np_random.integers(2**63)))
            self.simulator.reset_rows(np.zeros(1, np.int64), np.array([key]))
        else:  # the next shopper continues this slot's random stream
            self.simulator.reset_rows(np.zeros(1, np.int64))
        self._seeded = True
        self._needs_reset = False
        info = {"day": 0, LATENT_SATISFACTION_KEY: float(self.simulator.state.satisfaction[0])}
        if self.simulator.offers is not None:  # the budget is per episode; the new shopper's latent uplift type
            self.simulator.offers.reset_budget()
            info[UPLIFT_TYPE_KEY] = int(self.simulator.offers.uplift_type[0])
        return self._observation(), info

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        action, offer, offer_between = split_action(action, self.config)
        action = np.asarray(action)
        if action.shape != (self.config.slate_size,):
            raise ValueError(
                f"slate has shape {action.shape}; allowed: ({self.config.slate_size},) distinct"
                f" candidate indices in 0..{self.config.n_candidates - 1}"
            )
        if self.simulator.offers is None:
            r = self.simulator.step_one(action[None, :])
        else:  # the batched step on a batch of one (batched == single by construction), scalars out
            offers = _scalar_offer(offer, "offer"), _scalar_offer(offer_between, "offer_between")
            r = self.simulator.step(action[None, :], *offers)
            r = StepResponse(*(value[0].item() for value in r))
        terminated, truncated = r.churned, r.horizon_reached
        self._needs_reset = terminated or truncated
        info = {
            "clicked_position": r.clicked_position,
            "clicked_item": r.clicked_item,
            "purchased": r.purchased,
            "revenue": r.revenue,
            "session_ended": r.session_ended,
            "returned": r.returned,
            "return_gap_days": r.return_gap_days,
            "churned": terminated,
            "day": r.day,
            LATENT_SATISFACTION_KEY: float(self.simulator.state.satisfaction[0]),
        }
        if self._churn_causes:
            info["dropped_out"], info["gap_churned"] = r.dropped_out, r.gap_churned
        if self.simulator.offers is not None:
            info.update({key: value[0].item() for key, value in self.simulator.offers.last._asdict().items()})
            info[UPLIFT_TYPE_KEY] = int(self.simulator.offers.uplift_type[0])
        return self._observation(), r.reward, terminated, truncated, info

    def _observation(self) -> dict[str, np.ndarray]:
        sim = self.simulator
        shopper = sim.state.observe_one(self.config.horizon_days)
        return {"candidate_ids": sim.candidate_ids[0].copy(), "shopper": shopper}


def _scalar_offer(value, name: str) -> np.ndarray | None:
    """One shopper's offer (a number, NaN for none, or None) as the batch-of-one array ``step`` takes."""
    if value is None:
        return None
    if np.ndim(value) != 0:
        raise ValueError(f"{name} has shape {np.shape(value)}; allowed: one discount in [0, 1], NaN for no offer")
    return np.asarray(value)[None]
