"""What a search writes: ``result.json``, the trajectory as CSV (one row per BCFW step) and its plot.

This module owns the output files and their formats; matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nas.search.result import SearchResult

__all__ = ["write_frontier", "write_outputs"]

def write_outputs(result: SearchResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result.json``, ``trajectory.csv`` and ``trajectory.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "result.json", "trajectory": out / "trajectory.csv", "plot": out / "trajectory.png"}
    paths["result"].write_text(json.dumps(result.to_json(), indent=1) + "\n")
    with paths["trajectory"].open("w", newline="") as f:
        writer = csv.writer(f)
        others = len(result.others)
        writer.writerow(["step", "block", "gamma", "expected_latency_ms", "loss", "multiplier",
                         *(f"target{k + 2}_expected_latency_ms" for k in range(others))])
        for row in result.trajectory:
            writer.writerow([row.step, row.block, repr(row.gamma), repr(row.expected_latency_ms), repr(row.loss),
                             repr(row.multiplier), *(repr(e) for e in row.other_latencies_ms)])
    _plot(result, paths["plot"])
    return paths


def _plot(result: SearchResult, path: Path) -> None:
    """Expected latency per step against the limit (top) and the batch loss with its running mean (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in result.trajectory]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    limit = result.settings.latency_limit_ms
    if result.others:  # several targets: each one's expected latency as a share of its own limit
        ax1.plot(steps, [r.expected_latency_ms / limit for r in result.trajectory], label="target 1")
        for k, (_, other_limit) in enumerate(result.others):
            ax1.plot(steps, [r.other_latencies_ms[k] / other_limit for r in result.trajectory],
                     label=f"target {k + 2}")
        ax1.axhline(1.0, color="red", linestyle="--", label="each target's limit")
        ax1.set_ylabel("expected latency / limit")
        ax1.set_title(f"BCFW search under {len(result.others) + 1} targets' limits")
    else:
        ax1.plot(steps, [r.expected_latency_ms for r in result.trajectory], label="expected latency")
        ax1.axhline(limit, color="red", linestyle="--", label="limit T")
        ax1.axhline(result.expected_latency_ms, color="green", linestyle=":", label="returned network")
        ax1.set_ylabel("ms")
        ax1.set_title(f"BCFW search under T = {limit:.4g} ms")
    ax1.legend(loc="best")
    losses = [r.loss for r in result.trajectory]
    ax2.plot(steps, losses, alpha=0.4, label="batch loss")
    if len(losses) >= 5:
        w = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        ax2.plot(steps[w - 1 :], smooth, label=f"mean of {w}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("held-out loss")
    ax2.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_frontier(results: list[SearchResult], points: list[tuple[float, ...]], accuracies: list, out_dir: str | Path
                   ) -> dict[str, Path]:
    """A sweep's accuracy/latency frontier: ``sweep.csv`` (one row per point: the factors, the network, its held-out
    top-1 and loss, and per target its limit, table latency and verdict when measured) and ``sweep.png`` (top-1
    against each target's latency)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "sweep.csv", "plot": out / "sweep.png"}
    num_t = len(points[0])
    per_target = ("latency_limit_ms", "expected_latency_ms", "measured_latency_ms", "upper_latency_ms")
    with paths["csv"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "factors", "arch", "top1", "loss",
                         *(f"target{k + 1}_{key}" for k in range(num_t) for key in per_target)])
        for n, (result, point, acc) in enumerate(zip(results, points, accuracies, strict=True)):
            targets = result.targets_json()
            writer.writerow([n + 1, ":".join(f"{x:g}" for x in point), result.arch, repr(acc.top1), repr(acc.loss),
                             *("" if t[key] is None else repr(t[key]) for t in targets for key in per_target)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, num_t, figsize=(5 * num_t, 4), squeeze=False)
    top1 = [acc.top1 for acc in accuracies]
    for k, ax in enumerate(axes[0]):
        table = [r.targets_json()[k]["expected_latency_ms"] for r in results]
        ax.plot(table, top1, "o-", label="table latency")
        central = [r.targets_json()[k]["measured_latency_ms"] for r in results]
        if all(c is not None for c in central):
            ax.plot(central, top1, "s", mfc="none", label="measured (verdict's central figure)")
        for x, y, point in zip(table, top1, points, strict=True):
            ax.annotate(":".join(f"{v:g}" for v in point), (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
        ax.set_xlabel(f"target {k + 1} latency (ms)")
        ax.set_ylabel("held-out top-1 (%)")
        ax.legend(loc="best", fontsize=8)
    fig.suptitle("accuracy / latency frontier of the sweep")
    fig.tight_layout()
    fig.savefig(paths["plot"], dpi=100)
    plt.close(fig)
    return paths
