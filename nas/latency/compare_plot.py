"""``nas compare --plot``: every measured network on one latency axis. matplotlib is imported only here, and only
when a plot is asked for (the CLI starts fast and works without it otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nas.latency.compare import Measured, Settings, sort_by_latency

__all__ = ["draw_comparison"]

SEARCHED, BASELINE = "tab:red", "tab:blue"


def draw_comparison(rows: Sequence[Measured], settings: Settings, path: str | Path) -> None:
    """A dot plot, one labelled row per network (fastest at the top): the central figure as a dot, the bound as
    an error bar reaching right from it (the bound is one-sided: a later measurement stays under it), searched
    networks in red and bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = sort_by_latency(rows)
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.38 * len(ordered)))
    for y, r in enumerate(ordered):
        color = SEARCHED if r.searched else BASELINE
        ax.errorbar([r.central_ms], [y], xerr=[[0.0], [max(r.upper_ms - r.central_ms, 0.0)]], fmt="o",
                    color=color, ms=6 if r.searched else 5, capsize=3, lw=1.2)
        ax.annotate(f"{r.central_ms:.3g}", (r.upper_ms, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7, color="0.3")
    ax.set_yticks(range(len(ordered)), [r.name for r in ordered], fontsize=8)
    for label, r in zip(ax.get_yticklabels(), ordered, strict=True):
        if r.searched:
            label.set_color(SEARCHED)
            label.set_fontweight("bold")
    ax.set_ylim(len(ordered) - 0.4, -0.6)  # fastest at the top, as the printed table
    ax.set_xlim(left=0.0, right=max(r.upper_ms for r in ordered) * 1.15 if ordered else 1.0)
    ax.set_xlabel(f"latency (ms): central figure, bar to the {_confidence(rows)} bound")
    ax.set_title(f"{settings.backend}, {settings.threads} thread(s), batch 1, {settings.resolution} px"
                 " (red: searched)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _confidence(rows: Sequence[Measured]) -> str:
    levels = {r.confidence for r in rows if r.confidence is not None}
    return f"{100 * levels.pop():g} % upper" if len(levels) == 1 else "upper"
