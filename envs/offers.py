"""The coupon lever: offers, their cost, and shoppers' latent uplift types (opt-in: config ``offers: on``).

With ``offers: off`` (the default) nothing here runs: the simulator holds no ``OfferState`` and every number is the
one it was before the lever existed. With it on (``docs/model.md``, "Offers and coupons"):

* **Uplift types.** At arrival each shopper gets a latent type, persuadable, sure thing, lost cause or sleeping dog
  (``UPLIFT_TYPES``), drawn from the base shares ``uplift_*_share`` tilted by her standardised traits
  (``type_weights``), with one uniform from her own **offer stream**: a second counter-based stream keyed by her
  main key XOR ``OFFER_STREAM_SALT``, so the main stream's draws never move.
* **Visit offer** (action key ``offer``): a coupon of discount delta in [0, 1] (0 is a reminder) active for the rest
  of this session. A persuadable's purchase logit gains b0 + b1 delta; a sleeping dog's leave logit gains kD.
  Every purchase with a coupon costs delta x price (paid from margin: ``net_revenue = revenue - coupon_cost``).
* **Between-visits offer** (action key ``offer_between``, applied only on the step that ends the session): a
  persuadable's next return rate is multiplied by exp(r0 + r1 delta) and her churn logit lowered by the same; a
  sleeping dog's return rate is divided by exp(kD). The coupon is then active during her next session.
* A sleeping dog contacted in a session (a visit offer in it, or a between offer at its end) has kD added to her
  churn logit at its end. Sure things and lost causes never change behaviour (sure things still cost a discount).

Offers are checked (shape, finite, in [0, 1], NaN for none, the budget) before any state changes; the same uniforms
are drawn with or without offers, so a shopper can be run both ways with the same seed (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from gymnasium import spaces

from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.rng import ShopperStreams
from stickyrec.inputs import short_repr

UPLIFT_TYPES: tuple[str, ...] = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
PERSUADABLE, SURE_THING, LOST_CAUSE, SLEEPING_DOG = range(4)
OFFER_STREAM_SALT = np.uint64(0x0FFE2C0C0A9D0B5E)  # offer-stream key = main key XOR this
# info keys with offers on (arrays over the batch in the vector env); ``latent_uplift_type`` is analysis only
OFFER_INFO_KEYS: tuple[str, ...] = ("offer", "offer_between", "coupon_discount", "coupon_cost", "net_revenue")
UPLIFT_TYPE_KEY = "latent_uplift_type"
ACTION_KEYS: tuple[str, ...] = ("slate", "offer", "offer_between")


class OfferResponse(NamedTuple):
    """The offers of one step, per shopper (arrays over the batch)."""

    offer: np.ndarray  # float64, the visit offer sent on this step (NaN: none)
    offer_between: np.ndarray  # float64, the between-visits offer sent at this step's session end (NaN: none)
    coupon_discount: np.ndarray  # float64, the discount in force on this step's purchase (NaN: no coupon)
    coupon_cost: np.ndarray  # float64, discount x price on a purchase with a coupon, else 0
    net_revenue: np.ndarray  # float64, revenue - coupon_cost


def standardised_traits(price_sensitivity, satisfaction, visit_rate, config: RetentionConfig):
    """(z_beta, z_s, z_lambda): log price sensitivity, initial satisfaction and log base visit rate, each
    standardised by its population law (0 where that law has no spread)."""
    z_beta = np.zeros(len(price_sensitivity))
    if config.price_sensitivity_sd > 0 and config.price_sensitivity_median > 0:
        z_beta = np.log(price_sensitivity / config.price_sensitivity_median) / config.price_sensitivity_sd
    z_s = np.zeros(len(satisfaction))
    if config.satisfaction_initial_sd > 0:
        z_s = (satisfaction - config.satisfaction_initial_mean) / config.satisfaction_initial_sd
    if config.visit_rate_distribution == "gamma":  # log of a Gamma(r, alpha): mean psi(r) - log alpha, var psi'(r)
        from scipy import special

        r = config.visit_rate_gamma_shape
        mean = special.digamma(r) - math.log(config.visit_rate_gamma_rate)
        z_lambda = (np.log(visit_rate) - mean) / math.sqrt(float(special.polygamma(1, r)))
    elif config.visit_rate_sd > 0:
        z_lambda = np.log(visit_rate / config.visit_rate_median) / config.visit_rate_sd
    else:
        z_lambda = np.zeros(len(visit_rate))
    return z_beta, z_s, z_lambda


def type_weights(z_beta, z_s, z_lambda, config: RetentionConfig) -> np.ndarray:
    """(n, 4) unnormalised type weights in ``UPLIFT_TYPES`` order: pi_P e^{k z_beta}, pi_S e^{k (z_s + z_lambda)
    / sqrt 2}, pi_L, pi_D e^{-k z_s}."""
    k = config.uplift_trait_weight
    lost = max(
        0.0,
        1.0 - config.uplift_persuadable_share - config.uplift_sure_thing_share - config.uplift_sleeping_dog_share,
    )
    return np.stack(
        [
            config.uplift_persuadable_share * np.exp(k * z_beta),
            config.uplift_sure_thing_share * np.exp(k * (z_s + z_lambda) / math.sqrt(2.0)),
            np.full(len(z_beta), lost),
            config.uplift_sleeping_dog_share * np.exp(-k * z_s),
        ],
        axis=1,
    )


def draw_types(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Inverse CDF over each row's weights with one uniform: int8 type indices."""
    cumulative = np.cumsum(weights, axis=1)
    threshold = uniform * cumulative[:, -1]
    return np.count_nonzero(cumulative[:, :-1] <= threshold[:, None], axis=1).astype(np.int8)


def _as_offers(value, name: str, batch_size: int) -> np.ndarray:
    """An offer argument as a (B,) float64 array of discounts (NaN: none), or ``ValueError`` naming what is wrong."""
    allowed = f"allowed: ({batch_size},) discounts in [0, 1], NaN for no offer"
    if value is None:
        return np.full(batch_size, np.nan)
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} has dtype {array.dtype} ({short_repr(value)}); {allowed}")
    array = array.astype(np.float64)
    if array.shape != (batch_size,):
        raise ValueError(f"{name} has shape {array.shape}; {allowed}")
    given = ~np.isnan(array)
    bad = given & ~((array >= 0.0) & (array <= 1.0))  # negative, above 1 or infinite
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} for shopper {row} is {float(array[row])!r}, not a discount; {allowed}")
    return array


class OfferState:
    """Per-shopper coupon state for a batch: uplift types, the coupon in force, contacts, the budget's spend."""

    def __init__(self, config: RetentionConfig, batch_size: int) -> None:
        self.config = config
        self.streams = ShopperStreams(np.zeros(batch_size, dtype=np.uint64))
        self.uplift_type = np.zeros(batch_size, dtype=np.int8)
        self.coupon = np.full(batch_size, np.nan)  # discount in force this session (NaN: none)
        self.contacted = np.zeros(batch_size, dtype=bool)  # an offer reached her in this session
        self.between = np.full(batch_size, np.nan)  # this step's between-visits offer (applied at a session end)
        self.spent = 0.0  # coupon cost paid since the last budget reset
        self.last: OfferResponse | None = None

    def arrive(self, rows: np.ndarray, keys: np.ndarray | None, state) -> None:
        """New shoppers in ``rows`` (after ``ShopperState.arrive``): their offer streams, types, no coupon."""
        if keys is not None:
            self.streams.keys[rows] = np.asarray(keys, dtype=np.uint64) ^ OFFER_STREAM_SALT
            self.streams.counters[rows] = 0
        z = standardised_traits(
            np.take(state.price_sensitivity, rows),
            np.take(state.satisfaction, rows),
            np.take(state.visit_rate, rows),
            self.config,
        )
        self.uplift_type[rows] = draw_types(type_weights(*z, self.config), self.streams.uniform(rows, 1)[:, 0])
        self.coupon[rows] = np.nan
        self.contacted[rows] = False

    def reset_budget(self) -> None:
        self.spent = 0.0

    def begin_step(self, offer, offer_between, alive: np.ndarray) -> None:
        """Check this step's offers (all of them, before any change), then send the visit offers."""
        b = len(alive)
        offer = _as_offers(offer, "offer", b)
        between = _as_offers(offer_between, "offer_between", b)
        offer[~alive] = np.nan  # finished shoppers (autoreset disabled) receive nothing
        between[~alive] = np.nan
        budget = self.config.offer_budget
        if self.spent >= budget and ((offer > 0) | (between > 0)).any():
            raise ValueError(
                f"offer budget exhausted: coupon cost so far {self.spent:.6g} >= offer_budget {budget:g}; allowed:"
                " no offer with a positive discount (NaN for none; a reminder, discount 0, costs nothing) until"
                " the budget is reset (single env: reset(); vector env: a reset of every row)"
            )
        sent = ~np.isnan(offer)
        self.coupon = np.where(sent, offer, self.coupon)
        self.contacted |= sent
        self.between = between
        self.last = OfferResponse(offer, between, self.coupon.copy(), np.zeros(b), np.zeros(b))

    def purchase_lift(self) -> np.ndarray:
        """A persuadable's purchase-logit lift under her coupon: b0 + b1 delta (0 without a coupon or another type)."""
        cfg = self.config
        lift = cfg.offer_purchase_lift + cfg.offer_purchase_lift_per_discount * self.coupon
        return np.where((self.uplift_type == PERSUADABLE) & ~np.isnan(self.coupon), lift, 0.0)

    def leave_shift(self) -> np.ndarray:
        """A sleeping dog's leave-logit rise while a coupon is active: kD (else 0)."""
        active = (self.uplift_type == SLEEPING_DOG) & ~np.isnan(self.coupon)
        return np.where(active, self.config.offer_sleeping_dog_effect, 0.0)

    def settle(self, purchased: np.ndarray, price: np.ndarray, revenue: np.ndarray, session_ended: np.ndarray) -> None:
        """This step's coupon cost (discount x price where she bought with a coupon; added to the budget's spend)
        and the between-visits offers actually sent (on the steps that ended a session)."""
        cost = np.where(purchased & ~np.isnan(self.coupon), np.nan_to_num(self.coupon) * price, 0.0)
        self.spent += float(cost.sum())
        sent_between = np.where(session_ended, self.between, np.nan)
        self.last = self.last._replace(offer_between=sent_between, coupon_cost=cost, net_revenue=revenue - cost)

    def end_sessions(self, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For shoppers whose session ended: (return-rate factor, churn-logit shift); then the between-visits
        coupon replaces the session's (NaN without one) and contacts clear."""
        cfg = self.config
        between = np.take(self.between, ended)
        given = ~np.isnan(between)
        kind = np.take(self.uplift_type, ended)
        contacted = np.take(self.contacted, ended) | given
        lift = np.where(
            given & (kind == PERSUADABLE), cfg.offer_return_lift + cfg.offer_return_lift_per_discount * between, 0.0
        )
        dog = np.where(kind == SLEEPING_DOG, cfg.offer_sleeping_dog_effect, 0.0)
        factor = np.exp(lift - np.where(given, dog, 0.0))
        churn_shift = np.where(contacted, dog, 0.0) - lift
        self.coupon[ended] = between
        self.contacted[ended] = False
        return factor, churn_shift


def split_action(action, config: RetentionConfig):
    """(slate, offer, offer_between) of an env action: a slate array, or with offers on also a mapping
    ``{"slate": ..., "offer": ..., "offer_between": ...}`` (both offer keys optional: missing means none)."""
    if not isinstance(action, Mapping):
        return action, None, None
    if not config.offers_on:
        raise ValueError(
            "action is a mapping but this env's config has offers: off; allowed: a slate of candidate indices"
            " (set offers: on for actions with offers)"
        )
    unknown = sorted(short_repr(key) for key in action if key not in ACTION_KEYS)
    if unknown or "slate" not in action:
        raise ValueError(
            f"action mapping has keys {sorted(map(short_repr, action))}; allowed: 'slate' (required), 'offer',"
            " 'offer_between'"
        )
    return action["slate"], action.get("offer"), action.get("offer_between")


def offer_action_space(slate_space: spaces.Space) -> spaces.Dict:
    """The action space with offers on: the slate and two discounts in [0, 1] (``step`` also takes NaN, none)."""
    discount = spaces.Box(0.0, 1.0, shape=(), dtype=np.float64)
    return spaces.Dict({"slate": slate_space, "offer": discount, "offer_between": discount})
