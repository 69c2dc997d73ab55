"""``nas demo``: the main job end to end (for now: the published networks; the full pipeline lands later)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on the bundled data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.commands.show import run as show

    return show(argparse.Namespace(arch=None, num_classes=1000))
