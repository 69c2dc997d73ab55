"""``nas demo``: the main job end to end on the bundled ``digits`` data with a local latency server."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline end to end on the bundled data (make demo)",
        description="Start a latency server on a SQLite file, build the latency table, train the heaviest network "
        "and the supernet on digits, search at three latency limits, fine-tune, validate and measure each result; "
        "write outputs/demo/results.{md,csv} and three plots.",
    )
    p.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default outputs/demo)")
    p.add_argument("--resolution", type=int, default=32, help="input resolution (default 32)")
    p.add_argument("--heaviest-epochs", type=int, default=7)
    p.add_argument("--supernet-epochs", type=int, default=6)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--train-threads", type=int, default=1, help="torch threads of the training stages (default 1)")
    p.add_argument("--bcfw-steps", type=int, default=60)
    p.add_argument("--steps-per-epoch", type=int, default=None, help="cap training steps per epoch (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra LATENCY_SERVER_* setting for the demo's server (repeatable), e.g. LATENCY_SERVER_BUDGET_S=0.1",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.cli import UserError
    from nas.demo import DemoConfig, DemoError, run_demo

    env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("LATENCY_SERVER_"):
            raise UserError(f"--server-env expects LATENCY_SERVER_NAME=VALUE, got {item!r}")
        env[name] = value
    for name in ("heaviest_epochs", "supernet_epochs", "finetune_epochs", "bcfw_steps"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    cfg = DemoConfig(
        out_dir=args.out,
        resolution=args.resolution,
        heaviest_epochs=args.heaviest_epochs,
        supernet_epochs=args.supernet_epochs,
        finetune_epochs=args.finetune_epochs,
        bcfw_steps=args.bcfw_steps,
        seed=args.seed,
        train_threads=args.train_threads,
        steps_per_epoch=args.steps_per_epoch,
        progress=not args.no_progress,
        extra_server_env=env,
    )
    try:
        run_demo(cfg)
    except DemoError as exc:
        raise UserError(str(exc)) from None
    return 0
