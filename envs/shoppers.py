"""The shoppers: latent state (what drives behaviour) and observable history (what agents see).

State is a set of arrays over a batch of B shoppers. ``ShopperState.arrive`` draws new shoppers into
chosen rows from their own random streams; ``observe`` writes the observable feature vector.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stickyrec.envs.catalog import Catalog, normalise_rows
from stickyrec.envs.config import RetentionConfig
from stickyrec.envs.rng import ShopperStreams
from stickyrec.envs.traits import draw_traits

# Observable shopper features, in order (the observation's ``shopper`` vector). Category blocks follow.
SHOPPER_FEATURES: tuple[str, ...] = (
    "days_since_last_visit",  # gap before the current session, in days (0 on the first visit)
    "log_visits",  # log(1 + sessions so far, this one included)
    "session_step",  # impressions already shown in this session
    "session_clicks",  # clicks in this session
    "log_clicks",  # log(1 + clicks over the shopper's life)
    "log_purchases",  # log(1 + purchases)
    "log_spend",  # log(1 + money spent)
    "horizon_elapsed",  # simulated day / horizon
    "recent_click_rating",  # mean public rating of recently clicked items (same recency weights), 0 before any click
)
RECENT_CLICKS_HALF_LIFE_DAYS = 7.0  # recency of the observable clicked-category history


def n_shopper_features(n_categories: int, embedding_dim: int) -> int:
    """Scalars, recent clicks per category, this session's impressions per category, and the direction (unit
    vector, zero before any click) of the recency-weighted sum of clicked items' embeddings: the platform
    knows what was clicked, and embeddings are public."""
    return len(SHOPPER_FEATURES) + 2 * n_categories + embedding_dim


@dataclasses.dataclass(eq=False)
class ShopperState:
    """Arrays over the batch. Latent fields drive behaviour; the rest is observable history."""

    # latent
    interest: np.ndarray  # (B, d) float32 unit rows, theta (float32: the step's embedding gather is float32)
    satisfaction: np.ndarray  # (B,) in [0, 1]
    fatigue: np.ndarray  # (B, C) per-category boredom
    price_sensitivity: np.ndarray  # (B,) beta
    visit_rate: np.ndarray  # (B,) lambda, per day
    dropout_probability: np.ndarray  # (B,) p: latent dropout after a qualifying session (0 unless that option is on)
    patience: np.ndarray  # (B,) shifts the leave hazard's logit
    # observable history
    day: np.ndarray  # (B,) simulated time of the current session, in days (float)
    days_since_last_visit: np.ndarray  # (B,)
    visits: np.ndarray  # (B,) int, sessions so far including this one
    session_step: np.ndarray  # (B,) int
    session_clicks: np.ndarray  # (B,) int
    clicks: np.ndarray  # (B,) int
    purchases: np.ndarray  # (B,) int
    spend: np.ndarray  # (B,)
    recent_click_rating_sum: np.ndarray  # (B,) sum of clicked items' ratings, decayed like the recent clicks
    # (B,) clicks, decayed likewise: the row sum of recent_category_clicks, kept as its own column so that an
    # observation does not pay a (B, C) reduction every step
    recent_click_count: np.ndarray
    recent_click_embedding: np.ndarray  # (B, d), sum of clicked items' embeddings, decayed likewise
    # The observation's shopper vector (B, F) float32. Its per-category blocks and the click direction are
    # kept *in* it (the views below), so producing an observation writes only the scalar columns.
    features: np.ndarray
    recent_category_clicks: np.ndarray  # view (B, C): clicks per category, decayed with RECENT_CLICKS_HALF_LIFE_DAYS
    session_category_impressions: np.ndarray  # view (B, C): items shown per category this session
    recent_click_direction: np.ndarray  # view (B, d): recent_click_embedding scaled to unit length (0 if none)
    # bookkeeping
    alive: np.ndarray  # (B,) bool: not churned and not past the horizon
    session_start_purchases: np.ndarray  # (B,) int: purchases before this session (a purchase session exceeds it)

    @classmethod
    def empty(cls, batch_size: int, config: RetentionConfig) -> ShopperState:
        b, c, d = batch_size, config.n_categories, config.embedding_dim
        z = np.zeros
        n = len(SHOPPER_FEATURES)
        features = z((b, n_shopper_features(c, d)), dtype=np.float32)
        return cls(
            features=features,
            recent_category_clicks=features[:, n : n + c],
            session_category_impressions=features[:, n + c : n + 2 * c],
            recent_click_direction=features[:, n + 2 * c :],
            interest=z((b, d), dtype=np.float32),
            satisfaction=z(b),
            fatigue=z((b, c)),
            price_sensitivity=z(b),
            visit_rate=z(b),
            dropout_probability=z(b),
            patience=z(b),
            day=z(b),
            days_since_last_visit=z(b),
            visits=z(b, dtype=np.int64),
            session_step=z(b, dtype=np.int64),
            session_clicks=z(b, dtype=np.int64),
            clicks=z(b, dtype=np.int64),
            purchases=z(b, dtype=np.int64),
            spend=z(b),
            recent_click_rating_sum=z(b),
            recent_click_count=z(b),
            recent_click_embedding=z((b, d)),
            alive=z(b, dtype=bool),
            session_start_purchases=z(b, dtype=np.int64),
        )

    _VIEWS = ("recent_category_clicks", "session_category_impressions", "recent_click_direction")

    def __getstate__(self) -> dict:
        """Pickle without the views: they are re-made on load so they still share ``features``' memory."""
        return {k: v for k, v in self.__dict__.items() if k not in self._VIEWS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        c = self.fatigue.shape[1]
        n = len(SHOPPER_FEATURES)
        self.recent_category_clicks = self.features[:, n : n + c]
        self.session_category_impressions = self.features[:, n + c : n + 2 * c]
        self.recent_click_direction = self.features[:, n + 2 * c :]

    def arrive(self, rows: np.ndarray, streams: ShopperStreams, config: RetentionConfig, catalog: Catalog) -> None:
        """New shoppers in ``rows``: latent traits drawn from their streams, history cleared, day 0."""
        d = config.embedding_dim
        favourite = np.minimum(
            (streams.uniform(rows, 1)[:, 0] * catalog.n_categories).astype(np.int64), catalog.n_categories - 1
        )
        z = streams.normal(rows, d + 4)
        self.interest[rows] = normalise_rows(
            config.interest_focus * np.take(catalog.centroids, favourite, axis=0) + z[:, :d] / np.sqrt(d)
        )
        self.satisfaction[rows] = np.clip(
            config.satisfaction_initial_mean + config.satisfaction_initial_sd * z[:, d], 0.0, 1.0
        )
        self.price_sensitivity[rows] = config.price_sensitivity_median * np.exp(
            config.price_sensitivity_sd * z[:, d + 1]
        )
        self.patience[rows] = config.patience_sd * z[:, d + 3]
        self.visit_rate[rows], self.dropout_probability[rows] = draw_traits(
            rows, streams, config, config.visit_rate_median * np.exp(config.visit_rate_sd * z[:, d + 2])
        )
        for name in (
            "fatigue",
            "day",
            "days_since_last_visit",
            "session_step",
            "session_clicks",
            "clicks",
            "purchases",
            "session_start_purchases",
            "spend",
            "recent_category_clicks",
            "session_category_impressions",
            "recent_click_embedding",
            "recent_click_direction",
            "recent_click_rating_sum",
            "recent_click_count",
        ):  # blocks of features, zeroed
            getattr(self, name)[rows] = 0
        self.visits[rows] = 1
        self.alive[rows] = True

    def observe(self, horizon_days: float, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Refresh the scalar columns of ``features`` for ``rows`` (the blocks are live) and return it."""
        out = self.features
        out[rows, 0] = self.days_since_last_visit[rows]
        out[rows, 1] = np.log1p(self.visits[rows])
        out[rows, 2] = self.session_step[rows]
        out[rows, 3] = self.session_clicks[rows]
        out[rows, 4] = np.log1p(self.clicks[rows])
        out[rows, 5] = np.log1p(self.purchases[rows])
        out[rows, 6] = np.log1p(self.spend[rows])
        out[rows, 7] = self.day[rows] / horizon_days
        count = self.recent_click_count[rows]
        out[rows, 8] = np.where(count > 0, self.recent_click_rating_sum[rows] / np.maximum(count, 1e-12), 0.0)
        return out

    def observe_one(self, horizon_days: float) -> np.ndarray:
        """``observe`` for a batch of one: the (F,) float32 row, copied, with fewer numpy calls."""
        out = self.features[0].copy()
        logs = np.log1p([self.visits[0], self.clicks[0], self.purchases[0], self.spend[0]]).tolist()
        out[: len(SHOPPER_FEATURES)] = (
            self.days_since_last_visit[0],
            logs[0],
            self.session_step[0],
            self.session_clicks[0],
            logs[1],
            logs[2],
            logs[3],
            self.day[0] / horizon_days,
            self.recent_click_rating_sum[0] / self.recent_click_count[0] if self.recent_click_count[0] > 0 else 0.0,
        )
        return out
