"""What a search writes: ``result.json``, the trajectory as CSV (one row per BCFW step) and its plot.

This module owns the output files and their formats; matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from nas.search.result import SearchResult

__all__ = ["write_outputs"]

def write_outputs(result: SearchResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result.json``, ``trajectory.csv`` and ``trajectory.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "result.json", "trajectory": out / "trajectory.csv", "plot": out / "trajectory.png"}
    paths["result"].write_text(json.dumps(result.to_json(), indent=1) + "\n")
    with paths["trajectory"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "block", "gamma", "expected_latency_ms", "loss", "multiplier"])
        for row in result.trajectory:
            writer.writerow(
                [
                    row.step,
                    row.block,
                    repr(row.gamma),
                    repr(row.expected_latency_ms),
                    repr(row.loss),
                    repr(row.multiplier),
                ]
            )
    _plot(result, paths["plot"])
    return paths


def _plot(result: SearchResult, path: Path) -> None:
    """Expected latency per step against the limit (top) and the batch loss with its running mean (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.step for r in result.trajectory]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(steps, [r.expected_latency_ms for r in result.trajectory], label="expected latency")
    ax1.axhline(result.settings.latency_limit_ms, color="red", linestyle="--", label="limit T")
    ax1.axhline(result.expected_latency_ms, color="green", linestyle=":", label="returned network")
    ax1.set_ylabel("ms")
    ax1.legend(loc="best")
    ax1.set_title(f"BCFW search under T = {result.settings.latency_limit_ms:.4g} ms")
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
