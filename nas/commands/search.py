"""``nas search``: hard-constrained architecture search (BCFW) under a latency limit in milliseconds."""

from __future__ import annotations

import argparse
import os
import sys

from nas.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    from nas.search import BCFWConfig, SearchSettings

    p = sub.add_parser(
        "search",
        help="search a network whose table latency is at most --latency-limit-ms",
        description="Searches the option and depth distribution with block-coordinate Frank-Wolfe under a hard "
        "expected-latency limit (and, with --max-params / --max-macs, hard limits on the parameter count and the "
        "multiply-accumulates), then returns a network whose table latency (and counts) are checked to meet them. "
        "Writes OUT/result.json, OUT/trajectory.csv and OUT/trajectory.png.",
    )
    p.add_argument("data", help="'digits', 'synthetic' or an ImageFolder root (train/ is split per class)")
    p.add_argument("--latency-limit-ms", type=float, metavar="T",
                   help="the hard limit T in ms of the one target (--latency-endpoint or --lut)")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--latency-endpoint",
        metavar="URL",
        help="latency server to fetch the table from and to measure the found network on",
    )
    src.add_argument("--lut", metavar="FILE", help="latency table JSON (nas lut)")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="URL[?backend=B&threads=N&batch_size=M]=T_ms",
        help="a fleet's target (repeatable, instead of --latency-endpoint/--latency-limit-ms): a latency server, "
        "its measuring settings (unset ones: --backend, --threads, --latency-batch-size) and its limit after the "
        "last '='; the search meets every target's limit, and each server's verdict must accept the network",
    )
    p.add_argument(
        "--target-lut",
        action="append",
        default=[],
        metavar="FILE=T_ms",
        help="an offline target (repeatable): a latency table file and its limit (the table guarantee only)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("LATENCY_SERVER_TOKEN"),
        help="bearer token of the server (default: env LATENCY_SERVER_TOKEN)",
    )
    p.add_argument(
        "--max-params",
        metavar="N",
        help="hard limit on the network's parameter count (with the data's classes), e.g. 3.5M, 800K or 3500000 "
        "(suffixes K, M, G); met by every search step and the returned network, beside the latency limits; "
        "result.json lists it under 'limits' with the network's count",
    )
    p.add_argument(
        "--max-macs",
        metavar="N",
        help="hard limit on the network's multiply-accumulates at --resolution (convolutions and linear layers), "
        "e.g. 300M or 1.2G; like --max-params, and combinable with it",
    )
    p.add_argument("--supernet", metavar="CKPT", help="trained supernet checkpoint (default: fresh, with a warning)")
    steps = SearchSettings(1.0).bcfw_steps
    p.add_argument("--bcfw-steps", type=int, default=steps,
                   help=f"BCFW steps, one supernet pass each (default {steps}); from --extend-from steps on, a floor: "
                   "the search goes on while its averaged gradients are too noisy, up to --step-cap times as many")
    p.add_argument("--batch-size", type=int, default=16, help="held-out images per gradient (default 16)")
    p.add_argument("--aggregate-batches", type=int, default=1, help="batches per gradient (default 1)")
    p.add_argument(
        "--bn-statistics",
        choices=["batch", "running"],
        default="batch",
        help="BN statistics of the supernet passes: batch = each option's own on the batch (default; needs "
        "--batch-size >= 2), running = the training's running statistics, as the original (biased against wide "
        "options after multipath training)",
    )
    p.add_argument(
        "--train-percent",
        type=float,
        default=80.0,
        help="per class, the first P%% of train/ is skipped; the rest gives gradients (default 80)",
    )
    p.add_argument("--resolution", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, table and data: same network)")
    p.add_argument("--space", default="hardcorenas", help="search space (default hardcorenas)")
    p.add_argument("--backend", default="onnxruntime", help="the table's backend (default onnxruntime)")
    p.add_argument("--latency-batch-size", type=int, default=1, help="the table's batch size (default 1)")
    p.add_argument("--threads", type=int, default=1, help="the table's thread count (default 1)")
    defaults = BCFWConfig()

    def optimizer_flag(name: str, help: str, **kwargs) -> None:
        """A flag of one BCFWConfig field, its default taken from there."""
        default = getattr(defaults, name)
        p.add_argument("--" + name.replace("_", "-"), default=default, help=f"{help} (default {default})", **kwargs)

    optimizer_flag("block_choice", "which block each step updates", choices=["random", "alternate"])
    optimizer_flag("step_schedule", "decaying: a block's k-th step (from 0) is max step * 8/(k+8); fixed: every "
                   "step is the max step (the original: 0.002)", choices=["fixed", "decaying"])
    optimizer_flag("max_step", "largest step size", type=float)
    optimizer_flag("momentum_schedule", "gradient averaging: decaying gives gradient t the weight 1/(t+1) (the "
                   "running mean of all gradients); fixed: momentum --momentum (the original)",
                   choices=["fixed", "decaying"])
    optimizer_flag("momentum", "weight of the old average under --momentum-schedule fixed", type=float)
    optimizer_flag("step_cap", "most steps run, as a multiple of --bcfw-steps, while the averaged gradients' "
                   "noise-to-signal ratio is above the target (1: exactly --bcfw-steps)", type=float)
    optimizer_flag("extend_from", "runs asked for fewer steps keep their count", type=int)
    optimizer_flag("depth_floor", "least probability every depth of every stage keeps while searching, so every block "
                   "keeps running and its options keep being estimated (less where the latency limit cannot pay for "
                   "it; 0: none)", type=float)
    optimizer_flag("final_score", "what the returned network maximises among all networks within the limit (found "
                   "exactly): linearised = the loss model fitted to the averaged gradients, probability = the "
                   "network's probability under the final distribution", choices=["linearised", "probability"])
    p.add_argument(
        "--child-candidates",
        type=int,
        default=1,
        help="the final steps propose this many networks along the score/latency trade-off under the limit and "
        "return the one whose supernet child is most accurate on the held-out images (default 1: the final "
        "objective's optimum alone, as the paper)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="with --latency-endpoint: times the final steps may be re-run under a tighter internal limit when the "
        "device's upper bound on the found network is above T (default 3; 0 = measure only); if none fits, a "
        "warning is printed and result.json says guarantee.met = false",
    )
    p.add_argument(
        "--confidence",
        type=float,
        default=0.95,
        help="with --latency-endpoint: the returned network's latency on the device stays at or under T in a later "
        "measurement with this confidence, under the device's measured variability (default 0.95)",
    )
    p.add_argument(
        "--raw-table",
        action="store_true",
        help="with --latency-endpoint: use the server's raw block medians, not its whole-network correction",
    )
    p.add_argument(
        "--sweep",
        metavar="F1,F2,...",
        help="search once per point, reusing the supernet and the tables, and write OUT/sweep.csv and OUT/sweep.png "
        "(held-out top-1, BN recalibrated, against each target's latency) with each point's outputs in "
        "OUT/sweep-N: a point is a factor on every target's limit (0.8), or one factor per target joined by ':' "
        "(0.8:1.2 scales the first target's limit by 0.8 and the second's by 1.2)",
    )
    p.add_argument("--device", default="cpu", help="torch device of the supernet passes (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run)


def _targets(args: argparse.Namespace) -> list | None:
    """The fleet's targets, or None for the one-target form; UserError on a bad or mixed form."""
    from nas.search.fleet import check_distinct, parse_target, parse_target_lut

    if not (args.target or args.target_lut):
        if args.latency_limit_ms is None or (args.latency_endpoint is None and args.lut is None):
            raise UserError("give --latency-limit-ms with --latency-endpoint or --lut, or one or more --target / "
                            "--target-lut")
        return None
    if args.latency_limit_ms is not None or args.latency_endpoint or args.lut:
        raise UserError("--target/--target-lut carry their own limits: drop --latency-limit-ms, --latency-endpoint "
                        "and --lut")
    try:
        targets = [parse_target(spec) for spec in args.target] + [parse_target_lut(spec) for spec in args.target_lut]
        check_distinct(targets)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return targets


def _count_limit(text: str | None, flag: str) -> float | None:
    """``--max-params`` / ``--max-macs`` as a number (None when not given); UserError when unreadable."""
    from nas.search.resource_limits import parse_count

    if text is None:
        return None
    try:
        return parse_count(text, flag)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _print_limits(result) -> None:
    from nas.search.resource_limits import format_count

    for r in result.resources:
        value = r.value(result.choice)
        print(f"{'parameters' if r.kind == 'params' else 'MACs'}: {format_count(value, unlike=r.limit)} ({value:,}) "
              f"<= limit {format_count(r.limit)} ({100 * value / r.limit:.1f} %)")


def _sweep_points(spec: str | None, num_targets: int) -> list[tuple[float, ...]] | None:
    """``--sweep`` as points of one factor per target (a single factor applies to every target)."""
    import math

    if spec is None:
        return None
    points = []
    for entry in spec.split(","):
        try:
            factors = tuple(float(x) for x in entry.split(":"))
        except ValueError:
            raise UserError(f"--sweep: {entry!r} is not a factor or factors joined by ':'") from None
        if not all(math.isfinite(f) and f > 0 for f in factors):
            raise UserError(f"--sweep: factors must be positive numbers, got {entry!r}")
        if len(factors) == 1:
            factors *= num_targets
        if len(factors) != num_targets:
            raise UserError(f"--sweep: {entry!r} has {len(factors)} factors for {num_targets} target(s)")
        points.append(factors)
    return points


def run(args: argparse.Namespace) -> int:
    from nas.search import BCFWConfig, SearchSettings, run_search

    if args.bcfw_steps < 0 or args.batch_size < 1 or args.aggregate_batches < 1:
        raise UserError("--bcfw-steps must be >= 0, --batch-size and --aggregate-batches >= 1")
    if args.max_retries < 0:
        raise UserError("--max-retries must be >= 0")
    if args.child_candidates < 1:
        raise UserError("--child-candidates must be >= 1")
    if not 0.5 <= args.confidence <= 0.999:
        raise UserError("--confidence must be between 0.5 and 0.999")
    targets = _targets(args)
    sweep = _sweep_points(args.sweep, len(targets) if targets else 1)
    max_params, max_macs = _count_limit(args.max_params, "--max-params"), _count_limit(args.max_macs, "--max-macs")
    try:
        settings = SearchSettings(
            latency_limit_ms=targets[0].limit_ms if targets else args.latency_limit_ms,
            bcfw_steps=args.bcfw_steps,
            batch_size=args.batch_size,
            train_percent=args.train_percent,
            resolution=args.resolution,
            seed=args.seed,
            bcfw=BCFWConfig(
                block_choice=args.block_choice,
                step_schedule=args.step_schedule,
                max_step=args.max_step,
                momentum_schedule=args.momentum_schedule,
                momentum=args.momentum,
                final_score=args.final_score,
                step_cap=args.step_cap,
                extend_from=args.extend_from,
                depth_floor=args.depth_floor,
            ),
            aggregate_batches=args.aggregate_batches,
            bn_statistics=args.bn_statistics,
            backend=args.backend,
            latency_batch_size=args.latency_batch_size,
            threads=args.threads,
            confidence=args.confidence,
            child_candidates=args.child_candidates,
        )
        result = run_search(
            args.data,
            args.out,
            settings,
            lut_path=args.lut,
            latency_endpoint=args.latency_endpoint,
            targets=targets,
            token=args.token,
            supernet_path=args.supernet,
            space=args.space,
            device=args.device,
            progress=not args.no_progress,
            max_retries=args.max_retries,
            use_correction=not args.raw_table,
            sweep=sweep,
            max_params=max_params,
            max_macs=max_macs,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    if sweep is not None:
        for n, (point, r) in enumerate(zip(sweep, result, strict=True)):
            print(f"point {n + 1} ({':'.join(f'{x:g}' for x in point)}): {r.arch}")
            _print_targets(r)
        print(f"wrote {args.out}/sweep.csv, sweep.png and sweep-1 .. sweep-{len(sweep)}")
        return 0
    print(f"network: {result.arch}")
    _print_limits(result)
    if targets:
        _print_targets(result)
        return _warn_unmet(result, args.out)
    print(
        f"table latency {result.expected_latency_ms:.4f} ms <= limit {settings.latency_limit_ms:.4f} ms "
        f"({100 * result.expected_latency_ms / settings.latency_limit_ms:.1f} % of the budget)"
    )
    central = result.extra.get("measured_latency_ms")
    guarantee = result.extra.get("guarantee")
    if central is not None and guarantee is not None:
        upper = result.extra["upper_latency_ms"]
        level = f"{100 * guarantee['confidence']:g} % bound" if guarantee.get("confidence") else "median + spread"
        print(f"measured on the device: {central:.4f} ms central ({100 * central / settings.latency_limit_ms:.1f} % "
              f"of the limit), {level} {upper:.4f} ms; raw median {result.extra['raw_median_ms']:.4f} ms (spread "
              f"{result.extra['raw_spread_ms']:.4f} ms); {len(result.attempts)} attempt(s)")
    print(f"wrote {args.out}/result.json, trajectory.csv, trajectory.png")
    if guarantee is not None and not guarantee["met"]:
        # not an error exit: the table-guaranteed network is still a result, and pipelines read result.json
        print(
            f"WARNING: the returned network's upper bound {result.extra['upper_latency_ms']:.4f} ms is above the "
            f"limit {settings.latency_limit_ms:.4f} ms ({guarantee.get('reason', '')}); result.json has "
            "guarantee.met = false and every attempt",
            file=sys.stderr,
        )
    return 0


def _print_targets(result) -> None:
    for k, t in enumerate(result.targets_json()):
        where = t.get("endpoint") or t.get("lut")
        line = (f"target {k + 1} ({where}, {t['backend']}, {t['threads']} thread(s), batch {t['batch_size']}): table "
                f"{t['expected_latency_ms']:.4f} ms <= limit {t['latency_limit_ms']:.4f} ms")
        if t.get("measured_latency_ms") is not None:
            line += f"; measured {t['measured_latency_ms']:.4f} ms central, bound {t['upper_latency_ms']:.4f} ms"
        print(line)


def _warn_unmet(result, out: str) -> int:
    print(f"wrote {out}/result.json, trajectory.csv, trajectory.png")
    guarantee = result.extra.get("guarantee")
    if guarantee is not None and not guarantee["met"]:
        print(f"WARNING: a target's upper bound is above its limit ({guarantee.get('reason', '')}); result.json has "
              "guarantee.met = false and every attempt", file=sys.stderr)
    return 0
