"""``nas finetune``: phase 4, a child sliced from the supernet, fine-tuned with KD from the heaviest network."""

from __future__ import annotations

import argparse

from nas.commands._training import run_phase
from nas.training.options import add_distillation_arguments, add_train_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a searched child with knowledge distillation", description=__doc__)
    add_train_arguments(p, "finetune")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", default="", help="the child's architecture string")
    which.add_argument("--search-result", default="", help="a `nas search` result JSON (its 'arch')")
    p.add_argument("--supernet", default="", help="train-supernet checkpoint to slice the child from")
    p.add_argument("--teacher", default="", help="train-heaviest checkpoint for KD (none: no KD)")
    add_distillation_arguments(p, "finetune")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.training import finetune

    return run_phase(finetune, args, "finetune")
