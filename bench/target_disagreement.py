"""Which two measuring targets of one machine disagree most on which blocks are cheap, and what each table costs.

Starts a local latency server (the demo's default measurement settings, SQLite in a temporary folder, its own
device lock: other servers on the machine measure meanwhile, so the figures carry their load), builds the
table of every candidate target at one resolution (timed: the fleet step of the demo pays one extra build), and
compares every pair of tables block position by block position: over the 12 options of each (stage, position),
the Spearman rank correlation of the two tables' latencies, averaged over the 20 positions (1: they agree on the
order of the options everywhere; a fleet search is then the one-target search), and the share of positions whose
cheapest option differs. The pair with the lowest mean correlation disagrees most.

    python bench/target_disagreement.py [--resolution 32] \
        [--targets onnxruntime:1:1,onnxruntime:1:16,torch-cpu:1:1]   # backend:threads:batch_size
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

from record import add_state_argument, write_result

from nas.latency.client import LatencyClient  # noqa: E402
from nas.latency.local_server import LocalServer  # noqa: E402
from nas.search.fleet import table_disagreement  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--targets", default="onnxruntime:1:1,onnxruntime:1:16,torch-cpu:1:1",
                        help="backend:threads:batch_size, comma separated")
    add_state_argument(parser)
    args = parser.parse_args()
    targets = [(b, int(t), int(n)) for b, t, n in (spec.split(":") for spec in args.targets.split(","))]
    tables, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        # a device lock of its own: a server another process runs on this machine would make this one read-only
        server = LocalServer(f"sqlite:///{Path(tmp) / 'latency.db'}", log_path=Path(tmp) / "server.log",
                             env={"LATENCY_SERVER_DEVICE_LOCK": str(Path(tmp) / "device.lock")})
        server.start()
        try:
            with LatencyClient(server.url) as client:
                for backend, threads, batch in targets:
                    t0 = time.monotonic()
                    table = client.fetch_table(resolution=args.resolution, backend=backend, threads=threads,
                                               batch_size=batch)
                    seconds[(backend, threads, batch)] = time.monotonic() - t0
                    tables[(backend, threads, batch)] = table.model().block_ms
                    model = table.model()
                    print(f"{backend} {threads} thread(s) batch {batch}: table built in "
                          f"{seconds[(backend, threads, batch)]:.0f} s, networks {model.min_latency_ms():.3f} .. "
                          f"{model.max_latency_ms():.3f} ms", flush=True)
        finally:
            server.stop()
    pairs = []
    for x, y in itertools.combinations(targets, 2):
        rho, differ = table_disagreement(tables[x], tables[y])
        pairs.append({"pair": [":".join(map(str, x)), ":".join(map(str, y))], "mean_spearman": rho,
                      "cheapest_differs_share": differ})
        print(f"{x} vs {y}: mean per-position Spearman {rho:.2f}, cheapest option differs at {100 * differ:.0f} % "
              "of positions")
    worst = min(pairs, key=lambda p: p["mean_spearman"])
    print(f"most disagreeing pair: {worst['pair'][0]} and {worst['pair'][1]}")
    print(json.dumps({"build_seconds": {":".join(map(str, k)): v for k, v in seconds.items()}, "pairs": pairs,
                      "most_disagreeing": worst["pair"]}))
    figures = {"resolution": args.resolution, "most_disagreeing": " vs ".join(worst["pair"]),
               "most_disagreeing_spearman": worst["mean_spearman"],
               "most_disagreeing_cheapest_differs": worst["cheapest_differs_share"]}
    write_result("target_disagreement", figures, rows=pairs, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
