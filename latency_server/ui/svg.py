"""Chart geometry for the dashboard's server-drawn SVG: scales, ticks, colours and the shapes to draw.

The templates (``templates/_charts.html``) turn these plain objects into SVG, so the pages need no JavaScript
and no network: a chart is computed here from the figures and drawn by Jinja, which escapes every label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["Band", "Cell", "Heatmap", "Plot", "Point", "Tick", "heat_colour", "heatmap", "nice_ticks",
           "scatter_plot", "time_plot"]

#: plot area inside the SVG (pixels): the margins leave room for the axis labels
WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 44, 16, 44


@dataclass(frozen=True)
class Tick:
    pos: float  # pixels along the axis
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # the hover text (SVG <title>)
    series: int = 0  # colour index


@dataclass(frozen=True)
class Band:
    """A shaded horizontal band between two levels, with the level drawn as a line."""

    y_low: float
    y_high: float
    y_level: float
    label: str


@dataclass
class Plot:
    """An x/y chart: points, optional polyline per series, band, diagonal, ticks and axis titles."""

    x_title: str
    y_title: str
    points: list[Point] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # SVG polyline ``points`` attributes
    bands: list[Band] = field(default_factory=list)
    diagonal: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right_edge: int = WIDTH - RIGHT
    bottom_edge: int = HEIGHT - BOTTOM


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


class _Scale:
    """A linear map from data to pixels over nice tick bounds."""

    def __init__(self, low: float, high: float, pix_low: float, pix_high: float, *, nice: bool = True) -> None:
        if not nice:  # edge to edge (time): a lone instant gets a minute either side
            self.low, self.high = (low, high) if high > low else (low - 60.0, low + 60.0)
            self.ticks, self.pix_low, self.pix_high = _spread(self.low, self.high), pix_low, pix_high
            return
        if high <= low:
            low, high = low - max(abs(low) * 0.1, 1e-3), high + max(abs(high) * 0.1, 1e-3)
        self.ticks = nice_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.pix_low, self.pix_high = pix_low, pix_high

    def __call__(self, value: float) -> float:
        return self.pix_low + (value - self.low) / (self.high - self.low) * (self.pix_high - self.pix_low)


def time_plot(series: Sequence[Sequence[tuple[datetime, float]]], bands: Sequence[tuple[float, float, float, str]],
              y_title: str, labels: Sequence[str] = ()) -> Plot:
    """Values over time, one polyline per series, with shaded ``(low, level, high, label)`` bands."""
    plot = Plot("measured at (UTC)", y_title)
    values = [v for s in series for _, v in s] + [v for b in bands for v in b[:3]]
    timed = [[(_utc(t), v) for t, v in s] for s in series]
    times = [t.timestamp() for s in timed for t, _ in s]
    if not values or not times:
        return plot
    xs = _Scale(min(times), max(times), plot.left, plot.right_edge, nice=False)
    ys = _Scale(min(values), max(values), plot.bottom_edge, plot.top)
    fmt = "%H:%M:%S" if xs.high - xs.low < 3600 else "%m-%d %H:%M"
    plot.x_ticks = [Tick(xs(t), datetime.fromtimestamp(t, timezone.utc).strftime(fmt))
                    for t in xs.ticks]
    plot.y_ticks = [Tick(ys(v), _fmt(v)) for v in ys.ticks]
    for low, level, high, label in bands:
        plot.bands.append(Band(ys(high), ys(low), ys(level), label))
    for index, points in enumerate(timed):
        name = labels[index] if index < len(labels) else f"series {index + 1}"
        drawn = [Point(xs(t.timestamp()), ys(v), f"{name}: {v:.4g} ms at {t:%Y-%m-%d %H:%M:%S}", index)
                 for t, v in points]
        plot.points.extend(drawn)
        plot.lines.append(" ".join(f"{p.x:.1f},{p.y:.1f}" for p in drawn))
    return plot


def _utc(when: datetime) -> datetime:
    """``when`` as UTC (SQLite hands back naive datetimes, stored as UTC)."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _spread(low: float, high: float, count: int = 5) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)] if high > low else [low]


def scatter_plot(pairs: Sequence[tuple[float, float, str]], x_title: str, y_title: str) -> Plot:
    """``(x, y, title)`` points on equal axes, with the ``y = x`` diagonal."""
    plot = Plot(x_title, y_title)
    if not pairs:
        return plot
    values = [v for x, y, _ in pairs for v in (x, y)]
    low, high = min(values), max(values)
    xs = _Scale(low, high, plot.left, plot.right_edge)
    ys = _Scale(low, high, plot.bottom_edge, plot.top)
    plot.x_ticks = [Tick(xs(v), _fmt(v)) for v in xs.ticks]
    plot.y_ticks = [Tick(ys(v), _fmt(v)) for v in ys.ticks]
    plot.points = [Point(xs(x), ys(y), title) for x, y, title in pairs]
    edge = max(xs.high, ys.high)
    start = max(xs.low, ys.low)
    plot.diagonal = (xs(start), ys(start), xs(edge), ys(edge))
    return plot


def heat_colour(fraction: float) -> str:
    """A light-to-dark sequential colour (pale yellow to deep red) for ``fraction`` in [0, 1]."""
    stops = [(255, 247, 188), (254, 196, 79), (236, 112, 20), (153, 52, 4)]
    f = min(max(fraction, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(f), len(stops) - 2)
    t = f - i
    r, g, b = (round(a + (c - a) * t) for a, c in zip(stops[i], stops[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    colour: str
    key: str
    title: str
    value: float | None


@dataclass
class Heatmap:
    """Rows of block positions (stage, block) by columns of options; ``optional`` rows exist only at greater
    depths and are drawn hatched."""

    cells: list[Cell]
    columns: list[tuple[int, str]]  # x, option label
    rows: list[tuple[int, str, bool]]  # y, label, optional (depth-dependent)
    stage_lines: list[int]  # y of the line above each stage after the first
    legend: list[tuple[int, str, str]]  # x, colour, label
    cell_w: int
    cell_h: int
    width: int
    height: int
    left: int
    top: int


def heatmap(rows: Sequence[tuple[str, bool, Sequence[tuple[str, float | None]]]], options: Sequence[str],
            stage_starts: Sequence[int]) -> Heatmap:
    """A heatmap of ``rows`` (label, optional, per option ``(key, ms or None)``) on a log colour scale."""
    cell_w, cell_h, left, top = 44, 18, 136, 92
    values = [v for _, _, cells in rows for _, v in cells if v is not None and v > 0]
    lo, hi = (math.log(min(values)), math.log(max(values))) if values else (0.0, 1.0)
    cells: list[Cell] = []
    for r, (label, _, entries) in enumerate(rows):
        for c, (key, value) in enumerate(entries):
            frac = 0.0 if value is None or hi <= lo else (math.log(value) - lo) / (hi - lo)
            cells.append(Cell(left + c * cell_w, top + r * cell_h, "#dddddd" if value is None else heat_colour(frac),
                              key, f"{label}, {options[c]}: " + ("not measured" if value is None
                                                                  else f"{value:.4g} ms") + f" ({key})", value))
    legend = []
    if values:
        for i in range(6):
            frac = i / 5
            legend.append((left + i * 96, heat_colour(frac), f"{math.exp(lo + frac * (hi - lo)):.3g} ms"))
    return Heatmap(
        cells=cells,
        columns=[(left + c * cell_w + cell_w // 2, label) for c, label in enumerate(options)],
        rows=[(top + r * cell_h + cell_h // 2, label, optional) for r, (label, optional, _) in enumerate(rows)],
        stage_lines=[top + r * cell_h for r in stage_starts if r > 0],
        legend=legend, cell_w=cell_w, cell_h=cell_h,
        width=left + max(cell_w * len(options), 6 * 96) + 16, height=top + cell_h * len(rows) + 56, left=left, top=top,
    )
