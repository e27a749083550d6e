"""The CLI's argument checks, run before any command does work or creates a file or folder.

``check_arguments(args)`` checks what argparse cannot: numbers in range, ``--steps AGENT=N`` pairs, the ``--store``
target (``stickyrec.credentials.store_target``) and every output path (``stickyrec.inputs.check_output_path``:
writable, and a file or a folder as the command expects). Each refusal is a ``ValueError`` naming the flag and what
is allowed, which the CLI's top prints as one line. A future command that writes adds its paths to ``OUTPUTS``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from stickyrec.credentials import store_target
from stickyrec.inputs import check_output_path, short_repr

# command -> (attribute, "dir" | "file", flag) of every path it writes (None values are the command's defaults,
# checked where the command resolves them: ``train``'s results/train/...; ``run`` checks its --out, or results/NAME,
# right after reading its config, so that a missing config is named first).
OUTPUTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "simulate": (("json", "file", "--json"),),
    "collect": (("contexts", "file", "--contexts"),),
    "baselines": (("out", "dir", "--out"),),
    "train": (("out", "dir", "--out"),),
    "rl-benchmark": (("out", "dir", "--out"),),
    "compare": (("out", "file", "--out"),),
    "calibrate": (("out", "dir", "--out"),),
    "predict": (("out", "file", "--out"),),
}
# command -> (attribute, flag, lowest allowed value, integer?) of its numeric flags
NUMBERS: dict[str, tuple[tuple[str, str, float, bool], ...]] = {
    "simulate": (("shoppers", "--shoppers", 1, True),),
    "collect": (("shoppers", "--shoppers", 1, True),),
    "baselines": (
        ("train_shoppers", "--train-shoppers", 1, True),
        ("eval_shoppers", "--eval-shoppers", 1, True),
        ("seeds", "--seeds", 1, True),
        ("mlp_epochs", "--mlp-epochs", 1, True),
    ),
    "train": (
        ("steps", "--steps", 1, True),
        ("eval_shoppers", "--eval-shoppers", 0, True),
        ("eval_seed", "--eval-seed", 0, True),
        ("max_seconds", "--max-seconds", 0, False),
    ),
    "rl-benchmark": (("seeds", "--seeds", 1, True), ("eval_shoppers", "--eval-shoppers", 1, True)),
    "run": (),
}


MAX_WORKERS = 256
# (attribute, flag, highest allowed value) wherever the command has it: a typo must not allocate for a billion
HIGHS = (("shoppers", "--shoppers", 10_000_000), ("seeds", "--seeds", 1000))


def check_number(flag: str, value: Any, low: float, integer: bool) -> None:
    """``value`` (None: not given) must be a finite number >= ``low`` (> 0 for a time limit)."""
    if value is None:
        return
    bad = not math.isfinite(value) or value < low or (not integer and low == 0 and value <= 0)
    if bad:
        allowed = f"at least {low}" if integer else "a finite number of seconds > 0"
        raise ValueError(f"{flag} must be {allowed}, got {short_repr(value)}")


def check_step_pairs(pairs: list[str], agents: tuple[str, ...]) -> None:
    """``--steps AGENT=N``: a known agent and an integer N >= 1."""
    for pair in pairs:
        agent, sep, value = pair.partition("=")
        if not sep or agent not in agents:
            raise ValueError(f"--steps expects AGENT=N with AGENT one of {', '.join(agents)}, got {short_repr(pair)}")
        if not value.strip().replace("_", "").isdigit() or int(value.replace("_", "")) < 1:
            raise ValueError(f"--steps {agent}={short_repr(value)} is not allowed; allowed: an integer N >= 1")


def check_arguments(args) -> None:
    """Every check above for the parsed ``args`` of one command; raises the first ``ValueError``."""
    command = args.command
    for attribute, flag, low, integer in NUMBERS.get(command, ()):
        check_number(flag, getattr(args, attribute, None), low, integer)
    if getattr(args, "workers", None) is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be an integer in [1, {MAX_WORKERS}], got {args.workers}")
    for attribute, flag, high in HIGHS:
        value = getattr(args, attribute, None)
        if command != "bench" and value is not None and value > high:
            raise ValueError(f"{flag} must be at most {high:,}, got {short_repr(value)}")
    if command == "bench":
        for value in args.batches:
            check_number("--batches", value, 1, True)
        check_number("--seconds", args.seconds, 0, False)
        check_number("--rounds", args.rounds, 1, True)
        check_number("--single-steps", args.single_steps, 1, True)
    if command == "rl-benchmark":
        from stickyrec.agents.rl import RL_AGENT_NAMES

        check_step_pairs(args.steps, tuple(RL_AGENT_NAMES))
    if command == "collect" and args.store is not None:
        kind, target = store_target(args.store)
        if kind == "duckdb" and target != ":memory:":
            check_output_path(target, "file", "--store")
    for attribute, kind, flag in OUTPUTS.get(command, ()):
        value = getattr(args, attribute, None)
        if value is not None:
            check_output_path(value, kind, flag)
    if command == "compare" and args.out is None:  # the default: RUN_DIR/figures/compare_A_vs_B.png
        check_output_path(Path(args.run_dir) / "figures", "dir", "RUN_DIR/figures")
    if command == "report":
        for run_dir in args.run_dirs:  # the report is written into each run directory
            check_output_path(run_dir, "dir", "RUN_DIR")
        if len(args.run_dirs) > 1:
            check_output_path(args.out, "dir", "--out")
        if getattr(args, "reference", None) is not None:  # an agent of every run named
            from stickyrec.experiments.report import check_reference
            from stickyrec.experiments.report_data import read_config

            for run_dir in args.run_dirs:
                check_reference(read_config(run_dir)[0], args.reference, run_dir)


__all__ = ["NUMBERS", "OUTPUTS", "check_arguments", "check_number", "check_step_pairs"]
