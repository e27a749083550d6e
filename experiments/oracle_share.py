"""Each agent's day-N retention as a share of the long-term oracle's, from a finished run, with a 95% interval.

``python -m stickyrec.experiments.oracle_share results/reference [--day 30] [--oracle long_term_oracle]`` prints one
line per agent. The interval is a two-level paired bootstrap like the report's: seeds are resampled, then shoppers
within each picked seed's held-out population with the same picks for the agent and the oracle (they met the same
shoppers), and the ratio of the two pooled retention rates is taken on each resample.
"""

from __future__ import annotations

import argparse

import numpy as np

from stickyrec.experiments.metrics import interval, paired_resamples
from stickyrec.experiments.report_data import load_run


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
        n = len(active[(oracle, seeds[0])])
        for agent in frame["agent"].unique():
            if agent == oracle:
                continue
            if any(len(active[(agent, s)]) != n or len(active[(oracle, s)]) != n for s in seeds):
                raise ValueError(f"{run_dir}: {agent} and {oracle} did not meet the same {n} shoppers in every seed")
            point = np.mean([active[(agent, s)].mean() for s in seeds]) / np.mean(
                [active[(oracle, s)].mean() for s in seeds]
            )
            ratios = np.empty(resamples)
            for r, picks in enumerate(paired_resamples(rng, len(seeds), n, resamples, shoppers="indices")):
                num = den = 0.0
                for i, shoppers_picked in picks:
                    num += active[(agent, seeds[i])][shoppers_picked].mean()
                    den += active[(oracle, seeds[i])][shoppers_picked].mean()
                ratios[r] = num / den
            low, high = interval(ratios)
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
