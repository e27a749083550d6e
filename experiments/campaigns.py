"""Targeted retention campaigns: a one-shot coupon campaign on top of a slate policy, as a marketing team runs one,
with the targeting rules that ``campaigns.yaml`` compares at equal budgets (docs/marketing.md).

**The campaign.** Every shopper sees the slates of ``slates`` (default ``ctr_rating``: public columns, no learning)
and no offer before day ``decision_day`` (T). At her first session on or after T (her history before T is then
complete) the campaign decides, once, whether to contact her. A contacted shopper is sent a between-visits coupon of
``discount`` at the end of that session (``envs.offers``): a persuadable comes back sooner and is less likely to churn,
the coupon is active during her next session and its discount is paid on what she buys then, a sleeping dog becomes
more likely to leave, sure things and lost causes do not change (a sure thing still costs her discount).

**Targeting** (``targeting``; the kind ``campaign_oracle`` reads hidden state and is a reference bound):

- ``none``: nobody (the control); ``all``: everyone who decides (a blanket campaign);
- ``random``: each deciding shopper with probability ``share``;
- ``churn_risk``: the churn early warning (``marketing.ChurnWarning``): risk of churning within ``window_days`` of T;
- ``uplift``: an uplift model (``marketing.uplift.UpliftModel``, ``learner`` two_model or x_learner) of her effect
  on ``objective`` (``retained``: still a customer at ``outcome_day``; ``net_revenue``: revenue net of coupons after
  T); a shopper whose estimated effect is not positive is never contacted;
- ``campaign_oracle``: her latent uplift type (persuadable first, sleeping dogs never), ties broken at random.

**Equal budgets.** The scored rules contact a shopper when her score reaches the ``1 - share`` quantile of the scores
of the training population's deciding shoppers, so each contacts about ``share`` of the deciding shoppers, as random
does. The realised share and the coupon spend are reported beside the outcomes.

**Learning.** ``fit_population`` (the runner calls it with the training population's seeds, never the held-out
ones) follows the training population under the same slates and a randomised campaign (each deciding shopper
contacted with probability ``logged_share``), keeps what the platform sees (a step table of the days before T) and
the outcomes, and fits the models on serve-time features at T (``marketing.features.snapshot_features``). The churn
warning learns from the campaign's control shoppers only; the uplift model from both arms, with the known propensity.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from stickyrec.agents.base import NEEDS_NOTHING, Agent
from stickyrec.agents.offers import campaign_coupons, campaign_deciding
from stickyrec.agents.registry import get_agent_class, kinds, register
from stickyrec.envs.offers import SLEEPING_DOG, UPLIFT_TYPE_KEY
from stickyrec.experiments.rollout import RolloutObserver
from stickyrec.inputs import short_repr

TARGETINGS: tuple[str, ...] = ("none", "all", "random", "churn_risk", "uplift")
OBJECTIVES: tuple[str, ...] = ("retained", "net_revenue")
ORACLE_SCORE = np.array([1.0, 0.0, 0.0, -1.0])  # by envs.offers.UPLIFT_TYPES: persuadable, sure thing, lost cause, dog
SHOPPER_COLUMNS: tuple[str, ...] = ("decided", "contacted", "campaign_score")
OFFER_COLUMNS: tuple[str, ...] = ("coupon_cost", "net_revenue", "offers_sent", "uplift_type")


def _number(value, name: str, low: float, high: float, integer: bool = False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"campaign {name} = {short_repr(value)}; allowed: {kind} in [{low:g}, {high:g}]")
    return int(value) if integer else float(value)


def _choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"campaign {name} = {short_repr(value)}; allowed: {', '.join(allowed)}")
    return value


class CampaignAgent(Agent):
    """A slate policy plus a one-shot coupon campaign decided at each shopper's first session from day T (module
    docstring). ``shopper_columns()`` after a rollout: who decided, who was contacted, and each one's score."""

    kind = "campaign"
    needs = NEEDS_NOTHING
    priority = 3

    def __init__(
        self,
        targeting: str = "none",
        share: float = 0.2,
        discount: float = 0.2,
        decision_day: int = 14,
        coupons: int = 1,
        outcome_day: int = 30,
        window_days: int = 14,
        objective: str = "retained",
        learner: str = "x_learner",
        logged_share: float = 0.5,
        slates: str = "ctr_rating",
        seed: int = 0,
    ) -> None:
        self.targeting = self.check_targeting(targeting)
        self.share = _number(share, "share", 0.0, 1.0)
        self.discount = _number(discount, "discount", 0.0, 1.0)
        self.decision_day = _number(decision_day, "decision_day", 1, 10_000, integer=True)
        self.coupons = _number(coupons, "coupons", 1, 10_000, integer=True)
        self.outcome_day = _number(outcome_day, "outcome_day", 1, 10_000, integer=True)
        self.window_days = _number(window_days, "window_days", 1, 10_000, integer=True)
        self.objective = _choice(objective, "objective", OBJECTIVES)
        from stickyrec.experiments.marketing.uplift import LEARNERS

        self.learner = _choice(learner, "learner", tuple(LEARNERS))
        self.logged_share = _number(logged_share, "logged_share", 1e-3, 1 - 1e-3)
        plain = tuple(k for k in kinds(needs=NEEDS_NOTHING) if not get_agent_class(k).uses_latent_state)
        self.slates_kind = _choice(slates, "slates", tuple(k for k in plain if not k.startswith("campaign")))
        self.slate_policy = get_agent_class(self.slates_kind)()
        self.seed = int(seed)
        self.rng = np.random.default_rng([self.seed, 0xC0])
        self.threshold: float | None = None
        self.models: dict[str, Any] = {}

    def check_targeting(self, targeting) -> str:
        return _choice(targeting, "targeting", TARGETINGS)

    @classmethod
    def from_spec(cls, params: Mapping[str, Any], seed: int, reward=None) -> CampaignAgent:
        if reward is not None:
            raise ValueError(f"{cls.kind} takes no reward; only agents that train in the env do")
        if "seed" in params:
            raise ValueError(f"{cls.kind} params take no seed; the cell's seed is used")
        return cls(**params, seed=seed)

    # -- acting --------------------------------------------------------------------------------------------------
    def bind(self, env) -> CampaignAgent:
        if self.targeting not in ("none", "all", "random") and self.threshold is None:
            raise ValueError(f"agent {self.name}: targeting {self.targeting} needs fit_population() before acting")
        super().bind(env)
        if not self.config.offers_on:
            raise ValueError(f"agent {self.name} ({self.kind}) needs an env with offers: on; allowed: offers: on")
        self.slate_policy.bind(env)
        from stickyrec.experiments.marketing.logs import StepRecorder

        n = getattr(env, "num_envs", 1)
        self.recorder = StepRecorder()
        self.recorder.on_reset(env, None, None)
        self.active, self.decided = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
        self.contacted, self.score = np.zeros(n, dtype=bool), np.full(n, np.nan)
        self.sent = np.zeros(n, dtype=np.int64)  # coupons sent so far
        self.between = np.full(n, np.nan)
        self.last_day, self.churned = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
        self.net_after = np.zeros(n)
        self.steps_cache: dict[str, np.ndarray] | None = None
        self.cached_parts = 0
        return self

    def act(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        slates = self.slate_policy.act(observation)
        features = observation["shopper"]
        new = campaign_deciding(features, self.active, self.decided, self.decision_day, self.config.horizon_days)
        if new.any():
            self.decide(np.flatnonzero(new))
        campaign_coupons(features, self.contacted, self.sent, self.between, self.coupons, self.discount)
        return {"slate": slates, "offer_between": self.between.copy()}

    def update(self, observation, slates, info) -> None:
        active = self.active
        day = np.asarray(info["day"])
        self.recorder.on_step(None, None, None, None, None, None, info, active & (day < self.decision_day))
        rows = np.flatnonzero(active)
        self.last_day[rows] = day[rows]
        self.churned[rows] |= np.asarray(info["churned"], dtype=bool)[rows]
        self.net_after[rows] += np.where(day[rows] >= self.decision_day, np.asarray(info["net_revenue"])[rows], 0.0)
        self.active = np.asarray(info["active"], dtype=bool).copy()

    def decide(self, rows: np.ndarray) -> None:
        """Score and choose the shoppers in ``rows`` (each at her first session from day T)."""
        self.decided[rows] = True
        if self.targeting in ("none", "all"):
            self.contacted[rows] = self.targeting == "all"
            return
        if self.targeting == "random":
            score = self.rng.random(rows.size)
            self.score[rows], self.contacted[rows] = score, score < self.share
            return
        score = self.score[rows] = self.scores(rows)
        contact = score >= self.threshold
        if self.targeting in ("uplift", "oracle"):  # an offer expected to do nothing or harm is never sent
            contact &= score > 0
        self.contacted[rows] = contact

    def scores(self, rows: np.ndarray) -> np.ndarray:
        x = self.features(rows)
        if self.targeting == "churn_risk":
            return self.models["churn_risk"].score(x)
        from stickyrec.experiments.marketing.features import WARNING_FEATURES

        return self.models["uplift"].predict(x[list(WARNING_FEATURES)].to_numpy(dtype=np.float64))

    def features(self, rows: np.ndarray) -> pd.DataFrame:
        """Serve-time features at day T of the shoppers in ``rows`` (their steps before T), in ``rows`` order."""
        from stickyrec.experiments.marketing.features import session_satisfaction, snapshot_features
        from stickyrec.experiments.marketing.logs import as_step_dtypes, session_table

        parts = self.recorder.parts
        if self.cached_parts < len(parts):
            fresh = parts[self.cached_parts :]
            merged = [self.steps_cache] if self.steps_cache is not None else []
            self.steps_cache = {c: np.concatenate([p[c] for p in merged + fresh]) for c in fresh[0]}
            self.cached_parts = len(parts)
        cache = self.steps_cache or {}
        mask = np.isin(cache.get("shopper", np.zeros(0, dtype=np.int64)), rows)
        steps = as_step_dtypes(pd.DataFrame({c: v[mask] for c, v in cache.items()}))
        steps = steps.sort_values(["shopper", "step"], kind="stable")
        sessions = session_table(steps, self.catalog.rating)
        sessions["satisfaction_end"] = session_satisfaction(steps, self.catalog.rating)
        frame = snapshot_features(sessions, self.decision_day)
        return frame.set_index("shopper").reindex(rows).reset_index()

    def retained(self) -> np.ndarray:
        """Still a customer at ``outcome_day`` (the runner's ``churn_day > outcome_day``)."""
        return ~self.churned | (self.last_day + 1 > self.outcome_day)

    def shopper_columns(self) -> dict[str, np.ndarray]:
        return {"decided": self.decided.copy(), "contacted": self.contacted.copy(), "campaign_score": self.score.copy()}

    # -- learning ------------------------------------------------------------------------------------------------
    def logger(self) -> CampaignAgent:
        """The randomised campaign the models learn from: the same slates, offer and timing."""
        names = ("discount", "decision_day", "coupons", "outcome_day", "window_days")
        params = {k: getattr(self, k) for k in names}
        return CampaignAgent("random", self.logged_share, slates=self.slates_kind, seed=self.seed + 7919, **params)

    def fit_population(self, config, seed: int, shoppers: int) -> dict[str, Any]:
        """Learn the targeting model from a randomised campaign on the training population (shoppers ``seed ..
        seed + shoppers - 1``) and set the equal-budget threshold; a summary for the results."""
        if self.targeting in ("none", "all", "random"):
            return {}
        from stickyrec.experiments.rollout import rollout

        t0 = time.perf_counter()
        log = self.logger()
        rollout(log, config, shoppers, seed)
        rows = np.flatnonzero(log.decided)
        if rows.size < 20:
            raise ValueError(
                f"only {rows.size} of {shoppers} training shoppers reached day {self.decision_day}; allowed: a"
                " decision_day within most shoppers' lifetimes, or more training shoppers"
            )
        treated = log.contacted[rows]
        score = self.fit_models(log, rows, treated)
        self.threshold = float(np.quantile(score, 1.0 - self.share))
        return {
            "logged_shoppers": int(shoppers),
            "population_seed": int(seed),
            "decided": int(rows.size),
            "treated": int(treated.sum()),
            "threshold": self.threshold,
            "fit_seconds": round(time.perf_counter() - t0, 2),
        }

    def fit_models(self, log: CampaignAgent, rows: np.ndarray, treated: np.ndarray) -> np.ndarray:
        """Fit this targeting's model on the logged campaign; its scores of the logged deciding shoppers."""
        x = log.features(rows)
        if self.targeting == "churn_risk":
            from stickyrec.experiments.marketing.models import ChurnWarning

            churn_session = np.where(log.churned, log.last_day, np.iinfo(np.int64).max)[rows]
            x["churns"] = churn_session < self.decision_day + self.window_days
            self.models["churn_risk"] = ChurnWarning(random_state=self.seed).fit(x[~treated])
            return self.models["churn_risk"].score(x)
        from stickyrec.experiments.marketing.features import WARNING_FEATURES
        from stickyrec.experiments.marketing.uplift import UpliftModel

        y = log.retained()[rows].astype(np.float64) if self.objective == "retained" else log.net_after[rows]
        matrix = x[list(WARNING_FEATURES)].to_numpy(dtype=np.float64)
        self.models["uplift"] = UpliftModel(self.learner, self.seed).fit(matrix, treated, y, self.logged_share)
        return self.models["uplift"].predict(matrix)


class CampaignOracle(CampaignAgent):
    """The campaign targeted by each shopper's latent uplift type: a reference bound, not a baseline."""

    kind = "campaign_oracle"
    uses_latent_state = True

    def check_targeting(self, targeting) -> str:
        return _choice(targeting, "targeting", ("oracle",))

    def __init__(self, targeting: str = "oracle", **params) -> None:
        super().__init__(targeting, **params)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        kind = self.simulator.offers.uplift_type[rows]
        return ORACLE_SCORE[kind] + 0.5 * self.rng.random(rows.size)

    def fit_population(self, config, seed: int, shoppers: int) -> dict[str, Any]:
        """The equal-budget threshold from the training population's deciding shoppers' types (no model)."""
        from stickyrec.experiments.rollout import rollout

        log = CampaignOracle(slates=self.slates_kind, seed=self.seed + 7919, decision_day=self.decision_day)
        log.share = self.share
        log.threshold = np.inf  # contact nobody: only the types of who decides are wanted
        rollout(log, config, shoppers, seed)
        score = log.score[log.decided]
        self.threshold = float(np.quantile(score, 1.0 - self.share)) if score.size else np.inf
        return {"logged_shoppers": int(shoppers), "decided": int(score.size), "threshold": self.threshold}


class CampaignPPO(CampaignAgent):
    """The campaign whose slates and contact decisions come from one PPO (``agents.rl.ppo_offers``), trained before
    its cell in the world with this campaign's rules (``steps`` shopper-steps, the cell's seed); it contacts where
    the contact head's logit reaches the equal-budget threshold (the ``1 - share`` quantile of the logits of the
    training population's deciding shoppers under its own slates), whatever its sign: the comparison is at equal
    budgets, and the policy's own choice (a positive logit) is reported as ``positive_logits``. ``reward``: the
    training reward (default ``ppo_offers.OFFER_REWARD``); ``ppo``: ``PPOConfig`` settings."""

    kind = "campaign_ppo"
    priority = 0  # trains: among the first cells in the run queue
    trains_in_simulator = True  # an RL agent in the report's roles (``report_data.agent_roles``)

    def __init__(
        self,
        targeting: str = "ppo",
        steps: int = 3_000_000,
        reward=None,
        ppo: Mapping[str, Any] | None = None,
        threshold_shoppers: int = 2000,
        **params,
    ) -> None:
        if "slates" in params:
            raise ValueError("campaign_ppo takes no slates: its PPO chooses them; allowed params: " + _PPO_PARAMS)
        super().__init__(targeting, **params)
        from stickyrec.agents.rl.ppo_offers import OfferPPOAgent

        self.steps = _number(steps, "steps", 1, 10**10, integer=True)
        self.threshold_shoppers = _number(threshold_shoppers, "threshold_shoppers", 20, 10**7, integer=True)
        rules = {"discount": self.discount, "decision_day": self.decision_day, "coupons": self.coupons}
        self.ppo = OfferPPOAgent(reward, seed=self.seed, **rules, **dict(ppo or {}))  # checked before any work
        self.shopper_rows = np.zeros((0, 0), dtype=np.float32)

    def check_targeting(self, targeting) -> str:
        return _choice(targeting, "targeting", ("ppo",))

    def act(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.shopper_rows = observation["shopper"]  # what ``scores`` reads at the decisions of this step
        return super().act(observation)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.ppo.offer_logits(self.shopper_rows[rows])

    def fit_population(self, config, seed: int, shoppers: int) -> dict[str, Any]:
        """Train the PPO, then set the threshold from the first ``threshold_shoppers`` training-population shoppers
        (seeds from ``seed``) under its slates, contacting nobody: only who decides, and her logit, are wanted."""
        from stickyrec.experiments.rollout import rollout

        t0 = time.perf_counter()
        self.ppo.train(config, self.steps, progress=False)
        self.slate_policy = self.ppo
        trained = time.perf_counter() - t0
        n = min(int(shoppers), self.threshold_shoppers)
        self.threshold = np.inf
        rollout(self, config, n, seed)
        score = self.score[self.decided]
        self.threshold = float(np.quantile(score, 1.0 - self.share)) if score.size else np.inf
        history = self.ppo.history
        return {
            "train_steps": int(history["steps"]),
            "train_seconds": round(trained, 2),
            "reward": history["reward"],
            "training_contact_share": history.get("contact_share"),
            "threshold_shoppers": n,
            "decided": int(score.size),
            "positive_logits": int((score > 0).sum()),
            "threshold": self.threshold,
            "fit_seconds": round(time.perf_counter() - t0, 2),
        }


_PPO_PARAMS = "share, discount, decision_day, coupons, outcome_day, window_days, steps, reward, ppo, threshold_shoppers"


class OfferStats(RolloutObserver):
    """Rollout observer (offers on): per shopper, coupon cost paid, revenue net of it, offers sent (visit and
    between-visits), and her latent uplift type (simulator-only truth, for the analysis: sleeping dogs woken)."""

    def __init__(self, n_shoppers: int) -> None:
        self.cost, self.net = np.zeros(n_shoppers), np.zeros(n_shoppers)
        self.sent = np.zeros(n_shoppers, dtype=np.int32)
        self.kind = np.full(n_shoppers, -1, dtype=np.int8)

    def on_step(self, obs, slates, next_obs, reward, terminated, truncated, info, active) -> None:
        rows = np.flatnonzero(active)
        self.cost[rows] += np.asarray(info["coupon_cost"])[rows]
        self.net[rows] += np.asarray(info["net_revenue"])[rows]
        sent = ~np.isnan(np.asarray(info["offer"], dtype=np.float64))
        sent = sent.astype(np.int32) + ~np.isnan(np.asarray(info["offer_between"], dtype=np.float64))
        self.sent[rows] += sent[rows]
        self.kind[rows] = np.asarray(info[UPLIFT_TYPE_KEY])[rows]

    def finish(self) -> pd.DataFrame:
        return pd.DataFrame(dict(zip(OFFER_COLUMNS, (self.cost, self.net, self.sent, self.kind))))


def woken(frame: pd.DataFrame) -> np.ndarray:
    """Sleeping dogs contacted (``OFFER_COLUMNS`` of a cell's shoppers), per shopper."""
    return (frame["offers_sent"].to_numpy() > 0) & (frame["uplift_type"].to_numpy() == SLEEPING_DOG)


for _cls in (CampaignAgent, CampaignOracle, CampaignPPO):  # the experiments layer's own agent kinds, usable in configs
    register(_cls, replace=True)

__all__ = [
    "OBJECTIVES",
    "OFFER_COLUMNS",
    "SHOPPER_COLUMNS",
    "TARGETINGS",
    "CampaignAgent",
    "CampaignOracle",
    "CampaignPPO",
    "OfferStats",
    "woken",
]
