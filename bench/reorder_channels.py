"""Benchmark: does reordering the teacher's channels by importance before seeding the supernet help its children?

Trains the supernet twice from the same teacher with the same seed and settings, once with ``--reorder-channels``
and once without, then evaluates the same children of both (the lightest, the heaviest and ``--children`` uniform
random ones; each with BN statistics re-estimated on the same training batches, on the val split, no fine-tuning).
Reports the mean top-1 of each and the paired difference (with / without) with its standard error; the last line
is one JSON object. ``--epochs 0`` skips training and compares the seeded supernets themselves.

    python bench/reorder_channels.py --teacher HEAVIEST.pth.tar --data digits --epochs 2 --children 30
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

from record import add_state_argument, write_result

from nas.cli import main as nas_main  # noqa: E402
from nas.data import build_dataset  # noqa: E402
from nas.evaluation.child_accuracy import ChildEvaluator  # noqa: E402
from shared.search_space import HARDCORENAS, ArchChoice  # noqa: E402


def _children(count: int, seed: int) -> list[ArchChoice]:
    rng = random.Random(seed)
    space = HARDCORENAS
    out = [space.lightest(), space.heaviest()]
    while len(out) < count + 2:
        out.append(ArchChoice(tuple(tuple(rng.randrange(space.num_options) for _ in range(rng.choice(space.depths)))
                                    for _ in space.stages)))
    return out


def _seeded(args: argparse.Namespace, reorder: bool):
    """The supernet as seeded from the teacher, before any training."""
    import torch

    from nas.models.supernet import ElasticSupernet
    from nas.training import load_network
    from nas.training.tasks import reorder_teacher

    teacher, _, _ = load_network(args.teacher)
    if reorder:
        reorder_teacher(teacher, args.data, args.resolution, 32, torch.device("cpu"))
    net = ElasticSupernet(HARDCORENAS, num_classes=teacher.num_classes)
    net.load_heaviest(teacher.state_dict())
    return net


def _trained(args: argparse.Namespace, reorder: bool):
    from nas.training.models import load_supernet

    name = "reordered" if reorder else "plain"
    argv = ["train-supernet", args.data, "--resolution", str(args.resolution), "--teacher", args.teacher,
            "--epochs", str(args.epochs), "--seed", str(args.seed), "--threads", str(args.threads),
            "--output", str(args.out), "--experiment", name, "--no-progress",
            "--reorder-channels" if reorder else "--no-reorder-channels"]
    if nas_main(argv) != 0:
        raise SystemExit(f"`nas {' '.join(argv)}` failed")
    (run,) = sorted(args.out.glob(f"*-{name}"))[-1:]
    return load_supernet(run / "last.pth.tar")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="train-heaviest checkpoint")
    p.add_argument("--data", default="digits")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2, help="supernet epochs of each run (0: the seeded supernets)")
    p.add_argument("--children", type=int, default=30, help="uniform random children besides lightest/heaviest")
    p.add_argument("--recal-batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("outputs/bench_reorder"))
    add_state_argument(p)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build = _trained if args.epochs > 0 else _seeded
    supernets = {reorder: build(args, reorder) for reorder in (False, True)}
    train_s = time.perf_counter() - t0
    train = build_dataset(args.data, "train", args.resolution, train_transforms=False)
    val = build_dataset(args.data, "val", args.resolution, train_transforms=False)
    children = _children(args.children, args.seed)
    top1: dict[bool, list[float]] = {}
    for reorder, supernet in supernets.items():
        evaluator = ChildEvaluator(supernet, train, val, recal_batches=args.recal_batches, seed=args.seed)
        top1[reorder] = [evaluator.evaluate(c).top1 for c in children]
    diff = [a - b for a, b in zip(top1[True], top1[False], strict=True)]
    se = statistics.stdev(diff) / math.sqrt(len(diff))
    summary = {
        "data": args.data,
        "epochs": args.epochs,
        "children": len(children),
        "mean_top1_plain": round(statistics.mean(top1[False]), 3),
        "mean_top1_reordered": round(statistics.mean(top1[True]), 3),
        "mean_difference": round(statistics.mean(diff), 3),
        "difference_se": round(se, 3),
        "reordered_better": sum(d > 0 for d in diff),
        "reordered_worse": sum(d < 0 for d in diff),
        "lightest": [top1[False][0], top1[True][0]],
        "heaviest": [top1[False][1], top1[True][1]],
        "train_s": round(train_s, 1),
    }
    print(f"{args.data}, {args.epochs} supernet epoch(s), {len(children)} children (lightest, heaviest, "
          f"{args.children} uniform): mean top-1 {summary['mean_top1_plain']:.2f} % without reordering, "
          f"{summary['mean_top1_reordered']:.2f} % with; paired difference {summary['mean_difference']:+.2f} "
          f"+- {se:.2f} (better for {summary['reordered_better']}, worse for {summary['reordered_worse']})")
    print(json.dumps(summary))
    write_result("reorder_channels", summary, args=args)


if __name__ == "__main__":
    main()
