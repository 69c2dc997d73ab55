"""The demo's fleet step: one network for two targets of the demo's server that disagree on which blocks are
cheap, searched under both limits at once and accepted only on both servers' verdicts; and its lines in the report.

The second target is the same machine through another runtime (``DemoConfig.fleet_backend``, torch-cpu by default:
of ONNX Runtime at batch 1 and 16 and torch-cpu at batch 1, measured with ``bench/target_disagreement.py`` at
32 px on this 2-core machine, ONNX Runtime and torch-cpu at batch 1 ordered each position's options least alike).
Its cost is one more table build and one more search with verdicts on both targets; the step times both. Where the
demo has a time budget (``DemoConfig.time_budget_s``), the step runs only if its estimate from this run's own stage
times (:func:`fleet_estimate_s`) fits in what is left; otherwise the report says it was skipped and why.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nas.demo.state import DemoRun, run_nas

__all__ = ["fleet_estimate_s", "fleet_json", "fleet_lines", "fleet_search", "verdict_summary"]


def fleet_estimate_s(stage_seconds: dict[str, float], searches: int, steps: int, fleet_steps: int) -> float:
    """The fleet step's time, estimated from this run's stages: a second table as long as the first (the
    torch-cpu table took 0.85-0.95x the ONNX Runtime one at 32 px) and one search as long as the average of the
    ``searches`` single-target ones, its BCFW share (about 60 % at the demo's settings) scaled by the step counts.
    Both scale with the box's speed at the moment, which is what the estimate is for."""
    one_search = stage_seconds["search"] / max(searches, 1)
    return stage_seconds["latency_table"] + one_search * (0.4 + 0.6 * fleet_steps / max(steps, 1))


def _over_budget(run: DemoRun) -> str | None:
    """Why the fleet step does not fit in the demo's time budget, or None where it does (or there is none)."""
    cfg = run.cfg
    if cfg.time_budget_s is None:
        return None
    elapsed = time.monotonic() - run.started
    estimate = fleet_estimate_s(run.stage_seconds, len(cfg.limit_fractions), cfg.bcfw_steps, cfg.fleet_bcfw_steps)
    if elapsed + estimate <= cfg.time_budget_s:
        return None
    return (f"skipped: the demo had used {elapsed / 60:.1f} of its {cfg.time_budget_s / 60:.2f} minutes and this step "
            f"would take about {estimate / 60:.1f} more on this box now (its estimate from this run's table and search "
            "stages); `nas demo --time-budget 0` runs it whatever the time")


def fleet_search(run: DemoRun) -> str:
    """Build the second target's table, then search under both targets' limits (the same share of each table's
    feasible range) with both servers' verdicts; skip both where the demo's time budget has no room for them."""
    from nas.latency.table import LatencyTable
    from nas.search.fleet import table_disagreement

    skipped = _over_budget(run)
    if skipped:
        run.fleet = {"skipped": skipped}
        return skipped
    cfg, url = run.cfg, run.server.url
    started = time.monotonic()
    second = run.out / f"lut_{cfg.fleet_backend}.json"
    run_nas(run, ["lut", "--latency-endpoint", url, "--resolution", str(cfg.resolution), "--backend",
                  str(cfg.fleet_backend), "--threads", str(cfg.threads), "--out", str(second)], "fleet table")
    table_s = time.monotonic() - started
    models = [LatencyTable.load(path).model() for path in (run.lut_path, second)]
    limits = [round(m.min_latency_ms() + cfg.fleet_fraction * (m.max_latency_ms() - m.min_latency_ms()), 4)
              for m in models]
    out = run.out / "fleet"
    argv = ["search", cfg.data, "--supernet", str(run.supernet), "--resolution", str(cfg.resolution),
            "--bcfw-steps", str(cfg.fleet_bcfw_steps), "--seed", str(cfg.seed), "--out", str(out)]
    for backend, limit in zip((cfg.backend, cfg.fleet_backend), limits, strict=True):
        argv += ["--target", f"{url}?backend={backend}&threads={cfg.threads}={limit}"]
    if not cfg.progress:
        argv.append("--no-progress")
    t0 = time.monotonic()
    run_nas(run, argv, "fleet search")
    spearman, differ = table_disagreement(models[0].block_ms, models[1].block_ms)
    run.fleet = {"result": json.loads((out / "result.json").read_text()), "table_seconds": table_s,
                 "search_seconds": time.monotonic() - t0, "mean_spearman": spearman, "cheapest_differs": differ}
    return verdict_summary(run.fleet["result"]["targets"]) + f" (second table {table_s:.0f} s)"


def verdict_summary(targets: list[dict[str, Any]]) -> str:
    """One line: each target's verified bound against its limit, and whether the network was accepted there."""
    return "; ".join(f"{t['backend']}: bound {_ms(t['upper_latency_ms'])} "
                     f"{'<=' if t.get('accepted') else 'over'} {t['latency_limit_ms']:.3f} ms"
                     + ("" if t.get("accepted") else " (not accepted)") for t in targets)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fleet_json(run: DemoRun) -> dict[str, Any] | None:
    """The fleet step for ``results.json``: the network, each target's limit, table latency and verdict, the
    guarantee, how far the two tables disagree and what the step cost."""
    if run.fleet is None:
        return None
    if "skipped" in run.fleet:
        return {"skipped": run.fleet["skipped"]}
    result = run.fleet["result"]
    keys = ("endpoint", "backend", "threads", "batch_size", "latency_limit_ms", "expected_latency_ms",
            "measured_latency_ms", "upper_latency_ms", "confidence", "accepted", "attempts")
    return {"arch": result["arch"], "targets": [{k: t.get(k) for k in keys} for t in result["targets"]],
            "guarantee_met": result["guarantee"]["met"], "mean_spearman_of_tables": run.fleet["mean_spearman"],
            "cheapest_option_differs_share": run.fleet["cheapest_differs"],
            "table_seconds": round(run.fleet["table_seconds"], 1),
            "search_seconds": round(run.fleet["search_seconds"], 1)}


def fleet_lines(run: DemoRun) -> list[str]:
    """The fleet step's section of ``results.md``."""
    summary = fleet_json(run)
    if summary is None:
        return []
    if "skipped" in summary:
        return ["", "## One network for two targets", "", f"The fleet step was {summary['skipped']}."]
    lines = ["", "## One network for two targets", "",
             f"The same server measuring through two runtimes whose tables disagree on which blocks are cheap (mean "
             f"per-position Spearman correlation of the options' latencies {summary['mean_spearman_of_tables']:.2f}; "
             f"the cheapest option differs at {100 * summary['cheapest_option_differs_share']:.0f} % of the block "
             "positions). One search meets both limits by table at every step; the network is accepted only when "
             f"both servers' verdicts are under their limits (guarantee met: {summary['guarantee_met']}).", "",
             "| target | limit (ms) | table (ms) | verified central (ms) | verified bound (ms) | accepted |",
             "|---|---|---|---|---|---|"]
    for t in summary["targets"]:
        lines.append(f"| {t['backend']}, {t['threads']} thread, batch {t['batch_size']} | {t['latency_limit_ms']:.3f} "
                     f"| {t['expected_latency_ms']:.3f} | {_ms(t['measured_latency_ms'])} | "
                     f"{_ms(t['upper_latency_ms'])} | {t['accepted']} |")
    lines += ["", f"Network: `{summary['arch']}` ({summary['targets'][0]['attempts']} attempt(s)). Time added to "
              f"the demo: {summary['table_seconds']:.0f} s for the second table, {summary['search_seconds']:.0f} s "
              "for the search with both verdicts."]
    return lines
