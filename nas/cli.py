"""The ``nas`` command line: training, search, tables and validation. Each sub-command lives in
``nas/commands/<name>.py`` and registers itself; this module only wires them."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import nas.commands
from nas.errors import UserError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The full ``nas`` parser with every sub-command found in :mod:`nas.commands`."""
    parser = argparse.ArgumentParser(
        prog="nas",
        description="HardCoRe-NAS client: train the supernet, search under a hard latency limit, fine-tune, "
        "validate and export networks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # commands that run other commands (the demo) get this entry point handed in rather than importing it
    parser.set_defaults(cli_main=main)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(nas.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"nas.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nas`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
