"""Does a long-running server measure like a fresh one? Repeated network requests, aged server vs fresh server.

For each mode (worker recycling off, then on): start a server on its own SQLite file and age it with ``--minutes``
of continuous measuring work (random new blocks and random whole networks of the search space), then time the
same probe network ``--repeats`` times on the aged server and on a fresh server started with the same settings,
alternating between the two so that the device's drift moves both alike. Per mode it reports the median over the
pairs of aged / fresh (raw figures: the medians of the network's rounds as served, no drift normalisation), the
raw repeat RSD (standard deviation over mean of the repeated figure) of each server, the aged worker's age and
task count, and the machine's load average before and after (figures from a loaded machine are not comparable
with a quiet one's).

    .venv/bin/python bench/worker_aging.py --minutes 30                    # the real run (about 75 minutes)
    .venv/bin/python bench/worker_aging.py --minutes 0.5 --repeats 3       # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from record import add_state_argument, machine_state, write_result

from latency_server.tables.correction import sample_choices  # noqa: E402
from nas.latency.local_server import LocalServer  # noqa: E402
from shared.published import PUBLISHED  # noqa: E402
from shared.search_space import HARDCORENAS  # noqa: E402


def random_block(rng: random.Random) -> dict[str, Any]:
    """A block spec unlikely to repeat (so each one is a new measurement)."""
    kind = rng.choice(["ir", "ir", "ir", "ds", "cn"])
    spec: dict[str, Any] = {"type": kind, "in_chs": 8 * rng.randint(2, 24), "out_chs": 8 * rng.randint(2, 24),
                            "stride": rng.choice([1, 2]), "resolution": rng.choice([14, 28, 56, 112]),
                            "kernel": rng.choice([3, 5]), "act": rng.choice(["relu", "hard_swish"])}
    if kind == "ir":
        spec.update(exp_ratio=rng.choice([3, 4, 6]), se_ratio=rng.choice([0, 0.25]))
    return spec


def age(client: httpx.Client, minutes: float, seed: int) -> dict[str, int]:
    """Keep the server measuring for ``minutes``: batches of new blocks, then a random network, in turn."""
    rng = random.Random(seed)
    nets = iter(sample_choices(HARDCORENAS, 100_000, seed))
    counts = {"block_requests": 0, "network_requests": 0}
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        blocks = client.post("/v1/latency/blocks", json={"blocks": [random_block(rng) for _ in range(8)]})
        blocks.raise_for_status()
        counts["block_requests"] += 1
        arch = str(HARDCORENAS.arch_from_choice(next(nets)))
        net = client.post("/v1/latency/network", json={"arch": arch, "resolution": rng.choice([160, 192, 224])})
        net.raise_for_status()
        counts["network_requests"] += 1
    return counts


def probe(client: httpx.Client, arch: str, resolution: int) -> float:
    """The raw figure of one network request (median of its rounds), ms."""
    resp = client.post("/v1/latency/network", json={"arch": arch, "resolution": resolution})
    resp.raise_for_status()
    return float(resp.json()["measured"]["median_ms"])


def rsd_pct(values: list[float]) -> float:
    return 100.0 * statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def run_mode(name: str, env: dict[str, str], args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    arch = PUBLISHED[args.network].arch
    # each server its own device lock: with the shared one the second server would serve read-only; the probes
    # alternate, so the two never measure at the same time
    aged = LocalServer(f"sqlite:///{tmp / f'{name}-aged.db'}", log_path=tmp / f"{name}-aged.log",
                       env={**env, "LATENCY_SERVER_DEVICE_LOCK": str(tmp / f"{name}-aged.lock")}).start()
    try:
        with aged.client(timeout_s=3600) as client:
            print(f"[{name}] ageing a server for {args.minutes:g} min ...", flush=True)
            counts = age(client, args.minutes, args.seed)
            worker = client.get("/healthz").json()["worker"]
        fresh = LocalServer(f"sqlite:///{tmp / f'{name}-fresh.db'}", log_path=tmp / f"{name}-fresh.log",
                            env={**env, "LATENCY_SERVER_DEVICE_LOCK": str(tmp / f"{name}-fresh.lock")}).start()
        try:
            with aged.client(timeout_s=600) as old, fresh.client(timeout_s=600) as new:
                for client in (old, new):  # one warm-up request each: the first export is not part of a repeat
                    probe(client, arch, args.resolution)
                aged_ms: list[float] = []
                fresh_ms: list[float] = []
                for i in range(args.repeats):  # alternate, starting with each side in turn
                    order = [(old, aged_ms), (new, fresh_ms)]
                    for client, out in order if i % 2 == 0 else order[::-1]:
                        out.append(probe(client, arch, args.resolution))
                    print(f"[{name}] repeat {i + 1}/{args.repeats}: aged {aged_ms[-1]:.3f} ms, "
                          f"fresh {fresh_ms[-1]:.3f} ms", flush=True)
        finally:
            fresh.stop()
    finally:
        aged.stop()
    ratios = [a / f for a, f in zip(aged_ms, fresh_ms, strict=True)]
    return {"mode": name, "aged_minutes": args.minutes, **counts, "aged_worker_tasks": worker["tasks"],
            "aged_worker_uptime_s": worker["uptime_s"], "aged_worker_recycles": worker["recycles"],
            "median_ratio": statistics.median(ratios), "ratios": ratios, "aged_ms": aged_ms, "fresh_ms": fresh_ms,
            "aged_rsd_pct": rsd_pct(aged_ms), "fresh_rsd_pct": rsd_pct(fresh_ms)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the aged server measures first")
    parser.add_argument("--repeats", type=int, default=15, help="probe requests per server")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--network", default="A", choices=sorted(PUBLISHED), help="published network to probe")
    parser.add_argument("--recycle-minutes", type=float, default=5.0, help="worker recycling period when on")
    parser.add_argument("--modes", default="off,on", help="recycling modes to run: off, on or both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    add_state_argument(parser)
    args = parser.parse_args(argv)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    load_before = os.getloadavg()
    print(f"command: {command}\nload average before: {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
    base = {"LATENCY_SERVER_LOG_LEVEL": "warning"}
    modes = {
        "off": {**base, "LATENCY_SERVER_WORKER_RECYCLE_MINUTES": "0", "LATENCY_SERVER_WORKER_RECYCLE_TASKS": "0"},
        "on": {**base, "LATENCY_SERVER_WORKER_RECYCLE_MINUTES": str(args.recycle_minutes),
               "LATENCY_SERVER_WORKER_RECYCLE_TASKS": "0"},
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="worker-aging-") as tmp:
        for name in args.modes.split(","):
            results.append(run_mode(name, modes[name], args, Path(tmp)))
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"{'recycling':>9} | {'aged min':>8} | {'worker tasks':>12} | {'median aged/fresh':>17} | "
          f"{'raw RSD aged':>12} | {'raw RSD fresh':>13}")
    for r in results:
        print(f"{r['mode']:>9} | {r['aged_minutes']:8.1f} | {r['aged_worker_tasks']:12d} | {r['median_ratio']:17.3f} | "
              f"{r['aged_rsd_pct']:11.1f}% | {r['fresh_rsd_pct']:12.1f}%")
    if args.out:
        args.out.write_text(json.dumps({"command": command, "load_before": load_before, "load_after": load_after,
                                        "results": results}, indent=2))
    figures = {"resolution": args.resolution, "network": args.network, "aged_minutes": args.minutes,
               "repeats": args.repeats,
               **{f"recycling_{r['mode']}_median_ratio": r["median_ratio"] for r in results},
               **{f"recycling_{r['mode']}_worker_tasks": r["aged_worker_tasks"] for r in results}}
    rows = [{k: r[k] for k in ("mode", "aged_worker_tasks", "aged_worker_recycles", "median_ratio",
                               "aged_rsd_pct", "fresh_rsd_pct")} for r in results]
    state = machine_state(args.state, load_average_start=[round(x, 2) for x in load_before])
    write_result("worker_aging", figures, state=state, rows=rows, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
