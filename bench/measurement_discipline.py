"""Which measurement discipline lowers the spread of whole-network figures: one change at a time, on one run.

Each configuration is a latency server of its own (its own database and device lock) with one setting changed
from the baseline: the worker pinned to one CPU (``LATENCY_SERVER_WORKER_CPUS``), at a raised priority
(``LATENCY_SERVER_WORKER_NICE``), both, or longer timing rounds (``LATENCY_SERVER_BUDGET_S``). The same random
networks are measured through ``POST /v1/latency/network`` on every server, pass after pass, the servers' order
rotated each pass; the client waits for each answer, so only one server measures at any moment. Per
configuration:

- jitter: the spread of one request's rounds (median over requests of the rounds' relative standard deviation);
- between requests: each network's relative standard deviation of its raw figures across passes (the median over
  networks), and of its ratio to the drift reference (what the verdict's central figure rests on);
- the verdict's bound over its central figure (median over requests).

Each is also given as a ratio to the baseline measured in the same passes. A change is worth keeping when it
lowers the between-request spread or the bound's margin across runs, not in one.

    python bench/measurement_discipline.py --resolution 32 --networks 6 --passes 3 --state quiet
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from record import add_state_argument, machine_state, write_result

from nas.latency.client import LatencyClient
from nas.latency.local_server import LocalServer
from shared.search_space import HARDCORENAS


def configurations(nice: int, long_budget_s: float) -> dict[str, dict[str, str]]:
    """The baseline and each change from it (environment overrides of one server)."""
    cpu = str(max(os.sched_getaffinity(0)))  # the last allowed CPU: the one an OS puts the least else on
    return {
        "baseline": {},
        "pinned": {"LATENCY_SERVER_WORKER_CPUS": cpu},
        "priority": {"LATENCY_SERVER_WORKER_NICE": str(nice)},
        "pinned+priority": {"LATENCY_SERVER_WORKER_CPUS": cpu, "LATENCY_SERVER_WORKER_NICE": str(nice)},
        "longer rounds": {"LATENCY_SERVER_BUDGET_S": str(long_budget_s)},
    }


def _rsd(values: list[float]) -> float:
    return float(np.std(values, ddof=1) / np.mean(values)) if len(values) > 1 else float("nan")


def summarise(records: list[dict[str, Any]]) -> dict[str, float]:
    """One configuration's figures from its requests (each with network, raw, ratio, rounds, central, upper)."""
    by_network: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_network.setdefault(r["network"], []).append(r)
    between = [_rsd([r["raw_ms"] for r in rs]) for rs in by_network.values()]
    ratio = [_rsd([r["ratio"] for r in rs if r["ratio"]]) for rs in by_network.values()]
    return {
        "jitter_rsd_pct": 100 * statistics.median(_rsd(r["rounds"]) for r in records),
        "between_rsd_pct": 100 * float(np.nanmedian(between)),
        "ratio_rsd_pct": 100 * float(np.nanmedian(ratio)),
        "bound_over_central": statistics.median(r["upper_ms"] / r["central_ms"] for r in records if r["central_ms"]),
        "requests": len(records),
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, float]]:
    configs = configurations(args.nice, args.long_budget_s)
    rng = random.Random(args.seed)
    archs = [str(HARDCORENAS.arch_from_choice(HARDCORENAS.random_choice(rng))) for _ in range(args.networks)]
    servers = {}
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    try:
        for i, (name, env) in enumerate(configs.items()):
            servers[name] = LocalServer(f"sqlite:///{tmp}/{i}.db", log_path=tmp / f"{i}.log",
                                        env={"LATENCY_SERVER_DEVICE_LOCK": str(tmp / f"{i}.lock"), **env}).start()
        names = list(configs)
        for p in range(args.passes):
            order = names[p % len(names):] + names[:p % len(names)]
            for name in order:
                with LatencyClient(servers[name].url, timeout_s=3600) as client:
                    for n, arch in enumerate(archs):
                        a = client.measure_network(arch, resolution=args.resolution, threads=args.threads)
                        records[name].append({
                            "network": n, "raw_ms": a.measured.median_ms,
                            "ratio": a.verdict.ratio if a.verdict else None,
                            "rounds": [r.median_ms for r in a.rounds],
                            "central_ms": a.verdict.central_ms if a.verdict else None,
                            "upper_ms": a.verdict.upper_ms if a.verdict else None})
            print(f"pass {p + 1}/{args.passes} done", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return {name: summarise(rs) for name, rs in records.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--nice", type=int, default=-10, help="the raised priority's nice value")
    parser.add_argument("--long-budget-s", type=float, default=0.5, help="the longer rounds' timing budget")
    parser.add_argument("--seed", type=int, default=7)
    add_state_argument(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args, Path(tmp))
    base = figures["baseline"]
    print("\n| configuration | jitter RSD % | between requests RSD % | ratio RSD % | bound / central | "
          "between vs baseline |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name, f in figures.items():
        f["between_vs_baseline"] = f["between_rsd_pct"] / base["between_rsd_pct"]
        f["bound_vs_baseline"] = f["bound_over_central"] / base["bound_over_central"]
        print(f"| {name} | {f['jitter_rsd_pct']:.2f} | {f['between_rsd_pct']:.2f} | {f['ratio_rsd_pct']:.2f} | "
              f"{f['bound_over_central']:.3f} | {f['between_vs_baseline']:.2f} |")
        rows.append({"configuration": name, **{k: round(v, 4) for k, v in f.items()}})
    headline = {"resolution": args.resolution, "networks": args.networks, "passes": args.passes}
    for name, f in figures.items():
        key = name.replace("+", "_").replace(" ", "_")
        headline[f"{key}_between_rsd_pct"] = round(f["between_rsd_pct"], 3)
        headline[f"{key}_bound_over_central"] = round(f["bound_over_central"], 4)
    write_result("measurement_discipline", headline, state=machine_state(args.state), rows=rows, args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
