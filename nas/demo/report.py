"""The demo's report: the results table (Markdown and CSV), a verdict per network and three plots.

This module owns what the demo writes after its stages ran; matplotlib is imported only when the plots are drawn.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.demo.run import DemoConfig

__all__ = ["verdict", "write_report"]


def _params(arch: str, num_classes: int) -> int:
    from shared.builders import build_network

    return sum(p.numel() for p in build_network(arch, num_classes=num_classes).parameters())


def write_report(cfg: DemoConfig, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``results.csv``, ``results.md`` and the three plots from the stages' rows; print the table and each
    network's verdict; return the table's rows."""
    out = cfg.out_dir
    table: list[dict[str, Any]] = []
    for row in rows:
        result, validation, figure = row["result"], row["validation"], row["final_measurement"]
        table.append({
            "limit_ms": row["limit_ms"],
            "expected_ms": result["expected_latency_ms"],
            "search_measured_ms": result.get("measured_latency_ms"),
            "measured_ms": figure.measured.median_ms,
            "measured_spread_ms": figure.spread_ms,
            "predicted_ms": figure.predicted_ms,
            "budget_used": figure.measured.median_ms / row["limit_ms"],
            "top1": validation["top1"],
            "top5": validation.get("top5"),
            "params_m": _params(result["arch"], int(validation.get("num_classes", 10))) / 1e6,
            "arch": result["arch"],
        })
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    header = ["limit (ms)", "expected (ms)", "measured (ms)", "predicted (ms)", "budget used", "top-1 (%)",
              "params (M)", "architecture"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table:
        cells = [f"{r['limit_ms']:.3f}", f"{r['expected_ms']:.3f}", f"{r['measured_ms']:.3f}",
                 "-" if r["predicted_ms"] is None else f"{r['predicted_ms']:.3f}", f"{r['budget_used']:.0%}",
                 f"{r['top1']:.1f}", f"{r['params_m']:.2f}", f"`{r['arch']}`"]
        lines.append("| " + " | ".join(cells) + " |")
    settings = (f"{cfg.data} at {cfg.resolution}px; latency: {cfg.backend}, {cfg.threads} thread, batch 1, "
                "median of independent rounds on this machine")
    (out / "results.md").write_text("# Demo results\n\n" + settings + "\n\n" + "\n".join(lines) + "\n")
    _plots(out, table, rows)
    print("\n" + "\n".join(lines))
    print("\n" + settings)
    for r in table:
        print(f"  limit {r['limit_ms']:.3f} ms -> measured {r['measured_ms']:.3f} ms "
              f"(spread {r['measured_spread_ms']:.3f} ms) [{verdict(r)}], top-1 {r['top1']:.1f}%")
    return table


def verdict(row: dict[str, Any]) -> str:
    """The search's measured guarantee (median <= T + the measurement's own spread), said plainly."""
    if row["measured_ms"] <= row["limit_ms"]:
        return "under the limit"
    if row["measured_ms"] <= row["limit_ms"] + row["measured_spread_ms"]:
        return "at the limit, within the measurement's spread"
    return "OVER the limit"


def _save(fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """Label, grid, save and close one figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plots(out: Path, table: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r["measured_ms"] for r in table], [r["top1"] for r in table], "o-")
    for r in table:
        ax.axvline(r["limit_ms"], color="grey", lw=0.6, ls="--")
        ax.annotate(f"T={r['limit_ms']:.2f}", (r["measured_ms"], r["top1"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    _save(fig, ax, out / "accuracy_vs_latency.png", "measured latency (ms, this device)", "top-1 (%)",
          "Accuracy vs measured latency")

    fig, ax = plt.subplots(figsize=(5, 4.5))
    pairs = [(r["expected_ms"], r["measured_ms"]) for r in table]
    ax.scatter([p for p, _ in pairs], [m for _, m in pairs], label="found networks")
    lo = min(min(p) for p in pairs) * 0.9
    hi = max(max(p) for p in pairs) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    ax.legend()
    _save(fig, ax, out / "predicted_vs_measured.png", "predicted by the table (ms)", "measured (ms)",
          "Predicted vs measured latency")

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in rows:
        steps, lat = [], []
        with (row["search_dir"] / "trajectory.csv").open() as f:
            for rec in csv.DictReader(f):
                steps.append(int(rec["step"]))
                lat.append(float(rec["expected_latency_ms"]))
        (line,) = ax.plot(steps, lat, lw=1)
        ax.axhline(row["limit_ms"], color=line.get_color(), ls="--", lw=0.8)
    _save(fig, ax, out / "search_trajectories.png", "BCFW step", "expected latency (ms)",
          "Search trajectories (dashed: the hard limits)")
