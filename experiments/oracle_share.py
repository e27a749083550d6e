"""Each agent's day-N retention as a share of the long-term oracle's, from a finished run, with a 95% interval.

``python -m stickyrec.experiments.oracle_share results/reference [--day 30] [--oracle long_term_oracle]`` prints one
line per agent. The interval is a two-level paired bootstrap like the report's: seeds are resampled, then shoppers
within each picked seed's held-out population with the same picks for the agent and the oracle (they met the same
shoppers), and the ratio of the two pooled retention rates is taken on each resample.
"""

from __future__ import annotations

import argparse

import numpy as np

from stickyrec.experiments.report import load_run


def oracle_shares(
    run_dir, day: float = 30.0, oracle: str = "long_term_oracle", resamples: int = 1000, seed: int = 0
) -> list[dict]:
    _, shoppers, _, _ = load_run(run_dir)
    if oracle not in set(shoppers["agent"]):
        raise ValueError(f"no agent {oracle!r} in {run_dir}; allowed: {sorted(set(shoppers['agent']))}")
    rng = np.random.default_rng(seed)
    rows = []
    for scenario, frame in shoppers.groupby("scenario", sort=False):
        active = {
            key: (group.sort_values("shopper")["churn_day"].to_numpy() > day).astype(float)
            for key, group in frame.groupby(["agent", "seed"])
        }
        seeds = sorted(frame["seed"].unique())
        for agent in frame["agent"].unique():
            if agent == oracle:
                continue
            point = np.mean([active[(agent, s)].mean() for s in seeds]) / np.mean(
                [active[(oracle, s)].mean() for s in seeds]
            )
            ratios = np.empty(resamples)
            for r in range(resamples):
                num = den = 0.0
                for s in rng.choice(seeds, len(seeds)):
                    picks = rng.integers(0, len(active[(agent, s)]), len(active[(agent, s)]))
                    num += active[(agent, s)][picks].mean()
                    den += active[(oracle, s)][picks].mean()
                ratios[r] = num / den
            low, high = np.percentile(ratios, [2.5, 97.5])
            rows.append({"scenario": scenario, "agent": agent, "share": point, "low": low, "high": high})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--day", type=float, default=30.0)
    parser.add_argument("--oracle", default="long_term_oracle")
    args = parser.parse_args(argv)
    for row in oracle_shares(args.run_dir, args.day, args.oracle):
        print(
            f"{row['scenario']}  {row['agent']:>20}: {100 * row['share']:.1f}% [{100 * row['low']:.1f}%,"
            f" {100 * row['high']:.1f}%] of {args.oracle}'s day-{args.day:g} retention"
        )


if __name__ == "__main__":
    main()
