"""The simulator's configuration: one typed, validated, immutable object.

Every number of the model is a field here, with its allowed range and a one-line meaning. Fields are
flat (unique names) and grouped by concept, so an override reads ``clickbait_share=0.3`` whether it
comes from Python keyword arguments, YAML, or the command line. YAML may also nest fields under their
group name (``catalog: {clickbait_share: 0.3}``).

A bad value, a wrong type, or an unknown key raises ``ValueError`` naming the field, the value and what
is allowed, before anything is simulated.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stickyrec.inputs import dump_yaml, integral, load_yaml, short_repr

_INF = math.inf


def _field(
    default: Any,
    lo: float,
    hi: float,
    doc: str,
    *,
    group: str,
    integer: bool = False,
    lo_open: bool = False,
    hi_open: bool = False,
    infinite: bool = False,
    choices: tuple[str, ...] = (),
) -> Any:
    """A numeric field in [lo, hi] (``infinite``: +inf allowed too), or with ``choices`` a field naming one of them."""
    return dataclasses.field(
        default=default,
        metadata={
            "lo": lo,
            "hi": hi,
            "lo_open": lo_open,
            "hi_open": hi_open,
            "integer": integer,
            "infinite": infinite,
            "choices": choices,
            "doc": doc,
            "group": group,
        },
    )


def _choice_field(default: str, choices: tuple[str, ...], doc: str, *, group: str) -> Any:
    return _field(default, math.nan, math.nan, doc, group=group, choices=choices)


_catalog = functools.partial(_field, group="catalog")
_retrieval = functools.partial(_field, group="retrieval")
_shoppers = functools.partial(_field, group="shoppers")
_shoppers_choice = functools.partial(_choice_field, group="shoppers")
_choice = functools.partial(_field, group="choice")
_dynamics = functools.partial(_field, group="dynamics")
_session = functools.partial(_field, group="session")
_session_choice = functools.partial(_choice_field, group="session")
_episode = functools.partial(_field, group="episode")
_reward = functools.partial(_field, group="reward")
_offers = functools.partial(_field, group="offers")
_offers_choice = functools.partial(_choice_field, group="offers")


@dataclasses.dataclass(frozen=True)
class RetentionConfig:
    """All parameters of ``stickyrec/Retention-v0``. Defaults are the ``default`` preset."""

    # --- catalog -------------------------------------------------------------------------------
    n_items: int = _catalog(2000, 2, 1_000_000, "items in the catalog", integer=True)
    n_categories: int = _catalog(20, 1, 10_000, "item categories", integer=True)
    embedding_dim: int = _catalog(16, 1, 1024, "dimension d of item embeddings and shopper interests", integer=True)
    category_spread: float = _catalog(
        0.5, 0.0, 10.0, "spread of item embeddings around their category's centroid (before normalising)"
    )
    price_log_mean: float = _catalog(3.5, -10.0, 20.0, "mean log price over categories")
    price_category_sd: float = _catalog(0.6, 0.0, 5.0, "sd of a category's mean log price")
    price_item_sd: float = _catalog(0.4, 0.0, 5.0, "sd of log price within a category")
    quality_alpha: float = _catalog(5.0, 0.0, 1000.0, "Beta alpha of a regular item's quality", lo_open=True)
    quality_beta: float = _catalog(2.5, 0.0, 1000.0, "Beta beta of a regular item's quality", lo_open=True)
    appeal_alpha: float = _catalog(2.0, 0.0, 1000.0, "Beta alpha of a regular item's appeal", lo_open=True)
    appeal_beta: float = _catalog(3.0, 0.0, 1000.0, "Beta beta of a regular item's appeal", lo_open=True)
    clickbait_share: float = _catalog(0.15, 0.0, 1.0, "share of items that are clickbait (high appeal, low quality)")
    clickbait_quality_alpha: float = _catalog(
        1.5, 0.0, 1000.0, "Beta alpha of a clickbait item's quality", lo_open=True
    )
    clickbait_quality_beta: float = _catalog(6.0, 0.0, 1000.0, "Beta beta of a clickbait item's quality", lo_open=True)
    clickbait_appeal_alpha: float = _catalog(8.0, 0.0, 1000.0, "Beta alpha of a clickbait item's appeal", lo_open=True)
    clickbait_appeal_beta: float = _catalog(2.0, 0.0, 1000.0, "Beta beta of a clickbait item's appeal", lo_open=True)
    popularity_sd: float = _catalog(1.0, 0.0, 10.0, "sd of log popularity (retrieval's popular source)")
    rating_noise: float = _catalog(0.15, 0.0, 10.0, "sd of the noise on the public rating (quality + noise)")
    ctr_estimate_noise: float = _catalog(
        0.05, 0.0, 10.0, "sd of the noise on the public historical CTR estimate (reflects appeal)"
    )
    catalog_seed: int = _catalog(
        0, 0, 2**63 - 1, "seed of the catalog (shared by all shopper populations)", integer=True
    )

    # --- candidate retrieval ---------------------------------------------------------------------
    n_candidates: int = _retrieval(100, 1, 100_000, "candidates M offered per session", integer=True)
    nearest_share: float = _retrieval(0.5, 0.0, 1.0, "share of candidates nearest the shopper's interest")
    popular_share: float = _retrieval(0.2, 0.0, 1.0, "share of candidates drawn by popularity (rest random)")
    n_interest_clusters: int = _retrieval(256, 1, 100_000, "interest clusters K of the retrieval index", integer=True)
    popular_pool_size: int = _retrieval(
        200, 0, 1_000_000, "trending items per cluster that the popular candidates are drawn from", integer=True
    )

    # --- shoppers (latent state at arrival) ------------------------------------------------------
    interest_focus: float = _shoppers(
        1.0,
        0.0,
        100.0,
        "weight of the shopper's favourite category centroid in the initial interest (vs isotropic noise of weight 1)",
    )
    satisfaction_initial_mean: float = _shoppers(0.55, 0.0, 1.0, "mean initial satisfaction")
    satisfaction_initial_sd: float = _shoppers(0.08, 0.0, 1.0, "sd of initial satisfaction")
    price_sensitivity_median: float = _shoppers(0.4, 0.0, 100.0, "median price sensitivity beta")
    price_sensitivity_sd: float = _shoppers(0.3, 0.0, 5.0, "sd of log price sensitivity")
    visit_rate_median: float = _shoppers(
        0.08, 0.0, 100.0, "median base visit rate lambda (per day, before the satisfaction factor)", lo_open=True
    )
    visit_rate_sd: float = _shoppers(0.3, 0.0, 5.0, "sd of log visit rate")
    visit_rate_distribution: str = _shoppers_choice(
        "lognormal",
        ("lognormal", "gamma"),
        "population law of the base visit rate lambda: lognormal (visit_rate_median, visit_rate_sd) or gamma"
        " (visit_rate_gamma_shape, visit_rate_gamma_rate), BG/NBD's transaction-rate mixture",
    )
    visit_rate_gamma_shape: float = _shoppers(
        2.0, 0.0, 1000.0, "r: shape of lambda ~ Gamma(r, alpha) when visit_rate_distribution is gamma", lo_open=True
    )
    visit_rate_gamma_rate: float = _shoppers(
        25.0,
        0.0,
        1_000_000.0,
        "alpha: rate of lambda ~ Gamma(r, alpha), in days (mean lambda = r / alpha per day)",
        lo_open=True,
    )
    dropout_distribution: str = _shoppers_choice(
        "none",
        ("none", "beta"),
        "latent dropout propensity p: none (no such dropout) or beta (p ~ Beta(dropout_beta_a, dropout_beta_b)"
        " per shopper, BG/NBD's dropout mixture)",
    )
    dropout_beta_a: float = _shoppers(
        1.0, 0.0, 1000.0, "a: Beta a of the dropout propensity p when dropout_distribution is beta", lo_open=True
    )
    dropout_beta_b: float = _shoppers(
        9.0, 0.0, 1000.0, "b: Beta b of the dropout propensity p when dropout_distribution is beta", lo_open=True
    )
    patience_sd: float = _shoppers(0.3, 0.0, 10.0, "sd of patience (shifts the leave hazard's logit)")

    # --- choice and purchase ---------------------------------------------------------------------
    slate_size: int = _choice(10, 1, 10_000, "items k per slate", integer=True)
    temperature: float = _choice(0.4, 0.0, 100.0, "logit temperature tau", lo_open=True)
    no_click_utility: float = _choice(2.1, -100.0, 100.0, "utility v0 of not clicking")
    appeal_weight: float = _choice(1.4, 0.0, 100.0, "weight w_a of appeal in the utility")
    fatigue_weight: float = _choice(0.5, 0.0, 100.0, "weight w_f of category fatigue in the utility")
    position_decay: float = _choice(0.85, 0.0, 1.0, "examination eta_j = position_decay ** j", lo_open=True)
    purchase_bias: float = _choice(-5.5, -100.0, 100.0, "g0: purchase logit bias")
    purchase_relevance: float = _choice(1.5, -100.0, 100.0, "g1: purchase logit per unit relevance")
    purchase_quality: float = _choice(3.0, -100.0, 100.0, "g2: purchase logit per unit quality")
    margin: float = _choice(0.2, 0.0, 1.0, "revenue = price * margin on a purchase")

    # --- dynamics --------------------------------------------------------------------------------
    interest_drift: float = _dynamics(0.05, 0.0, 1.0, "rho: interest moves this far toward a clicked item")
    fatigue_per_impression: float = _dynamics(0.015, 0.0, 100.0, "category fatigue added per item shown")
    fatigue_per_click: float = _dynamics(0.2, 0.0, 100.0, "category fatigue added per click")
    fatigue_half_life_days: float = _dynamics(1.0, 0.0, 1000.0, "half-life of fatigue between sessions", lo_open=True)
    satisfaction_click_rate: float = _dynamics(
        0.08, 0.0, 1.0, "satisfaction moves this far toward a clicked item's quality"
    )
    satisfaction_purchase_rate: float = _dynamics(0.2, 0.0, 1.0, "and further this far on a purchase")
    satisfaction_no_click_drop: float = _dynamics(
        0.02, 0.0, 1.0, "satisfaction shrinks by this share on a slate with no click"
    )
    satisfaction_baseline: float = _dynamics(0.5, 0.0, 1.0, "satisfaction reverts toward this between sessions")
    satisfaction_memory_days: float = _dynamics(30.0, 0.0, 100_000.0, "time constant of that reversion", lo_open=True)

    # --- sessions, returns and churn ---------------------------------------------------------------
    leave_base: float = _session(-2.8, -100.0, 100.0, "leave-hazard logit at zero fatigue and satisfaction")
    leave_fatigue: float = _session(0.6, 0.0, 100.0, "leave logit per unit mean fatigue of the slate")
    leave_satisfaction: float = _session(1.5, 0.0, 100.0, "leave logit drop per unit satisfaction")
    leave_no_click: float = _session(0.5, 0.0, 100.0, "leave logit added on a slate with no click")
    max_session_steps: int = _session(50, 1, 100_000, "a session ends after this many impressions", integer=True)
    return_satisfaction_weight: float = _session(3.0, 0.0, 100.0, "psi: return rate = lambda * exp(psi * satisfaction)")
    min_return_gap_days: float = _session(0.1, 0.0, 1000.0, "shortest gap between sessions")
    churn_window_days: float = _session(
        14.0,
        0.0,
        100_000.0,
        "a gap longer than this is churn (observed churn in the env); .inf (YAML) / math.inf switches it off",
        lo_open=True,
        infinite=True,
    )
    churn_base: float = _session(-1.5, -100.0, 100.0, "c0: per-session churn logit at zero satisfaction")
    churn_satisfaction: float = _session(8.0, 0.0, 100.0, "c1: churn logit drop per unit satisfaction")
    dropout_after: str = _session_choice(
        "purchase_session",
        ("purchase_session", "session"),
        "when the latent dropout (probability p) is drawn: after a session with a purchase (BG/NBD) or every session",
    )

    # --- episode -----------------------------------------------------------------------------------
    horizon_days: float = _episode(60.0, 0.0, 100_000.0, "a shopper's episode is truncated at this day", lo_open=True)

    # --- reward: a weighted mix of the step's response (envs.rewards.RewardMix.from_config) ----------------
    reward_click: float = _reward(0.0, -_INF, _INF, "reward per click")
    reward_purchase: float = _reward(0.0, -_INF, _INF, "reward per purchase")
    reward_revenue: float = _reward(0.0, -_INF, _INF, "reward per unit of revenue")
    reward_return_visit: float = _reward(1.0, -_INF, _INF, "reward per return visit")
    reward_return_gap: float = _reward(
        0.0, -_INF, _INF, "reward per day of return gap (negative to penalise long gaps, as in RLUR)"
    )
    reward_churn: float = _reward(0.0, -_INF, _INF, "reward on churning")

    # --- offers and coupons (opt-in; envs.offers, docs/model.md "Offers and coupons") ---------------------------
    offers: str = _offers_choice(
        "off",
        ("off", "on"),
        "the coupon lever: off (slate-only actions, today's world) or on (actions may carry a visit offer and a"
        " between-visits offer; each shopper gets a latent uplift type)",
    )
    offer_budget: float = _offers(
        _INF,
        0.0,
        1e15,
        "coupon cost (discount x price of coupon purchases) the env may pay per episode (single env) or per full"
        " reset (vector env); once spent, a new offer with a positive discount raises ValueError; inf: no budget",
        infinite=True,
    )
    uplift_persuadable_share: float = _offers(
        0.30, 0.0, 1.0, "base share of persuadables (respond only when offered); no published figure"
    )
    uplift_sure_thing_share: float = _offers(
        0.35, 0.0, 1.0, "base share of sure things (would anyway: a discount is lost margin); no published figure"
    )
    uplift_sleeping_dog_share: float = _offers(
        0.10, 0.0, 1.0, "base share of sleeping dogs (an offer makes them leave); lost causes are the rest"
    )
    uplift_trait_weight: float = _offers(
        1.0,
        0.0,
        10.0,
        "kappa: tilt of the type shares by standardised traits (price sensitivity -> persuadable, satisfaction and"
        " visit rate -> sure thing, low satisfaction -> sleeping dog); no published figure",
    )
    offer_purchase_lift: float = _offers(
        0.47,
        0.0,
        100.0,
        "b0: a persuadable's purchase-logit lift while any coupon is active (a reminder, discount 0); Hillstrom"
        " (2008) e-mail test: conversion per visit 5.4% -> 6.4%",
    )
    offer_purchase_lift_per_discount: float = _offers(
        8.7,
        0.0,
        100.0,
        "b1: a persuadable's purchase-logit lift per unit discount; population elasticity -2.62 (Bijmolt, van"
        " Heerde & Pieters 2005) carried by the persuadables alone (2.62 / 0.30)",
    )
    offer_return_lift: float = _offers(
        1.17,
        0.0,
        100.0,
        "r0: a persuadable's log return-rate lift (and churn-logit drop) after a between-visits offer of discount 0;"
        " Hillstrom (2008) e-mail test: two-week visit rate 10.6% -> 16.7%",
    )
    offer_return_lift_per_discount: float = _offers(
        2.0, 0.0, 100.0, "r1: a persuadable's further log return-rate lift per unit discount; no published figure"
    )
    offer_sleeping_dog_effect: float = _offers(
        0.5,
        0.0,
        20.0,
        "kD: a sleeping dog's leave- and churn-logit rise (and log return-rate drop) when contacted; no published"
        " figure",
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["integer"] and integral(value) is not value:  # YAML's 1e3 where an integer is wanted
                value = integral(value)
                object.__setattr__(self, f.name, value)
            _check_field(f, value)
            if isinstance(value, (np.integer, np.floating)):  # store plain Python numbers
                object.__setattr__(self, f.name, value.item())
        self._check_cross_fields()

    def _check_cross_fields(self) -> None:
        if self.n_candidates > self.n_items:
            raise ValueError(
                f"n_candidates={self.n_candidates} exceeds n_items={self.n_items}; allowed: n_candidates <= n_items"
            )
        if self.slate_size > self.n_candidates:
            raise ValueError(
                f"slate_size={self.slate_size} exceeds n_candidates={self.n_candidates};"
                " allowed: slate_size <= n_candidates"
            )
        if self.n_categories > self.n_items:
            raise ValueError(
                f"n_categories={self.n_categories} exceeds n_items={self.n_items};"
                " allowed: every category holds at least one item"
            )
        if self.nearest_share + self.popular_share > 1.0 + 1e-12:
            raise ValueError(
                f"nearest_share + popular_share = {self.nearest_share + self.popular_share}"
                " exceeds 1; allowed: at most 1 (the rest of the candidates are random)"
            )
        if self.n_popular > self.popular_pool_size:
            raise ValueError(
                f"popular_share * n_candidates = {self.n_popular} exceeds popular_pool_size="
                f"{self.popular_pool_size}; allowed: popular candidates <= popular_pool_size"
            )
        n_random = self.n_candidates - self.n_nearest - self.n_popular
        if self.n_nearest + self.popular_pool_size + n_random > self.n_items:
            raise ValueError(
                f"n_items={self.n_items} is too small for the retrieval pools: nearest"
                f" {self.n_nearest} + popular_pool_size {self.popular_pool_size} + random"
                f" {n_random} must be at most n_items"
            )
        shares = self.uplift_persuadable_share + self.uplift_sure_thing_share + self.uplift_sleeping_dog_share
        if shares > 1.0 + 1e-12:
            raise ValueError(
                f"uplift_persuadable_share + uplift_sure_thing_share + uplift_sleeping_dog_share = {shares:g}"
                " exceeds 1; allowed: at most 1 (lost causes are the rest)"
            )
        if self.n_interest_clusters * self.n_items > 50_000_000:
            raise ValueError(
                f"n_interest_clusters * n_items = {self.n_interest_clusters * self.n_items}"
                " exceeds 50,000,000 (the retrieval index would not fit in memory);"
                " lower n_interest_clusters"
            )

    # --- derived sizes (cheap properties so they never drift from the fields) -----------------
    @property
    def reports_churn_causes(self) -> bool:
        """Whether infos carry ``dropped_out`` and ``gap_churned`` (heterogeneous or latent-churn worlds only, so
        the default world's infos stay as they were)."""
        return (
            self.visit_rate_distribution != "lognormal"
            or self.dropout_distribution != "none"
            or math.isinf(self.churn_window_days)
        )

    @property
    def offers_on(self) -> bool:
        """Whether the coupon lever is on (``envs.offers``): actions may carry offers, infos carry offer keys."""
        return self.offers == "on"

    @property
    def n_nearest(self) -> int:
        return int(round(self.n_candidates * self.nearest_share))

    @property
    def n_popular(self) -> int:
        return min(int(round(self.n_candidates * self.popular_share)), self.n_candidates - self.n_nearest)

    # --- construction ------------------------------------------------------------------------------
    def replace(self, **overrides: Any) -> RetentionConfig:
        """A copy with fields replaced; unknown names raise ``ValueError`` with suggestions."""
        return dataclasses.replace(self, **_check_keys(overrides))

    def to_dict(self, nested: bool = False) -> dict[str, Any]:
        """Every field; the ``offers`` group only when one of its fields differs from its default, so a config
        without the coupon lever dumps and hashes exactly as before the lever existed."""
        flat = dataclasses.asdict(self)
        if all(flat[f.name] == f.default for f in OFFER_FIELDS):
            flat = {name: value for name, value in flat.items() if FIELDS[name].metadata["group"] != "offers"}
        if not nested:
            return flat
        out: dict[str, dict[str, Any]] = {}
        for f in dataclasses.fields(self):
            if f.name in flat:
                out.setdefault(f.metadata["group"], {})[f.name] = flat[f.name]
        return out

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict(nested=True), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: RetentionConfig | None = None) -> RetentionConfig:
        """Build from a flat or group-nested mapping; ``preset: NAME`` picks the base."""
        if not isinstance(data, Mapping):
            raise ValueError(f"config must be a mapping of field names to values, got {type(data).__name__}")
        data = dict(data)
        preset = data.pop("preset", None)
        if base is None:
            base = get_preset(preset if preset is not None else "default")
        elif preset is not None:
            raise ValueError("'preset' cannot be combined with an explicit base config")
        return base.replace(**flatten_groups(data))

    @classmethod
    def from_yaml(cls, path: str | Path) -> RetentionConfig:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} does not exist")
        data = load_yaml(path, source=f"config file {str(path)!r}")
        if not isinstance(data, Mapping):
            got = "an empty file" if data is None else short_repr(data)
            raise ValueError(f"config file {str(path)!r}: config must be a mapping of field names to values, got {got}")
        return cls.from_dict(data)

    @classmethod
    def describe(cls, config: RetentionConfig | None = None) -> str:
        """A table of every field: group, name, value (``config``'s, the default without one; ``*`` marks a value
        that differs from the default), allowed range, meaning."""
        lines = []
        for f in dataclasses.fields(cls):
            m = f.metadata
            value = f.default if config is None else getattr(config, f.name)
            shown = f"{value!s}{'*' if value != f.default else ''}"
            lines.append(f"{m['group']:<10} {f.name:<28} {shown:<10} {_allowed(m):<22} {m['doc']}")
        return "\n".join(lines)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(RetentionConfig)}
GROUPS: frozenset[str] = frozenset(f.metadata["group"] for f in FIELDS.values())
OFFER_FIELDS: tuple[dataclasses.Field, ...] = tuple(f for f in FIELDS.values() if f.metadata["group"] == "offers")


def _allowed(meta: Mapping[str, Any]) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    kind = "integer" if meta["integer"] else "number"
    lo = "(" if meta["lo_open"] else "["
    hi = ")" if meta["hi_open"] or meta["hi"] == _INF else "]"
    if meta["infinite"]:
        return f"{kind} in {lo}{meta['lo']:g}, {meta['hi']:g}{hi} or inf"

    def show(bound: float) -> str:
        return f"{bound:,}" if meta["integer"] and math.isfinite(bound) else f"{bound:g}"

    return f"{kind} in {lo}{show(meta['lo'])}, {show(meta['hi'])}{hi}"


def _check_field(f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    if meta["choices"]:
        if not isinstance(value, str) or value not in meta["choices"]:
            raise ValueError(f"config field {f.name!r} = {short_repr(value)} is not allowed; allowed: {_allowed(meta)}")
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(
            f"config field {f.name!r} = {short_repr(value)} has type {type(value).__name__}; allowed: {_allowed(meta)}"
        )
    if meta["integer"] and not isinstance(value, (int, np.integer)):
        raise ValueError(f"config field {f.name!r} = {short_repr(value)} is not an integer; allowed: {_allowed(meta)}")
    if meta["infinite"] and value == _INF:
        return
    if not math.isfinite(value):
        raise ValueError(f"config field {f.name!r} = {short_repr(value)} is not finite; allowed: {_allowed(meta)}")
    lo, hi = meta["lo"], meta["hi"]
    too_low = value <= lo if meta["lo_open"] else value < lo
    too_high = value >= hi if meta["hi_open"] else value > hi
    if too_low or too_high:
        raise ValueError(f"config field {f.name!r} = {short_repr(value)} is out of range; allowed: {_allowed(meta)}")


def _check_keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [k for k in overrides if k not in FIELDS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(str(k)[:100], FIELDS, n=3)
            hints.append(short_repr(k) + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise ValueError(
            f"unknown config key(s): {', '.join(hints)}; allowed keys are the fields of"
            " RetentionConfig (see `stickyrec config --describe`)"
        )
    return dict(overrides)


def flatten_groups(data: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``{group: {field: value}}`` as well as ``{field: value}``; check nested fields' groups."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in GROUPS and isinstance(value, Mapping):
            for name, v in value.items():
                if name in FIELDS and FIELDS[name].metadata["group"] != key:
                    raise ValueError(
                        f"config key {key}.{name}: field {name!r} belongs to group"
                        f" {FIELDS[name].metadata['group']!r}, not {key!r}"
                    )
                if name in flat:
                    raise ValueError(f"config key {short_repr(name)} given twice")
                flat[name] = v
        else:
            if key in flat:
                raise ValueError(f"config key {short_repr(key)} given twice")
            flat[key] = value
    return _check_keys(flat)  # unknown (or non-string) keys fail here, before they reach a ``**`` call


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # The default world with sessions shaped like UCI Online Shoppers Purchasing Intention's (15.5% of sessions buy,
    # median 18 product pages = impressions): purchase_bias and leave_base fitted by
    # ``python -m stickyrec.experiments.calibration.sessions --fit`` in a gamma/beta world (sessions.FITTED
    # ["gamma_beta"]). The base whose within-session fields ``stickyrec calibrate`` keeps.
    "online_shoppers": {"purchase_bias": -6.221, "leave_base": -3.331},
    # A store's year: ``online_shoppers`` with its shopper population calibrated to the Online Retail II example
    # (``stickyrec calibrate example:online_retail_ii --calibration-end 2011-06-30 --budget-seconds 1500 --out
    # results/calibration/online_retail_ii``, values rounded; standard errors in that folder's validation.json):
    # gamma visit rates and beta latent dropout after purchase sessions, no observed-gap churn (a customer leaves
    # only for good), a 365-day horizon.
    "online_retail": {
        "purchase_bias": -6.221,
        "leave_base": -3.331,
        "visit_rate_distribution": "gamma",
        "visit_rate_gamma_shape": 0.8549,
        "visit_rate_gamma_rate": 62.72,
        "dropout_distribution": "beta",
        "dropout_beta_a": 0.2747,
        "dropout_beta_b": 5.095,
        "dropout_after": "purchase_session",
        "churn_window_days": math.inf,
        "horizon_days": 365.0,
    },
    # A small world for tests and CI smoke runs: same dynamics, fewer items.
    "small": {
        "n_items": 300,
        "n_categories": 10,
        "n_candidates": 30,
        "slate_size": 5,
        "embedding_dim": 8,
        "n_interest_clusters": 32,
        "popular_pool_size": 40,
    },
}


def get_preset(name: str) -> RetentionConfig:
    """A named preset, or a preset file (a YAML path, e.g. the ``preset.yaml`` that ``stickyrec calibrate`` writes)."""
    if isinstance(name, str) and name.endswith((".yaml", ".yml")):
        return RetentionConfig.from_yaml(name)
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"unknown config preset {short_repr(name)}; allowed: {', '.join(sorted(PRESETS))}, or a preset YAML file"
        )
    return RetentionConfig(**PRESETS[name])


def make_config(config: RetentionConfig | str | Mapping[str, Any] | None = None, **overrides: Any) -> RetentionConfig:
    """Resolve what a user passed (object, preset name, YAML path, mapping, or nothing) plus overrides."""
    if config is None:
        base = get_preset("default")
    elif isinstance(config, RetentionConfig):
        base = config
    elif isinstance(config, str):
        base = RetentionConfig.from_yaml(config) if config.endswith((".yaml", ".yml")) else get_preset(config)
    elif isinstance(config, Mapping):
        base = RetentionConfig.from_dict(config)
    else:
        raise ValueError(
            f"config must be a RetentionConfig, a preset name, a YAML path or a mapping; got {type(config).__name__}"
        )
    return base.replace(**flatten_groups(overrides)) if overrides else base
