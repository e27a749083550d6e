"""Env benchmark: user-steps per second of the batched env, the single env's step latency, and the ratio
of a batched step to a bare numpy pass of the same choice arithmetic.

Run on one core: ``stickyrec bench`` (or ``python -m stickyrec.experiments.bench_env``) pins BLAS/OpenMP to one thread
unless you set the variables yourself. Policy cost is excluded: slates are precomputed valid slates.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402  (thread variables must be set before numpy loads)
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from stickyrec.envs.config import RetentionConfig  # noqa: E402
from stickyrec.envs.env import RetentionEnv  # noqa: E402
from stickyrec.envs.vector import RetentionVectorEnv  # noqa: E402


def _random_slates(rng: np.random.Generator, count: int, batch: int, m: int, k: int) -> list[np.ndarray]:
    return [np.argsort(rng.random((batch, m)), axis=1)[:, :k] for _ in range(count)]


def env_stepper(config: RetentionConfig, batch: int):
    """One ``RetentionVectorEnv.step`` per call (SAME_STEP autoreset, observations included), warmed up. With the
    coupon lever on (``--offers``), each action also carries offers: a 10% visit offer to a random 30% of the
    shoppers and a reminder between visits to every one."""
    env = RetentionVectorEnv(batch, config=config)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    slates = _random_slates(rng, 8, batch, config.n_candidates, config.slate_size)
    if config.offers_on:
        reminder = np.zeros(batch)
        slates = [
            {"slate": s, "offer": np.where(rng.random(batch) < 0.3, 0.1, np.nan), "offer_between": reminder}
            for s in slates
        ]
    count = iter(range(2**62))

    def step() -> None:
        env.step(slates[next(count) % 8])

    for _ in range(50):  # past the first sessions' transient
        step()
    return step


def user_steps_per_second(step, batch: int, seconds: float) -> float:
    """Call ``step`` for at least ``seconds`` (and 5 times) and return ``batch`` x calls per second."""
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or steps < 5:
        step()
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
        if config.offers_on:
            action = {"slate": action, "offer": 0.1 if i % 3 == 0 else math.nan, "offer_between": 0.0}
        t0 = clock()
        _, _, terminated, truncated, _ = env.step(action)
        times.append(clock() - t0)
        if terminated or truncated:
            env.reset()
    return statistics.median(times) * 1e6, statistics.fmean(times) * 1e6


def bare_numpy_stepper(config: RetentionConfig, batch: int):
    """One pass per call of the bare choice arithmetic for the same shapes: gather the slate's
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

    count = iter(range(2**62))

    def step() -> None:
        one_step(slates[next(count) % 8])

    for _ in range(3):
        step()
    return step


def run(
    batches=(1, 256, 4096),
    seconds: float = 2.0,
    single_steps: int = 20_000,
    config: RetentionConfig | None = None,
    rounds: int = 5,
) -> list[dict]:
    """Per batch size, ``rounds`` alternating windows of the env and of the bare pass (``seconds`` in all
    for each), so that a burst of load from elsewhere hits both; the ratio is taken within each round."""
    config = config or RetentionConfig()
    if rounds < 1 or seconds <= 0:
        raise ValueError(f"rounds must be >= 1 and seconds > 0, got rounds={rounds}, seconds={seconds}")
    rows = []
    for batch in batches:
        env_step, bare_step = env_stepper(config, batch), bare_numpy_stepper(config, batch)
        env_rates, bare_rates = [], []
        for r in range(rounds):
            order = ((env_step, env_rates), (bare_step, bare_rates))
            for step, rates in order if r % 2 == 0 else order[::-1]:
                rates.append(user_steps_per_second(step, batch, seconds / rounds))
        ratios = [bare / env for env, bare in zip(env_rates, bare_rates)]
        rows.append(
            {
                "batch": batch,
                "env_user_steps_per_s": statistics.median(env_rates),
                "env_user_steps_per_s_best": max(env_rates),
                "bare_numpy_user_steps_per_s": statistics.median(bare_rates),
                "bare_numpy_user_steps_per_s_best": max(bare_rates),
                "env_step_over_bare": statistics.median(ratios),
                "rounds": rounds,
            }
        )
    median_us, mean_us = bench_single(config, single_steps)
    rows.append({"single_env_median_us": median_us, "single_env_mean_us": mean_us})
    return rows


def format_table(rows: list[dict], config: RetentionConfig) -> str:
    rounds = next((row["rounds"] for row in rows if "rounds" in row), 0)
    lines = [
        f"stickyrec env benchmark{', offers on' if config.offers_on else ''}  (M={config.n_candidates} candidates,"
        f" k={config.slate_size},"
        f" d={config.embedding_dim}, N={config.n_items}; {os.environ.get('OMP_NUM_THREADS')} BLAS thread;"
        f" median (best) of {rounds} alternating rounds)",
        f"{'B':>6} {'env user-steps/s':>24} {'bare numpy user-steps/s':>26} {'env step / bare pass':>22}",
    ]
    for row in rows:
        if "batch" in row:
            env = f"{row['env_user_steps_per_s']:,.0f} ({row['env_user_steps_per_s_best']:,.0f})"
            bare = f"{row['bare_numpy_user_steps_per_s']:,.0f} ({row['bare_numpy_user_steps_per_s_best']:,.0f})"
            lines.append(f"{row['batch']:>6} {env:>24} {bare:>26} {row['env_step_over_bare']:>21.2f}x")
        else:
            lines.append(
                f"single env step: median {row['single_env_median_us']:.1f} us,"
                f" mean {row['single_env_mean_us']:.1f} us (resets excluded)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256, 4096])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per batch size for each of env and bare pass")
    parser.add_argument("--rounds", type=int, default=5, help="alternating env / bare-pass windows per batch size")
    parser.add_argument("--single-steps", type=int, default=20_000)
    parser.add_argument("--offers", action="store_true", help="the coupon lever on, every step carrying offers")
    args = parser.parse_args(argv)
    config = RetentionConfig(offers="on") if args.offers else RetentionConfig()
    print(format_table(run(tuple(args.batches), args.seconds, args.single_steps, config, args.rounds), config))


if __name__ == "__main__":
    main()
