"""Replay recorded ``latency_accuracy`` runs under other table-level rules: window, location (median or mean), prior.

The server's table level for a request depends only on the residuals of the requests before it (each one's
normalised figure over the corrected table), and no rule changes a residual. So replaying a run's requests in their
order under another rule gives exactly the predictions a server with that rule would have answered; replaying the
served rule reproduces the served predictions (checked here and reported as ``served_reproduced``). Runs recorded
before the bench wrote ``requests.csv`` are rebuilt from ``networks.csv``'s per-request rounds in the bench's request
order (rounds alternate forward and backward), spaced evenly over the run's seconds.

    python bench/table_level_replay.py RUN_DIR [RUN_DIR ...] --label quiet --label "bursty load" ...

Each ``RUN_DIR`` is a ``latency_accuracy --out`` directory (``summary.json``, ``networks.csv``, perhaps
``requests.csv``). Prints MAPE / mean signed error per run and rule; writes one result file with a row per run and
rule.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from record import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from latency_server.verdicts.table_level import table_level  # noqa: E402

#: (name, window seconds or None for no table level, location): the rules each run is replayed under
RULES = (("none", None, "median"), ("1 h, mean", 3600.0, "mean"), ("1 h, median", 3600.0, "median"),
         ("10 min, median", 600.0, "median"), ("5 min, median", 300.0, "median"))

#: one request: (round, network, seconds since the run's start, answer with normalized_ms / predicted_table_ms /
#: drift_ratio)
Request = tuple[int, int, float, Any]


def residual(a: Any) -> float | None:
    """log(normalised figure / corrected table figure) of one answer: what the server's table check saw."""
    if not a.normalized_ms or not a.predicted_table_ms:
        return None
    return math.log(a.normalized_ms / a.predicted_table_ms)


def replay(requests: list[Request], networks: int, *, window_s: float | None, location: str) -> np.ndarray:
    """Per network, the median over its requests of corrected x table level x the request's drift ratio, the level
    taken from the residuals of the requests before each one within ``window_s`` (None: no table level), with
    :func:`table_level`'s defaults for the prior and the repeats (the server's)."""
    history: list[tuple[int, float, float]] = []  # (network, residual, t), newest first
    per_net: list[list[float]] = [[] for _ in range(networks)]
    for _, i, t, a in requests:
        factor = 1.0
        if window_s is not None:
            recent = [(j, x) for j, x, tj in history if t - tj <= window_s]
            factor = table_level(recent, exclude=i, location=location).factor
        per_net[i].append(a.predicted_table_ms * factor * (a.drift_ratio or 1.0))
        x = residual(a)
        if x is not None:
            history.insert(0, (i, x, t))
    return np.array([statistics.median(v) for v in per_net])


def table_level_per_round(requests: list[Request], rounds: int) -> list[dict[str, Any]]:
    """Per round of requests: the mean residual the requests themselves showed and the mean level the server
    applied to them (both as %): a followed level that lags or moves the wrong way shows as the two apart."""
    out = []
    for r in range(rounds):
        answers = [a for rr, _, _, a in requests if rr == r]
        own = [x for x in map(residual, answers) if x is not None]
        applied = [math.log(a.table_level_factor) for a in answers if a.table_level_factor]
        out.append({"round": r + 1, "requests": len(answers),
                    "own_residual_pct": 100 * math.expm1(float(np.mean(own))) if own else None,
                    "applied_level_pct": 100 * math.expm1(float(np.mean(applied))) if applied else None})
    return out


def write_requests(path: Path, requests: list[Request]) -> None:
    """Every request in time order with what the server applied to it, to replay how the followed level moved."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "network", "t_s", "measured_ms", "reference_ms", "drift_ratio", "normalized_ms",
                    "predicted_table_ms", "table_level_factor", "table_level_networks", "predicted_ms",
                    "own_residual"])
        for r, i, t, a in requests:
            w.writerow([r + 1, i, f"{t:.1f}", a.measured.median_ms,
                        None if a.reference is None else a.reference.measured_ms, a.drift_ratio, a.normalized_ms,
                        a.predicted_table_ms, a.table_level_factor, a.table_level_networks, a.predicted_ms,
                        residual(a)])


def load_run(run: Path) -> tuple[list[Request], np.ndarray, np.ndarray]:
    """A run's requests in time order (:func:`write_requests`' file, or rebuilt), its truth and its served
    predictions per network."""
    nets = list(csv.DictReader((run / "networks.csv").open()))
    truth = np.array([float(r["truth_ms"]) for r in nets])
    served = np.array([float(r["predicted_ms"]) for r in nets])
    if (run / "requests.csv").exists():
        requests = [(int(r["round"]) - 1, int(r["network"]), float(r["t_s"]),
                     SimpleNamespace(normalized_ms=float(r["normalized_ms"]),
                                     predicted_table_ms=float(r["predicted_table_ms"]),
                                     drift_ratio=float(r["drift_ratio"])))
                    for r in csv.DictReader((run / "requests.csv").open())]
        return requests, truth, served
    summary = json.loads((run / "summary.json").read_text())
    built, seconds, rounds = (summary["settings"]["table_reference_ms"], summary["seconds"],
                              summary["settings"]["rounds"])
    per_net = []
    for r in nets:
        net = [[float(x) for x in g.split()] for g in r["rounds_network_ms"].split(" | ")]
        ref = [[float(x) for x in g.split()] for g in r["rounds_reference_ms"].split(" | ")]
        refs = [float(x) for x in r["reference_ms_per_request"].split()]
        per_net.append([SimpleNamespace(
            normalized_ms=built * statistics.median(a / b for a, b in zip(n, f, strict=True)),
            predicted_table_ms=float(r["predicted_table_ms"]), drift_ratio=m / built)
            for n, f, m in zip(net, ref, refs, strict=True)])
    order = [(k, i) for k in range(rounds) for i in (range(len(nets)) if k % 2 == 0 else reversed(range(len(nets))))]
    requests = [(k, i, seconds * j / len(order), per_net[i][k]) for j, (k, i) in enumerate(order)]
    return requests, truth, served


def _errors(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    e = 100 * (pred - truth) / truth
    return float(np.mean(np.abs(e))), float(np.mean(e))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="latency_accuracy --out directories")
    p.add_argument("--label", action="append", default=[], help="a label per run, in order (default: its folder)")
    p.add_argument("--no-record", action="store_true", help="do not write a result file under bench/results/")
    args = p.parse_args(argv)
    rows = []
    for n, run in enumerate(args.runs):
        requests, truth, served = load_run(run)
        summary = json.loads((run / "summary.json").read_text())
        label = args.label[n] if n < len(args.label) else run.name
        spread = summary["truth_noise"]["median_rsd_between_rounds_pct"]
        for name, window, location in RULES:
            mape, signed = _errors(replay(requests, len(truth), window_s=window, location=location), truth)
            rows.append({"run": label, "rule": name, "mape_pct": round(mape, 2), "mean_signed_pct": round(signed, 2),
                         "spread_between_requests_pct": round(spread, 2), "networks": len(truth)})
            print(f"{label:40s} {name:16s} MAPE {mape:5.2f} %  signed {signed:+5.2f} %")
        mape, signed = _errors(served, truth)
        print(f"{label:40s} {'served':16s} MAPE {mape:5.2f} %  signed {signed:+5.2f} %")
    by_rule = {name: [r for r in rows if r["rule"] == name] for name, _, _ in RULES}
    figures = {"runs": len(args.runs),
               **{f"median_mape_{k}": float(np.median([r["mape_pct"] for r in v]))
                  for k, v in (("no_level", by_rule["none"]), ("1h_mean", by_rule["1 h, mean"]),
                               ("10min_median", by_rule["10 min, median"]))},
               "worst_abs_signed_10min_median": max(abs(r["mean_signed_pct"]) for r in by_rule["10 min, median"]),
               "worst_abs_signed_1h_mean": max(abs(r["mean_signed_pct"]) for r in by_rule["1 h, mean"])}
    write_result("table_level_replay", figures, rows=rows, args=args,
                 notes="replays of recorded latency_accuracy runs (224 px, onnxruntime, 1 thread); each run's state "
                       "is in its label and its own result file under bench/results/latency_accuracy/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
