"""The simulation engine: B shoppers stepped at once with numpy (the hot path behind every env).

``RetentionSimulator.step(slate)`` takes ``(B, k)`` candidate indices and returns a ``StepResponse`` of
arrays over the batch. It composes the choice model (``envs.choice``), the response dynamics
(``envs.dynamics``) and candidate retrieval (``envs.retrieval``); all randomness comes from per-shopper
counter-based streams (``envs.rng``), so a shopper's trajectory never depends on who else is in the batch.

Order of events for one impression (the phases of ``step``: ``_show`` and the choice, ``_purchase``, ``_respond``,
``_leave``, ``_end_sessions``; the one-shopper kernel ``step_one`` mirrors them on Python scalars):
  1. the shopper examines the slate and clicks one item or none (multinomial logit over the click utility
     ``envs.choice.click_utility``);
  2. a click converts to a purchase with probability sigmoid(g0 + g1 theta.e + g2 q - beta log p);
  3. fatigue of shown and clicked categories rises; satisfaction moves toward the consumed quality (or
     shrinks on no click); interest drifts toward the clicked item;
  4. she leaves the session with a hazard that rises with the fatigue she brought to the slate (the mean
     over its items' categories) and falls with satisfaction;
  5. if she left: she drops out for good (the latent event) with hazard sigmoid(c0 - c1 s), or, with latent
     dropout on (``envs.traits``), with her own probability p_i after a qualifying session; else the next visit
     comes after an exponential gap of rate lambda exp(psi s), which is churn if longer than the churn window
     (the observed rule; never with an infinite window) and the end of the episode (truncation) if it passes the
     horizon. On return, fatigue and satisfaction relax over the gap and a new candidate set is retrieved.
With the coupon lever on (``envs.offers``), offers shift the purchase, leave and churn logits and the return rate
of 2, 4 and 5 by shopper type, with the same uniforms.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from stickyrec.envs import choice, dynamics
from stickyrec.envs.catalog import Catalog, make_catalog, normalise_rows
from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.offers import OfferState
from stickyrec.envs.retrieval import CandidateRetriever
from stickyrec.envs.rewards import RewardMix
from stickyrec.envs.rng import ShopperStreams
from stickyrec.envs.shoppers import RECENT_CLICKS_HALF_LIFE_DAYS, ShopperState
from stickyrec.envs.traits import churn_events, session_end_uniforms


class StepResponse(NamedTuple):
    """What happened on one impression, per shopper (arrays over the batch)."""

    clicked_position: np.ndarray  # int64, slate position clicked, -1 for none
    clicked_item: np.ndarray  # int64, catalog id clicked, -1 for none
    purchased: np.ndarray  # bool
    revenue: np.ndarray  # float64, price * margin on a purchase
    session_ended: np.ndarray  # bool
    returned: np.ndarray  # bool: the session ended and the shopper came back (a return visit)
    return_gap_days: np.ndarray  # float64, gap to the return visit (0 unless returned)
    churned: np.ndarray  # bool: the episode ends here (terminated): dropped_out or gap_churned
    horizon_reached: np.ndarray  # bool: next visit falls past the horizon (truncated)
    day: np.ndarray  # int64, simulated day of this impression
    dropped_out: np.ndarray  # bool: the latent event, she has left for good (churn hazard or latent dropout)
    gap_churned: np.ndarray  # bool: the observed rule, her next visit is more than churn_window_days away
    reward: np.ndarray  # float64, the config's weighted mix of the above (``envs.rewards.RewardMix``)


class ShownSlate(NamedTuple):
    """The slate as the shoppers see it (arrays (B, k)): what ``step``'s phases share."""

    items: np.ndarray  # catalog ids
    categories: np.ndarray
    category_at: np.ndarray  # flat indices into (B, C) arrays
    fatigue: np.ndarray  # the fatigue each shopper brings to each item's category (before this impression)
    relevance: np.ndarray  # theta . e (float64 of float32 products)
    logits: np.ndarray  # click_utility / tau + log eta_j


class RetentionSimulator:
    """Arrays over B shopper slots; ``reset_rows`` draws new shoppers, ``step`` shows them slates."""

    def __init__(self, config: RetentionConfig, batch_size: int, catalog: Catalog | None = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.config = config
        self.batch_size = int(batch_size)
        self.catalog = catalog if catalog is not None else make_catalog(config)
        self.retriever = CandidateRetriever(config, self.catalog)
        self.state = ShopperState.empty(self.batch_size, config)
        self.streams = ShopperStreams(np.zeros(self.batch_size, dtype=np.uint64))
        # int32 ids and float32 session utilities: these (B, M) arrays are the step's largest working set, and
        # halving them measurably speeds every gather (catalog ids are far below 2**31)
        self.candidate_ids = np.zeros((self.batch_size, config.n_candidates), dtype=np.int32)
        self.candidate_utility = np.zeros((self.batch_size, config.n_candidates), dtype=np.float32)
        self.logit_bound = np.zeros(self.batch_size)
        self.features = self.state.features  # (B, F) float32: the observation's shopper vectors
        self._rows = np.arange(self.batch_size)
        self._n_finished = self.batch_size  # rows whose shopper churned or reached the horizon (or none yet)
        # (B, k) tables rather than (B, 1) columns: numpy's broadcast along a short last axis costs several
        # times a plain elementwise pass, and these are added every step
        k = config.slate_size
        self._candidate_offsets = np.repeat(self._rows[:, None] * config.n_candidates, k, axis=1)
        self._category_offsets = np.repeat(self._rows[:, None] * config.n_categories, k, axis=1)
        self._slate_offsets = self._rows * k  # row starts in flat (B, k) arrays
        self._log_examination = choice.examination_log_weights(config.slate_size, config.position_decay)
        self._log_examination_list = self._log_examination.tolist()
        self._log_examination_table = np.tile(self._log_examination, (self.batch_size, 1))
        self._embedding32 = self.catalog.embedding.astype(np.float32)
        self._inverse_temperature = 1.0 / config.temperature
        self._no_click_logit = config.no_click_utility / config.temperature
        self._appeal_utility = config.appeal_weight * self.catalog.appeal
        self.reward = RewardMix.from_config(config)  # the config's ``reward_*`` fields (``envs.rewards``)
        self._response_reward = self.reward.response_reward(self.catalog)
        # the coupon lever (``envs.offers``): None with ``offers: off``, so the default step runs as before
        self.offers = OfferState(config, self.batch_size) if config.offers_on else None

    # --- arrivals --------------------------------------------------------------------------------
    def reset_rows(self, rows: np.ndarray, keys: np.ndarray | None = None) -> None:
        """New shoppers in ``rows``; with ``keys``, their random streams restart from those keys."""
        rows = np.asarray(rows, dtype=np.int64)
        if keys is not None:
            self.streams.keys[rows] = keys
            self.streams.counters[rows] = 0
        self.state.arrive(rows, self.streams, self.config, self.catalog)
        if self.offers is not None:
            self.offers.arrive(rows, keys, self.state)
        self._n_finished = self.batch_size - int(np.count_nonzero(self.state.alive))
        self._retrieve(rows)

    def _retrieve(self, rows: np.ndarray) -> None:
        uniform = self.streams.uniform(rows, self.retriever.uniforms_per_call)
        ids = self.retriever.retrieve(np.take(self.state.interest, rows, axis=0), uniform)
        self.candidate_ids[rows] = ids
        # The session-constant part of each candidate's click utility, stored as float32 (the values the step adds).
        utility = choice.session_utility(
            np.take(self._appeal_utility, ids),
            np.take(self.catalog.log_relative_price, ids),
            np.take(self.state.price_sensitivity, rows)[:, None],
        ).astype(np.float32)
        self.candidate_utility[rows] = utility
        # An upper bound on this session's item logits (relevance <= 1, fatigue >= 0, log eta <= 0): the
        # sampler normalises by it instead of a per-step row max. Same probabilities, no overflow.
        self.logit_bound[rows] = np.maximum(
            (1.0 + utility.max(axis=1)) * self._inverse_temperature, self._no_click_logit
        )

    # --- observation -----------------------------------------------------------------------------
    def update_features(self, rows: np.ndarray | slice = slice(None)) -> None:
        """Refresh ``features`` (B, F) float32 from the state, for all rows or the given ones."""
        self.state.observe(self.config.horizon_days, rows)

    def observe(self) -> dict[str, np.ndarray]:
        """A fresh observation dict: candidate item ids and observable shopper features (float32)."""
        self.update_features()
        return {"candidate_ids": self.candidate_ids.copy(), "shopper": self.features.copy()}

    # --- the slate -------------------------------------------------------------------------------
    def check_slate(self, slate) -> np.ndarray:
        """The slate as a (B, k) int64 array, or ``ValueError`` naming what is wrong (never a silent fix)."""
        return self._check_slate(slate)[0]

    def _check_slate(self, slate) -> tuple[np.ndarray, np.ndarray]:
        """The checked slate and its flat indices into (B, M) arrays (reused by ``step``)."""
        k, m = self.config.slate_size, self.config.n_candidates
        array = np.asarray(slate)
        if not array.flags.c_contiguous:  # e.g. argsort(...)[:, :k]: one copy beats a dozen strided passes
            array = np.ascontiguousarray(array)
        if array.shape != (self.batch_size, k):
            raise ValueError(
                f"slate has shape {array.shape}; allowed: ({self.batch_size}, {k}) candidate"
                f" indices (batch size, slate_size)"
            )
        if array.dtype.kind not in "iu":
            raise ValueError(
                f"slate must hold integer candidate indices, got dtype {array.dtype}; allowed:"
                " an integer array (convert scores with a wrapper such as ScoreSlateAction)"
            )
        if self.batch_size == 1:  # one shopper: plain Python is several times cheaper than numpy calls
            values = array[0].tolist()
            low, high = min(values), max(values)
            if low >= 0 and high < m and len(set(values)) == k:
                array = array.astype(np.int64, copy=False)
                return array, array  # with one row, the flat indices are the slate itself
        elif array.astype(np.int64, copy=False).view(np.uint64).max() >= m:  # negatives wrap to huge values
            low, high = array.min(), array.max()
        else:
            low, high = 0, 0
        if low < 0 or high >= m:
            bad = low if low < 0 else high
            raise ValueError(f"slate index {int(bad)} is out of range; allowed: 0..{m - 1} (n_candidates={m})")
        # Distinctness without a sort: mark each pick in a (B, M) grid and count the marks.
        picked = self._candidate_offsets + array
        marks = np.zeros(self.batch_size * m, dtype=bool)
        marks[picked] = True
        if np.count_nonzero(marks) != array.size:
            ordered = np.sort(array, axis=1)
            row = int(np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))[0])
            raise ValueError(
                f"slate for shopper {row} repeats a candidate: {array[row].tolist()}; allowed: {k} distinct indices"
            )
        return array.astype(np.int64, copy=False), picked

    # --- one impression: the batched step --------------------------------------------------------
    def _show(self, picked: np.ndarray) -> ShownSlate:
        """The slate at flat indices ``picked`` (B, k) as the shoppers see it, with its item logits."""
        cat, st = self.catalog, self.state
        # Gathers through flat indices: much cheaper than take_along_axis for (B, k) picks.
        items = np.take(self.candidate_ids, picked)  # (B, k) catalog ids
        categories = np.take(cat.category, items)
        category_at = self._category_offsets + categories  # flat indices into (B, C) arrays
        fatigue = np.take(st.fatigue, category_at)  # the fatigue she brings to this slate
        # float32 gather: the (B, k, d) embedding block is the step's largest memory read
        relevance = np.matmul(np.take(self._embedding32, items, axis=0), st.interest[:, :, None])[:, :, 0].astype(
            np.float64
        )
        logits = choice.click_utility(
            relevance, np.take(self.candidate_utility, picked), fatigue, self.config.fatigue_weight
        )
        logits *= self._inverse_temperature  # u / tau + log eta_j, in place to spare passes
        logits += self._log_examination_table
        return ShownSlate(items, categories, category_at, fatigue, relevance, logits)

    def click_probabilities(self, slate) -> np.ndarray:
        """The true (B, k + 1) click probabilities of showing ``slate`` now; the last column is no click.

        Reads latent state and changes nothing: for oracles and analysis (e.g. the AUC ceiling of a click
        model), never for agents.
        """
        logits = self._show(self._check_slate(slate)[1]).logits
        return choice.choice_probabilities(
            np.concatenate([logits, np.full((self.batch_size, 1), self._no_click_logit)], axis=1)
        )

    def step(self, slate, offer=None, offer_between=None) -> StepResponse:
        """Show every shopper her slate: choice, purchase, the state's response, then the session's end.

        ``offer``, ``offer_between``: (B,) discounts (NaN: none) when the coupon lever is on (``envs.offers``);
        this step's offer outcomes are then ``self.offers.last``."""
        slate, picked = self._check_slate(slate)  # picked: flat indices into (B, M) arrays
        k, st, offers = self.config.slate_size, self.state, self.offers
        if offers is not None:
            offers.begin_step(offer, offer_between, st.alive)
        elif offer is not None or offer_between is not None:
            raise ValueError("this env's config has offers: off; allowed: no offer (set offers: on for the lever)")
        shown = self._show(picked)
        uniform = self.streams.uniform(slice(None), 3)  # choice, purchase, leave
        position = choice.sample_choice(shown.logits, self._no_click_logit, uniform[:, 0], self.logit_bound)
        clicked = position < k
        if self._n_finished:
            clicked &= st.alive
        flat_at = self._slate_offsets + np.minimum(position, k - 1)  # (B,) flat indices into (B, k) arrays
        item = np.take(shown.items, flat_at)  # np.take beats [rows, at]
        purchased, revenue, quality = self._purchase(clicked, item, np.take(shown.relevance, flat_at), uniform[:, 1])
        self._respond(shown, clicked, flat_at, item, purchased, revenue, quality)
        session_ended = self._leave(shown.fatigue, clicked, uniform[:, 2])
        if offers is not None:
            offers.settle(purchased, np.take(self.catalog.price, item), revenue, session_ended)
        day = np.floor(st.day).astype(np.int64)  # the day of this impression, before a return moves the clock

        # returned, churned, horizon_reached, dropped_out, gap_churned
        flags = np.zeros((5, self.batch_size), dtype=bool)
        gap = np.zeros(self.batch_size)
        ended = np.flatnonzero(session_ended)
        if ended.size:
            self._end_sessions(ended, flags, gap)
        response = StepResponse(
            clicked_position=np.where(clicked, position, -1),
            clicked_item=np.where(clicked, item, -1),
            purchased=purchased,
            revenue=revenue,
            session_ended=session_ended,
            returned=flags[0],
            return_gap_days=gap,
            churned=flags[1],
            horizon_reached=flags[2],
            day=day,
            dropped_out=flags[3],
            gap_churned=flags[4],
            reward=None,
        )
        return StepResponse(*response[:-1], self._response_reward(response))

    def _purchase(self, clicked, item, relevance, uniform):
        """Whether each click converts (``dynamics.purchase_probability``); the revenue and the item quality."""
        cfg, cat = self.config, self.catalog
        quality = np.take(cat.quality, item)
        bias = cfg.purchase_bias if self.offers is None else cfg.purchase_bias + self.offers.purchase_lift()
        purchased = clicked & (
            uniform
            < dynamics.purchase_probability(
                relevance,
                quality,
                np.take(cat.log_relative_price, item),
                self.state.price_sensitivity,
                bias,
                cfg.purchase_relevance,
                cfg.purchase_quality,
            )
        )
        revenue = np.where(purchased, np.take(cat.price, item) * cfg.margin, 0.0)
        return purchased, revenue, quality

    def _respond(self, shown: ShownSlate, clicked, flat_at, item, purchased, revenue, quality) -> None:
        """The state's response to the impression: fatigue, click history, satisfaction, interest, counters."""
        cfg, st = self.config, self.state
        alive = st.alive
        # fatigue and this session's impressions per category (a histogram over the batch, no loop)
        shown_count = np.bincount(shown.category_at.ravel(), minlength=self.batch_size * cfg.n_categories).reshape(
            st.fatigue.shape
        )
        if self._n_finished:
            shown_count *= alive[:, None]
        st.fatigue += cfg.fatigue_per_impression * shown_count
        # a float32 copy first: the counts block is a strided float32 view of the feature buffer, and a
        # same-dtype add into it is several times faster than a mixed int64 -> float32 one (counts are exact)
        st.session_category_impressions += shown_count.astype(np.float32)
        clickers = np.flatnonzero(clicked)
        clicked_embedding = self._record_clicks(shown, clickers, np.take(flat_at, clickers), np.take(item, clickers))

        satisfaction = dynamics.update_satisfaction(
            st.satisfaction,
            clicked,
            purchased,
            quality,
            cfg.satisfaction_click_rate,
            cfg.satisfaction_purchase_rate,
            cfg.satisfaction_no_click_drop,
        )
        st.satisfaction = np.where(alive, satisfaction, st.satisfaction) if self._n_finished else satisfaction
        if clickers.size:
            st.interest[clickers] = dynamics.drift_interest(
                np.take(st.interest, clickers, axis=0), clicked_embedding, cfg.interest_drift
            )
        st.clicks += clicked
        st.session_clicks += clicked
        st.purchases += purchased
        st.spend += revenue

    def _record_clicks(self, shown: ShownSlate, clickers, clicked_slot, clicked_items) -> np.ndarray:
        """Fatigue per click and the click history of the shoppers who clicked; the clicked items' embeddings.

        ``clicked_slot`` is the flat (B, k) index of each clicker's clicked slate position. Row gathers use np.take
        (several times faster than fancy indexing for these shapes); each ``x[rows] = f(np.take(x, rows))`` is the
        same arithmetic as ``x[rows] op= ...`` (rows are distinct).
        """
        cat, st = self.catalog, self.state
        clicked_category = np.take(shown.categories, clicked_slot)
        clicked_at = np.take(shown.category_at, clicked_slot)  # flat (B, C) index of the clicked category
        np.put(st.fatigue, clicked_at, np.take(st.fatigue, clicked_at) + self.config.fatigue_per_click)
        st.recent_category_clicks[clickers, clicked_category] += 1.0  # a strided view: fancy indexing is right
        st.recent_click_rating_sum[clickers] = np.take(st.recent_click_rating_sum, clickers) + np.take(
            cat.rating, clicked_items
        )
        st.recent_click_count[clickers] = np.take(st.recent_click_count, clickers) + 1.0
        clicked_embedding = np.take(cat.embedding, clicked_items, axis=0)
        recent = np.take(st.recent_click_embedding, clickers, axis=0)
        recent += clicked_embedding
        st.recent_click_embedding[clickers] = recent
        st.recent_click_direction[clickers] = normalise_rows(recent)
        return clicked_embedding

    def _leave(self, slate_fatigue, clicked, uniform) -> np.ndarray:
        """Whether each shopper's session ends after this impression: the leave hazard, or the step cap."""
        cfg, st = self.config, self.state
        # einsum's row sum is row-independent, so the one-shopper kernel reproduces it exactly
        leave = dynamics.leave_probability(
            np.einsum("bj->b", slate_fatigue) / cfg.slate_size,
            st.satisfaction,
            clicked,
            st.patience if self.offers is None else st.patience - self.offers.leave_shift(),
            cfg.leave_base,
            cfg.leave_fatigue,
            cfg.leave_satisfaction,
            cfg.leave_no_click,
        )
        st.session_step += st.alive
        session_ended = (uniform < leave) | (st.session_step >= cfg.max_session_steps)
        if self._n_finished:
            session_ended &= st.alive
        return session_ended

    # --- one impression: the one-shopper kernel --------------------------------------------------
    def step_one(self, slate) -> StepResponse:
        """``step`` for a batch of one shopper, with Python scalars in the response.

        The same model and the same formulas in the same phases (``choice.click_utility`` and the ``dynamics``
        functions are called with scalars), but the per-shopper chain runs on Python floats instead of length-1
        arrays, which makes the single env several times faster. Every arithmetic operation happens in the same
        order as in ``step``, so the numbers are identical; ``tests/test_determinism.py`` checks it against the
        batched path and ``tests/test_choice.py`` its choices against the click-utility function.
        """
        if self.batch_size != 1 or self.offers is not None:
            raise ValueError(f"step_one needs one shopper and offers: off; this simulator has {self.batch_size}")
        slate = self._check_slate(slate)[0][0]
        if not self.state.alive[0]:
            raise RuntimeError("this shopper's episode has ended; reset before stepping")
        k = self.config.slate_size
        items = self.candidate_ids[0][slate]
        category_array = self.catalog.category[items]
        slate_fatigue = self.state.fatigue[0][category_array]  # before this impression's update, as in ``step``
        relevance, logits = self._show_one(slate, items, slate_fatigue)
        u_choice, u_purchase, u_leave = self.streams.uniform_one(3)
        position = self._choose_one(logits, u_choice)
        clicked = position < k
        at = min(position, k - 1)
        item = items.tolist()[at]
        purchased, revenue, quality = self._purchase_one(clicked, item, relevance[at], u_purchase)
        satisfaction = self._respond_one(category_array.tolist(), clicked, at, items, purchased, revenue, quality)
        session_ended = self._leave_one(slate_fatigue, satisfaction, clicked, u_leave)
        day = math.floor(self.state.day[0])
        flags, gap = self._end_one() if session_ended else ((False,) * 5, 0.0)
        returned, churned, horizon_reached, dropped_out, gap_churned = flags
        response = StepResponse(
            clicked_position=position if clicked else -1,
            clicked_item=item if clicked else -1,
            purchased=purchased,
            revenue=float(revenue),
            session_ended=session_ended,
            returned=returned,
            return_gap_days=gap,
            churned=churned,
            horizon_reached=horizon_reached,
            day=day,
            dropped_out=dropped_out,
            gap_churned=gap_churned,
            reward=None,
        )
        return StepResponse(*response[:-1], float(self._response_reward(response)))

    def _show_one(self, slate, items, slate_fatigue) -> tuple[list[float], list[float]]:
        """``_show`` for one shopper: relevance and item logits as Python floats."""
        relevance = np.matmul(np.take(self._embedding32, items[None], axis=0), self.state.interest[:, :, None])[
            0, :, 0
        ].tolist()
        session_part = self.candidate_utility[0][slate].tolist()
        fatigue = slate_fatigue.tolist()
        w_f, inv_tau, log_eta = self.config.fatigue_weight, self._inverse_temperature, self._log_examination_list
        click_utility = choice.click_utility
        logits = [
            click_utility(relevance[j], session_part[j], fatigue[j], w_f) * inv_tau + log_eta[j]
            for j in range(len(relevance))
        ]
        return relevance, logits

    def _choose_one(self, logits: list[float], uniform: float) -> int:
        """``choice.sample_choice`` for one shopper: the same running sum of the same weights."""
        top = float(self.logit_bound[0])
        cdf, running = [], 0.0
        for weight in np.exp([x - top for x in logits]).tolist():
            running += weight
            cdf.append(running)
        threshold = uniform * (running + float(np.exp(self._no_click_logit - top)))
        return sum(value <= threshold for value in cdf)

    def _purchase_one(self, clicked: bool, item: int, relevance: float, uniform: float):
        cfg, cat = self.config, self.catalog
        quality = cat.quality[item]
        purchased = clicked and bool(
            uniform
            < dynamics.purchase_probability(
                relevance,
                quality,
                cat.log_relative_price[item],
                self.state.price_sensitivity[0],
                cfg.purchase_bias,
                cfg.purchase_relevance,
                cfg.purchase_quality,
            )
        )
        revenue = float(cat.price[item] * cfg.margin) if purchased else 0.0
        return purchased, revenue, quality

    def _respond_one(self, categories: list[int], clicked: bool, at: int, items, purchased, revenue, quality) -> float:
        """``_respond`` for one shopper; returns her new satisfaction."""
        cfg, cat, st = self.config, self.catalog, self.state
        fatigue = st.fatigue[0]
        fatigue_now = fatigue.tolist()
        shown: dict[int, int] = {}
        for c in categories:
            shown[c] = shown.get(c, 0) + 1
        impressions = st.session_category_impressions[0]
        for c, count in shown.items():
            fatigue[c] = fatigue_now[c] + cfg.fatigue_per_impression * count
            impressions[c] += count
        if clicked:
            item, category = int(items[at]), categories[at]
            fatigue[category] += cfg.fatigue_per_click
            st.recent_category_clicks[0, category] += 1.0
            st.recent_click_rating_sum[0] += cat.rating[item]
            st.recent_click_count[0] += 1.0
            st.recent_click_embedding[0] += cat.embedding[item]
            st.recent_click_direction[:1] = normalise_rows(st.recent_click_embedding[:1])
        satisfaction = float(
            dynamics.update_satisfaction(
                float(st.satisfaction[0]),
                clicked,
                purchased,
                float(quality),
                cfg.satisfaction_click_rate,
                cfg.satisfaction_purchase_rate,
                cfg.satisfaction_no_click_drop,
            )
        )
        st.satisfaction[0] = satisfaction
        if clicked:
            st.interest[:] = dynamics.drift_interest(st.interest, cat.embedding[items[at : at + 1]], cfg.interest_drift)
        st.clicks[0] += clicked
        st.session_clicks[0] += clicked
        st.purchases[0] += purchased
        st.spend[0] += revenue
        return satisfaction

    def _leave_one(self, slate_fatigue, satisfaction: float, clicked: bool, uniform: float) -> bool:
        cfg, st = self.config, self.state
        mean_fatigue = float(np.einsum("bj->b", slate_fatigue[None])[0]) / cfg.slate_size
        leave = dynamics.leave_probability(
            mean_fatigue,
            satisfaction,
            clicked,
            float(st.patience[0]),
            cfg.leave_base,
            cfg.leave_fatigue,
            cfg.leave_satisfaction,
            cfg.leave_no_click,
        )
        st.session_step[0] += 1
        return bool(uniform < leave) or int(st.session_step[0]) >= cfg.max_session_steps

    def _end_one(self) -> tuple[tuple[bool, ...], float]:
        """``_end_sessions`` for the one shopper: (returned, churned, horizon_reached, dropped_out, gap_churned),
        and the gap in days."""
        flags = np.zeros((5, 1), dtype=bool)
        gaps = np.zeros(1)
        self._end_sessions(np.zeros(1, dtype=np.int64), flags, gaps)
        return tuple(bool(f) for f in flags[:, 0]), float(gaps[0])

    def _end_sessions(self, ended, flags, gap) -> None:
        """Draw the gap and churn for shoppers whose session ended; start the next session for returners.

        ``flags`` (5, B): returned, churned, horizon_reached, dropped_out, gap_churned, set in the ``ended`` columns.
        """
        cfg, st = self.config, self.state
        uniform = self.streams.uniform(ended, session_end_uniforms(cfg))  # gap, churn (, latent dropout)
        satisfaction = np.take(st.satisfaction, ended)
        visit_rate, churn_shift = np.take(st.visit_rate, ended), 0.0
        if self.offers is not None:  # between-visits offers and contacts (``envs.offers``)
            factor, churn_shift = self.offers.end_sessions(ended)
            visit_rate = visit_rate * factor
        gap_days = dynamics.return_gap_days(
            dynamics.return_rate(visit_rate, satisfaction, cfg.return_satisfaction_weight),
            uniform[:, 0],
            cfg.min_return_gap_days,
        )
        purchase_session = np.take(st.purchases, ended) > np.take(st.session_start_purchases, ended)
        dropped_out, gap_churned = churn_events(
            uniform, satisfaction, gap_days, np.take(st.dropout_probability, ended), purchase_session, cfg, churn_shift
        )
        gone = dropped_out | gap_churned
        next_day = np.take(st.day, ended) + gap_days
        past_horizon = ~gone & (next_day >= cfg.horizon_days)
        back = ~gone & ~past_horizon
        flags[1, ended] = gone
        flags[2, ended] = past_horizon
        flags[3, ended] = dropped_out
        flags[4, ended] = gap_churned
        finished = ended[gone | past_horizon]
        st.alive[finished] = False
        self._n_finished += finished.size

        rows, g = ended[back], gap_days[back]
        flags[0, rows] = True
        gap[rows] = g
        st.day[rows] = next_day[back]
        st.days_since_last_visit[rows] = g
        st.visits[rows] += 1
        st.session_step[rows] = 0
        st.session_clicks[rows] = 0
        st.session_start_purchases[rows] = np.take(st.purchases, rows)
        st.session_category_impressions[rows] = 0.0
        # np.take row gathers (fast) for the arrays that own their memory; the strided views keep fancy indexing
        fatigue_left = dynamics.decay_factor(g, cfg.fatigue_half_life_days)[:, None]
        st.fatigue[rows] = np.take(st.fatigue, rows, axis=0) * fatigue_left
        recency = dynamics.decay_factor(g, RECENT_CLICKS_HALF_LIFE_DAYS)[:, None]
        st.recent_category_clicks[rows] *= recency
        st.recent_click_embedding[rows] = np.take(st.recent_click_embedding, rows, axis=0) * recency
        st.recent_click_rating_sum[rows] *= recency[:, 0]
        st.recent_click_count[rows] *= recency[:, 0]
        st.satisfaction[rows] = dynamics.revert_satisfaction(
            st.satisfaction[rows], g, cfg.satisfaction_baseline, cfg.satisfaction_memory_days
        )
        if rows.size:
            self._retrieve(rows)
