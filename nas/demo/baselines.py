"""The demo's baselines step: the published networks (timm's hardcorenas_a .. f, mobilenetv3_small_100 and
mobilenetv3_large_100, by name, random weights) measured on the demo's server at the demo's resolution, backend and
threads, so that the searched networks' verdicts have published ones beside them on the same device; and its lines
in the report. It measures through :mod:`nas.latency.compare`, as ``nas compare`` does.

Each model is one verdict. The step runs after the ``measure`` stage and before the fleet step: it is the cheaper of
the two budget-limited steps (8 verdicts, about a minute at 32 px, against a table and a search), so that a short
remaining budget still gives one of them; the fleet step's own estimate then sees the time it took. Where the demo
has a time budget, the step starts only if its estimate from this run's own ``measure`` stage fits
for one model (:func:`baselines_estimate_s`), and stops before a model whose estimate (the slowest so far) no longer
fits, so a short budget still gets the first few in the configured order; the report names what was skipped and why.
"""

from __future__ import annotations

import time
from typing import Any

from nas.demo.state import DemoRun
from nas.latency.client import LatencyClient
from nas.latency.compare import Entry, Measured, Settings, measure_entries
from nas.latency.table import LatencyTableError

__all__ = ["TIMM_FACTOR", "baselines_estimate_s", "baselines_json", "baselines_lines", "measure_baselines"]

#: a timm model's verdict against one of the ``measure`` stage's network verdicts: the server builds and exports the
#: model first, and the larger baselines (mobilenetv3_large_100) run longer per round
TIMM_FACTOR = 1.5


def baselines_estimate_s(stage_seconds: dict[str, float], measured_networks: int, count: int) -> float:
    """The step's time, estimated from this run's ``measure`` stage (one verdict per searched network): ``count``
    verdicts each ``TIMM_FACTOR`` times as long as one of those. It scales with the box's speed now, which is what
    it is for; without a ``measure`` stage, 10 s a verdict (a 32 px verdict on a 2-core box)."""
    measure = stage_seconds.get("measure")
    one = measure / max(measured_networks, 1) if measure else 10.0
    return count * one * TIMM_FACTOR


def _left_s(run: DemoRun) -> float | None:
    budget = run.cfg.time_budget_s
    return None if budget is None else budget - (time.monotonic() - run.started)


def _skip_note(run: DemoRun, estimate_s: float, what: str) -> str:
    budget = run.cfg.time_budget_s or 0.0
    used = time.monotonic() - run.started
    return (f"{what}: the demo had used {used / 60:.1f} of its {budget / 60:.2f} minutes and "
            f"{'they' if what.startswith('skipped') else 'the next'} would take about {estimate_s / 60:.1f} more "
            "on this box now (the estimate from this run's measure stage); `nas demo --time-budget 0` measures them "
            "whatever the time")


def measure_baselines(run: DemoRun) -> str:
    """Measure ``DemoConfig.baselines`` one after another on the demo's server, within the time budget."""
    cfg = run.cfg
    names = list(cfg.baselines)
    prior = baselines_estimate_s(run.stage_seconds, len(run.rows), 1)  # one model
    left = _left_s(run)
    if left is not None and prior > left:  # not even one: as many as fit are measured, in the configured order
        note = _skip_note(run, prior * len(names), "skipped")
        run.baselines = {"skipped": note, "models": [], "not_measured": names}
        return note
    stopped: list[str] = []

    def fits(i: int, entry: Entry, done: list[Measured]) -> bool:
        nxt = max((m.seconds for m in done), default=prior)  # the slowest so far: the models differ in size
        left = _left_s(run)
        if left is None or nxt <= left:
            return True
        stopped.extend(names[i:])
        return False

    settings = Settings(resolution=cfg.resolution, backend=cfg.backend, threads=cfg.threads)
    entries = [Entry(name=name, kind="timm", source=name) for name in names]
    rows: list[Measured] = []
    note = None
    try:
        with LatencyClient(run.server.url) as client:
            measure_entries(client, entries, settings, before_each=fits, after_each=rows.append)
    except LatencyTableError as exc:  # context for the searched networks: a refusal must not end the demo
        failed = names[len(rows)]
        stopped.extend(names[len(rows):])
        note = f"stopped at {failed}: {' '.join(str(exc).split())}"
    if stopped and note is None:
        slowest = max(m.seconds for m in rows) if rows else prior
        note = _skip_note(run, slowest, f"stopped before {', '.join(stopped)}")
    run.baselines = {"skipped": note, "models": rows, "not_measured": stopped}
    summary = ", ".join(f"{m.name} {m.central_ms:.3f} ms" for m in rows)
    return summary + (f"; {note}" if note else "")


def baselines_json(run: DemoRun) -> dict[str, Any] | None:
    """The step for ``results.json``: each model's figures (fastest first), and why any were not measured."""
    if run.baselines is None:
        return None
    models = sorted(run.baselines["models"], key=lambda m: m.central_ms)
    return {"resolution": run.cfg.resolution, "backend": run.cfg.backend, "threads": run.cfg.threads,
            "models": [m.to_json() for m in models], "not_measured": run.baselines["not_measured"],
            "note": run.baselines["skipped"]}


def baselines_lines(run: DemoRun) -> list[str]:
    """The step's section of ``results.md``: one row per published network, fastest first."""
    summary = baselines_json(run)
    if summary is None:
        return []
    lines = ["", "## Published networks on this device", ""]
    if summary["models"]:
        lines += [f"timm's models by name (random weights) at {summary['resolution']} px, {summary['backend']}, "
                  f"{summary['threads']} thread, batch 1, on the demo's server: the same verdict as the searched "
                  "networks' re-measurement, with the same 1000-class head the server gives the searched networks "
                  "(their parameters above count the 10-class head they were trained with).", "",
                  "| network | central (ms) | bound (ms) | params (M) | MACs (M) |", "|---|---|---|---|---|"]
        lines += [f"| {m['name']} | {m['central_ms']:.3f} | {m['upper_ms']:.3f} | {m['parameters'] / 1e6:.2f} | "
                  f"{m['macs'] / 1e6:.1f} |" for m in summary["models"]]
        if summary["note"]:
            lines.append("")
    if summary["note"]:
        lines.append(f"The published networks were {summary['note']}.")
    return lines
