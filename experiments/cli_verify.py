"""``stickyrec verify RUN_DIR``: its arguments and its printout (argparse only here; the work is
``experiments.verify``, imported when the command runs)."""

from __future__ import annotations


def cmd_verify(args) -> int:
    from stickyrec.experiments.verify import verify_run

    agents = [a for a in args.agents.split(",") if a] if args.agents else None
    found = verify_run(args.run_dir, args.seed, agents, workers=args.workers, progress=not args.quiet)
    for name, problems in found.items():
        print(f"{'identical' if not problems else 'DIFFERS'}  {name}" + "".join(f"\n    {p}" for p in problems))
    differ = [name for name, problems in found.items() if problems]
    print(
        f"stickyrec verify {args.run_dir}: "
        + (
            f"{len(differ)} of {len(found)} cells differ from the committed results"
            if differ
            else f"all {len(found)} re-run cells are identical to the committed results"
        )
    )
    return 1 if differ else 0


def add_verify_command(sub) -> None:
    verify = sub.add_parser(
        "verify", help="re-run one cell per agent kind of a committed run and compare, shopper for shopper"
    )
    verify.add_argument("run_dir", metavar="RUN_DIR")
    verify.add_argument("--seed", type=int, default=0, help="the seed whose cells are re-run (default 0)")
    verify.add_argument("--agents", default=None, help="comma-separated labels (default: the first of each kind)")
    verify.add_argument("--workers", type=int, default=2, help="parallel cells")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(func=cmd_verify)


__all__ = ["add_verify_command", "cmd_verify"]
