"""``nas lut``: fetch a latency table from a latency server, or import the original project's pickle."""

from __future__ import annotations

import argparse
import os

from nas.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lut",
        help="fetch a latency table from a server, or import an original lut.pkl",
        description="nas lut --latency-endpoint URL [--resolution --backend --batch-size --threads] --out lut.json\n"
        "nas lut import ORIGINAL.pkl --unit s [--backend --batch-size --threads] --out lut.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["fetch", "import"],
        default="fetch",
        help="fetch (default) from --latency-endpoint, or import a pickle",
    )
    p.add_argument("pickle", nargs="?", help="the original project's lut.pkl (import only)")
    p.add_argument("--latency-endpoint", metavar="URL", help="latency server, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--token",
        default=os.environ.get("LATENCY_SERVER_TOKEN"),
        help="bearer token of the server (default: env LATENCY_SERVER_TOKEN)",
    )
    p.add_argument("--space", default="hardcorenas", help="search space (default hardcorenas)")
    p.add_argument(
        "--resolution", type=int, default=None, help="input resolution (fetch default 224; import: inferred)"
    )
    p.add_argument(
        "--backend", default="onnxruntime", help="onnxruntime | torch-cpu | torch-cuda (default onnxruntime)"
    )
    p.add_argument("--batch-size", type=int, default=1, help="measurement batch size (default 1)")
    p.add_argument("--threads", type=int, default=None, help="measurement threads (fetch default 1; import: unknown)")
    p.add_argument("--unit", choices=["s", "ms"], help="unit of the pickle's values (import; the original uses s)")
    p.add_argument(
        "--raw-table",
        action="store_true",
        help="fetch: keep only the raw block medians (default: apply the server's fitted whole-network correction)",
    )
    p.add_argument("--out", required=True, help="output JSON file (milliseconds)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.latency.client import LatencyClient
    from nas.latency.original_lut import import_original
    from nas.latency.table import LatencyTableError
    from nas.progress import table_build_bar
    from shared.search_space import SearchSpaceError, get_space

    try:
        space = get_space(args.space)
        if args.action == "import":
            if not args.pickle:
                raise UserError("nas lut import needs the pickle file: nas lut import ORIGINAL.pkl --unit s --out F")
            if not args.unit:
                raise UserError("--unit is required for import (s for the original project's tables)")
            table = import_original(
                args.pickle,
                unit=args.unit,
                backend=args.backend,
                batch_size=args.batch_size,
                threads=args.threads,
                space=space,
                resolution=args.resolution,
            )
        else:
            if args.pickle:
                raise UserError(f"unexpected argument {args.pickle!r} (did you mean 'nas lut import {args.pickle}'?)")
            if not args.latency_endpoint:
                raise UserError("--latency-endpoint URL is required to fetch a table")
            resolution = space.check_resolution(args.resolution or 224)
            with LatencyClient(args.latency_endpoint, token=args.token) as client, table_build_bar() as on_progress:
                table = client.fetch_table(
                    space=space.name,
                    resolution=resolution,
                    backend=args.backend,
                    batch_size=args.batch_size,
                    threads=args.threads or 1,
                    use_correction=not args.raw_table,
                    on_progress=on_progress,
                )
            table.block_ms(space)  # complete for the space
    except (LatencyTableError, SearchSpaceError) as exc:
        raise UserError(str(exc)) from None
    path = table.save(args.out)
    print(
        f"wrote {path}: {len(table.entries)} block entries, fixed part {table.fixed_ms:.4f} ms, "
        f"{table.describe()}, fingerprint {table.fingerprint}"
    )
    if table.corrections.get("method"):
        print(f"whole-network correction applied: {table.corrections['method']}")
    return 0
