"""The ``stickyrec`` command line.

    stickyrec simulate [--shoppers N] [--policies a,b,...] [--config NAME|FILE] [--set key=value ...]
    stickyrec collect [--policy NAME] [--shoppers N] [--store FILE|URL] [--run-id ID] [--contexts FILE.parquet]
    stickyrec baselines [--train-shoppers N] [--eval-shoppers N] [--seeds N] [--mlp-epochs E] [--out DIR]
    stickyrec train --agent ppo|slateq [--reward NAME] [--steps N] [--seed S] [--param key=value ...] [--out DIR]
    stickyrec rl-benchmark [--seeds N] [--rewards a,b] [--steps AGENT=N] [--param AGENT.KEY=VALUE] [--out DIR]
    stickyrec run CONFIG [--set key.path=value ...] [--out DIR] [--backend local|ray] [--workers N]
    stickyrec report RUN_DIR [RUN_DIR ...] [--out DIR]
    stickyrec verify RUN_DIR [--seed S] [--agents a,b] [--workers N]
    stickyrec compare RUN_DIR AGENT_A AGENT_B [--scenario S] [--out FILE.png]
    stickyrec bench [--batches 1 256 4096] [--seconds S] [--rounds R] [--offers]
    stickyrec config [--config NAME|FILE] [--set key=value ...] [--describe]
    stickyrec calibrate LOG --calibration-end YYYY-MM-DD --out DIR [--customer COL --time COL ...] [--table T]
    stickyrec predict LOG --preset DIR/preset.yaml [--calibration-end YYYY-MM-DD] [--weeks N] --out TABLE.csv

``baselines`` and ``rl-benchmark`` are aliases of ``run``: their flags become ``--set`` overrides of the shipped
configs ``baselines.yaml`` and ``benchmark.yaml`` (they print the ``run`` command they stand for).
Heavy modules are imported inside each command so that ``bench`` can pin BLAS threads first. Any error is one line,
``stickyrec: error: ...``, exit code 2 (1: a run with failed cells; 130: Ctrl-C); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys

from stickyrec.agents.rl import DEFAULT_REWARD, REWARDS, RL_AGENT_NAMES  # names only: torch and SB3 load on first use
from stickyrec.experiments.calibration.commands import add_commands as add_calibration_commands  # argparse only
from stickyrec.experiments.cli_checks import check_arguments
from stickyrec.experiments.cli_verify import add_verify_command  # argparse only
from stickyrec.inputs import check_output_path, error_line

SUMMARY_COLUMNS = (  # ``simulate``'s table; labels and formats from experiments.metrics.LABELS
    "click_rate_week1",
    "click_rate",
    "sessions_per_shopper",
    "impressions_per_session",
    "purchases_per_shopper",
    "revenue_per_shopper",
    "retention_day1",
    "retention_day7",
    "retention_day30",
    "mean_lifetime_days",
)


def _parse_overrides(pairs: list[str]) -> dict:
    from stickyrec.inputs import load_yaml, short_repr

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {short_repr(pair)}")
        key = key.removeprefix("env.")
        overrides[key] = load_yaml(value, source=f"--set {key[:80]}: value {short_repr(value)}")
    return overrides


def _config(args):
    from stickyrec.envs.config import make_config

    return make_config(args.config, **_parse_overrides(args.set))


def _seed(text: str) -> int:
    """``--seed``: an integer >= 0, refused by the parser, before any work."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: an integer >= 0")
    return int(text)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="default", help="preset name or YAML file (default: default)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field, e.g. --set clickbait_share=0.3 (repeatable)",
    )


def format_summary_table(rows: dict[str, dict[str, float]]) -> str:
    from stickyrec.experiments.metrics import LABELS

    labels = [LABELS[key] for key in SUMMARY_COLUMNS]
    name_width = max(len("policy"), *(len(name) for name in rows))
    header = f"{'policy':<{name_width}} " + " ".join(f"{label.short:>9}" for label in labels)
    lines = [header, "-" * len(header)]
    for name, summary in rows.items():
        cells = " ".join(f"{label.fmt.format(summary[key]):>9}" for key, label in zip(SUMMARY_COLUMNS, labels))
        lines.append(f"{name:<{name_width}} {cells}")
    return "\n".join(lines)


def cmd_simulate(args) -> int:
    from stickyrec.agents import make_policy
    from stickyrec.experiments.simulate import simulate_cohort

    config = _config(args)
    names = [name.strip() for name in args.policies.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--policies needs at least one policy name, got {args.policies!r}")
    policies = [make_policy(name) for name in names]  # unknown names fail here, before any simulation
    rows = {}
    for policy in policies:
        result = simulate_cohort(policy, config, args.shoppers, seed=args.seed, progress=not args.quiet)
        summary = result.summary()
        summary["impressions_per_session"] = summary["impressions_per_shopper"] / summary["sessions_per_shopper"]
        rows[policy.name] = summary
    print(
        f"{args.shoppers} shoppers per policy, seed {args.seed}, horizon {config.horizon_days:g} days,"
        f" clickbait share {config.clickbait_share:g}"
    )
    print(format_summary_table(rows))
    print(
        "CTR wk1: clicks per slate in the first week; ret dN: share of shoppers still customers on day N;"
        " life d: mean days to churn (censored at the horizon)."
    )
    if args.json:
        from stickyrec.io import write_json_atomic

        write_json_atomic(
            args.json, {"config": config.to_dict(), "shoppers": args.shoppers, "seed": args.seed, "summary": rows}
        )
        print(f"wrote {args.json}")
    return 0


def cmd_collect(args) -> int:
    from stickyrec.agents import make_policy
    from stickyrec.experiments.platform_log import collect

    config = _config(args)
    policy = make_policy(args.policy)
    result = collect(
        policy,
        config,
        args.shoppers,
        store=args.store,
        run_id=args.run_id,
        seed=args.seed,
        progress=not args.quiet,
        contexts=args.contexts,
    )
    if result.already_complete:
        print(f"run {result.run_id} is already complete in {result.store}: {result.impressions:,} impressions")
        return 0
    print(
        f"run {result.run_id}: {result.impressions:,} impressions in {result.store}"
        f" ({result.impressions_written:,} written, {result.impressions_skipped:,} already there;"
        f" {result.impressions_per_second:,.0f} impressions/s)"
    )
    if args.contexts:
        print(f"serve-time features: {args.contexts}")
    return 0


def _env_overrides(args, experiment: str) -> list[str]:
    """``--config``/``--set`` of an env, as ``run``'s ``env.KEY=VALUE`` overrides of a shipped experiment (checked
    here first); the experiment's cohort days past a shorter horizon are dropped."""
    import math
    from pathlib import Path

    from stickyrec.experiments.experiment import find_config
    from stickyrec.inputs import dump_yaml, load_yaml

    horizon = _config(args).horizon_days  # a bad preset, file or field fails now, with the env's own message
    pairs = []
    if args.config.endswith((".yaml", ".yml")):
        for key, value in load_yaml(Path(args.config), source=f"config file {args.config!r}").items():
            # YAML flow style, not JSON: it keeps an infinite churn window (.inf) a number when read back
            flow = dump_yaml(value, default_flow_style=True, width=math.inf).removesuffix("...\n").strip()
            pairs.append(f"env.{key}={flow}")
    else:
        pairs.append(f"env.preset={args.config}")
    for pair in args.set:
        key, _, value = pair.partition("=")
        pairs.append(f"env.{key.removeprefix('env.')}={value}")
    shipped = load_yaml(find_config(experiment), source=experiment)["report"]["cohort_days"]
    if max(shipped) > horizon:  # a shorter world: keep the cohort days it has
        pairs.append(f"report.cohort_days={[day for day in shipped if day <= horizon]}")
    return pairs


def _run_alias(config: str, overrides: list[str], args, workers: int | None = None) -> int:
    """``stickyrec run CONFIG --set ...`` for an alias command; prints the command it stands for."""
    import shlex

    argv = ["run", config, *(x for pair in overrides for x in ("--set", pair)), "--out", args.out]
    argv += ["--workers", str(workers)] if workers is not None else []
    argv += ["--quiet"] if args.quiet else []
    print("stickyrec " + shlex.join(argv))
    return cmd_run(build_parser().parse_args(argv))


def baselines_overrides(args) -> list[str]:
    """``stickyrec baselines``' flags as ``--set`` overrides of ``baselines.yaml``."""
    return [
        *_env_overrides(args, "baselines"),
        f"seeds={args.seeds}",
        f"data.shoppers={args.train_shoppers}",
        f"evaluation.shoppers={args.eval_shoppers}",
        *(f"agents.{name}.params.epochs={args.mlp_epochs}" for name in ("mlp", "multi_objective", "retention_mlp")),
    ]


def cmd_baselines(args) -> int:
    """Alias: ``run baselines`` (log, train popularity/CF/MLP, evaluate with the oracles; the MLP's click AUC)."""
    import json
    from pathlib import Path

    code = _run_alias("baselines", baselines_overrides(args), args)
    summary = Path(args.out) / "summary.json"
    if code == 0 and summary.exists():
        for row in json.loads(summary.read_text()).get("click_auc", []):
            auc, ceiling = row["auc"], row["auc_true_click_probability"]
            print(
                f"click AUC on held-out shoppers (seed {row['seed']}): {row['agent']} {auc:.4f}, true probabilities"
                f" {ceiling:.4f} (gap {ceiling - auc:.4f})"
            )
    return code


def rl_benchmark_overrides(args) -> list[str]:
    """``stickyrec rl-benchmark``' flags as ``--set`` overrides of ``benchmark.yaml``: the first reward trains ``ppo``
    and ``slateq``, each further reward R adds agents ``ppo_R`` and ``slateq_R``; steps and params reach them all."""
    from stickyrec.experiments.train import parse_params

    rewards = [r for r in args.rewards.split(",") if r]
    if not rewards:
        raise ValueError("--rewards needs at least one reward name")
    labels = {agent: [agent, *(f"{agent}_{r}" for r in rewards[1:])] for agent in RL_AGENT_NAMES}
    overrides = [*_env_overrides(args, "benchmark"), "name=rl-benchmark", f"seeds={args.seeds}"]
    overrides.append(f"evaluation.shoppers={args.eval_shoppers}")
    for agent in RL_AGENT_NAMES:
        overrides.append(f"agents.{agent}.reward={rewards[0]}")
        overrides += [f"agents.{agent}_{r}={{kind: {agent}, reward: {r}}}" for r in rewards[1:]]
    for pair in args.steps:
        agent, sep, value = pair.partition("=")
        if not sep or agent not in labels:
            raise ValueError(f"--steps expects AGENT=N with AGENT one of {', '.join(labels)}, got {pair!r}")
        overrides += [f"agents.{label}.steps={value}" for label in labels[agent]]
    parse_params(args.param)  # key=value, values valid YAML
    for pair in args.param:
        key, _, value = pair.partition("=")
        agent, dot, name = key.partition(".")
        if not dot or not name or agent not in labels:
            raise ValueError(f"--param expects AGENT.KEY=VALUE (e.g. ppo.gamma_day=0.97), got {key!r}")
        overrides += [f"agents.{label}.params.{name}={value}" for label in labels[agent]]
    return overrides


def cmd_rl_benchmark(args) -> int:
    """Alias: ``run benchmark`` with the RL agents also trained on each further reward."""
    return _run_alias("benchmark", rl_benchmark_overrides(args), args, workers=args.workers)


def cmd_train(args) -> int:
    from stickyrec.agents.rl import make_reward
    from stickyrec.experiments.train import parse_params, parse_reward, train_agent

    config = _config(args)
    reward = parse_reward(args.reward)  # a name, or a mix of weights: click=0.1,return_visit=1
    make_reward(reward)  # fails now, before any training, on a bad reward
    out = args.out or f"results/train/{args.agent}_{args.reward if isinstance(reward, str) else 'custom'}_s{args.seed}"
    check_output_path(out, "dir", "--out")  # the default folder too, before any training
    agent = train_agent(
        args.agent,
        config,
        out,
        reward=reward,
        steps=args.steps,
        seed=args.seed,
        hyperparameters=parse_params(args.param),
        max_seconds=args.max_seconds,
        progress=not args.quiet,
    )
    history = agent.history
    print(
        f"trained {agent.name} on {history['steps']:,} shopper-steps in {history['seconds']:.0f} s"
        f" ({history['steps_per_second']:,.0f} steps/s), reward {history['reward']}"
        + (" (stopped at --max-seconds)" if history.get("stopped_early") else "")
    )
    print(f"agent: {out}/agent.pt  logs: tensorboard --logdir {out}/tb")
    if args.eval_shoppers:
        from stickyrec.experiments.evaluate import evaluate_agents, format_markdown, results_table

        frames = evaluate_agents([agent], config, args.eval_shoppers, seed=args.eval_seed, progress=not args.quiet)
        print(format_markdown(results_table(frames)))
    return 0


def cmd_run(args) -> int:
    import os
    from pathlib import Path

    from stickyrec.experiments.experiment import load_experiment
    from stickyrec.experiments.runner import run_experiment

    experiment = load_experiment(args.config, args.set)  # every key and value checked before any work
    run_dir = check_output_path(args.out or Path("results") / experiment.name, "dir", "--out")
    workers = args.workers if args.workers is not None else min(2, os.cpu_count() or 1)
    result = run_experiment(
        experiment,
        run_dir,
        backend=args.backend,
        workers=workers,
        ray_address=args.ray_address,
        progress=not args.quiet,
        report=not args.no_report,
    )
    status = "FAILED" if result.failed else "done"
    print(
        f"stickyrec run {experiment.name}: {status}: {result.cells_total} cells ({result.cells_run} run now,"
        f" {result.cells_reused} already done, {len(result.failed)} failed) in {result.seconds:.0f} s"
        f" with {workers} {args.backend} worker(s); results in {run_dir}"
        + ("" if result.failed or args.no_report else f", report {run_dir / 'report.html'}")
    )
    for name, reason in result.failed.items():
        print(f"  failed: {name}: {reason}", file=sys.stderr)
    if result.failed:
        print("re-run the same command to retry the failed cells (finished cells are kept)", file=sys.stderr)
    return 1 if result.failed else 0


def cmd_report(args) -> int:
    from stickyrec.experiments.report import build_report, compare_runs

    for run_dir in args.run_dirs:
        print(f"report: {build_report(run_dir, reference=args.reference)}")
    if len(args.run_dirs) > 1:
        print(f"comparison: {compare_runs(args.run_dirs, args.out)}")
    return 0


def cmd_compare(args) -> int:
    from stickyrec.experiments.report import compare_agents

    path, table = compare_agents(
        args.run_dir, args.agent_a, args.agent_b, scenario=args.scenario, run_dir_b=args.run_dir_b, out=args.out
    )
    print(table)
    print(f"plot: {path}")
    return 0


def cmd_bench(args) -> int:
    from stickyrec.experiments import bench_env

    argv = ["--seconds", str(args.seconds), "--rounds", str(args.rounds), "--single-steps", str(args.single_steps)]
    argv += ["--batches", *map(str, args.batches), *(["--offers"] if args.offers else [])]
    bench_env.main(argv)
    return 0


def cmd_config(args) -> int:
    from stickyrec.envs.config import RetentionConfig

    if args.describe:  # the resolved values of --config and --set (* where they differ from the default)
        print(RetentionConfig.describe(_config(args)))
    else:
        print(_config(args).to_yaml(), end="")
    return 0


def _add_simulate(sub) -> None:
    simulate = sub.add_parser("simulate", help="simulate shoppers under baseline policies; print retention")
    _add_config_arguments(simulate)
    simulate.add_argument("--shoppers", type=int, default=5000, help="shoppers per policy (default 5000)")
    simulate.add_argument(
        "--policies", default="random,click_chaser,relevance_quality", help="comma-separated policy names"
    )
    simulate.add_argument("--seed", type=_seed, default=0, help="shopper population seed")
    simulate.add_argument("--json", help="also write the summary to this JSON file (atomically)")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.set_defaults(func=cmd_simulate)


def _add_collect(sub) -> None:
    collect = sub.add_parser("collect", help="simulate shoppers under a policy and log every impression")
    _add_config_arguments(collect)
    collect.add_argument("--policy", default="random", help="logging policy (default random)")
    collect.add_argument("--shoppers", type=int, default=3000)
    collect.add_argument("--seed", type=_seed, default=0, help="shopper population seed")
    collect.add_argument(
        "--store",
        default=None,
        help="DuckDB file (default results/logs/impressions.duckdb) or a SQLAlchemy URL,"
        " e.g. mysql+pymysql://user:password@host/db",
    )
    collect.add_argument("--run-id", default=None, help="re-using a run id resumes it without duplicates")
    collect.add_argument(
        "--contexts", default=None, help="also write serve-time shopper features to this Parquet file (for training)"
    )
    collect.add_argument("--quiet", action="store_true", help="no progress bar")
    collect.set_defaults(func=cmd_collect)


def _add_baselines(sub) -> None:
    baselines = sub.add_parser(
        "baselines",
        help="alias of `run baselines`: log, train popularity/CF/MLP, evaluate with the oracles on held-out shoppers",
    )
    _add_config_arguments(baselines)
    baselines.add_argument("--out", default="results/baselines", help="run directory (default results/baselines)")
    baselines.add_argument("--train-shoppers", type=int, default=3000, help="logged shoppers per seed (default 3000)")
    baselines.add_argument("--eval-shoppers", type=int, default=2000, help="held-out shoppers per seed (default 2000)")
    baselines.add_argument("--seeds", type=int, default=1, help="seeds: logs, trainings and populations (default 1)")
    baselines.add_argument("--mlp-epochs", type=int, default=20)
    baselines.add_argument("--quiet", action="store_true")
    baselines.set_defaults(func=cmd_baselines)


def _add_train(sub) -> None:
    train = sub.add_parser("train", help="train an RL agent (PPO or SlateQ) on the batched env")
    _add_config_arguments(train)
    train.add_argument("--agent", required=True, choices=RL_AGENT_NAMES)
    train.add_argument(
        "--reward",
        default=DEFAULT_REWARD,
        help=f"{DEFAULT_REWARD} (default), {', '.join(n for n in REWARDS if n != DEFAULT_REWARD)}, or"
        " weights such as click=0.1,return_visit=1,rated_click=3",
    )
    train.add_argument(
        "--steps",
        type=int,
        default=None,
        help="shopper-steps of training (default: 3,000,000 for ppo, 1,200,000 for slateq)",
    )
    train.add_argument("--seed", type=_seed, default=0, help="training seed (env, network, exploration)")
    train.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent hyperparameter, e.g. --param n_envs=512 (repeatable)",
    )
    train.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="stop training past this wall time (then no longer a function of the seed alone)",
    )
    train.add_argument("--out", default=None, help="output folder (default results/train/AGENT_REWARD_sSEED)")
    train.add_argument(
        "--eval-shoppers",
        type=int,
        default=0,
        help="then evaluate on this many held-out shoppers (default 0: no evaluation)",
    )
    train.add_argument("--eval-seed", type=int, default=1_000_000, help="held-out population seed")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)


def _add_rl_benchmark(sub) -> None:
    rl = sub.add_parser(
        "rl-benchmark", help="alias of `run benchmark`, RL agents also trained on further rewards; resumable"
    )
    _add_config_arguments(rl)
    rl.add_argument("--out", default="results/rl", help="run directory; finished cells are kept on a re-run")
    rl.add_argument(
        "--rewards",
        default=f"{DEFAULT_REWARD},click",
        help="reward designs; the first trains `ppo` and `slateq`, each other one adds AGENT_REWARD agents",
    )
    rl.add_argument("--seeds", type=int, default=5, help="seeds (training seeds and held-out populations)")
    rl.add_argument(
        "--steps",
        action="append",
        default=[],
        metavar="AGENT=N",
        help="training steps, e.g. ppo=1200000 (defaults: ppo 3M, slateq 1.2M)",
    )
    rl.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="AGENT.KEY=VALUE",
        help="agent hyperparameter for every cell, e.g. ppo.gamma_day=0.97 (repeatable)",
    )
    rl.add_argument("--eval-shoppers", type=int, default=2000)
    rl.add_argument("--workers", type=int, default=2, help="parallel cells")
    rl.add_argument("--quiet", action="store_true")
    rl.set_defaults(func=cmd_rl_benchmark)


def _add_run(sub) -> None:
    run = sub.add_parser("run", help="run an experiment config: scenarios x agents x seeds, resumable; then report")
    run.add_argument(
        "config", help="experiment YAML, or a shipped config name: quick, benchmark, baselines, rewards, clickbait"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config key, e.g. --set env.clickbait_share=0.3 --set agents.ppo.steps=20000",
    )
    run.add_argument("--out", default=None, help="run directory (default: results/NAME); re-run to resume")
    run.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="local worker processes (default) or Ray tasks (pip install 'stickyrec[ray]')",
    )
    run.add_argument("--workers", type=int, default=None, help="parallel cells (default: 2, or fewer CPUs)")
    run.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start a local Ray)")
    run.add_argument("--no-report", action="store_true", help="run the cells only")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)


def _add_report_and_compare(sub) -> None:
    report = sub.add_parser("report", help="(re)write a run's report; with several runs, also a comparison")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", default="results/comparison", help="comparison folder (several runs)")
    report.add_argument("--reference", metavar="AGENT", help="the agent differences are against (default: config's)")
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="two agents' retention curves side by side, with a log-rank test")
    compare.add_argument("run_dir", metavar="RUN_DIR")
    compare.add_argument("agent_a", metavar="AGENT_A")
    compare.add_argument("agent_b", metavar="AGENT_B")
    compare.add_argument("--run-dir-b", default=None, help="take AGENT_B from another run")
    compare.add_argument("--scenario", default=None, help="scenario (default: the run's first)")
    compare.add_argument("--out", default=None, help="PNG path (default: RUN_DIR/figures/compare_A_vs_B.png)")
    compare.set_defaults(func=cmd_compare)


def _add_bench_and_config(sub) -> None:
    bench = sub.add_parser("bench", help="env throughput benchmark (one BLAS thread)")
    bench.add_argument("--batches", type=int, nargs="+", default=[1, 256, 4096])
    bench.add_argument(
        "--seconds", type=float, default=2.0, help="time per batch size for each of the env and the bare pass"
    )
    bench.add_argument("--rounds", type=int, default=5, help="alternating env / bare-pass windows per batch size")
    bench.add_argument("--single-steps", type=int, default=20_000)
    bench.add_argument("--offers", action="store_true", help="the coupon lever on, every step carrying offers")
    bench.set_defaults(func=cmd_bench)

    config = sub.add_parser("config", help="print the resolved config as YAML, or --describe every field")
    _add_config_arguments(config)
    config.add_argument("--describe", action="store_true")
    config.set_defaults(func=cmd_config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stickyrec", description="Retention simulator for recommendation RL")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_simulate,
        _add_collect,
        _add_baselines,
        _add_train,
        _add_rl_benchmark,
        _add_run,
        _add_report_and_compare,
        add_verify_command,
        _add_bench_and_config,
        add_calibration_commands,
    ):
        add(sub)
    debug_help = "show the Python traceback of an error (default: one line, stickyrec: error: ...)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    for command in sub.choices.values():  # also after the command: stickyrec run quick --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        import os

        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
    try:
        check_arguments(args)  # numbers, --store, output paths: before any work or any folder is created
        return args.func(args)
    except KeyboardInterrupt:
        print("stickyrec: interrupted; finished cells are kept: run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the top: every error is one line, unless --debug
        if args.debug:
            raise
        print(f"stickyrec: error: {error_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
