"""``nas train-heaviest``: phase 1, the heaviest sub-network trained as a plain timm MobileNetV3."""

from __future__ import annotations

import argparse

from nas.commands._training import run_phase
from nas.training.options import add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-heaviest", help="train the heaviest network of the space (the teacher)", description=__doc__
    )
    add_train_arguments(p, "heaviest")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.training import train_heaviest

    return run_phase(train_heaviest, args, "heaviest")
