"""``nas demo``: the main job end to end on the bundled ``digits`` data with a local latency server."""

from __future__ import annotations

import argparse
from pathlib import Path

#: options that default to :class:`nas.demo.DemoConfig`'s own values (not imported here: the CLI starts fast)
_CONFIG_OPTIONS = ("data", "resolution", "heaviest_epochs", "supernet_epochs", "finetune_epochs", "train_threads",
                   "bcfw_steps", "random_networks", "spread_networks", "steps_per_epoch", "seed", "fleet_bcfw_steps")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline end to end on the bundled data (make demo)",
        description="Start a latency server on a SQLite file, build the latency table, train the heaviest network "
        "and the supernet on digits, search at three latency limits, rank each searched network among "
        "random networks of its latency band, fine-tune, validate and measure each result, measure the published "
        "networks beside them, then search one network for two targets (onnxruntime and torch-cpu on the same "
        "server); write "
        "outputs/demo/results.{md,csv,json} and three plots. Options left out take the demo's settings.",
    )
    p.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default outputs/demo)")
    p.add_argument("--data", help="data of every stage: 'digits' (default), 'synthetic' or an ImageFolder root")
    p.add_argument("--resolution", type=int, help="input resolution (default 32)")
    p.add_argument("--heaviest-epochs", type=int)
    p.add_argument("--supernet-epochs", type=int)
    p.add_argument("--finetune-epochs", type=int)
    p.add_argument("--train-threads", type=int,
                   help="torch threads of the training stages (default 2; 1 on a 1-core machine)")
    p.add_argument("--bcfw-steps", type=int)
    p.add_argument("--random-networks", type=int,
                   help="random networks per limit each searched network is ranked among (default 30)")
    p.add_argument("--spread-networks", type=int,
                   help="random networks over the table's whole range for the Spearman correlation of latency and "
                   "accuracy (default 30; 0: the bands' networks alone)")
    p.add_argument("--steps-per-epoch", type=int, help="cap training steps per epoch (smoke runs)")
    p.add_argument("--fleet-bcfw-steps", type=int,
                   help="BCFW steps of the fleet step's search under both targets' limits (default 60)")
    p.add_argument("--no-fleet", action="store_true",
                   help="skip the fleet step (a second table, torch-cpu, and one search under both targets)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip measuring the published networks (hardcorenas_a .. f, mobilenetv3_small_100 and "
                   "mobilenetv3_large_100 by timm name) on the demo's server")
    p.add_argument("--time-budget", type=float, metavar="MIN",
                   help="minutes of demo clock the baselines and fleet steps must fit in, each estimated from this "
                   "run's own stage times (default 13.75, so that make demo stays within 15 minutes with its set-up; "
                   "0: no budget)")
    p.add_argument("--seed", type=int)
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
    from nas.demo import DemoConfig, DemoError, run_demo
    from nas.errors import UserError

    env = {}
    for item in args.server_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("LATENCY_SERVER_"):
            raise UserError(f"--server-env expects LATENCY_SERVER_NAME=VALUE, got {item!r}")
        env[name] = value
    given = {name: getattr(args, name) for name in _CONFIG_OPTIONS if getattr(args, name) is not None}
    if args.no_fleet:
        given["fleet_backend"] = None
    if args.no_baselines:
        given["baselines"] = ()
    spread = given.get("spread_networks", 0)
    if spread != 0 and spread < 6:
        raise UserError("--spread-networks must be 0 or at least 6 (one per stratum of the range)")
    if args.time_budget is not None:
        if args.time_budget < 0:
            raise UserError("--time-budget must be 0 (no budget) or positive minutes")
        given["time_budget_s"] = args.time_budget * 60 if args.time_budget > 0 else None
    for name in ("heaviest_epochs", "supernet_epochs", "finetune_epochs", "bcfw_steps", "random_networks",
                 "fleet_bcfw_steps"):
        if name in given and given[name] < 1:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    cfg = DemoConfig(out_dir=args.out, progress=not args.no_progress, extra_server_env=env, **given)
    try:
        run_demo(cfg, args.cli_main)
    except DemoError as exc:
        raise UserError(str(exc)) from None
    return 0
