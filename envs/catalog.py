"""The item catalog: categories, embeddings, price, quality, appeal, and what a platform can observe.

The catalog is drawn once from ``config.catalog_seed`` and shared by every shopper population: agents
train on one population and are evaluated on others in the same store.

Latent (oracles and analysis only): ``quality`` (what an item does for the shopper after the click),
``appeal`` (how clickable it looks) and ``is_clickbait``. Public (what agents may use): ``category``,
``embedding``, ``price``, ``rating`` (quality plus noise) and ``ctr_estimate`` (a historical
click-through estimate that reflects appeal), gathered by ``public_features()``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from stickyrec.envs.config import RetentionConfig


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (a zero row stays zero)."""
    norm = np.sqrt(np.einsum("...d,...d->...", x, x))[..., None]
    return x / np.maximum(norm, 1e-300)


@dataclasses.dataclass(frozen=True, eq=False)
class Catalog:
    category: np.ndarray  # (N,) int64
    embedding: np.ndarray  # (N, d) unit rows
    price: np.ndarray  # (N,)
    quality: np.ndarray  # (N,) in [0, 1], latent
    appeal: np.ndarray  # (N,) in [0, 1], latent
    is_clickbait: np.ndarray  # (N,) bool, latent
    popularity: np.ndarray  # (N,) sums to 1
    rating: np.ndarray  # (N,) in [0, 1], public: quality + noise
    ctr_estimate: np.ndarray  # (N,) in [0, 0.3], public: reflects appeal
    centroids: np.ndarray  # (C, d) unit rows
    items_by_category: np.ndarray  # (C, L) item ids, -1 padded
    log_relative_price: np.ndarray  # (N,) log(price / median price)
    popularity_cdf: np.ndarray  # (N,) cumulative popularity, last entry exactly 1
    permutation: np.ndarray  # (N,) a fixed random order of items (the retrieval's random source)

    @property
    def n_items(self) -> int:
        return self.category.shape[0]

    @property
    def n_categories(self) -> int:
        return self.centroids.shape[0]

    def public_features(self) -> np.ndarray:
        """(N, d + 3 + C) float32: embedding, log relative price, rating, CTR estimate, category one-hot."""
        one_hot = np.zeros((self.n_items, self.n_categories), dtype=np.float32)
        one_hot[np.arange(self.n_items), self.category] = 1.0
        return np.concatenate(
            [
                self.embedding.astype(np.float32),
                self.log_relative_price[:, None].astype(np.float32),
                self.rating[:, None].astype(np.float32),
                self.ctr_estimate[:, None].astype(np.float32),
                one_hot,
            ],
            axis=1,
        )

    def to_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def make_catalog(config: RetentionConfig) -> Catalog:
    """Draw the catalog from ``config.catalog_seed`` (its own generator; no global state)."""
    rng = np.random.default_rng(np.random.SeedSequence([config.catalog_seed, 0x5EED_CA7A]))
    n, c, d = config.n_items, config.n_categories, config.embedding_dim

    centroids = normalise_rows(rng.standard_normal((c, d)))
    category = rng.permutation(np.arange(n) % c)  # sizes differ by at most one
    noise = rng.standard_normal((n, d)) / np.sqrt(d)
    embedding = normalise_rows(centroids[category] + config.category_spread * noise)

    category_log_price = config.price_log_mean + config.price_category_sd * rng.standard_normal(c)
    price = np.exp(category_log_price[category] + config.price_item_sd * rng.standard_normal(n))

    n_clickbait = int(round(config.clickbait_share * n))
    is_clickbait = np.zeros(n, dtype=bool)
    is_clickbait[rng.permutation(n)[:n_clickbait]] = True
    quality = np.where(
        is_clickbait,
        rng.beta(config.clickbait_quality_alpha, config.clickbait_quality_beta, n),
        rng.beta(config.quality_alpha, config.quality_beta, n),
    )
    appeal = np.where(
        is_clickbait,
        rng.beta(config.clickbait_appeal_alpha, config.clickbait_appeal_beta, n),
        rng.beta(config.appeal_alpha, config.appeal_beta, n),
    )

    # Popular items are partly popular because they are clickable: the popularity source leans to appeal.
    popularity = np.exp(config.popularity_sd * rng.standard_normal(n)) * (0.5 + appeal)
    popularity /= popularity.sum()
    popularity_cdf = np.cumsum(popularity)
    popularity_cdf[-1] = 1.0

    rating = np.clip(quality + config.rating_noise * rng.standard_normal(n), 0.0, 1.0)
    ctr_estimate = 0.3 * np.clip(appeal + config.ctr_estimate_noise * rng.standard_normal(n), 0.0, 1.0)

    size = np.bincount(category, minlength=c)
    items_by_category = np.full((c, int(size.max())), -1, dtype=np.int64)
    order = np.argsort(category, kind="stable")
    slot = np.arange(n) - np.repeat(np.cumsum(size) - size, size)
    items_by_category[category[order], slot] = order

    return Catalog(
        category=category.astype(np.int64),
        embedding=embedding,
        price=price,
        quality=quality,
        appeal=appeal,
        is_clickbait=is_clickbait,
        popularity=popularity,
        rating=rating,
        ctr_estimate=ctr_estimate,
        centroids=centroids,
        items_by_category=items_by_category,
        log_relative_price=np.log(price / np.median(price)),
        popularity_cdf=popularity_cdf,
        permutation=rng.permutation(n).astype(np.int64),
    )
