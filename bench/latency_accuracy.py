"""How well a server's latency table predicts whole networks on its device.

Samples random architectures uniformly from the space with its own seed (never the fit networks' seed),
measures each through ``POST /v1/latency/network`` several times interleaved in time (the truth is the
median), and compares with the server's prediction (corrected and drift-compensated), the corrected table
alone and the naive block sum. Prints count, mean absolute % error, share within +-2/5/10 %, worst case,
Spearman rank correlation and the noise of the truth; writes a predicted-vs-measured PNG and a CSV.

    python bench/latency_accuracy.py --n 50 --rounds 3   # against a fresh server of its own
    python bench/latency_accuracy.py --n 50 --rounds 3 --load --load-pattern bursty   # a noisy device
    python bench/latency_accuracy.py --latency-endpoint http://127.0.0.1:8000 --repeat 10   # one request's RSD

Without ``--latency-endpoint`` the bench starts a fresh server on a temporary database (the table is built in the
run). ``--load`` runs a training process beside the server for the whole run, the table's build included
(``bench/background_load.py``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from background_load import add_load_arguments, background_load, describe
from record import add_state_argument, machine_state, write_result
from scipy.stats import spearmanr
from table_level_replay import Request, replay, table_level_per_round, write_requests

ROOT = Path(__file__).resolve().parents[1]

from latency_server.tables.correction import sample_choices  # noqa: E402
from latency_server.verdicts.drift_elasticity import pooled_slope  # noqa: E402
from nas.latency.client import LatencyClient  # noqa: E402
from nas.latency.local_server import LocalServer  # noqa: E402
from nas.progress import table_build_bar  # noqa: E402
from shared.search_space import get_space  # noqa: E402


def error_summary(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """MAPE, share within +-2/5/10 %, worst signed error, Spearman."""
    rel = 100.0 * (pred - truth) / truth
    worst = int(np.argmax(np.abs(rel)))
    return {
        "count": int(len(truth)),
        "mape_pct": float(np.mean(np.abs(rel))),
        "within_2_pct": float(100 * np.mean(np.abs(rel) <= 2)),
        "within_5_pct": float(100 * np.mean(np.abs(rel) <= 5)),
        "within_10_pct": float(100 * np.mean(np.abs(rel) <= 10)),
        "worst_pct": float(rel[worst]),
        "mean_signed_pct": float(np.mean(rel)),
        "spearman": float(spearmanr(pred, truth).statistic),
    }


def error_split(truth: np.ndarray, pred: np.ndarray, table_pred: np.ndarray, normalized: np.ndarray,
                rsd: np.ndarray, normalized_rsd: np.ndarray,
                table_factor: np.ndarray | None = None) -> dict[str, float]:
    """Where the prediction's signed error comes from, in %: the table's level (the corrected table against the
    drift-normalised figure, the device's speed taken out: as built, and times the level the server followed from
    other networks' measurements), the drift compensation (the server's drift factor, prediction over the followed
    table, against the factor the figures moved by, raw over normalised) and the noise (the median spread between
    requests, raw and normalised). The followed table level and the drift compensation add up to about the
    prediction's mean signed error."""
    table_factor = np.ones_like(pred) if table_factor is None else table_factor
    followed = table_pred * table_factor
    applied = pred / followed
    actual = truth / normalized
    return {
        "prediction_signed_pct": float(100 * np.mean(pred / truth - 1)),
        "table_level_signed_pct": float(100 * np.mean(table_pred / normalized - 1)),
        "table_level_followed_signed_pct": float(100 * np.mean(followed / normalized - 1)),
        "table_level_factor_median": float(np.median(table_factor)),
        "drift_compensation_signed_pct": float(100 * np.mean(applied / actual - 1)),
        "drift_factor_applied_median": float(np.median(applied)),
        "drift_factor_actual_median": float(np.median(actual)),
        "noise_rsd_between_requests_pct": float(100 * np.median(rsd)),
        "noise_normalized_rsd_between_requests_pct": float(100 * np.median(normalized_rsd)),
    }


def _round_pairs(answer: Any) -> list[tuple[float, float]]:
    """(network, reference) round medians of one answer, timed back to back (empty without a verdict)."""
    v = answer.verdict
    if v is None:
        return []
    return list(zip(v.network_rounds_ms, v.reference_rounds_ms, strict=True))


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"resolution": args.resolution, "backend": args.backend, "batch_size": 1, "threads": args.threads}


def run_accuracy(args: argparse.Namespace, client: LatencyClient) -> dict[str, Any]:
    space = get_space(args.space)
    with table_build_bar(enabled=not args.quiet) as on_progress:
        table = client.fetch_table(space=space.name, resolution=args.resolution, backend=args.backend,
                                   threads=args.threads, on_progress=on_progress)
    correction = table.meta.get("correction") or {}
    if correction.get("seed") == args.seed:
        raise SystemExit(f"--seed {args.seed} is the seed of the table's fit networks; choose another")
    archs = [str(space.arch_from_choice(c)) for c in sample_choices(space, args.n, args.seed)]
    rows: list[list[dict[str, Any]]] = [[] for _ in archs]
    requests: list[Request] = []  # in time order
    start = time.monotonic()
    for r in range(args.rounds):
        order = range(len(archs)) if r % 2 == 0 else reversed(range(len(archs)))
        for i in order:
            rows[i].append(client.measure_network(archs[i], **_settings(args)))
            requests.append((r, i, time.monotonic() - start, rows[i][-1]))
            if not args.quiet:
                a = rows[i][-1]
                print(f"round {r + 1}/{args.rounds} net {i + 1:3d}: measured {a.measured.median_ms:.3f} ms, "
                      f"predicted {a.predicted_ms:.3f} ms, "
                      f"drift {a.drift_ratio or 1:.3f}, level factor "
                      f"{(a.predicted_ms or 0) / (a.predicted_table_ms or a.predicted_ms or 1):.3f} "
                      f"({time.monotonic() - start:.0f} s)", flush=True)
    truth = np.array([statistics.median(a.measured.median_ms for a in net) for net in rows])
    pred = np.array([statistics.median(a.predicted_ms for a in net) for net in rows])
    table_pred = np.array([statistics.median(a.predicted_table_ms for a in net) for net in rows])
    # the level the server followed from other networks' measurements of the table (1 on a server without it)
    table_factor = np.array([statistics.median(a.table_level_factor or 1.0 for a in net)
                             for net in rows])
    naive = np.array([net[0].predicted_naive_ms for net in rows])
    drift = np.array([statistics.median((a.drift_ratio or 1.0) for a in net) for net in rows])
    # the same requests compensated by their own reference's drift ratio without the table's followed level, and
    # by the reference's smoothed level (the median of its recent figures) instead: baselines measured in the same run
    full = np.array([statistics.median(a.predicted_table_ms * (a.drift_ratio or 1.0) for a in net) for net in rows])
    smoothed = np.array([statistics.median(a.predicted_table_ms * ((a.drift_level_ms / a.reference.table_ms)
                                                                  if a.drift_level_ms and a.reference else 1.0)
                                           for a in net) for net in rows])
    # the same requests under the table-level rule before (the mean over an hour), replayed client-side
    # (bench/table_level_replay.py): the two rules compare within one run
    before = replay(requests, len(archs), window_s=3600.0, location="mean")
    exponents = [a.drift_elasticity for net in rows for a in net if a.drift_elasticity is not None]
    sources = [a.drift_elasticity_source for net in rows for a in net if a.drift_elasticity_source]
    # each request's figure at the device speed of the table's build (network/reference ratio per round): set
    # against the table without drift compensation, it shows the table's own error apart from the device's drift
    normalized = np.array([statistics.median((a.normalized_ms or a.measured.median_ms) for a in net)
                           for net in rows])
    rsd = np.array([statistics.pstdev([a.measured.median_ms for a in net]) /
                    statistics.fmean([a.measured.median_ms for a in net]) for net in rows])
    normalized_rsd = np.array([statistics.pstdev(v) / statistics.fmean(v) for v in
                               ([(a.normalized_ms or a.measured.median_ms) for a in net] for net in rows)])
    # within one request: rounds seconds apart; between requests: the same network minutes apart
    within = pooled_slope([_round_pairs(a) for net in rows for a in net]).to_dict()
    between = pooled_slope([[(a.measured.median_ms, a.reference.measured_ms) for a in net
                             if a.reference is not None] for net in rows]).to_dict()
    table_err = 100 * (table_pred - normalized) / normalized
    summary = {
        "settings": {**_settings(args), "n": args.n, "seed": args.seed, "rounds": args.rounds,
                     "endpoint": args.latency_endpoint, "table_fingerprint": table.fingerprint,
                     "table_reference_ms": (table.meta.get("reference") or {}).get("median_ms"),
                     "correction": {k: correction.get(k) for k in ("model", "coefficients", "fixed_offset_ms",
                                                                    "loo_mape_pct", "networks", "seed")}},
        "predicted (corrected, drift-compensated)": error_summary(pred, truth),
        "corrected table, full drift compensation": error_summary(full, truth),
        "corrected table, smoothed reference level": error_summary(smoothed, truth),
        "corrected table, no drift compensation": error_summary(table_pred, truth),
        "table level by the rule before (1 h, mean), replayed": error_summary(before, truth),
        "naive block sum": error_summary(naive, truth),
        "corrected table vs drift-normalised figure": error_summary(table_pred, normalized),
        "error_split": error_split(truth, pred, table_pred, normalized, rsd, normalized_rsd, table_factor),
        "truth_noise": {
            "median_rsd_between_rounds_pct": float(100 * np.median(rsd)),
            "max_rsd_between_rounds_pct": float(100 * np.max(rsd)),
            "median_std_of_truth_pct": float(100 * np.median(rsd) / np.sqrt(args.rounds)),
        },
        "drift_ratio": {"median": float(np.median(drift)), "min": float(drift.min()), "max": float(drift.max())},
        "drift_elasticity": {
            "within_request": within, "between_requests": between,
            "server_exponent": {"min": min(exponents, default=None), "max": max(exponents, default=None),
                                "median": float(np.median(exponents)) if exponents else None,
                                "last": exponents[-1] if exponents else None,
                                "sources": {s: sources.count(s) for s in sorted(set(sources))}},
            # the table's error against the normalised figure, per network, set against that network's drift:
            # near zero when drift compensation removes the device's speed entirely
            "spearman_table_error_vs_drift": float(spearmanr(table_err, drift).statistic) if len(drift) > 2
            else None,
        },
        "table_level_per_round": table_level_per_round(requests, args.rounds),
        "seconds": time.monotonic() - start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_requests(out / "requests.csv", requests)
    with (out / "networks.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "truth_ms", "predicted_ms", "predicted_table_ms", "naive_ms", "drift_ratio",
                    "normalized_ms", "table_level_factor", "error_pct", "rsd_between_rounds_pct", "round_medians_ms",
                    "reference_ms_per_request", "rounds_network_ms", "rounds_reference_ms"])
        for i, arch in enumerate(archs):
            w.writerow([arch, truth[i], pred[i], table_pred[i], naive[i], drift[i], normalized[i], table_factor[i],
                        100 * (pred[i] - truth[i]) / truth[i], 100 * rsd[i],
                        " ".join(f"{a.measured.median_ms:.4f}" for a in rows[i]),
                        " ".join(f"{a.reference.measured_ms:.4f}" for a in rows[i] if a.reference is not None),
                        " | ".join(" ".join(f"{n:.4f}" for n, _ in _round_pairs(a)) for a in rows[i]),
                        " | ".join(" ".join(f"{r:.4f}" for _, r in _round_pairs(a)) for a in rows[i])])
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    _plot(out / "predicted_vs_measured.png", truth, pred, naive, summary, args)
    return summary


def _plot(path: Path, truth: np.ndarray, pred: np.ndarray, naive: np.ndarray, summary: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    lo, hi = 0.9 * min(truth.min(), pred.min()), 1.1 * max(truth.max(), pred.max(), naive.max())
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, label="exact")
    for f, style in ((1.05, "--"), (0.95, "--"), (1.10, ":"), (0.90, ":")):
        ax.plot([lo, hi], [lo * f, hi * f], "k" + style, lw=0.5)
    ax.scatter(truth, naive, s=12, alpha=0.5, label="naive block sum")
    s = summary["predicted (corrected, drift-compensated)"]
    ax.scatter(truth, pred, s=14, label=f"prediction (MAPE {s['mape_pct']:.2f} %, {s['within_5_pct']:.0f} % in 5 %)")
    ax.set_xlabel("measured (median of interleaved measurements), ms")
    ax.set_ylabel("predicted, ms")
    ax.set_title(f"{args.backend}, {args.threads} thread(s), {args.resolution} px, {len(truth)} random networks")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _rsd(values: list[float]) -> float | None:
    return float(100 * np.std(values, ddof=1) / np.mean(values)) if len(values) > 1 else None


def run_repeat(args: argparse.Namespace, client: LatencyClient) -> dict[str, Any]:
    """Repeat one network request ``--repeat`` times: the relative standard deviation of its figure."""
    space = get_space(args.space)
    arch = str(space.arch_from_choice(sample_choices(space, 1, args.seed)[0]))
    answers = [client.measure_network(arch, **_settings(args)) for _ in range(args.repeat)]
    values = np.array([a.measured.median_ms for a in answers])
    preds = [a.predicted_ms for a in answers if a.predicted_ms is not None]
    out = {
        "arch": arch,
        "repeats": len(values),
        "rounds_per_request": len(answers[0].rounds),
        "mean_ms": float(values.mean()),
        "rsd_pct": float(100 * values.std(ddof=1) / values.mean()),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
        "mean_spread_ms": float(np.mean([a.spread_ms for a in answers])),
        "predicted_rsd_pct": float(100 * np.std(preds, ddof=1) / np.mean(preds)) if len(preds) > 1 else None,
        "normalized_rsd_pct": _rsd([a.normalized_ms for a in answers if a.normalized_ms is not None]),
        # the drift reference's own figure over the same requests: how much the device itself moved
        "reference_rsd_pct": _rsd([a.reference.measured_ms for a in answers if a.reference is not None]),
        "drift_ratios": [a.drift_ratio for a in answers],
        "values_ms": values.tolist(),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-endpoint", metavar="URL",
                   help="a running latency server (default: start a fresh one on a temporary database)")
    p.add_argument("--token", default=None)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--space", default="hardcorenas")
    p.add_argument("--n", type=int, default=50, help="random networks (default 50)")
    p.add_argument("--seed", type=int, default=1, help="sampling seed (never the table's fit seed; default 1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved measurements per network (default 3)")
    p.add_argument("--repeat", type=int, default=0, help="instead: repeat one network request N times, report RSD")
    p.add_argument("--out", default=None, help="output directory (default bench/out/latency_accuracy_...)")
    p.add_argument("--quiet", action="store_true")
    add_load_arguments(p)
    add_state_argument(p)
    args = p.parse_args(argv)
    args.out = args.out or str(ROOT / "bench" / "out" / f"latency_accuracy_{args.backend}_{args.resolution}")
    with tempfile.TemporaryDirectory() as tmp, background_load(args.load_pattern if args.load else None,
                                                               args.load_period):
        server = None
        if args.latency_endpoint is None:
            server = LocalServer(f"sqlite:///{tmp}/accuracy.db", log_path=Path(tmp) / "server.log").start()
            args.latency_endpoint = server.url
        try:
            with LatencyClient(args.latency_endpoint, token=args.token, timeout_s=3600) as client:
                result = run_repeat(args, client) if args.repeat else run_accuracy(args, client)
        finally:
            if server is not None:
                server.stop()
    print(json.dumps(result, indent=1))
    _record(args, result)
    return 0


def _record(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The headline figures as a result file (bench/results/latency_accuracy/)."""
    settings = {"resolution": args.resolution, "backend": args.backend, "threads": args.threads}
    if args.repeat:
        figures = {**settings, "mode": "repeat", "repeats": result["repeats"],
                   "normalized_rsd_pct": result["normalized_rsd_pct"], "raw_rsd_pct": result["rsd_pct"],
                   "reference_rsd_pct": result["reference_rsd_pct"]}
        state = machine_state(args.state, bench_label="loaded" if args.load else None, load=describe(args),
                              reference_rsd_pct=result["reference_rsd_pct"])
        write_result("latency_accuracy", figures, state=state, args=args)
        return
    pred = result["predicted (corrected, drift-compensated)"]
    figures = {**settings, "mode": "accuracy", "networks": pred["count"], "seed": args.seed,
               "mape_pct": pred["mape_pct"], "within_2_pct": pred["within_2_pct"],
               "within_5_pct": pred["within_5_pct"], "within_10_pct": pred["within_10_pct"],
               "worst_pct": pred["worst_pct"], "mean_signed_pct": pred["mean_signed_pct"],
               "spearman": pred["spearman"],
               "full_drift_mape_pct": result["corrected table, full drift compensation"]["mape_pct"],
               "smoothed_level_mape_pct": result["corrected table, smoothed reference level"]["mape_pct"],
               "smoothed_level_signed_pct": result["corrected table, smoothed reference level"]["mean_signed_pct"],
               "no_drift_mape_pct": result["corrected table, no drift compensation"]["mape_pct"],
               "hour_mean_level_mape_pct": result["table level by the rule before (1 h, mean), replayed"]["mape_pct"],
               "hour_mean_level_signed_pct":
                   result["table level by the rule before (1 h, mean), replayed"]["mean_signed_pct"],
               "naive_sum_mape_pct": result["naive block sum"]["mape_pct"],
               "correction_loo_mape_pct": result["settings"]["correction"].get("loo_mape_pct"),
               **{k: v for k, v in result["error_split"].items() if k != "prediction_signed_pct"}}
    noise = result["truth_noise"]
    state = machine_state(args.state, bench_label="loaded" if args.load else None, load=describe(args),
                          truth_median_rsd_pct=noise["median_rsd_between_rounds_pct"],
                          truth_max_rsd_pct=noise["max_rsd_between_rounds_pct"], drift_ratio=result["drift_ratio"])
    write_result("latency_accuracy", figures, state=state, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
