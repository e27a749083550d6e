"""Session-level shape: the simulator's sessions against UCI Online Shoppers Purchasing Intention.

The real targets come from *Online Shoppers Purchasing Intention* (Sakar, C. & Kastro, Y. (2018), UCI Machine
Learning Repository, doi:10.24432/C5F88Q, licensed CC BY 4.0, https://creativecommons.org/licenses/by/4.0/):
12,330 sessions of one online store over a year. Only the summary figures below are shipped (``TARGETS``); they are
recomputed from the CSV by

    python -m stickyrec.experiments.calibration.sessions --source PATH/TO/online_shoppers_intention.csv

**Mapping.** One impression (one slate of ``slate_size`` items) is one product page: the real ``ProductRelated``
count is compared with impressions per session. A click opens an item, so ``impressions + clicks`` is an upper
reading of "pages"; ``session_shape`` reports both. A session buys if it has at least one purchase (the real
``Revenue`` flag).

- ``session_shape(config, policy, n_shoppers, seed)``: run ``n_shoppers`` shoppers side by side in the batched env
  (``RetentionVectorEnv``, same-step autoreset; the loop is over steps, not shoppers) and measure every session that
  starts early enough to finish: the share that buys, impressions and clicks per session (median, mean, p90), and
  the share at or above the real median length (a smooth stand-in for the median, used by the fit);
- ``fit_session_shape(config, ...)``: Nelder-Mead over a few within-session fields (default ``purchase_bias`` and
  ``leave_base``) with common random numbers (the same shopper seeds and policy seed at every point), matching the
  share that buys (primary) and the share of sessions at or above the real median length (secondary).

``python -m stickyrec.experiments.calibration.sessions --fit [--preset default]`` runs the fit and prints it.

**Fitted values** (``FITTED``; random policy, 1,000 shoppers x 300 impressions, seed 0, 30 evaluations, about 90 s),
checked on other shoppers (seed 7, 2,000 shoppers):

| world | purchase_bias | leave_base | buys | impressions median / mean / p90 |
|---|---|---|---|---|
| real (Online Shoppers Intention, product pages) | | | 15.5% | 18 / 31.7 / 74 |
| ``default`` preset as it is | -5.5 | -2.8 | 21.6% | 11 / 12.8 / 26 |
| ``default``, fitted | -6.124 | -3.570 | 16.3% | 17 / 19.8 / 40 |
| gamma/beta world at BG/NBD's Online Retail fit, fitted | -6.221 | -3.331 | 15.3% | 17 / 19.6 / 39 |

The gamma/beta world (``visit_rate_distribution: gamma`` r 0.663, rate 64.7/day; ``dropout_distribution: beta``
a 0.156, b 3.19; ``dropout_after: purchase_session``; ``churn_window_days: .inf``) needs its own values: its
shoppers return rarely, so category fatigue has decayed and sessions run longer. The tail stays short (p90 about
40 against 74): ``max_session_steps`` (50) caps it, and the fatigue terms cut long sessions. Raising the cap to 150
and fitting ``leave_fatigue`` too (with the share of sessions over 50 pages as a third target, ``tail``) in the
gamma/beta world gives purchase_bias -6.284, leave_base -3.075, leave_fatigue 0.039 (near its bound 0): buys
15.5%, impressions 19 / 25.7 / 56, over 50 pages 13.1% against 17.5% (800 shoppers x 450 impressions, 31
evaluations, 134 s). Even without fatigue the leave hazard gives near-geometric lengths (p90 about 3 x median); the
real tail (p90 4 x median) needs more spread between shoppers (``patience_sd``), not fitted here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from stickyrec.envs import RetentionVectorEnv, make_config

ATTRIBUTION = (
    "Online Shoppers Purchasing Intention: Sakar, C. & Kastro, Y. (2018), UCI Machine Learning Repository,"
    " doi:10.24432/C5F88Q, licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
)
# From online_shoppers_intention.csv (sha256 9895055f...180b), by `real_targets`; "pages" are ProductRelated pages.
TARGETS = {
    "sessions": 12330,
    "buy_share": 0.15474452554744525,
    "pages_median": 18.0,
    "pages_mean": 31.731467964314678,
    "pages_p90": 74.0,
    "pages_at_least_median_share": 0.5060827250608273,
    "pages_over_50_share": 0.17453365774533658,
}
FIT_FIELDS = ("purchase_bias", "leave_base", "leave_fatigue")
# The fit's results (see the module docstring): the default preset, and the gamma/beta world of a calibrated preset.
FITTED = {
    "default": {"purchase_bias": -6.124, "leave_base": -3.570},
    "gamma_beta": {"purchase_bias": -6.221, "leave_base": -3.331},
}
WEIGHTS = {"buy_share": 1.0, "pages_at_least_median_share": 0.5, "pages_over_50_share": 0.5}  # primary first
LONG = 50  # pages: the tail moment is the share of sessions longer than this
SCALE = 0.01  # differences are counted in percentage points


def real_targets(path) -> dict:
    """``TARGETS`` recomputed from the CSV (``;``-separated, columns ``ProductRelated`` and ``Revenue``)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no file {path}; expected online_shoppers_intention.csv (UCI, ;-separated)")
    frame = pd.read_csv(path, sep=";")
    missing = {"ProductRelated", "Revenue"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}; expected UCI Online Shoppers Purchasing Intention")
    pages = frame["ProductRelated"].to_numpy(dtype=float)
    bought = frame["Revenue"].astype(str).str.upper().eq("TRUE").to_numpy()
    median = float(np.median(pages))
    return {
        "sessions": int(len(frame)),
        "buy_share": float(bought.mean()),
        "pages_median": median,
        "pages_mean": float(pages.mean()),
        "pages_p90": float(np.percentile(pages, 90)),
        "pages_at_least_median_share": float((pages >= median).mean()),
        "pages_over_50_share": float((pages > 50).mean()),
    }


def _summary(values: np.ndarray) -> dict[str, float]:
    return {
        "median": float(np.median(values)),
        "mean": float(values.mean()),
        "p90": float(np.percentile(values, 90)),
    }


def session_shape(
    config=None, policy=None, n_shoppers: int = 2000, seed: int = 0, *, steps: int = 400, median: float | None = None
) -> dict:
    """The shape of the sessions of ``n_shoppers`` shoppers (seeds ``seed ..``) over ``steps`` impressions each.

    ``policy`` needs ``bind(env)`` and ``act(obs)`` (default: ``RandomPolicy(seed)``). Only sessions that start at
    least ``max_session_steps`` steps before the end are counted, so every counted session is complete and long
    ones are not under-counted. ``median`` (default the real one) sets ``at_least_median_share``.
    """
    config = make_config(config)
    if not (isinstance(n_shoppers, int) and n_shoppers >= 1) or not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"n_shoppers and steps must be positive integers; got {n_shoppers!r}, {steps!r}")
    last_start = steps - config.max_session_steps
    if last_start < 1:
        raise ValueError(
            f"steps {steps} must exceed max_session_steps {config.max_session_steps} so that sessions can finish"
        )
    if policy is None:
        from stickyrec.agents.heuristics import RandomPolicy

        policy = RandomPolicy(seed)
    env = RetentionVectorEnv(n_shoppers, config=config)
    policy.bind(env)
    obs, _ = env.reset(seed=seed)
    started = np.zeros(n_shoppers, dtype=np.int64)
    impressions = np.zeros(n_shoppers, dtype=np.int64)
    clicks = np.zeros(n_shoppers, dtype=np.int64)
    bought = np.zeros(n_shoppers, dtype=bool)
    done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for step in range(steps):
        obs, _, _, _, info = env.step(policy.act(obs))
        impressions += 1
        clicks += info["clicked_position"] >= 0
        bought |= info["purchased"]
        ended = info["session_ended"] & (started < last_start)
        done.append((impressions[ended], clicks[ended], bought[ended]))
        over = info["session_ended"]
        started[over], impressions[over], clicks[over], bought[over] = step + 1, 0, 0, False
    env.close()
    sizes, clicked, buys = (np.concatenate(part) for part in zip(*done, strict=True))
    threshold = TARGETS["pages_median"] if median is None else median
    return {
        "sessions": int(sizes.size),
        "buy_share": float(buys.mean()) if sizes.size else float("nan"),
        "impressions": _summary(sizes),
        "clicks": _summary(clicked),
        "impressions_plus_clicks": _summary(sizes + clicked),
        "at_least_median_share": float((sizes >= threshold).mean()),
        "over_50_share": float((sizes > LONG).mean()),
        "capped_share": float((sizes >= config.max_session_steps).mean()),
    }


def shape_distance(shape: dict, targets: dict = TARGETS, tail: bool = False) -> float:
    """Weighted squared differences (in percentage points) of the share that buys and the share of sessions at or
    above the real median length; with ``tail``, also of the share of sessions longer than 50 pages."""
    pairs = [("buy_share", "buy_share"), ("at_least_median_share", "pages_at_least_median_share")]
    if tail:
        pairs.append(("over_50_share", "pages_over_50_share"))
    return float(sum(WEIGHTS[t] * ((shape[s] - targets[t]) / SCALE) ** 2 for s, t in pairs))


def fit_session_shape(
    config=None,
    fields: tuple[str, ...] = ("purchase_bias", "leave_base"),
    *,
    targets: dict = TARGETS,
    n_shoppers: int = 1000,
    steps: int = 300,
    seed: int = 0,
    max_evaluations: int = 30,
    step_size: float = 0.4,
    tail: bool | None = None,
) -> dict:
    """Nelder-Mead over ``fields`` of ``config`` (a subset of ``FIT_FIELDS``) minimising ``shape_distance``.

    Every evaluation reruns ``session_shape`` with the same shopper and policy seeds (common random numbers).
    ``tail`` (default: when ``leave_fatigue`` is fitted) adds the share of sessions over 50 pages to the distance.
    Returns the best point (``params``), its shape, the start's shape, the distance and every evaluation.
    """
    from scipy.optimize import minimize

    config = make_config(config)
    unknown = [f for f in fields if f not in FIT_FIELDS]
    if unknown or not fields:
        raise ValueError(f"fields {list(fields)} not allowed; allowed: a non-empty subset of {list(FIT_FIELDS)}")
    if not (isinstance(max_evaluations, int) and max_evaluations >= 1):
        raise ValueError(f"max_evaluations must be a positive integer; got {max_evaluations!r}")
    start = np.array([getattr(config, f) for f in fields], dtype=float)
    tail = "leave_fatigue" in fields if tail is None else tail
    history: list[dict] = []
    began = time.perf_counter()

    def objective(theta: np.ndarray) -> float:
        if len(history) >= max_evaluations:
            return float("inf")  # the budget is spent: Nelder-Mead can only stop
        try:
            point = config.replace(**dict(zip(fields, (float(v) for v in theta), strict=True)))
        except ValueError:
            return float("inf")  # outside a field's allowed range
        shape = session_shape(point, n_shoppers=n_shoppers, seed=seed, steps=steps, median=targets["pages_median"])
        distance = shape_distance(shape, targets, tail)
        history.append({"params": dict(zip(fields, theta.tolist(), strict=True)), "distance": distance, **shape})
        return distance

    simplex = np.vstack([start] + [start + step_size * np.eye(len(fields))[i] for i in range(len(fields))])
    options = {"initial_simplex": simplex, "maxfev": max_evaluations, "xatol": 0.02, "fatol": 0.05}
    minimize(objective, start, method="Nelder-Mead", options=options)
    best = min(history, key=lambda h: h["distance"])
    return {
        "params": best["params"],
        "distance": best["distance"],
        "shape": {k: v for k, v in best.items() if k not in ("params", "distance")},
        "start": history[0],
        "evaluations": len(history),
        "seconds": time.perf_counter() - began,
        "history": history,
        "settings": {"n_shoppers": n_shoppers, "steps": steps, "seed": seed, "fields": list(fields), "tail": tail},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="session-level shape against Online Shoppers Intention")
    parser.add_argument("--source", default=None, help="online_shoppers_intention.csv: print its targets")
    parser.add_argument("--fit", action="store_true", help="fit purchase_bias and leave_base to TARGETS")
    parser.add_argument("--preset", default="default", help="base preset or YAML of the fit (default: default)")
    parser.add_argument("--fields", default="purchase_bias,leave_base", help=f"comma list of {FIT_FIELDS}")
    parser.add_argument("--shoppers", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--evaluations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.source:
            print(json.dumps(real_targets(args.source), indent=2))
        if args.fit:
            fields = tuple(f.strip() for f in args.fields.split(",") if f.strip())
            base = make_config(args.preset)
            fit = fit_session_shape(
                base, fields, n_shoppers=args.shoppers, steps=args.steps, seed=args.seed,
                max_evaluations=args.evaluations,
            )  # fmt: skip
            shown = {k: v for k, v in fit.items() if k != "history"}
            print(json.dumps({"targets": TARGETS, **shown}, indent=2))
        if not (args.source or args.fit):
            print(json.dumps({"targets": TARGETS, "source": ATTRIBUTION}, indent=2))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
