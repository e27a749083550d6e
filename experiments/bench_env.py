"""Env benchmark: user-steps per second of the batched env, the single env's step latency, and the ratio
of a batched step to a bare numpy pass of the same choice arithmetic.

Run on one core: ``stickyrec bench`` (or ``python -m experiments.bench_env``) pins BLAS/OpenMP to one thread
unless you set the variables yourself. Policy cost is excluded: slates are precomputed valid slates.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402  (thread variables must be set before numpy loads)
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from envs.config import RetentionConfig  # noqa: E402
from envs.env import RetentionEnv  # noqa: E402
from envs.vector import RetentionVectorEnv  # noqa: E402


def _random_slates(rng: np.random.Generator, count: int, batch: int, m: int, k: int) -> list[np.ndarray]:
    return [np.argsort(rng.random((batch, m)), axis=1)[:, :k] for _ in range(count)]


def bench_batched(config: RetentionConfig, batch: int, seconds: float) -> float:
    """User-steps per second of ``RetentionVectorEnv.step`` (SAME_STEP autoreset, observations included)."""
    env = RetentionVectorEnv(batch, config=config)
    env.reset(seed=0)
    slates = _random_slates(np.random.default_rng(1), 8, batch, config.n_candidates, config.slate_size)
    for i in range(3):
        env.step(slates[i % 8])
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or steps < 5:
        env.step(slates[steps % 8])
        steps += 1
    return batch * steps / elapsed


def bench_single(config: RetentionConfig, steps: int) -> tuple[float, float]:
    """Median and mean microseconds per ``RetentionEnv.step`` (raw env, resets excluded)."""
    env = RetentionEnv(config)
    env.reset(seed=0)
    slates = _random_slates(np.random.default_rng(2), 64, 1, config.n_candidates, config.slate_size)
    times = []
    clock = time.perf_counter
    for i in range(steps):
        action = slates[i % 64][0]
        t0 = clock()
        _, _, terminated, truncated, _ = env.step(action)
        times.append(clock() - t0)
        if terminated or truncated:
            env.reset()
    return statistics.median(times) * 1e6, statistics.fmean(times) * 1e6


def bare_numpy_pass(config: RetentionConfig, batch: int, seconds: float) -> float:
    """User-steps per second of the bare choice arithmetic for the same shapes: gather the slate's
    embeddings, score (relevance + appeal - price - fatigue), softmax with a no-click option, sample one
    choice per shopper, and move satisfaction — no retrieval, sessions, validation or observation."""
    rng = np.random.default_rng(3)
    n, m, k, d, c = config.n_items, config.n_candidates, config.slate_size, config.embedding_dim, config.n_categories
    embedding = rng.standard_normal((n, d))
    appeal, log_price, category = rng.random(n), rng.standard_normal(n), rng.integers(c, size=n)
    quality = rng.random(n)
    interest = rng.standard_normal((batch, d))
    fatigue = rng.random((batch, c))
    satisfaction = rng.random(batch)
    beta = rng.random(batch)
    candidates = rng.integers(n, size=(batch, m))
    slates = _random_slates(rng, 8, batch, m, k)
    rows = np.arange(batch)
    candidate_offsets = rows[:, None] * m
    category_offsets = rows[:, None] * c
    flat_candidates = candidates.ravel()

    def one_step(slate):  # the fastest numpy idioms we know for each piece (flat takes, in-place ops)
        nonlocal satisfaction
        items = np.take(flat_candidates, candidate_offsets + slate)
        relevance = np.matmul(np.take(embedding, items, axis=0), interest[:, :, None])[:, :, 0]
        utility = relevance + np.take(appeal, items)
        utility -= beta[:, None] * np.take(log_price, items)
        utility -= np.take(fatigue.ravel(), category_offsets + np.take(category, items))
        utility *= 1.0 / config.temperature
        top = np.maximum(utility.max(axis=1), config.no_click_utility)
        cdf = np.cumsum(np.exp(utility - top[:, None]), axis=1)
        total = cdf[:, -1] + np.exp(config.no_click_utility - top)
        choice = (cdf < (rng.random(batch) * total)[:, None]).sum(axis=1)
        clicked = choice < k
        q = quality[items[rows, np.minimum(choice, k - 1)]]
        satisfaction = np.where(clicked, satisfaction + 0.1 * (q - satisfaction), satisfaction * 0.98)

    for i in range(3):
        one_step(slates[i])
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or steps < 5:
        one_step(slates[steps % 8])
        steps += 1
    return batch * steps / elapsed


def run(batches=(1, 256, 4096), seconds: float = 2.0, single_steps: int = 20_000,
        config: RetentionConfig | None = None) -> list[dict]:
    config = config or RetentionConfig()
    rows = []
    for batch in batches:
        env_rate = bench_batched(config, batch, seconds)
        bare_rate = bare_numpy_pass(config, batch, seconds)
        rows.append({"batch": batch, "env_user_steps_per_s": env_rate, "bare_numpy_user_steps_per_s": bare_rate,
                     "env_step_over_bare": bare_rate / env_rate})
    median_us, mean_us = bench_single(config, single_steps)
    rows.append({"single_env_median_us": median_us, "single_env_mean_us": mean_us})
    return rows


def format_table(rows: list[dict], config: RetentionConfig) -> str:
    lines = [f"stickyrec env benchmark  (M={config.n_candidates} candidates, k={config.slate_size},"
             f" d={config.embedding_dim}, N={config.n_items}; {os.environ.get('OMP_NUM_THREADS')} BLAS thread)",
             f"{'B':>6} {'env user-steps/s':>18} {'bare numpy user-steps/s':>25} {'env step / bare pass':>22}"]
    for row in rows:
        if "batch" in row:
            lines.append(f"{row['batch']:>6} {row['env_user_steps_per_s']:>18,.0f}"
                         f" {row['bare_numpy_user_steps_per_s']:>25,.0f} {row['env_step_over_bare']:>21.2f}x")
        else:
            lines.append(f"single env step: median {row['single_env_median_us']:.1f} us,"
                         f" mean {row['single_env_mean_us']:.1f} us (resets excluded)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--single-steps", type=int, default=20_000)
    args = parser.parse_args(argv)
    config = RetentionConfig()
    print(format_table(run(tuple(args.batches), args.seconds, args.single_steps, config), config))


if __name__ == "__main__":
    main()
