"""Does the drift reference's figure depend on how it is timed, and do networks move with it?

Drift compensation divides a network's figure by the drift reference's (the space's lightest network) and so
assumes both move alike. This bench times, in this process with the server's own code (``NetworkSet``: a fresh
ONNX Runtime session per round, the server's default warm-up and budget), the reference and a few random networks
under the conditions a server meets them in, interleaved over ``--repeats`` cycles:

- the reference alone after a pause, after a busy loop, after an extra warm-up by time, and right after a network;
- inside a calibration-like round (the fit networks and the reference, one continuous task);
- in request-like pairs (a network, then the reference, with the server's pause between rounds).

It prints each condition's median and range, the networks' figure inside rounds over in pairs, and the share of
the reference's sessions that ran at least 10 % under its median (its fast mode, where there is one) with how
much the network timed back to back moved in those sessions. Nothing else should run on the device meanwhile.

    python bench/reference_conditions.py --resolution 224 --repeats 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from record import add_state_argument, write_result

from latency_server.tables.correction import sample_choices  # noqa: E402
from latency_server.tables.reference import reference_arch  # noqa: E402
from latency_server.worker.backends import make_backend  # noqa: E402
from latency_server.worker.stats import Method  # noqa: E402
from latency_server.worker.timing import NetworkSet, time_runner  # noqa: E402
from shared.search_space import get_space  # noqa: E402


def _once(nets: NetworkSet, i: int, method: Method, warm_s: float = 0.0) -> float:
    """One fresh session of network ``i``: its median in ms (after ``warm_s`` seconds of extra warm-up)."""
    runner = nets.factories[i]()
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < warm_s:
            runner.run()
        return 1000.0 * statistics.median(time_runner(runner, method))
    finally:
        runner.close()


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    ref = reference_arch(space)
    fit = [ref, str(space.arch_from_choice(space.heaviest()))]
    fit += [str(space.arch_from_choice(c)) for c in sample_choices(space, 12, 0)]
    probes = [2, 6, 10]
    backend = make_backend(args.backend, args.threads)
    method = Method()
    single = NetworkSet(backend, [ref, fit[probes[0]]], args.resolution, method)
    round_set = NetworkSet(backend, fit + [ref], args.resolution, method)
    pairs = {i: NetworkSet(backend, [fit[i], ref], args.resolution, method) for i in probes}
    ref_out: dict[str, list[float]] = {k: [] for k in ("after pause", "after busy loop", "after 0.5 s warm-up",
                                                       "after a network", "inside a round", "paired")}
    net_round: dict[int, list[float]] = {i: [] for i in probes}
    net_pair: dict[int, list[tuple[float, float]]] = {i: [] for i in probes}
    for _ in range(args.repeats):
        time.sleep(args.pause_s)
        ref_out["after pause"].append(_once(single, 0, method))
        _spin(2.0)
        ref_out["after busy loop"].append(_once(single, 0, method))
        time.sleep(args.pause_s)
        ref_out["after 0.5 s warm-up"].append(_once(single, 0, method, warm_s=0.5))
        time.sleep(args.pause_s)
        _once(single, 1, method)
        ref_out["after a network"].append(_once(single, 0, method))
        stats = round_set.measure_round()
        ref_out["inside a round"].append(stats[-1].median_ms)
        for i in probes:
            net_round[i].append(stats[i].median_ms)
        for i in probes:
            time.sleep(args.pause_s)
            net, r = (s.median_ms for s in pairs[i].measure_round())
            net_pair[i].append((net, r))
            ref_out["paired"].append(r)
    every = np.concatenate([np.array(v) for v in ref_out.values()])
    cut = 0.9 * float(np.median(every))
    moved = []  # the paired network's log-deviation from its own median in the reference's fast sessions
    for i in probes:
        nets = np.log([n for n, _ in net_pair[i]])
        refs = np.array([r for _, r in net_pair[i]])
        moved += list((nets - np.median(nets))[refs < cut])
    return {
        "settings": {"resolution": args.resolution, "backend": args.backend, "threads": args.threads,
                     "repeats": args.repeats, "pause_s": args.pause_s, "method": method.to_dict()},
        "reference_ms": {k: {"median": float(np.median(v)), "min": float(np.min(v)), "max": float(np.max(v)),
                             "n": len(v)} for k, v in ref_out.items()},
        "networks_inside_round_over_paired": {
            fit[i]: float(np.median(net_round[i]) / np.median([n for n, _ in net_pair[i]])) for i in probes},
        "reference_fast_mode": {
            "threshold_ms": float(cut), "share": float(np.mean(every < cut)),
            "paired_network_moved_pct": float(100 * np.expm1(np.median(moved))) if moved else None,
            "paired_sessions_in_fast_mode": len(moved)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--space", default="hardcorenas")
    p.add_argument("--repeats", type=int, default=8, help="interleaved cycles over the conditions (default 8)")
    p.add_argument("--pause-s", type=float, default=0.5, help="pause before the idle conditions and between pairs")
    p.add_argument("--json", type=Path, help="also write the result here")
    add_state_argument(p)
    args = p.parse_args(argv)
    result = run(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    figures = {"resolution": args.resolution, "backend": args.backend, "repeats": args.repeats,
               **{f"reference_{k}_median_ms": v["median"] for k, v in result["reference_ms"].items()},
               "fast_mode_share": result["reference_fast_mode"]["share"]}
    rows = [{"network": k, "inside_round_over_paired": v}
            for k, v in result["networks_inside_round_over_paired"].items()]
    write_result("reference_conditions", figures, rows=rows, args=args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
