"""The demo's three plots: accuracy against latency (searched networks among the random cloud), the table's
prediction against the measurement, and the search trajectories. matplotlib is imported only here."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.demo.state import DemoRun

__all__ = ["draw_plots"]


def _save(fig: Any, ax: Any, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """Label, grid, save and close one figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # legends placed outside the axes stay in
    plt.close(fig)


def _accuracy_vs_latency(run: DemoRun, table: list[dict[str, Any]]) -> None:
    """Table latency on x for every network, so the searched ones and the random cloud share one axis."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    versus = run.versus_random
    if versus is not None:
        cloud = [r for c in versus.limits for r in c.random] + list(versus.spread)
        ax.scatter([r.table_latency_ms for r in cloud], [r.top1 for r in cloud], s=12, color="0.6", alpha=0.7,
                   label=f"random networks ({len(cloud)}), supernet children")
        ax.scatter([c.table_latency_ms for c in versus.limits], [c.top1 for c in versus.limits], s=90, marker="*",
                   color="tab:red", zorder=3, label="searched, supernet children")
    ax.plot([r["table_ms"] for r in table], [r["top1"] for r in table], "D-", color="tab:blue", ms=5,
            label="searched, fine-tuned")
    for r in table:
        ax.axvline(r["limit_ms"], color="grey", lw=0.6, ls="--")
        ax.text(r["limit_ms"], 0.99, f"T={r['limit_ms']:.2f} ", transform=ax.get_xaxis_transform(), fontsize=8,
                ha="right", va="top", color="grey")
    _published_marks(ax, run)
    # under the axes: the searched networks sit where the cloud is densest, and any corner hid them
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    xlabel = "table latency (ms, this device)" + ("; published: measured" if run.baselines else "")
    _save(fig, ax, run.out / "accuracy_vs_latency.png", xlabel, "top-1 (%, val split)",
          "Accuracy vs latency: searched networks among random ones")


def short_name(name: str) -> str:
    """A published network's label on the plot: ``hardcorenas_a`` -> ``HC-A``, ``mobilenetv3_small_100`` ->
    ``MNv3-S`` (timm's names are too long to stand side by side on the axis)."""
    if name.startswith("hardcorenas_"):
        return "HC-" + name.removeprefix("hardcorenas_").upper()
    for size in ("small", "large"):
        if name == f"mobilenetv3_{size}_100":
            return f"MNv3-{size[0].upper()}"
    return name


def _published_marks(ax: Any, run: DemoRun) -> None:
    """The published networks (the baselines step) as labelled ticks in a strip under the data, at their measured
    central figure: they have no accuracy on digits, and their latency is a measurement, not the table's figure
    the other marks sit at, which the legend says."""
    models = sorted((run.baselines or {}).get("models") or [], key=lambda m: m.central_ms)
    if not models:
        return
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.3 * (high - low), high)  # a strip under the data for the ticks and their labels
    strip = ax.get_xaxis_transform()  # x in ms, y in axes fractions
    for i, m in enumerate(models):
        ax.plot([m.central_ms] * 2, [0.0, 0.06], transform=strip, color="tab:green", lw=1.6,
                label="published (timm), measured central figure" if i == 0 else None)
        ax.text(m.central_ms, 0.07 + 0.06 * (i % 3), short_name(m.name), transform=strip, fontsize=7,
                ha="center", va="bottom", color="tab:green")  # staggered: neighbours sit close at 32 px
    left, right = ax.get_xlim()
    xs = [m.central_ms for m in models]
    span = max(right, max(xs)) - min(left, min(xs))
    ax.set_xlim(min(left, min(xs) - 0.04 * span), max(right, max(xs) + 0.04 * span))


def _predicted_vs_measured(run: DemoRun, table: list[dict[str, Any]]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    rows = [r for r in table if r["verified_central_ms"] is not None]
    x = [r["table_ms"] for r in rows]
    ax.scatter(x, [r["verified_central_ms"] for r in rows], label="verified central figure")
    ax.scatter(x, [r["verified_upper_ms"] for r in rows], marker="v", label="verified bound")
    ax.scatter([r["table_ms"] for r in table], [r["limit_ms"] for r in table], marker="_", s=200, color="k",
               label="limit")
    figures = [f for r in rows for f in (r["table_ms"], r["verified_upper_ms"])] + [r["limit_ms"] for r in table]
    lo, hi = min(figures) * 0.9, max(figures) * 1.1
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    ax.legend(fontsize=8)
    _save(fig, ax, run.out / "predicted_vs_measured.png", "predicted by the table (ms)", "on the device (ms)",
          "Predicted vs the device's verdict")


def _search_trajectories(run: DemoRun) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for row in run.rows:
        steps, lat = [], []
        with (row["search_dir"] / "trajectory.csv").open() as f:
            for rec in csv.DictReader(f):
                steps.append(int(rec["step"]))
                lat.append(float(rec["expected_latency_ms"]))
        (line,) = ax.plot(steps, lat, lw=1)
        ax.axhline(row["limit_ms"], color=line.get_color(), ls="--", lw=0.8)
    _save(fig, ax, run.out / "search_trajectories.png", "BCFW step", "expected latency (ms)",
          "Search trajectories (dashed: the hard limits)")


def draw_plots(run: DemoRun, table: list[dict[str, Any]]) -> None:
    """``accuracy_vs_latency.png``, ``predicted_vs_measured.png`` and ``search_trajectories.png``."""
    import matplotlib

    matplotlib.use("Agg")
    _accuracy_vs_latency(run, table)
    _predicted_vs_measured(run, table)
    _search_trajectories(run)
