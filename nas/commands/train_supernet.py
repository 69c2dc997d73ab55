"""``nas train-supernet``: phase 2, multipath one-shot training of the supernet with in-place distillation."""

from __future__ import annotations

import argparse

from nas.commands._training import run_phase
from nas.training.options import add_distillation_arguments, add_supernet_arguments, add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-supernet", help="train the one-shot supernet, distilled from the heaviest network", description=__doc__
    )
    add_train_arguments(p, "supernet")
    p.add_argument("--teacher", required=True, help="train-heaviest checkpoint: the teacher and the seed weights")
    p.add_argument("--initial-checkpoint", default="", help="start from this supernet checkpoint instead")
    add_distillation_arguments(p, "supernet")
    add_supernet_arguments(p, "supernet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.training import train_supernet

    return run_phase(train_supernet, args, "supernet")
