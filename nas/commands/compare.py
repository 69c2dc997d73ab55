"""``nas compare``: searched networks beside published ones, measured on one latency server under the same settings
(one verdict at a time), printed as one table sorted by latency, optionally written as JSON and drawn on one axis."""

from __future__ import annotations

import argparse
import os
import sys

from nas.errors import UserError

#: ``--baselines`` shorthands (the names are :data:`nas.latency.compare.PUBLISHED_BASELINES`, not imported here so
#: that the CLI starts fast)
BASELINE_SETS = ("published",)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="measure searched networks and baselines on one latency server, one table sorted by latency",
        description="Measure each searched network (--search-result, --arch) and each baseline (--timm, --onnx, "
        "--baselines published) on one latency server under the same settings, one after another, and print one "
        "table (central figure, upper bound, parameters, MACs) sorted by latency; --json writes it, --plot draws "
        "every network on one latency axis.",
    )
    p.add_argument("--latency-endpoint", required=True, metavar="URL", help="the latency server, e.g. "
                   "http://127.0.0.1:8000")
    p.add_argument("--token", default=os.environ.get("LATENCY_SERVER_TOKEN"),
                   help="bearer token of the server (default: env LATENCY_SERVER_TOKEN)")
    p.add_argument("--search-result", action="append", default=[], metavar="PATH",
                   help="a search's output folder or its result.json (repeatable); named after the folder")
    p.add_argument("--arch", action="append", default=[], metavar="[NAME=]STRING",
                   help="an architecture string of the search space (repeatable), optionally named NAME=STRING")
    p.add_argument("--timm", action="append", default=[], metavar="NAME", help="a timm model by name (repeatable)")
    p.add_argument("--onnx", action="append", default=[], metavar="FILE", help="an ONNX file to upload (repeatable)")
    p.add_argument("--baselines", choices=BASELINE_SETS,
                   help="add a set of timm baselines: 'published' is hardcorenas_a .. hardcorenas_f, "
                   "mobilenetv3_small_100 and mobilenetv3_large_100")
    p.add_argument("--resolution", type=int, default=224, help="input size of every measurement (default 224); an "
                   "ONNX file's own input shape sets its resolution")
    p.add_argument("--backend", default="onnxruntime", help="onnxruntime | torch-cpu | torch-cuda "
                   "(default onnxruntime)")
    p.add_argument("--threads", type=int, default=1, help="threads of the measured session (default 1)")
    p.add_argument("--confidence", type=float, default=0.95, help="the bounds' confidence (default %(default)s)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                   help="print one JSON object (or write it to PATH)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="draw every network on one latency axis")
    p.set_defaults(func=run)


def _arch_entries(values: list[str]) -> list:
    from nas.latency.compare import Entry

    entries = []
    for k, value in enumerate(values, start=1):
        name, sep, arch = value.partition("=")
        if not sep or name.lstrip().startswith("["):  # no name given (an arch string holds no '=')
            name, arch = f"arch-{k}", value
        entries.append(Entry(name=name.strip(), kind="arch", source=arch.strip(), searched=True))
    return entries


def _check(args: argparse.Namespace) -> None:
    if not args.latency_endpoint.startswith(("http://", "https://")):
        raise UserError(f"--latency-endpoint: expected an http(s) URL, got {args.latency_endpoint!r}")
    if not (args.search_result or args.arch or args.timm or args.onnx or args.baselines):
        raise UserError("nothing to compare: give --search-result, --arch, --timm, --onnx or --baselines published")
    if args.resolution < 32:
        raise UserError("--resolution must be at least 32")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")
    if not 0.5 <= args.confidence <= 0.9999:
        raise UserError("--confidence must be within [0.5, 0.9999]")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UserError(f"--plot writes a PNG file: give a name ending .png, got {args.plot!r}")


def entries_of(args: argparse.Namespace) -> list:
    """What to measure, baselines first (a mistyped name fails in seconds, before the longer measurements), each
    file checked before anything is measured; a name given twice is measured once."""
    from nas.latency.compare import PUBLISHED_BASELINES, CompareError, baseline_entries, search_entries

    _check(args)
    timm = list(args.timm) + (list(PUBLISHED_BASELINES) if args.baselines == "published" else [])
    try:
        entries = baseline_entries(list(dict.fromkeys(timm)), args.onnx) + search_entries(args.search_result)
    except CompareError as exc:
        raise UserError(str(exc)) from None
    entries += _arch_entries(args.arch)
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise UserError(f"two networks named {', '.join(twice)}: name --arch values NAME=STRING, or give distinct "
                        "folders")
    return entries


def run(args: argparse.Namespace) -> int:
    from nas.commands._json_answer import emit_json
    from nas.latency.client import LatencyClient
    from nas.latency.compare import Settings, comparison_json, format_table, measure_entries
    from nas.latency.table import LatencyTableError

    entries = entries_of(args)
    settings = Settings(resolution=args.resolution, backend=args.backend, threads=args.threads,
                        confidence=args.confidence)
    quiet = args.json == "-"

    def progress(m) -> None:
        if not quiet:
            print(f"  {m.name}: {m.central_ms:.3f} ms (bound {m.upper_ms:.3f} ms, {m.seconds:.0f} s)",
                  file=sys.stderr, flush=True)

    try:
        with LatencyClient(args.latency_endpoint, token=args.token) as client:
            client.health()  # a wrong endpoint fails here, before any work
            rows = measure_entries(client, entries, settings, after_each=progress)
    except LatencyTableError as exc:
        raise UserError(" ".join(str(exc).split())) from None  # one line, the server's words kept
    out = comparison_json(rows, settings, args.latency_endpoint)
    if args.plot:
        from nas.latency.compare_plot import draw_comparison

        try:
            draw_comparison(rows, settings, args.plot)
        except OSError as exc:
            raise UserError(f"--plot: cannot write {args.plot}: {exc.strerror or exc}") from None
    if emit_json(args.json, out):
        return 0
    print(f"{len(rows)} networks on {args.latency_endpoint} ({settings.backend}, {settings.threads} thread(s), "
          f"batch 1, {settings.resolution} px; bound at {100 * settings.confidence:g} %; * searched)")
    print(format_table(rows))
    warnings = {r.noise_warning for r in rows if r.noise_warning}
    for warning in sorted(warnings):
        print(f"noise warning from the server: {warning}")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0
